package flex

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/twilio"
)

// DefaultFailureDelay is the least time before a token handler answers a
// failed Flex token check, whatever failed: the agent API's
// (agent.DefaultAuthFailureDelay, 500 ms), so every refusal of a guessable
// secret on a server takes the same least time.
const DefaultFailureDelay = agent.DefaultAuthFailureDelay

// VoiceTokenOptions configures VoiceTokenHandler.
type VoiceTokenOptions struct {
	// Auth checks the Flex token; required.
	Auth *Authenticator
	// AccountSID ("AC…"), APIKeySID ("SK…") and APIKeySecret sign the
	// access tokens; required (Twilio access tokens are signed with an API
	// key secret, never the auth token).
	AccountSID   string
	APIKeySID    string
	APIKeySecret string
	// TwiMLAppSID ("AP…") handles the calls the client places; empty means
	// no outgoing grant.
	TwiMLAppSID string
	// IdentityPrefix is put before the agent's Flex identity, so the
	// extension's client identity differs from the Flex tab's ("ext_" makes
	// "ext_user_40example_2Dcom"). See twilio.ClientIdentity.
	IdentityPrefix string
	// NoIncoming leaves out the incoming grant (the client only places
	// calls).
	NoIncoming bool
	// TTL is the tokens' lifetime; default twilio.DefaultTokenTTL, at most
	// twilio.MaxTokenTTL.
	TTL time.Duration
	// Region is written as the token's twr header ("ie1"); optional.
	Region string
	// AllowedOrigins are the web origins ("https://flex.twilio.com"),
	// besides the server's own, whose pages may ask for a token. Requests
	// of browser extensions (chrome-extension://, moz-extension://,
	// safari-web-extension:// origins) are always answered; a request from
	// a page of any other origin is refused (see VoiceTokenHandler).
	AllowedOrigins []string
	// FailureDelay is the least time before a refusal is answered; default
	// DefaultFailureDelay, negative for none.
	FailureDelay time.Duration
	// Logger receives refusals (never tokens); nil discards them.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// VoiceTokenResponse is the answer of VoiceTokenHandler.
type VoiceTokenResponse struct {
	// Identity is the client identity (prefix + Flex identity).
	Identity string `json:"identity"`
	// Token is the Voice access token (a JWT).
	Token string `json:"token"`
	// ExpiresAt is when Token expires (RFC 3339, UTC).
	ExpiresAt time.Time `json:"expires_at"`
}

// VoiceTokenHandler returns the token service of a browser-extension
// voice client: POST with the agent's Flex token ("Authorization: Bearer",
// X-Flex-Token, or "Token" in a JSON or form body, as
// twilio-flex-token-validator reads it) answers 200 with a
// VoiceTokenResponse for prefix + the agent's identity. Failures answer
// {"error","code"}: 401 "unauthenticated" (invalid token), 503
// "auth_unavailable" (Twilio refused the server's credentials or is
// unreachable; logged at Error), 400 "bad_request" (an unreadable body),
// 413 "too_large" (a body over 64 KiB), 405 "method_not_allowed" (with
// Allow: POST) for other methods, 403 "origin_not_allowed" for a request
// of a web page whose origin is neither the server's own nor one of
// AllowedOrigins, or that the browser marks cross-site or same-site
// without an Origin (a form another site posts with a token in it).
func VoiceTokenHandler(opts *VoiceTokenOptions) (http.Handler, error) {
	if opts == nil || opts.Auth == nil {
		return nil, fmt.Errorf("%w: VoiceTokenOptions.Auth is required", twilio.ErrInvalidArgument)
	}
	o := *opts
	if o.AccountSID == "" || o.APIKeySID == "" || o.APIKeySecret == "" {
		return nil, fmt.Errorf("%w: voice tokens need AccountSID, APIKeySID and APIKeySecret (set TWILIO_API_KEY and TWILIO_API_SECRET)", twilio.ErrInvalidArgument)
	}
	if o.TTL == 0 {
		o.TTL = twilio.DefaultTokenTTL
	}
	if o.TTL < 0 || o.TTL > twilio.MaxTokenTTL {
		return nil, fmt.Errorf("%w: got %v", twilio.ErrTTL, o.TTL)
	}
	if _, err := twilio.ClientIdentity(o.IdentityPrefix, "x"); err != nil {
		return nil, fmt.Errorf("identity prefix %q: %w", o.IdentityPrefix, err)
	}
	o.FailureDelay = failureDelay(o.FailureDelay)
	o.Logger = logger(o.Logger)
	if o.Now == nil {
		o.Now = time.Now
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, agent.CodeMethodNotAllowed, "POST only")
			return
		}
		if !extensionOrigin(r) && !originAllowed(r, o.AllowedOrigins) {
			o.Logger.Warn("voice token: refused a cross-site request", "origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
			writeError(w, http.StatusForbidden, agent.CodeOriginNotAllowed, "voice tokens are issued to the Flex page's origin and browser extensions only")
			return
		}
		start := time.Now()
		tok, err := requestToken(w, r)
		if err != nil {
			bodyError(w, err)
			return
		}
		id, err := o.Auth.Validate(r.Context(), tok)
		if err != nil {
			refuse(w, r, o.Logger, err, start, o.FailureDelay)
			return
		}
		ident, err := twilio.ClientIdentity(o.IdentityPrefix, id.Identity)
		if err != nil {
			o.Logger.Warn("voice token: unusable identity", "err", err)
			writeError(w, http.StatusBadRequest, "bad_request", "the Flex identity cannot be a Voice client identity")
			return
		}
		now := o.Now()
		at := &twilio.AccessToken{
			AccountSID: o.AccountSID, APIKeySID: o.APIKeySID, APIKeySecret: o.APIKeySecret,
			Identity: ident, TTL: o.TTL, Region: o.Region,
			Voice: &twilio.VoiceGrant{IncomingAllow: !o.NoIncoming, OutgoingApplicationSID: o.TwiMLAppSID},
		}
		jwt, err := at.Sign(now)
		if err != nil {
			o.Logger.Error("voice token: signing", "err", err)
			writeError(w, http.StatusInternalServerError, "internal", "could not sign an access token")
			return
		}
		writeJSON(w, http.StatusOK, VoiceTokenResponse{Identity: ident, Token: jwt, ExpiresAt: now.Add(o.TTL).UTC().Truncate(time.Second)})
	}), nil
}

// refuse answers a failed token check after delay since start: 503
// auth_unavailable for the server's faults, 401 unauthenticated for the
// agent's, and logs which it was (never the token).
func refuse(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error, start time.Time, delay time.Duration) {
	server := errors.Is(err, agent.ErrAuthUnavailable)
	if server {
		log.Error("flex token not checked: server misconfigured or Twilio unavailable", "path", r.URL.Path, "err", err)
	} else {
		log.Warn("flex token refused", "path", r.URL.Path, "err", err)
	}
	sleepUntil(r.Context(), start.Add(delay))
	if server {
		writeError(w, http.StatusServiceUnavailable, CodeAuthUnavailable, "the server could not check the Flex token: it is misconfigured or Twilio is unavailable")
		return
	}
	writeError(w, http.StatusUnauthorized, "unauthenticated", "invalid Flex token")
}

// CodeAuthUnavailable is the error code of an answer to a token that could
// not be checked because of the server (its credentials, or Twilio), as
// the agent API's.
const CodeAuthUnavailable = agent.CodeAuthUnavailable

func sleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}

func failureDelay(d time.Duration) time.Duration {
	if d == 0 {
		return DefaultFailureDelay
	}
	return max(d, 0)
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// requestToken returns the Flex token of r: a header (see Token), else the
// "Token" field of a JSON or form body (at most 64 KiB).
func requestToken(w http.ResponseWriter, r *http.Request) (string, error) {
	if t := Token(r); t != "" {
		return t, nil
	}
	p, err := params(w, r)
	if err != nil {
		return "", err
	}
	return p["Token"], nil
}

// params reads the string fields of a JSON object or form body (at most
// 64 KiB). An empty body gives no fields.
func params(w http.ResponseWriter, r *http.Request) (map[string]string, error) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	out := map[string]string{}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		var m map[string]any
		dec := json.NewDecoder(r.Body)
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		for k, v := range m {
			if s, ok := v.(string); ok {
				out[k] = s
			}
		}
		return out, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	for k, v := range r.PostForm {
		if len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": msg, "code": code})
}

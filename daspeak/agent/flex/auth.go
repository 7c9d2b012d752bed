package flex

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/twilio"
)

// TokenHeader is the header a Flex plugin may carry its token in instead
// of "Authorization: Bearer".
const TokenHeader = "X-Flex-Token"

// Authenticator checks the Flex token of an agent request with Twilio IAM.
// It implements agent.Authenticator and is safe for concurrent use.
type Authenticator struct {
	v   *twilio.FlexValidator
	log *slog.Logger
}

// NewAuthenticator returns an Authenticator over v (which caches valid
// tokens until they expire). Authenticate logs to log (nil discards):
// a refused token at Warn ("flex token refused"), a check the server could
// not make at Error ("server misconfigured or Twilio unavailable"); never
// the token.
func NewAuthenticator(v *twilio.FlexValidator, log *slog.Logger) *Authenticator {
	return &Authenticator{v: v, log: logger(log)}
}

// Token returns the Flex token of r: the "Authorization: Bearer" value,
// else the X-Flex-Token header, else "".
func Token(r *http.Request) string {
	if t, ok := cutBearer(r.Header.Get("Authorization")); ok {
		return t
	}
	return strings.TrimSpace(r.Header.Get(TokenHeader))
}

func cutBearer(h string) (string, bool) {
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return "", false
}

// Validate checks token and returns the agent's identity. Errors:
//
//   - wrapping twilio.ErrFlexToken (and ErrNoToken for an empty token):
//     the token is not valid; answer 401;
//   - a *ServerError wrapping ErrServerCredentials (and
//     twilio.ErrServerCredentials): Twilio refused the server's account
//     SID and auth token (or API key); fix the server;
//   - a *ServerError wrapping ErrTwilioUnavailable: Twilio could not be
//     asked (network, timeout, 429 or 5xx after retries); the token was
//     not judged.
//
// Both *ServerError kinds wrap agent.ErrAuthUnavailable. No error
// contains the token.
func (a *Authenticator) Validate(ctx context.Context, token string) (*twilio.FlexIdentity, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: %w", ErrNoToken, twilio.ErrFlexToken)
	}
	id, err := a.v.Validate(ctx, token)
	if err != nil {
		return nil, classify(err)
	}
	return id, nil
}

// classify tells the agent's fault (an invalid or expired token:
// twilio.ErrFlexToken) from the server's: twilio.ErrServerCredentials when
// Twilio refused the validator's own credentials, anything else (Twilio
// unreachable, 429 or 5xx after the validator's retries) unavailable.
func classify(err error) error {
	switch {
	case errors.Is(err, twilio.ErrServerCredentials):
		return &ServerError{Kind: ErrServerCredentials, Err: err}
	case errors.Is(err, twilio.ErrFlexToken):
		return err
	}
	return &ServerError{Kind: ErrTwilioUnavailable, Err: err}
}

// Identity validates the Flex token of r (see Token and Validate).
func (a *Authenticator) Identity(ctx context.Context, r *http.Request) (*twilio.FlexIdentity, error) {
	return a.Validate(ctx, Token(r))
}

// IdentitySubject prefixes the Subject of a principal whose Flex token
// names no TaskRouter worker: its Subject is IdentitySubject + the Flex
// identity, never a bare identity, so no identity (whatever it looks
// like, "WK…" included) is taken for a worker SID.
const IdentitySubject = "identity:"

// Authenticate implements agent.Authenticator: the principal's Subject is
// the agent's TaskRouter worker SID, or IdentitySubject + the Flex
// identity when Twilio sent none; its Name the SSO user (or the
// identity). Errors are those of
// Validate: a *ServerError, wrapping agent.ErrAuthUnavailable, for the
// server's side (an agent.Server answers it 503 "auth_unavailable"), any
// other for the agent's (401).
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request) (agent.Principal, error) {
	id, err := a.Identity(ctx, r)
	if err != nil {
		var se *ServerError
		if errors.As(err, &se) {
			a.log.Error("flex token not checked: server misconfigured or Twilio unavailable", "path", r.URL.Path, "err", err)
		} else {
			a.log.Warn("flex token refused", "path", r.URL.Path, "err", err)
		}
		return agent.Principal{}, err
	}
	sub := id.WorkerSID
	if sub == "" {
		sub = IdentitySubject + id.Identity
	}
	name := id.RealmUserID
	if name == "" {
		name = id.Identity
	}
	return agent.Principal{Subject: sub, Name: name}, nil
}

var _ agent.Authenticator = (*Authenticator)(nil)

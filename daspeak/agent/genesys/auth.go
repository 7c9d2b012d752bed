package genesys

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/voicegate/voicegate/daspeak/agent/internal/allow"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/voicegate/voicegate/daspeak/agent"
)

// Defaults of AuthenticatorOptions.
const (
	DefaultAuthTimeout          = 5 * time.Second
	DefaultCacheTTL             = time.Minute
	DefaultCacheSize            = 10000
	DefaultConversationCacheTTL = 5 * time.Second
)

// AuthenticatorOptions configures NewAuthenticator.
type AuthenticatorOptions struct {
	// APIBaseURL is the region's API ("https://api.mypurecloud.ie", see
	// APIBaseURL and Region); required. Tests point it at a fake.
	APIBaseURL string
	// HTTPClient defaults to a client without a timeout of its own (each
	// check is bounded by Timeout).
	HTTPClient *http.Client
	// Timeout bounds each check; default DefaultAuthTimeout.
	Timeout time.Duration
	// CacheTTL is how long an accepted token is trusted without asking
	// Genesys again; default DefaultCacheTTL, negative disables the cache.
	// A revoked token keeps working for at most this long.
	CacheTTL time.Duration
	// ConversationCacheTTL is how long an agent's access to a
	// conversation (AuthorizeCall) is trusted for status reads and stops
	// without asking Genesys again; default DefaultConversationCacheTTL,
	// negative disables the cache. Refusals are never cached, and a
	// request that can change the caller's registration (register,
	// verify, reverify, delete) never takes a cached access: see
	// AuthorizeCall.
	ConversationCacheTTL time.Duration
	// CacheSize bounds the cached tokens, and apart from them the cached
	// conversation accesses; default DefaultCacheSize.
	CacheSize int
	// Logger receives refusals, server faults at Error and token
	// refusals at Warn (never the token); nil discards them.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// User is the agent a token belongs to, from GET /api/v2/users/me.
type User struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Authenticator checks a Genesys Cloud OAuth access token (an agent's,
// from the interaction widget page's login, see WidgetPage) by asking the region's API
// who it belongs to: GET {APIBaseURL}/api/v2/users/me with the token. It
// fails closed. It implements agent.Authenticator and is safe for
// concurrent use.
//
// It also implements agent.CallAuthorizer (AuthorizeCall): an agent may
// only act on a conversation their own token can read.
type Authenticator struct {
	o     AuthenticatorOptions
	log   *slog.Logger
	url   string
	base  string
	mu    sync.Mutex
	cache map[[32]byte]cached
	convs *allow.Cache // (token, conversation) pairs allowed
}

type cached struct {
	user User
	exp  time.Time
}

// NewAuthenticator returns an Authenticator.
func NewAuthenticator(opts *AuthenticatorOptions) (*Authenticator, error) {
	if opts == nil || opts.APIBaseURL == "" {
		return nil, errors.New("genesys: AuthenticatorOptions.APIBaseURL is required")
	}
	o := *opts
	if !strings.HasPrefix(o.APIBaseURL, "https://") && !strings.HasPrefix(o.APIBaseURL, "http://") {
		return nil, fmt.Errorf("genesys: APIBaseURL %q is not an http(s) URL", o.APIBaseURL)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultAuthTimeout
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = DefaultCacheTTL
	}
	if o.ConversationCacheTTL == 0 {
		o.ConversationCacheTTL = DefaultConversationCacheTTL
	}
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Authenticator{
		o: o, log: log, base: strings.TrimSuffix(o.APIBaseURL, "/"), url: strings.TrimSuffix(o.APIBaseURL, "/") + "/api/v2/users/me",
		cache: map[[32]byte]cached{}, convs: allow.New(o.ConversationCacheTTL, o.CacheSize),
	}, nil
}

// Validate returns the user of token. Errors wrap ErrToken (the token is
// not valid: answer 401) or are a *ServerError wrapping ErrUnavailable and
// agent.ErrAuthUnavailable (the token was not judged: answer 503).
func (a *Authenticator) Validate(ctx context.Context, token string) (*User, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: no token", ErrToken)
	}
	key := sha256.Sum256([]byte(token))
	now := a.o.Now()
	if a.o.CacheTTL > 0 {
		a.mu.Lock()
		c, ok := a.cache[key]
		if ok && !now.Before(c.exp) {
			delete(a.cache, key)
			ok = false
		}
		a.mu.Unlock()
		if ok {
			u := c.user
			return &u, nil
		}
	}
	u, err := a.remote(ctx, token)
	if err != nil {
		return nil, err
	}
	if a.o.CacheTTL > 0 {
		a.mu.Lock()
		if len(a.cache) >= a.o.CacheSize {
			for k, c := range a.cache {
				if !now.Before(c.exp) || len(a.cache) >= a.o.CacheSize {
					delete(a.cache, k)
				}
			}
		}
		a.cache[key] = cached{user: *u, exp: now.Add(a.o.CacheTTL)}
		a.mu.Unlock()
	}
	return u, nil
}

func (a *Authenticator) remote(ctx context.Context, token string) (*User, error) {
	ctx, cancel := context.WithTimeout(ctx, a.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url, nil)
	if err != nil {
		return nil, &ServerError{Kind: ErrUnavailable, Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := a.o.HTTPClient.Do(req)
	if err != nil {
		return nil, &ServerError{Kind: ErrUnavailable, Err: fmt.Errorf("GET /api/v2/users/me: %w", err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, &ServerError{Kind: ErrUnavailable, Err: fmt.Errorf("GET /api/v2/users/me: %w", err)}
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%w: GET /api/v2/users/me: HTTP %d", ErrToken, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, &ServerError{Kind: ErrUnavailable, Err: fmt.Errorf("GET /api/v2/users/me: HTTP %d", resp.StatusCode)}
	}
	var u User
	if err := json.Unmarshal(body, &u); err != nil || u.ID == "" {
		return nil, &ServerError{Kind: ErrUnavailable, Err: errors.New("GET /api/v2/users/me: answer without a user id")}
	}
	return &u, nil
}

// Authenticate implements agent.Authenticator with the request's
// "Authorization: Bearer" token: the principal is the Genesys user (id,
// name). It logs server faults at Error and refused tokens at Warn. Its
// server faults (Genesys Cloud unreachable, 429, 5xx, an answer without a
// user) wrap agent.ErrAuthUnavailable: an agent.Server answers them 503
// "auth_unavailable".
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request) (agent.Principal, error) {
	tok, _ := agent.BearerToken(r)
	u, err := a.Validate(ctx, tok)
	if err != nil {
		var se *ServerError
		if errors.As(err, &se) {
			a.log.Error("genesys token not checked: Genesys Cloud API unavailable", "path", r.URL.Path, "err", err)
		} else {
			a.log.Warn("genesys token refused", "path", r.URL.Path, "err", err)
		}
		return agent.Principal{}, err
	}
	return agent.Principal{Subject: u.ID, Name: u.Name}, nil
}

// AuthorizeCall implements agent.CallAuthorizer: the agent may act on
// conversation callID when their own token (the request's bearer token)
// can read it: GET {APIBaseURL}/api/v2/conversations/{conversationId}
// answers 200, and the conversation is live for them. Genesys Cloud shows
// a conversation to its participants and to users with the permission to
// view others' conversations, so this binds the agent to the
// conversations they are on (or supervise), not to any conversation of
// the org.
//
// The answer's Conversation fields decide whether it is live for the
// agent (Genesys Cloud Platform API, Conversation and Participant models):
// the conversation's endTime (set when the last participant left, null
// while it is active) and, for each participant whose userId is the
// agent's (p.Subject; whatever its purpose: "agent", "user", …), its
// endTime (set when that participant disconnected), its state and its calls' states
// ("disconnected" or "terminated" once the leg is over). An agent with a
// participant on a conversation that has ended, or whose participants
// have all disconnected (the agent hung up, transferred the call, or
// was only offered it), is refused with an error wrapping ErrCallEnded
// and agent.ErrNoCall (409 "no_call": their part in the call has ended,
// whether or not the call goes on with others); a user with no participant
// on an ended conversation is refused as one who cannot see it.
//
// Errors: a conversation id that is not a UUID wraps agent.ErrBadCallID
// (400 "bad_request"; Genesys is not asked); a 403 or 404 answer, or an
// ended conversation the agent was never on, wraps ErrConversation and
// agent.ErrForbidden (403 "forbidden"); an ended call of the agent wraps
// ErrCallEnded and agent.ErrNoCall (409 "no_call"); a 401 wraps ErrToken
// and agent.ErrUnauthenticated (401); a failure of Genesys (network,
// timeout, 429, 5xx, a 200 answer that is not a conversation) is a
// *ServerError wrapping ErrUnavailable and agent.ErrAuthUnavailable
// (503). No error contains the token.
//
// Allowed accesses are cached per (token, conversation) for
// ConversationCacheTTL; refusals are not. Only a status read and a stop
// (a request whose path ends in "/status" or "/stop") may be answered
// from the cache, so a status read can be stale by up to
// ConversationCacheTTL: an agent who transferred the call away may see
// the caller's status that long. Every other request (the starts
// register, verify and reverify, and delete) asks Genesys again, so an
// agent whose participant disconnected is refused at once.
//
// An agent only offered the conversation (alerted, then declined or
// timed out) has a participant that disconnected: they are refused with
// ErrCallEnded too, while the conversation may go on with another agent.
// The refusal says that their part in it has ended; it grants nothing.
func (a *Authenticator) AuthorizeCall(ctx context.Context, r *http.Request, p agent.Principal, callID string) error {
	if !isUUID(callID) {
		return fmt.Errorf("%w: %q is not a conversation id", agent.ErrBadCallID, callID)
	}
	tok, _ := agent.BearerToken(r)
	if tok == "" {
		return fmt.Errorf("%w: %w: no token", agent.ErrUnauthenticated, ErrToken)
	}
	key := sha256.Sum256([]byte(tok + "\x00" + callID))
	now := a.o.Now()
	if allow.ReadOnly(r) && a.convs.Allowed(key, now) {
		return nil
	}
	if err := a.conversation(ctx, tok, p.Subject, callID); err != nil {
		return err
	}
	a.convs.Grant(key, now)
	return nil
}

// conversation asks Genesys whether token can read conversation id and
// whether it is live for user (see AuthorizeCall).
func (a *Authenticator) conversation(ctx context.Context, token, user, id string) error {
	const what = "GET /api/v2/conversations/{conversationId}"
	ctx, cancel := context.WithTimeout(ctx, a.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/api/v2/conversations/"+id, nil)
	if err != nil {
		return &ServerError{Kind: ErrUnavailable, Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := a.o.HTTPClient.Do(req)
	if err != nil {
		return &ServerError{Kind: ErrUnavailable, Err: fmt.Errorf("%s: %w", what, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %w: %s: HTTP %d", agent.ErrForbidden, ErrConversation, what, resp.StatusCode)
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%w: %w: %s: HTTP 401", agent.ErrUnauthenticated, ErrToken, what)
	case resp.StatusCode != http.StatusOK:
		return &ServerError{Kind: ErrUnavailable, Err: fmt.Errorf("%s: HTTP %d", what, resp.StatusCode)}
	case err != nil:
		return &ServerError{Kind: ErrUnavailable, Err: fmt.Errorf("%s: %w", what, err)}
	}
	var c conversationState
	if err := json.Unmarshal(body, &c); err != nil {
		return &ServerError{Kind: ErrUnavailable, Err: fmt.Errorf("%s: the answer is not a conversation: %w", what, err)}
	}
	return c.liveFor(user, id)
}

// conversationState holds the fields of a Genesys Cloud Conversation
// (GET /api/v2/conversations/{conversationId}) that tell whether it is
// live for a user.
type conversationState struct {
	EndTime      string `json:"endTime"`
	Participants []struct {
		UserID  string `json:"userId"`
		Purpose string `json:"purpose"`
		EndTime string `json:"endTime"`
		State   string `json:"state"`
		Calls   []struct {
			State string `json:"state"`
		} `json:"calls"`
	} `json:"participants"`
}

// ended reports whether a participant or call state is that of a leg
// that is over.
func endedState(s string) bool {
	return strings.EqualFold(s, "disconnected") || strings.EqualFold(s, "terminated")
}

// liveFor returns nil when conversation id is live for user (see
// AuthorizeCall), an error wrapping ErrCallEnded and agent.ErrNoCall when
// user was on it and it ended for them, one wrapping agent.ErrForbidden
// when it ended and user was never on it.
func (c *conversationState) liveFor(user, id string) error {
	on, live := false, false
	for _, p := range c.Participants {
		if user == "" || !strings.EqualFold(p.UserID, user) {
			continue
		}
		on = true
		over := p.EndTime != "" || endedState(p.State)
		if !over && len(p.Calls) > 0 {
			over = true
			for _, call := range p.Calls {
				if !endedState(call.State) {
					over = false
				}
			}
		}
		if !over {
			live = true
		}
	}
	switch {
	case on && (c.EndTime != "" || !live):
		return fmt.Errorf("%w: %w: user %s's part in conversation %s has ended", ErrCallEnded, agent.ErrNoCall, user, id)
	case !on && c.EndTime != "":
		return fmt.Errorf("%w: %w: conversation %s ended and user %s was not on it", agent.ErrForbidden, ErrConversation, id, user)
	}
	return nil
}

// isUUID reports whether s is a UUID in its 8-4-4-4-12 hexadecimal form,
// as Genesys Cloud conversation ids are.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

var (
	_ agent.Authenticator  = (*Authenticator)(nil)
	_ agent.CallAuthorizer = (*Authenticator)(nil)
)

package twilio

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Defaults of FlexValidatorOptions.
const (
	DefaultFlexTimeout   = 5 * time.Second
	DefaultFlexCacheSize = 10000
)

// FlexValidatorOptions configures NewFlexValidator.
type FlexValidatorOptions struct {
	// AccountSID is the Flex account ("AC…"); required.
	AccountSID string
	// AuthToken, or APIKeySID and APIKeySecret, authenticate the call to
	// Twilio IAM; the API key takes precedence. Either works here, unlike
	// X-Twilio-Signature validation, which needs the auth token.
	AuthToken    string
	APIKeySID    string
	APIKeySecret string
	// Realm selects iam.{Realm}.twilio.com; empty means iam.twilio.com.
	// A Twilio Functions region such as "ie1-ix" is cut at the first "-".
	Realm string
	// BaseURL replaces "https://iam…twilio.com" (tests, proxies).
	BaseURL string
	// HTTPClient defaults to a client without timeout of its own.
	HTTPClient *http.Client
	// Timeout bounds each attempt of a validation; default
	// DefaultFlexTimeout. The ctx given to Validate bounds the whole call.
	Timeout time.Duration
	// MaxRetries, RetryBackoff, MaxRetryBackoff and MaxRetryAfter work as
	// in ClientOptions (defaults DefaultMaxRetries, DefaultRetryBackoff,
	// DefaultMaxRetryBackoff, DefaultMaxRetryAfter). Validation is
	// idempotent: it is retried after HTTP 429, a 5xx answer, a transport
	// error or a timed-out attempt.
	MaxRetries      int
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	MaxRetryAfter   time.Duration
	// CacheSize bounds the number of valid tokens remembered until their
	// expiration; default DefaultFlexCacheSize. Negative disables caching.
	CacheSize int
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// FlexIdentity is what Twilio says about a valid Flex token.
type FlexIdentity struct {
	// Identity is the escaped user name ("user_40example_2Dcom").
	Identity string `json:"identity"`
	// RealmUserID is the SSO user ("user@example.com"); it may be empty.
	RealmUserID string `json:"realm_user_id"`
	// WorkerSID is the TaskRouter worker ("WK…") of the agent.
	WorkerSID string `json:"worker_sid"`
	// Roles lists roles such as "agent", "supervisor", "admin".
	Roles []string `json:"roles"`
	// Expiration is when the token expires.
	Expiration time.Time `json:"expiration"`
}

// HasRole reports whether the identity has role r.
func (f *FlexIdentity) HasRole(r string) bool {
	for _, x := range f.Roles {
		if x == r {
			return true
		}
	}
	return false
}

// FlexValidator validates Flex user tokens (the JWE a Flex plugin reads
// from manager.store.getState().flex.session.ssoTokenPayload.token) by
// calling Twilio's IAM Tokens/validate endpoint. It fails closed: any
// transport error, timeout, unexpected answer or "valid": false is an
// error, never an identity. Valid results are cached until their expiration.
// It is safe for concurrent use.
type FlexValidator struct {
	o     FlexValidatorOptions
	retry retryPolicy
	mu    sync.Mutex
	cache map[[32]byte]*FlexIdentity
}

// NewFlexValidator returns a FlexValidator.
func NewFlexValidator(opts *FlexValidatorOptions) (*FlexValidator, error) {
	if opts == nil || opts.AccountSID == "" {
		return nil, fmt.Errorf("%w: FlexValidatorOptions.AccountSID is required", ErrInvalidArgument)
	}
	o := *opts
	if o.AuthToken == "" && (o.APIKeySID == "" || o.APIKeySecret == "") {
		return nil, fmt.Errorf("%w: AuthToken or APIKeySID and APIKeySecret are required", ErrInvalidArgument)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultFlexTimeout
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultFlexCacheSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if i := strings.IndexByte(o.Realm, '-'); i >= 0 {
		o.Realm = o.Realm[:i]
	}
	return &FlexValidator{o: o, cache: map[[32]byte]*FlexIdentity{},
		retry: newRetryPolicy(o.MaxRetries, o.RetryBackoff, o.MaxRetryBackoff, o.MaxRetryAfter, o.Timeout)}, nil
}

type flexValidateResponse struct {
	Valid   bool    `json:"valid"`
	Code    int     `json:"code"`
	Message *string `json:"message"`
	FlexIdentity
}

// Validate returns the identity of a valid token. Errors tell apart whose
// fault a refusal is:
//   - the agent's: Twilio answered that the token is not valid, or it has
//     expired: the error wraps ErrFlexToken;
//   - the server's: Twilio refused this validator's own credentials (HTTP
//     401 or 403, or 404 for the account): a *CredentialsError matching
//     ErrServerCredentials, naming the option to fix;
//   - nobody's yet: 429, 5xx, transport errors and timeouts, retried, then
//     returned as an *APIError or transport error (a timeout matches
//     context.DeadlineExceeded).
//
// No error ever comes with an identity. The returned value must not be
// modified.
func (v *FlexValidator) Validate(ctx context.Context, token string) (*FlexIdentity, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: empty token", ErrFlexToken)
	}
	key := sha256.Sum256([]byte(token))
	now := v.o.Now()
	if v.o.CacheSize > 0 {
		v.mu.Lock()
		id, ok := v.cache[key]
		if ok && !now.Before(id.Expiration) {
			delete(v.cache, key)
			ok = false
		}
		v.mu.Unlock()
		if ok {
			return id, nil
		}
	}
	id, err := v.remote(ctx, token)
	if err != nil {
		return nil, err
	}
	if !now.Before(id.Expiration) {
		return nil, fmt.Errorf("%w: expired at %s", ErrFlexToken, id.Expiration.Format(time.RFC3339))
	}
	if v.o.CacheSize > 0 {
		v.mu.Lock()
		if len(v.cache) >= v.o.CacheSize {
			for k, e := range v.cache {
				if !now.Before(e.Expiration) || len(v.cache) >= v.o.CacheSize {
					delete(v.cache, k)
				}
			}
		}
		v.cache[key] = id
		v.mu.Unlock()
	}
	return id, nil
}

func (v *FlexValidator) remote(ctx context.Context, token string) (*FlexIdentity, error) {
	body, _ := json.Marshal(map[string]string{"token": token})
	u := productURL(v.o.BaseURL, "iam", "", v.o.Realm) + "/v1/Accounts/" + url.PathEscape(v.o.AccountSID) + "/Tokens/validate"
	newReq := func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Cache-Control", "no-cache")
		if v.usesAPIKey() {
			req.SetBasicAuth(v.o.APIKeySID, v.o.APIKeySecret)
		} else {
			req.SetBasicAuth(v.o.AccountSID, v.o.AuthToken)
		}
		return req, nil
	}
	ans, _, err := v.retry.send(ctx, v.o.HTTPClient, retryIdempotent, newReq)
	if err != nil {
		if isTimeout(err) {
			return nil, fmt.Errorf("twilio: flex validate timed out: %w", err)
		}
		return nil, fmt.Errorf("twilio: flex validate: %w", err)
	}
	var r flexValidateResponse
	jsonErr := json.Unmarshal(ans.body, &r)
	var verdict struct {
		Valid *bool `json:"valid"`
	}
	hasVerdict := jsonErr == nil && json.Unmarshal(ans.body, &verdict) == nil && verdict.Valid != nil
	switch {
	case ans.status == http.StatusUnauthorized,
		ans.status == http.StatusForbidden && !hasVerdict:
		// IAM refused the Basic credentials of this server before looking
		// at the token.
		return nil, v.credentialsError(CredentialAPIKey, ans)
	case ans.status == http.StatusNotFound && !hasVerdict:
		return nil, v.credentialsError(CredentialAccountSID, ans)
	case ans.status == http.StatusTooManyRequests || ans.status >= 500:
		// Retries used up: nobody said the token is invalid.
		return nil, fmt.Errorf("twilio: flex validate: %w", parseAPIError(ans.status, ans.body))
	case !hasVerdict:
		// Not a verdict: an error page or proxy answer.
		return nil, fmt.Errorf("twilio: flex validate: %w", parseAPIError(ans.status, ans.body))
	}
	if !r.Valid {
		msg := "not valid"
		if r.Message != nil && *r.Message != "" {
			msg = *r.Message
		}
		if ans.status >= 300 {
			// Twilio's error body; keep it for errors.As.
			return nil, fmt.Errorf("%w: %s: %w", ErrFlexToken, msg, parseAPIError(ans.status, ans.body))
		}
		return nil, fmt.Errorf("%w: %s", ErrFlexToken, msg)
	}
	if ans.status < 200 || ans.status > 299 {
		return nil, fmt.Errorf("twilio: flex validate: \"valid\": true with %w", parseAPIError(ans.status, ans.body))
	}
	if r.Expiration.IsZero() {
		return nil, fmt.Errorf("%w: answer has no expiration", ErrFlexToken)
	}
	id := r.FlexIdentity
	return &id, nil
}

func (v *FlexValidator) usesAPIKey() bool { return v.o.APIKeySID != "" && v.o.APIKeySecret != "" }

// credentialsError builds the *CredentialsError for a refused request;
// kind is CredentialAPIKey for 401/403 (turned into CredentialAuthToken
// when no API key is configured) or CredentialAccountSID.
func (v *FlexValidator) credentialsError(kind Credential, ans *answer) *CredentialsError {
	e := &CredentialsError{Credential: kind, AccountSID: v.o.AccountSID, Err: parseAPIError(ans.status, ans.body)}
	if kind == CredentialAPIKey {
		if v.usesAPIKey() {
			e.APIKeySID = v.o.APIKeySID
		} else {
			e.Credential = CredentialAuthToken
		}
	}
	return e
}

// WebChatParams are the parameters of CreateWebChat (Flex UI 2.x,
// Conversations-based web chat).
type WebChatParams struct {
	// AddressSID is the Conversations address ("IG…") configured for web
	// chat; required.
	AddressSID string
	// ChatFriendlyName names the conversation; CustomerFriendlyName the
	// customer participant.
	ChatFriendlyName     string
	CustomerFriendlyName string
	// PreEngagementData is a JSON string of pre-chat form data.
	PreEngagementData string
	// UIVersion sets the Ui-Version header.
	UIVersion string
}

// WebChat is the answer of CreateWebChat.
type WebChat struct {
	// ConversationSID ("CH…") is the conversation the customer joins.
	ConversationSID string `json:"conversation_sid"`
	// Identity is the customer's Conversations identity.
	Identity string `json:"identity"`
}

// CreateWebChat starts a Flex web chat conversation
// (POST https://flex-api.twilio.com/v2/WebChats). Give the returned
// identity an access token with a ChatGrant for the Conversations service
// and let the customer's browser join ConversationSID.
func (c *Client) CreateWebChat(ctx context.Context, p *WebChatParams) (*WebChat, error) {
	if p == nil || p.AddressSID == "" {
		return nil, fmt.Errorf("%w: AddressSID is required", ErrInvalidArgument)
	}
	f := url.Values{"AddressSid": {p.AddressSID}}
	for k, v := range map[string]string{"ChatFriendlyName": p.ChatFriendlyName, "CustomerFriendlyName": p.CustomerFriendlyName, "PreEngagementData": p.PreEngagementData} {
		if v != "" {
			f.Set(k, v)
		}
	}
	var hdr http.Header
	if p.UIVersion != "" {
		hdr = http.Header{"Ui-Version": {p.UIVersion}}
	}
	out := &WebChat{}
	if uncertain, err := c.postForm(ctx, retryRateLimited, c.url("flex-api", "/v2/WebChats"), f, hdr, out); err != nil {
		return nil, createError(uncertain, err)
	}
	return out, nil
}

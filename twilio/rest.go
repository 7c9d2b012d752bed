package twilio

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultHTTPTimeout bounds each REST call when ClientOptions.Timeout is zero.
const DefaultHTTPTimeout = 10 * time.Second

// MaxStreamParameters is the number of ParameterN pairs the Streams API
// accepts.
const MaxStreamParameters = 99

// ClientOptions configures NewClient.
type ClientOptions struct {
	// AccountSID ("AC…") is required; it is part of every resource path.
	AccountSID string
	// AuthToken authenticates as AccountSID:AuthToken. Alternatively set
	// APIKeySID ("SK…") and APIKeySecret; the API key takes precedence.
	AuthToken    string
	APIKeySID    string
	APIKeySecret string
	// Region ("ie1", "au1") and Edge ("dublin", "sydney") select a regional
	// host {product}.{edge}.{region}.twilio.com. With only Edge the region
	// is us1; with only Region the host is {product}.{region}.twilio.com.
	Region string
	Edge   string
	// BaseURL, when set, replaces "https://{product host}" for every
	// product (api, iam, flex-api): for tests and egress proxies.
	BaseURL string
	// HTTPClient defaults to a client without timeout (each attempt is
	// bounded by Timeout, each call by its ctx).
	HTTPClient *http.Client
	// Timeout bounds each attempt of a call; default DefaultHTTPTimeout.
	// The ctx given to a call bounds the whole call, retries and waits
	// included.
	Timeout time.Duration

	// MaxRetries is how many times a call is sent again after a retryable
	// failure (default DefaultMaxRetries; negative means never). Which
	// failures are retryable depends on the call:
	//   - Call (a GET) and StopStream are idempotent and are retried after HTTP
	//     429, a 5xx answer, a transport error or a timed-out attempt;
	//   - StartStream with a Name is retried in the same cases: Twilio
	//     refuses a second stream with the same name on a call, so a retry
	//     cannot start a duplicate (a retry refused that way returns an
	//     error wrapping ErrCreateUncertain);
	//   - StartStream without a Name and CreateWebChat are
	//     not idempotent and are retried only after HTTP 429, which Twilio
	//     answers before doing anything.
	MaxRetries int
	// RetryBackoff is the first wait before a retry (default
	// DefaultRetryBackoff); it doubles on each retry, with jitter, up to
	// MaxRetryBackoff (default DefaultMaxRetryBackoff). A Retry-After header
	// (delay seconds or an HTTP date) replaces it.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	// MaxRetryAfter is the longest Retry-After honoured (default
	// DefaultMaxRetryAfter); a longer one ends the retries and the call
	// returns the 429 or 5xx error.
	MaxRetryAfter time.Duration
}

// Client calls the Twilio REST APIs this package needs: Calls (look a call
// up), Streams (start and stop a Media Stream on a call) and Flex web
// chats. It is safe for
// concurrent use.
//
// Failed calls return an *APIError (Twilio's error body), a
// *CredentialsError (HTTP 401 or 403: Twilio refused the AccountSID and
// AuthToken or the API key; it matches ErrServerCredentials and unwraps to
// the *APIError) or a transport error. Calls are retried as described at
// ClientOptions.MaxRetries.
type Client struct {
	o     ClientOptions
	retry retryPolicy
}

// NewClient returns a Client. It checks that an account SID and a credential
// are set.
func NewClient(opts *ClientOptions) (*Client, error) {
	if opts == nil {
		return nil, fmt.Errorf("%w: nil ClientOptions", ErrInvalidArgument)
	}
	o := *opts
	if o.AccountSID == "" {
		return nil, fmt.Errorf("%w: AccountSID is required", ErrInvalidArgument)
	}
	if o.AuthToken == "" && (o.APIKeySID == "" || o.APIKeySecret == "") {
		return nil, fmt.Errorf("%w: AuthToken or APIKeySID and APIKeySecret are required", ErrInvalidArgument)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultHTTPTimeout
	}
	return &Client{o: o, retry: newRetryPolicy(o.MaxRetries, o.RetryBackoff, o.MaxRetryBackoff, o.MaxRetryAfter, o.Timeout)}, nil
}

// productURL returns the base URL of a product ("api", "iam", "flex-api").
func productURL(base, product, edge, region string) string {
	if base != "" {
		return strings.TrimSuffix(base, "/")
	}
	if edge != "" && region == "" {
		region = "us1"
	}
	host := product
	if edge != "" {
		host += "." + edge
	}
	if region != "" {
		host += "." + region
	}
	return "https://" + host + ".twilio.com"
}

func (c *Client) url(product, path string) string {
	return productURL(c.o.BaseURL, product, c.o.Edge, c.o.Region) + path
}

func (c *Client) credentials() (string, string) {
	if c.o.APIKeySID != "" && c.o.APIKeySecret != "" {
		return c.o.APIKeySID, c.o.APIKeySecret
	}
	return c.o.AccountSID, c.o.AuthToken
}

// getJSON sends an idempotent GET and decodes a 2xx JSON answer into out,
// with the errors of postForm.
func (c *Client) getJSON(ctx context.Context, u string, out any) error {
	user, pass := c.credentials()
	newReq := func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json")
		req.SetBasicAuth(user, pass)
		return req, nil
	}
	ans, _, err := c.retry.send(ctx, c.o.HTTPClient, retryIdempotent, newReq)
	if err != nil {
		return fmt.Errorf("twilio: GET %s: %w", pathOf(u), err)
	}
	if ans.status < 200 || ans.status > 299 {
		apiErr := parseAPIError(ans.status, ans.body)
		if ans.status == http.StatusUnauthorized || ans.status == http.StatusForbidden {
			return c.credentialsError(apiErr)
		}
		return apiErr
	}
	if err := json.Unmarshal(ans.body, out); err != nil {
		return fmt.Errorf("twilio: GET %s: decoding response: %w", pathOf(u), err)
	}
	return nil
}

// postForm sends a form POST under the given retry mode and decodes a 2xx
// JSON answer into out. It returns an *APIError or *CredentialsError for an
// error answer. uncertain reports that an attempt failed after the request
// may have reached Twilio (a transport error or a 5xx answer), so a create
// may have taken effect.
func (c *Client) postForm(ctx context.Context, mode retryMode, u string, form url.Values, hdr http.Header, out any) (uncertain bool, err error) {
	body := form.Encode()
	user, pass := c.credentials()
	newReq := func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		for k, vs := range hdr {
			req.Header[k] = vs
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		req.SetBasicAuth(user, pass)
		return req, nil
	}
	ans, uncertain, err := c.retry.send(ctx, c.o.HTTPClient, mode, newReq)
	if err != nil {
		return uncertain, fmt.Errorf("twilio: POST %s: %w", pathOf(u), err)
	}
	if ans.status < 200 || ans.status > 299 {
		apiErr := parseAPIError(ans.status, ans.body)
		if ans.status == http.StatusUnauthorized || ans.status == http.StatusForbidden {
			return uncertain, c.credentialsError(apiErr)
		}
		return uncertain, apiErr
	}
	if out == nil {
		return false, nil
	}
	if err := json.Unmarshal(ans.body, out); err != nil {
		return false, fmt.Errorf("twilio: POST %s: decoding response: %w", pathOf(u), err)
	}
	return false, nil
}

func (c *Client) credentialsError(apiErr *APIError) *CredentialsError {
	if c.o.APIKeySID != "" && c.o.APIKeySecret != "" {
		return &CredentialsError{Credential: CredentialAPIKey, AccountSID: c.o.AccountSID, APIKeySID: c.o.APIKeySID, Err: apiErr}
	}
	return &CredentialsError{Credential: CredentialAuthToken, AccountSID: c.o.AccountSID, Err: apiErr}
}

func pathOf(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Path
	}
	return u
}

func parseAPIError(status int, body []byte) *APIError {
	e := &APIError{}
	if err := json.Unmarshal(body, e); err != nil || (e.Code == 0 && e.Message == "") {
		e = &APIError{Message: strings.TrimSpace(string(body))}
		if len(e.Message) > 200 {
			e.Message = strings.ToValidUTF8(e.Message[:200], "")
		}
		if e.Message == "" {
			e.Message = http.StatusText(status)
		}
	}
	e.Status = status
	return e
}

// StreamParams are the parameters of StartStream.
type StreamParams struct {
	// URL is the wss:// URL Twilio connects to (Url); required, no query.
	URL string
	// Name (optional, unique per call) can be used to stop the stream.
	Name string
	// Track is TrackInbound (default), TrackOutbound or TrackBoth.
	Track string
	// StatusCallback and StatusCallbackMethod (GET or POST) receive
	// stream-started, stream-stopped and stream-error.
	StatusCallback       string
	StatusCallbackMethod string
	// Parameters (at most 99) arrive in Start.CustomParameters.
	Parameters []Parameter
}

// StreamResource is the Streams API's answer.
type StreamResource struct {
	SID        string `json:"sid"`
	AccountSID string `json:"account_sid"`
	CallSID    string `json:"call_sid"`
	Name       string `json:"name"`
	// Status is "in-progress" or "stopped".
	Status string `json:"status"`
	// DateUpdated is in RFC 2822 format ("Thu, 30 Jul 2015 20:00:00 +0000").
	DateUpdated string `json:"date_updated"`
	URI         string `json:"uri"`
}

// Updated parses DateUpdated.
func (r *StreamResource) Updated() (time.Time, error) {
	return time.Parse(time.RFC1123Z, r.DateUpdated)
}

func (c *Client) streamsPath(callSID string) string {
	return "/2010-04-01/Accounts/" + url.PathEscape(c.o.AccountSID) + "/Calls/" + url.PathEscape(callSID) + "/Streams"
}

// StartStream starts a unidirectional Media Stream on an ongoing call
// (POST …/Calls/{CallSid}/Streams.json).
//
// Give the stream a Name to make the call retryable after 5xx answers and
// transport errors (see ClientOptions.MaxRetries). When an attempt failed
// after it may have reached Twilio, the error wraps ErrCreateUncertain: the
// stream may be running; stop it by name (or SID) if in doubt.
func (c *Client) StartStream(ctx context.Context, callSID string, p *StreamParams) (*StreamResource, error) {
	if callSID == "" || p == nil {
		return nil, fmt.Errorf("%w: call SID and params are required", ErrInvalidArgument)
	}
	if err := checkStream(p.URL, p.Parameters); err != nil {
		return nil, err
	}
	if len(p.Parameters) > MaxStreamParameters {
		return nil, fmt.Errorf("%w: got %d", ErrTooManyParameters, len(p.Parameters))
	}
	f := url.Values{"Url": {p.URL}}
	set := func(k, v string) {
		if v != "" {
			f.Set(k, v)
		}
	}
	set("Name", p.Name)
	set("Track", p.Track)
	set("StatusCallback", p.StatusCallback)
	set("StatusCallbackMethod", p.StatusCallbackMethod)
	for i, prm := range p.Parameters {
		n := strconv.Itoa(i + 1)
		f.Set("Parameter"+n+".Name", prm.Name)
		f.Set("Parameter"+n+".Value", prm.Value)
	}
	// Without a name a create is not idempotent: after a 5xx or a lost
	// answer Twilio may have started the stream, and a second attempt
	// would start another (using up one of the call's four forks). With a
	// name, Twilio refuses the duplicate, so retrying is safe.
	mode := retryRateLimited
	if p.Name != "" {
		mode = retryIdempotent
	}
	out := &StreamResource{}
	if uncertain, err := c.postForm(ctx, mode, c.url("api", c.streamsPath(callSID)+".json"), f, nil, out); err != nil {
		return nil, createError(uncertain, err)
	}
	return out, nil
}

// createError marks the failure of a create whose outcome is unknown.
func createError(uncertain bool, err error) error {
	if !uncertain {
		return err
	}
	return fmt.Errorf("%w: %w", ErrCreateUncertain, err)
}

// StopStream stops a stream by its SID ("MZ…") or by the name it was given,
// whether it was started with TwiML or REST (Status=stopped). Stopping is
// idempotent, so the call is retried after 429, 5xx and transport errors.
func (c *Client) StopStream(ctx context.Context, callSID, sidOrName string) (*StreamResource, error) {
	if callSID == "" || sidOrName == "" {
		return nil, fmt.Errorf("%w: call SID and stream SID or name are required", ErrInvalidArgument)
	}
	out := &StreamResource{}
	u := c.url("api", c.streamsPath(callSID)+"/"+url.PathEscape(sidOrName)+".json")
	if _, err := c.postForm(ctx, retryIdempotent, u, url.Values{"Status": {"stopped"}}, nil, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Values of CallResource.Status (Twilio's Call resource).
const (
	CallQueued     = "queued"
	CallRinging    = "ringing"
	CallInProgress = "in-progress"
	CallCompleted  = "completed"
	CallBusy       = "busy"
	CallFailed     = "failed"
	CallNoAnswer   = "no-answer"
	CallCanceled   = "canceled"
)

// Values of CallResource.Direction.
const (
	// DirectionInbound: someone called one of the account's numbers (or
	// SIP domains, or a client); From is the caller.
	DirectionInbound = "inbound"
	// DirectionOutboundAPI: the call was created with POST /Calls; To is
	// the called party.
	DirectionOutboundAPI = "outbound-api"
	// DirectionOutboundDial: a child leg created by <Dial> (Flex: the
	// agent's or an outbound customer leg); To is the called party.
	DirectionOutboundDial = "outbound-dial"
)

// CallResource is the part of Twilio's Call resource this package reads
// (GET /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json).
type CallResource struct {
	SID           string `json:"sid"`
	AccountSID    string `json:"account_sid"`
	ParentCallSID string `json:"parent_call_sid"`
	// From and To are the parties as Twilio gives them: an E.164 number
	// ("+34911234567"), "client:identity", a SIP URI, or "anonymous" /
	// empty when the caller withheld the number.
	From string `json:"from"`
	To   string `json:"to"`
	// Status is one of the Call* constants.
	Status string `json:"status"`
	// Direction is DirectionInbound, DirectionOutboundAPI or
	// DirectionOutboundDial.
	Direction string `json:"direction"`
}

// InProgress reports whether the call is answered and not ended (status
// "in-progress"): the only state in which Twilio starts a Media Stream.
func (r *CallResource) InProgress() bool { return r.Status == CallInProgress }

// Call fetches a call of the account (GET …/Calls/{CallSid}.json). A
// call Twilio does not know (or that belongs to another account) is an
// *APIError with Status 404 and Code 20404 (IsAPIError(err, 20404)). The
// call is idempotent and retried as ClientOptions.MaxRetries says.
func (c *Client) Call(ctx context.Context, callSID string) (*CallResource, error) {
	if callSID == "" {
		return nil, fmt.Errorf("%w: call SID is required", ErrInvalidArgument)
	}
	out := &CallResource{}
	u := c.url("api", "/2010-04-01/Accounts/"+url.PathEscape(c.o.AccountSID)+"/Calls/"+url.PathEscape(callSID)+".json")
	if err := c.getJSON(ctx, u, out); err != nil {
		return nil, err
	}
	return out, nil
}

package twilio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	// HTTPClient defaults to a client without timeout (each call is bounded
	// by Timeout and its ctx).
	HTTPClient *http.Client
	// Timeout bounds each call; default DefaultHTTPTimeout.
	Timeout time.Duration
}

// Client calls the Twilio REST APIs this package needs: Streams (start and
// stop a Media Stream on a call) and Flex web chats. It is safe for
// concurrent use.
type Client struct {
	o ClientOptions
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
	return &Client{o: o}, nil
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

// postForm sends a form POST and decodes a 2xx JSON answer into out, or
// returns an *APIError.
func (c *Client) postForm(ctx context.Context, u string, form url.Values, hdr http.Header, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("twilio: %w", err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(c.credentials())
	return do(c.o.HTTPClient, req, out)
}

func do(hc *http.Client, req *http.Request, out any) error {
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("twilio: %s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("twilio: %s %s: reading body: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return parseAPIError(resp.StatusCode, body)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("twilio: %s %s: decoding response: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

func parseAPIError(status int, body []byte) error {
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
	out := &StreamResource{}
	if err := c.postForm(ctx, c.url("api", c.streamsPath(callSID)+".json"), f, nil, out); err != nil {
		return nil, err
	}
	return out, nil
}

// StopStream stops a stream by its SID ("MZ…") or by the name it was given,
// whether it was started with TwiML or REST (Status=stopped).
func (c *Client) StopStream(ctx context.Context, callSID, sidOrName string) (*StreamResource, error) {
	if callSID == "" || sidOrName == "" {
		return nil, fmt.Errorf("%w: call SID and stream SID or name are required", ErrInvalidArgument)
	}
	out := &StreamResource{}
	u := c.url("api", c.streamsPath(callSID)+"/"+url.PathEscape(sidOrName)+".json")
	if err := c.postForm(ctx, u, url.Values{"Status": {"stopped"}}, nil, out); err != nil {
		return nil, err
	}
	return out, nil
}

// isTimeout reports whether err is a deadline or timeout.
func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

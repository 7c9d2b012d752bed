package daspeak

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// ServicePath is the path prefix of the das-Peak REST API (version 1) on a
// Veridas gateway.
const ServicePath = "/daspeak/v1"

// Environment selects a Veridas cloud deployment of das-Peak.
type Environment int

const (
	// SandboxEU is the European sandbox ("work") deployment, the default.
	SandboxEU Environment = iota
	// SandboxUS is the American sandbox deployment.
	SandboxUS
	// ProductionEU is the European production deployment.
	ProductionEU
	// ProductionUS is the American production deployment.
	ProductionUS
)

// BaseURL returns the das-Peak base URL of the environment, for example
// "https://api-work.eu.veri-das.com/daspeak/v1", or "" for an unknown value.
func (e Environment) BaseURL() string {
	var host string
	switch e {
	case SandboxEU:
		host = "api-work.eu.veri-das.com"
	case SandboxUS:
		host = "api-work.us.veri-das.com"
	case ProductionEU:
		host = "api.eu.veri-das.com"
	case ProductionUS:
		host = "api.us.veri-das.com"
	default:
		return ""
	}
	return "https://" + host + ServicePath
}

// String returns "sandbox-eu", "sandbox-us", "production-eu" or
// "production-us".
func (e Environment) String() string {
	switch e {
	case SandboxEU:
		return "sandbox-eu"
	case SandboxUS:
		return "sandbox-us"
	case ProductionEU:
		return "production-eu"
	case ProductionUS:
		return "production-us"
	}
	return "Environment(" + strconv.Itoa(int(e)) + ")"
}

// Defaults of ClientOptions.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultMaxRetries       = 3
	DefaultRetryBackoff     = 250 * time.Millisecond
	DefaultMaxRetryBackoff  = 5 * time.Second
	DefaultMaxRetryAfter    = 30 * time.Second
	DefaultMaxResponseBytes = 4 << 20
	DefaultMaxAudioBytes    = 8 << 20
)

// ClientOptions configure a Client. The zero value talks to the European
// sandbox without credentials; every zero field takes the default named in
// its comment.
type ClientOptions struct {
	// Environment picks the Veridas cloud deployment (default SandboxEU).
	// It is ignored when BaseURL is set.
	Environment Environment
	// BaseURL overrides the environment with a full service base URL such
	// as "https://daspeak.internal.example/daspeak/v1" (a self-hosted
	// deployment, or the daspeaktest emulator). Endpoint paths are appended
	// to it.
	BaseURL string

	// APIKey is sent in the "apikey" header, as the Veridas gateway
	// expects. Leave it empty for self-hosted deployments, which take no
	// key.
	APIKey string
	// TokenSource, when set, authenticates every request with
	// "Authorization: Bearer <token>". It is wrapped in
	// oauth2.ReuseTokenSource, so tokens are cached until they expire.
	TokenSource oauth2.TokenSource
	// OAuth2, when set (and TokenSource is nil), configures an OAuth2
	// client-credentials token source. Veridas does not publish an OAuth2
	// token URL for das-Peak, so TokenURL must come from your deployment.
	// The Client builds one token source from a background context that
	// lives as long as the Client, fetching tokens with HTTPClient's
	// transport and Timeout, so cancelling a request's context never
	// breaks later token refreshes.
	OAuth2 *clientcredentials.Config

	// HTTPClient sends the requests (default: a client on
	// http.DefaultTransport). Its Timeout, if any, applies on top of
	// Timeout. The Client sends through a copy of it whose redirect policy
	// first removes the apikey and Authorization headers from any redirect
	// that leaves the scheme, host and port of the first request, then
	// applies HTTPClient's own CheckRedirect.
	HTTPClient *http.Client
	// Timeout bounds each attempt of a request, from sending to reading the
	// whole response (default DefaultTimeout; negative means none).
	Timeout time.Duration

	// MaxRetries is how many times a request is sent again after HTTP 429,
	// a 5xx answer, a transport error, a truncated response or a timed-out
	// attempt (default DefaultMaxRetries; negative means never). Other
	// errors are returned at once. All das-Peak endpoints are stateless, so
	// repeating a POST is safe.
	MaxRetries int
	// RetryBackoff is the first wait before a retry (default
	// DefaultRetryBackoff); it doubles on each retry, with jitter, up to
	// MaxRetryBackoff (default DefaultMaxRetryBackoff).
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	// MaxRetryAfter is the longest Retry-After the Client honours (default
	// DefaultMaxRetryAfter). A longer one ends the retries and returns the
	// 429 or 503 error.
	//
	// HTTP 429 Too Many Requests (RFC 6585 §4) is retried like a 5xx
	// answer, after the answer's Retry-After (RFC 9110 §10.2.3: seconds or
	// an HTTP date) when it has one, after the backoff otherwise. The
	// das-Peak documentation says nothing of rate limits; a Veridas
	// gateway in front of it may send 429. When the retries run out, or
	// Retry-After is beyond MaxRetryAfter, the request fails with a
	// *RateLimitError (matching ErrRateLimited and wrapping the last
	// answer's *APIError); a session reports it as error-das-Peak.
	MaxRetryAfter time.Duration

	// Limiter, when set, bounds the requests in flight: each attempt holds
	// one of its slots, given back while the Client waits to retry
	// (Retry-After, backoff), so a rate-limited service slows every caller
	// sharing the Limiter in arrival order instead of piling up retries.
	// A request whose context carries a slot of the same Limiter (a
	// Session whose Config.Limiter is this one) uses that slot. Default
	// nil: no bound.
	Limiter *Limiter

	// MaxResponseBytes bounds a response body (default
	// DefaultMaxResponseBytes). A larger body fails with
	// ErrResponseTooLarge.
	MaxResponseBytes int64
	// MaxAudioBytes bounds each audio file sent (default
	// DefaultMaxAudioBytes, well above 30 s of 16 kHz 16-bit stereo).
	// Larger audio fails with ErrAudioTooLarge without a request.
	MaxAudioBytes int64
	// UserAgent is sent in the User-Agent header (default
	// "voicegate-daspeak").
	UserAgent string
}

// Client is a das-Peak REST client. It implements [Engine],
// [CredentialComparer] and [ModelLister].
//
// A Client is safe for concurrent use and holds no per-request state; create
// one per deployment and share it. Every method takes a context that bounds
// the whole call, retries and backoff included; each attempt is further
// bounded by ClientOptions.Timeout. Failures reported by das-Peak are
// *APIError values matched with errors.Is against the sentinels of this
// package (ErrNetSpeechTooShort, ErrInvalidCredential, …); transport
// failures wrap the underlying error.
type Client struct {
	base   string // without trailing slash
	hc     *http.Client
	apiKey string
	ts     oauth2.TokenSource
	opts   ClientOptions
}

var (
	_ Engine             = (*Client)(nil)
	_ CredentialComparer = (*Client)(nil)
	_ ModelLister        = (*Client)(nil)
)

// NewClient returns a Client configured by opts (nil means all defaults).
// opts is copied; later changes to it have no effect.
func NewClient(opts *ClientOptions) (*Client, error) {
	var o ClientOptions
	if opts != nil {
		o = *opts
	}
	base := o.BaseURL
	if base == "" {
		base = o.Environment.BaseURL()
		if base == "" {
			return nil, fmt.Errorf("daspeak: unknown environment %d", int(o.Environment))
		}
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("daspeak: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("daspeak: base URL %q: want an absolute http or https URL", base)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("daspeak: base URL %q: no query or fragment allowed", base)
	}
	if o.TokenSource != nil && o.OAuth2 != nil {
		return nil, errors.New("daspeak: set TokenSource or OAuth2, not both")
	}
	if o.OAuth2 != nil && o.OAuth2.TokenURL == "" {
		return nil, errors.New("daspeak: OAuth2.TokenURL is required")
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = DefaultMaxRetries
	} else if o.MaxRetries < 0 {
		o.MaxRetries = 0
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = DefaultRetryBackoff
	}
	if o.MaxRetryBackoff <= 0 {
		o.MaxRetryBackoff = DefaultMaxRetryBackoff
	}
	if o.MaxRetryBackoff < o.RetryBackoff {
		o.MaxRetryBackoff = o.RetryBackoff
	}
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if o.MaxAudioBytes <= 0 {
		o.MaxAudioBytes = DefaultMaxAudioBytes
	}
	if o.UserAgent == "" {
		o.UserAgent = "voicegate-daspeak"
	}
	c := &Client{
		base:   strings.TrimRight(base, "/"),
		hc:     withCredentialSafeRedirects(o.HTTPClient),
		apiKey: o.APIKey,
	}
	switch {
	case o.TokenSource != nil:
		c.ts = oauth2.ReuseTokenSource(nil, o.TokenSource)
	case o.OAuth2 != nil:
		cfg := *o.OAuth2
		tokenHTTP := &http.Client{Transport: o.HTTPClient.Transport, Timeout: o.HTTPClient.Timeout}
		if o.Timeout > 0 && (tokenHTTP.Timeout == 0 || o.Timeout < tokenHTTP.Timeout) {
			tokenHTTP.Timeout = o.Timeout
		}
		// One token source for the Client's lifetime, built from a context
		// that is never cancelled: x/oauth2 keeps this context for every
		// refresh. Requests are bounded by their own contexts instead.
		bg := context.WithValue(context.Background(), oauth2.HTTPClient, tokenHTTP)
		c.ts = cfg.TokenSource(bg)
	}
	o.OAuth2, o.TokenSource = nil, nil
	c.opts = o
	return c, nil
}

// withCredentialSafeRedirects returns a copy of hc that never forwards the
// das-Peak credentials to another origin. net/http copies custom headers
// such as apikey to every redirect target, and Authorization to other
// ports of the same host.
func withCredentialSafeRedirects(hc *http.Client) *http.Client {
	cp := *hc
	next := hc.CheckRedirect
	cp.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > 0 {
			first := via[0].URL
			if req.URL.Scheme != first.Scheme || !strings.EqualFold(req.URL.Host, first.Host) {
				req.Header.Del("apikey")
				req.Header.Del("Authorization")
			}
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &cp
}

// BaseURL returns the service base URL the Client sends requests to.
func (c *Client) BaseURL() string { return c.base }

// formPart is one part of a multipart/form-data request: a text field, or
// a WAV file when file is non-nil.
type formPart struct {
	name  string
	value string
	file  []byte
}

func formField(name, value string) formPart { return formPart{name: name, value: value} }

func wavFile(name string, audio []byte) formPart {
	if audio == nil {
		audio = []byte{}
	}
	return formPart{name: name, file: audio}
}

// encodeMultipart builds a multipart/form-data body. WAV parts are sent with
// filename "audio.wav" and Content-Type audio/wav: das-Peak requires the
// .wav extension.
func encodeMultipart(parts []formPart) (body []byte, contentType string, err error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		if p.file == nil {
			if err := mw.WriteField(p.name, p.value); err != nil {
				return nil, "", err
			}
			continue
		}
		h := make(textproto.MIMEHeader)
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename="audio.wav"`, p.name))
		h.Set("Content-Type", "audio/wav")
		w, err := mw.CreatePart(h)
		if err != nil {
			return nil, "", err
		}
		if _, err := w.Write(p.file); err != nil {
			return nil, "", err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), mw.FormDataContentType(), nil
}

// call sends one das-Peak request with retries and decodes a success body
// into out (nil to ignore it). parts == nil sends a GET without a body;
// otherwise a multipart POST, das-Peak accepting no other content type.
func (c *Client) call(ctx context.Context, path string, parts []formPart, out any) error {
	method := http.MethodGet
	var (
		body        []byte
		contentType string
	)
	if parts != nil {
		method = http.MethodPost
		for _, p := range parts {
			if p.file != nil && int64(len(p.file)) > c.opts.MaxAudioBytes {
				return fmt.Errorf("%w: %s is %d bytes, limit %d", ErrAudioTooLarge, p.name, len(p.file), c.opts.MaxAudioBytes)
			}
		}
		var err error
		body, contentType, err = encodeMultipart(parts)
		if err != nil {
			return fmt.Errorf("daspeak: %s %s: encode form: %w", method, path, err)
		}
	}
	sl := c.slotFor(ctx)
	if own := sl != nil && slotFrom(ctx) != sl; own {
		defer func() {
			sl.release()
			if outer := slotFrom(ctx); outer != nil {
				outer.wait += sl.wait
			}
		}()
	}
	var (
		lastErr    error
		retryAfter time.Duration
		attempts   int
	)
	for attempt := 0; ; attempt++ {
		if err := sl.acquire(ctx); err != nil {
			if lastErr == nil {
				return fmt.Errorf("daspeak: %s %s: %w while queued for the Limiter", method, path, err)
			}
			return fmt.Errorf("daspeak: %s %s: %w while queued for the Limiter to retry after: %w", method, path, err, lastErr)
		}
		var (
			retry bool
			err   error
		)
		retry, retryAfter, err = c.attempt(ctx, method, path, body, contentType, out)
		attempts++
		if err == nil {
			return nil
		}
		lastErr = err
		if !retry || attempt >= c.opts.MaxRetries {
			break
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("daspeak: %s %s: %w before a retry after: %w", method, path, err, lastErr)
		}
		wait := c.backoff(attempt)
		if retryAfter > 0 {
			if retryAfter > c.opts.MaxRetryAfter {
				break
			}
			wait = retryAfter
		}
		// The slot is not held while waiting: other calls use it, and this
		// one queues again behind those that arrived meanwhile.
		sl.release()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("daspeak: %s %s: %w while waiting to retry after: %w", method, path, ctx.Err(), lastErr)
		case <-t.C:
		}
	}
	var apiErr *APIError
	if errors.As(lastErr, &apiErr) {
		if apiErr.Status == http.StatusTooManyRequests {
			return &RateLimitError{Attempts: attempts, RetryAfter: retryAfter, Err: apiErr}
		}
		return lastErr
	}
	return fmt.Errorf("daspeak: %s %s: %w", method, path, lastErr)
}

// slotFor returns the Limiter slot a request holds while each attempt is
// in flight: the caller's when its context carries a slot of the Client's
// Limiter (a Session with the same Config.Limiter), a new one otherwise,
// nil without a Limiter.
func (c *Client) slotFor(ctx context.Context) *slot {
	if c.opts.Limiter == nil {
		return nil
	}
	if s := slotFrom(ctx); s != nil && s.l == c.opts.Limiter {
		return s
	}
	return &slot{l: c.opts.Limiter}
}

// backoff returns the wait before retry number attempt+1: RetryBackoff
// doubled per attempt, capped at MaxRetryBackoff, with "equal jitter" (half
// fixed, half random).
func (c *Client) backoff(attempt int) time.Duration {
	d := c.opts.MaxRetryBackoff
	if attempt < 30 {
		if b := c.opts.RetryBackoff << attempt; b > 0 && b < d {
			d = b
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// attempt sends the request once. retry reports whether a new attempt may
// succeed; retryAfter is the server's Retry-After, or 0.
func (c *Client) attempt(ctx context.Context, method, path string, body []byte, contentType string, out any) (retry bool, retryAfter time.Duration, err error) {
	if err := ctx.Err(); err != nil {
		return false, 0, err
	}
	actx := ctx
	if c.opts.Timeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		// A fresh reader over the encoded form on every attempt: a retried
		// request resends the whole body.
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, method, c.base+path, rd)
	if err != nil {
		return false, 0, err
	}
	if body != nil {
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.opts.UserAgent)
	if c.apiKey != "" {
		req.Header.Set("apikey", c.apiKey)
	}
	if c.ts != nil {
		tok, err := c.ts.Token()
		if err != nil {
			var re *oauth2.RetrieveError
			transient := !errors.As(err, &re) || (re.Response != nil && re.Response.StatusCode >= 500)
			return transient, 0, fmt.Errorf("oauth2 token: %w", err)
		}
		tok.SetAuthHeader(req)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// Transport error or a timed-out attempt: retry unless the caller's
		// own context ended.
		return ctx.Err() == nil, 0, err
	}
	defer resp.Body.Close()
	data, err := readLimited(resp.Body, c.opts.MaxResponseBytes)
	if err != nil {
		if errors.Is(err, ErrResponseTooLarge) {
			return false, 0, fmt.Errorf("HTTP %d: %w", resp.StatusCode, err)
		}
		// A body cut short (connection reset, truncated response, timeout
		// while reading) is worth another try.
		return ctx.Err() == nil, 0, fmt.Errorf("HTTP %d: reading body: %w", resp.StatusCode, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		apiErr := parseAPIError(resp.StatusCode, data)
		if apiErr.Temporary() {
			return true, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), apiErr
		}
		return false, 0, apiErr
	}
	if out == nil {
		return false, 0, nil
	}
	if err := decodeResponse(resp.StatusCode, data, out); err != nil {
		return false, 0, err
	}
	return false, 0, nil
}

// readLimited reads r to the end, failing with ErrResponseTooLarge past max
// bytes.
func readLimited(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, max)
	}
	return data, nil
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
// It returns 0 when the header is absent or unusable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		if s > int64(24*time.Hour/time.Second) {
			s = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// ReleasesAudio reports true: the Client copies the audio into its request
// body before it sends anything (encodeMultipart), so its retries and an
// HTTP transport still writing a cancelled request read that copy, never
// the caller's slice. It makes the Client an [AudioReleaser].
func (c *Client) ReleasesAudio() bool { return true }

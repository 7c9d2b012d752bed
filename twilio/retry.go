package twilio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Defaults of the retry options of ClientOptions and FlexValidatorOptions.
const (
	DefaultMaxRetries      = 3
	DefaultRetryBackoff    = 250 * time.Millisecond
	DefaultMaxRetryBackoff = 5 * time.Second
	DefaultMaxRetryAfter   = 30 * time.Second
)

// maxAnswerBytes bounds a Twilio answer body.
const maxAnswerBytes = 1 << 20

// retryMode says which failures a request may be sent again after.
type retryMode int

const (
	// retryIdempotent: HTTP 429, 5xx, transport errors and timed-out
	// attempts.
	retryIdempotent retryMode = iota
	// retryRateLimited: HTTP 429 only, which Twilio answers before doing
	// anything, so even a create may be repeated.
	retryRateLimited
)

// retryPolicy holds the retry options with their defaults filled in.
type retryPolicy struct {
	maxRetries     int
	backoff        time.Duration
	maxBackoff     time.Duration
	maxRetryAfter  time.Duration
	attemptTimeout time.Duration
}

func newRetryPolicy(maxRetries int, backoff, maxBackoff, maxRetryAfter, attemptTimeout time.Duration) retryPolicy {
	p := retryPolicy{maxRetries: maxRetries, backoff: backoff, maxBackoff: maxBackoff, maxRetryAfter: maxRetryAfter, attemptTimeout: attemptTimeout}
	if p.maxRetries == 0 {
		p.maxRetries = DefaultMaxRetries
	} else if p.maxRetries < 0 {
		p.maxRetries = 0
	}
	if p.backoff <= 0 {
		p.backoff = DefaultRetryBackoff
	}
	if p.maxBackoff <= 0 {
		p.maxBackoff = DefaultMaxRetryBackoff
	}
	if p.maxBackoff < p.backoff {
		p.maxBackoff = p.backoff
	}
	if p.maxRetryAfter <= 0 {
		p.maxRetryAfter = DefaultMaxRetryAfter
	}
	return p
}

// answer is one HTTP answer, its body read in full (at most maxAnswerBytes).
type answer struct {
	status int
	header http.Header
	body   []byte
}

// send sends the request built by newReq (a fresh request, body included,
// for every attempt) until an answer is final or the retries are used up,
// and returns the last answer. err is a transport error of the last attempt,
// or the ctx error when ctx ended before an answer. uncertain reports that
// some attempt failed after the request may have been processed (a
// transport error, a timed-out attempt or a 5xx answer).
func (p *retryPolicy) send(ctx context.Context, hc *http.Client, mode retryMode, newReq func(context.Context) (*http.Request, error)) (ans *answer, uncertain bool, err error) {
	for attempt := 0; ; attempt++ {
		ans, err = p.attempt(ctx, hc, newReq)
		var retryable bool
		var retryAfter time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, true, err
			}
			uncertain = true
			retryable = mode == retryIdempotent
		case ans.status == http.StatusTooManyRequests:
			retryable = true
			retryAfter = parseRetryAfter(ans.header.Get("Retry-After"), time.Now())
		case ans.status >= 500:
			uncertain = true
			retryable = mode == retryIdempotent
			retryAfter = parseRetryAfter(ans.header.Get("Retry-After"), time.Now())
		}
		if !retryable || attempt >= p.maxRetries {
			return ans, uncertain, err
		}
		wait := p.wait(attempt)
		if retryAfter > 0 {
			if retryAfter > p.maxRetryAfter {
				return ans, uncertain, err
			}
			wait = retryAfter
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			// The call would end while waiting: report the last failure
			// rather than a bare deadline.
			return ans, uncertain, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			last := err
			if last == nil {
				last = fmt.Errorf("HTTP %d", ans.status)
			}
			return nil, uncertain, fmt.Errorf("%w while waiting to retry after: %w", ctx.Err(), last)
		case <-t.C:
		}
	}
}

// attempt sends one request, bounded by attemptTimeout.
func (p *retryPolicy) attempt(ctx context.Context, hc *http.Client, newReq func(context.Context) (*http.Request, error)) (*answer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, p.attemptTimeout)
	defer cancel()
	req, err := newReq(actx)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, fmt.Errorf("HTTP %d: reading body: %w", resp.StatusCode, err)
	}
	return &answer{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// wait returns the backoff before retry number attempt+1: the first backoff
// doubled per attempt, capped at maxBackoff, half of it random.
func (p *retryPolicy) wait(attempt int) time.Duration {
	d := p.maxBackoff
	if attempt < 30 {
		if b := p.backoff << attempt; b > 0 && b < d {
			d = b
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// parseRetryAfter reads a Retry-After header (RFC 9110 §10.2.3): delay
// seconds or an HTTP date. It returns 0 when the header is absent, in the
// past or unusable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		const maxSeconds = int64(24 * time.Hour / time.Second)
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, maxSeconds)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// isTimeout reports whether err is a deadline or timeout.
func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

package twilio_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

const retryCall = "CA00000000000000000000000000000009"

// fastRetries makes retries wait about a millisecond.
func fastRetries(o *twilio.ClientOptions) {
	o.RetryBackoff = time.Millisecond
	o.MaxRetryBackoff = 2 * time.Millisecond
}

func countPath(srv *twiliotest.Server, prefix string) int {
	n := 0
	for _, r := range srv.Requests() {
		if strings.HasPrefix(r.Path, prefix) {
			n++
		}
	}
	return n
}

func TestClientRetries(t *testing.T) {
	t.Parallel()
	streams := "/2010-04-01/Accounts/" + twiliotest.DefaultAccountSID + "/Calls/" + retryCall + "/Streams"
	named := &twilio.StreamParams{URL: "wss://vb.example.com/twilio/media", Name: "vb"}
	unnamed := &twilio.StreamParams{URL: "wss://vb.example.com/twilio/media"}
	for _, tc := range []struct {
		name      string
		fault     twiliotest.Fault
		mod       func(*twilio.ClientOptions)
		call      string // "stop", "create-named", "create-unnamed", "webchat"
		requests  int    // requests to the faulted path
		streams   int    // streams existing on the call afterwards (create cases)
		wantErr   bool
		uncertain bool
		code      int
	}{
		{name: "stop retried after 503", fault: twiliotest.Fault{Status: 503, Code: 20503, Message: "busy", Times: 2}, call: "stop", requests: 3},
		{name: "stop retried after a hang-up", fault: twiliotest.Fault{Hangup: true, Times: 1}, call: "stop", requests: 2},
		{name: "stop retried after 429", fault: twiliotest.Fault{Status: 429, Code: 20429, Message: "Too Many Requests", Times: 1}, call: "stop", requests: 2},
		{name: "attempts bounded", fault: twiliotest.Fault{Status: 500, Code: 20500, Message: "boom"}, mod: func(o *twilio.ClientOptions) { o.MaxRetries = 2 },
			call: "stop", requests: 3, wantErr: true, code: 20500},
		{name: "retries disabled", fault: twiliotest.Fault{Status: 500, Code: 20500, Message: "boom"}, mod: func(o *twilio.ClientOptions) { o.MaxRetries = -1 },
			call: "stop", requests: 1, wantErr: true, code: 20500},
		{name: "4xx not retried", fault: twiliotest.Fault{Status: 400, Code: 20001, Message: "bad"}, call: "stop", requests: 1, wantErr: true, code: 20001},
		{name: "named create retried after 503", fault: twiliotest.Fault{Status: 503, Code: 20503, Message: "busy", Times: 1},
			call: "create-named", requests: 2, streams: 1},
		{name: "named create whose answer was lost", fault: twiliotest.Fault{Process: true, Hangup: true, Times: 1},
			call: "create-named", requests: 2, streams: 1, wantErr: true, uncertain: true},
		{name: "unnamed create not retried after 500", fault: twiliotest.Fault{Status: 500, Code: 20500, Message: "boom", Times: 1},
			call: "create-unnamed", requests: 1, streams: 0, wantErr: true, uncertain: true, code: 20500},
		{name: "unnamed create whose answer was lost", fault: twiliotest.Fault{Process: true, Hangup: true, Times: 1},
			call: "create-unnamed", requests: 1, streams: 1, wantErr: true, uncertain: true},
		{name: "unnamed create retried after 429", fault: twiliotest.Fault{Status: 429, Code: 20429, Message: "Too Many Requests", Times: 2},
			call: "create-unnamed", requests: 3, streams: 1},
		{name: "web chat not retried after 502", fault: twiliotest.Fault{PathPrefix: "/v2/WebChats", Status: 502, Code: 20502, Message: "bad gateway", Times: 1},
			call: "webchat", requests: 1, wantErr: true, uncertain: true, code: 20502},
		{name: "web chat retried after 429", fault: twiliotest.Fault{PathPrefix: "/v2/WebChats", Status: 429, Code: 20429, Message: "slow down", Times: 1},
			call: "webchat", requests: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := twiliotest.NewServer(nil)
			defer srv.Close()
			c := newClient(t, srv, func(o *twilio.ClientOptions) {
				fastRetries(o)
				if tc.mod != nil {
					tc.mod(o)
				}
			})
			ctx := context.Background()
			prefix := streams
			if tc.call == "stop" {
				if _, err := c.StartStream(ctx, retryCall, named); err != nil {
					t.Fatal(err)
				}
				prefix = streams + "/"
			}
			if tc.call == "webchat" {
				prefix = "/v2/WebChats"
			}
			f := tc.fault
			if f.PathPrefix == "" {
				f.PathPrefix = prefix
			}
			before := countPath(srv, prefix)
			srv.SetFaults(f)
			var err error
			switch tc.call {
			case "stop":
				_, err = c.StopStream(ctx, retryCall, "vb")
			case "create-named":
				_, err = c.StartStream(ctx, retryCall, named)
			case "create-unnamed":
				_, err = c.StartStream(ctx, retryCall, unnamed)
			case "webchat":
				_, err = c.CreateWebChat(ctx, &twilio.WebChatParams{AddressSID: "IG1"})
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got := countPath(srv, prefix) - before; got != tc.requests {
				t.Errorf("%d requests, want %d", got, tc.requests)
			}
			if errors.Is(err, twilio.ErrCreateUncertain) != tc.uncertain {
				t.Errorf("err = %v, uncertain want %v", err, tc.uncertain)
			}
			if tc.code != 0 {
				if _, ok := twilio.IsAPIError(err, tc.code); !ok {
					t.Errorf("err = %v, want API error %d", err, tc.code)
				}
			}
			if strings.HasPrefix(tc.call, "create") {
				if got := len(srv.Streams(retryCall)); got != tc.streams {
					t.Errorf("%d streams on the call, want %d", got, tc.streams)
				}
			}
		})
	}
}

func TestClientRetryAfter(t *testing.T) {
	t.Parallel()
	srv := twiliotest.NewServer(nil)
	defer srv.Close()
	c := newClient(t, srv, fastRetries)
	ctx := context.Background()
	if _, err := c.StartStream(ctx, retryCall, &twilio.StreamParams{URL: "wss://vb.example.com/m", Name: "vb"}); err != nil {
		t.Fatal(err)
	}
	const stop = "/2010-04-01/Accounts/" + twiliotest.DefaultAccountSID + "/Calls/" + retryCall + "/Streams/"

	// Seconds: the wait follows the header, not the 1 ms backoff.
	srv.SetFaults(twiliotest.Fault{PathPrefix: stop, Status: 429, Code: 20429, Message: "Too Many Requests", Times: 1, RetryAfter: "1"})
	start := time.Now()
	if _, err := c.StopStream(ctx, retryCall, "vb"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("retried after %v, Retry-After was 1 s", d)
	}

	// HTTP date.
	srv.SetFaults(twiliotest.Fault{PathPrefix: stop, Status: 503, Code: 20503, Message: "busy", Times: 1,
		RetryAfter: time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat)})
	start = time.Now()
	if _, err := c.StopStream(ctx, retryCall, "vb"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("retried after %v, Retry-After date was 1–2 s ahead", d)
	}

	// Longer than MaxRetryAfter: no retry, the 429 is returned at once.
	srv.SetFaults(twiliotest.Fault{PathPrefix: stop, Status: 429, Code: 20429, Message: "Too Many Requests", RetryAfter: "3600"})
	n := countPath(srv, stop)
	if _, err := c.StopStream(ctx, retryCall, "vb"); err == nil {
		t.Fatal("429 accepted")
	} else if e, ok := twilio.IsAPIError(err, 20429); !ok || e.Status != 429 {
		t.Errorf("err = %v", err)
	}
	if got := countPath(srv, stop) - n; got != 1 {
		t.Errorf("%d requests, want 1", got)
	}

	// Cancelled while waiting: returns promptly with the ctx error.
	srv.SetFaults(twiliotest.Fault{PathPrefix: stop, Status: 429, Code: 20429, Message: "Too Many Requests", RetryAfter: "20"})
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	_, err := c.StopStream(cctx, retryCall, "vb")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %v", d)
	}

	// A deadline shorter than the wait: the last failure comes back
	// without waiting.
	srv.SetFaults(twiliotest.Fault{PathPrefix: stop, Status: 429, Code: 20429, Message: "Too Many Requests", RetryAfter: "20"})
	dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
	defer dcancel()
	if _, err := c.StopStream(dctx, retryCall, "vb"); err == nil {
		t.Error("429 accepted")
	} else if _, ok := twilio.IsAPIError(err, 20429); !ok {
		t.Errorf("err = %v, want the 429", err)
	}
}

func TestClientServerCredentials(t *testing.T) {
	t.Parallel()
	srv := twiliotest.NewServer(&twiliotest.ServerOptions{APIKeys: map[string]string{"SK1": "key-secret"}})
	defer srv.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		mod    func(*twilio.ClientOptions)
		cred   twilio.Credential
		secret string
	}{
		{"auth token", func(o *twilio.ClientOptions) { o.AuthToken = "wrong-token-value" }, twilio.CredentialAuthToken, "wrong-token-value"},
		{"api key", func(o *twilio.ClientOptions) { o.APIKeySID, o.APIKeySecret = "SK1", "wrong-key-secret" }, twilio.CredentialAPIKey, "wrong-key-secret"},
	} {
		c := newClient(t, srv, tc.mod)
		_, err := c.StopStream(ctx, retryCall, "vb")
		var ce *twilio.CredentialsError
		if !errors.Is(err, twilio.ErrServerCredentials) || !errors.As(err, &ce) || ce.Credential != tc.cred {
			t.Errorf("%s: err = %v", tc.name, err)
			continue
		}
		if _, ok := twilio.IsAPIError(err, 20003); !ok {
			t.Errorf("%s: API error not kept: %v", tc.name, err)
		}
		if strings.Contains(err.Error(), tc.secret) {
			t.Errorf("%s: error text leaks the secret: %v", tc.name, err)
		}
	}
}

func TestFlexValidatorRetriesAndBlame(t *testing.T) {
	t.Parallel()
	srv := twiliotest.NewServer(&twiliotest.ServerOptions{APIKeys: map[string]string{"SK1": "key-secret"}})
	defer srv.Close()
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	srv.AddFlexToken("tok-agent", twilio.FlexIdentity{Identity: "agent", Expiration: exp})
	newV := func(o twilio.FlexValidatorOptions) *twilio.FlexValidator {
		t.Helper()
		if o.AccountSID == "" {
			o.AccountSID = srv.AccountSID()
		}
		o.BaseURL = srv.URL
		o.RetryBackoff = time.Millisecond
		o.MaxRetryBackoff = 2 * time.Millisecond
		o.CacheSize = -1
		v, err := twilio.NewFlexValidator(&o)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	good := newV(twilio.FlexValidatorOptions{AuthToken: srv.AuthToken()})

	// Transient IAM failures are retried.
	srv.SetFaults(twiliotest.Fault{PathPrefix: "/v1/", Status: 503, Code: 20503, Message: "busy", Times: 2})
	if id, err := good.Validate(ctx, "tok-agent"); err != nil || id.Identity != "agent" {
		t.Fatalf("after 2×503: %v %v", id, err)
	}
	srv.SetFaults(twiliotest.Fault{PathPrefix: "/v1/", Hangup: true, Times: 1})
	if _, err := good.Validate(ctx, "tok-agent"); err != nil {
		t.Fatalf("after a hang-up: %v", err)
	}
	// Used-up retries are nobody's verdict: neither the token nor the server credentials.
	srv.SetFaults(twiliotest.Fault{PathPrefix: "/v1/", Status: 500, Code: 20500, Message: "boom"})
	if _, err := good.Validate(ctx, "tok-agent"); errors.Is(err, twilio.ErrFlexToken) || errors.Is(err, twilio.ErrServerCredentials) {
		t.Errorf("500: %v", err)
	} else if _, ok := twilio.IsAPIError(err, 20500); !ok {
		t.Errorf("500: %v", err)
	}
	srv.SetFaults()

	for _, tc := range []struct {
		name   string
		o      twilio.FlexValidatorOptions
		fault  *twiliotest.Fault
		cred   twilio.Credential
		hint   string
		secret string
	}{
		{name: "wrong auth token", o: twilio.FlexValidatorOptions{AuthToken: "stale-auth-token"}, cred: twilio.CredentialAuthToken,
			hint: "AuthToken", secret: "stale-auth-token"},
		{name: "wrong api key secret", o: twilio.FlexValidatorOptions{APIKeySID: "SK1", APIKeySecret: "stale-key-secret"}, cred: twilio.CredentialAPIKey,
			hint: "APIKeySecret", secret: "stale-key-secret"},
		{name: "unknown api key", o: twilio.FlexValidatorOptions{APIKeySID: "SK2", APIKeySecret: "key-secret"}, cred: twilio.CredentialAPIKey,
			hint: "SK2", secret: "key-secret"},
		// With the auth token, a wrong AccountSID fails authentication
		// (the pair is refused); with an API key, the account is unknown.
		{name: "wrong account with auth token", o: twilio.FlexValidatorOptions{AccountSID: "AC99999999999999999999999999999999", AuthToken: srv.AuthToken()},
			cred: twilio.CredentialAuthToken, hint: "AccountSID and AuthToken", secret: srv.AuthToken()},
		{name: "wrong account with api key", o: twilio.FlexValidatorOptions{AccountSID: "AC99999999999999999999999999999999", APIKeySID: "SK1", APIKeySecret: "key-secret"},
			cred: twilio.CredentialAccountSID, hint: "AC99999999999999999999999999999999", secret: "key-secret"},
		{name: "403 for the key", o: twilio.FlexValidatorOptions{APIKeySID: "SK1", APIKeySecret: "key-secret"},
			fault: &twiliotest.Fault{PathPrefix: "/v1/", Status: 403, Code: 20003, Message: "Permission Denied"}, cred: twilio.CredentialAPIKey,
			hint: "APIKeySID", secret: "key-secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault != nil {
				srv.SetFaults(*tc.fault)
				defer srv.SetFaults()
			}
			v := newV(tc.o)
			id, err := v.Validate(ctx, "tok-agent")
			var ce *twilio.CredentialsError
			if id != nil || !errors.Is(err, twilio.ErrServerCredentials) || errors.Is(err, twilio.ErrFlexToken) ||
				!errors.As(err, &ce) || ce.Credential != tc.cred {
				t.Fatalf("Validate = %v, %v; want a %v CredentialsError", id, err, tc.cred)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.hint) || strings.Contains(msg, tc.secret) {
				t.Errorf("message %q: want %q named and the secret absent", msg, tc.hint)
			}
		})
	}
	// With good credentials, a bad token is the agent's fault.
	_, err := good.Validate(ctx, "tok-unknown")
	if !errors.Is(err, twilio.ErrFlexToken) || errors.Is(err, twilio.ErrServerCredentials) {
		t.Errorf("unknown token: %v", err)
	}
	// An API key works for Flex validation.
	if _, err := newV(twilio.FlexValidatorOptions{APIKeySID: "SK1", APIKeySecret: "key-secret"}).Validate(ctx, "tok-agent"); err != nil {
		t.Errorf("api key: %v", err)
	}
}

func TestErrorTextAuthTokenGuidance(t *testing.T) {
	if msg := twilio.ErrNoAuthToken.Error(); !strings.Contains(msg, "auth token") || !strings.Contains(msg, "API key cannot validate signatures") {
		t.Errorf("ErrNoAuthToken = %q", msg)
	}
	e := &twilio.CredentialsError{Credential: twilio.CredentialAuthToken, AccountSID: "AC1", Err: &twilio.APIError{Status: 401, Code: 20003, Message: "Authenticate"}}
	if msg := e.Error(); !strings.Contains(msg, "X-Twilio-Signature validation always needs the auth token") || !strings.Contains(msg, "HTTP 401, error 20003") {
		t.Errorf("CredentialsError = %q", msg)
	}
}

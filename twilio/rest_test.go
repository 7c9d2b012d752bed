package twilio_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

func newClient(t *testing.T, srv *twiliotest.Server, mod func(*twilio.ClientOptions)) *twilio.Client {
	t.Helper()
	o := &twilio.ClientOptions{AccountSID: srv.AccountSID(), AuthToken: srv.AuthToken(), BaseURL: srv.URL}
	if mod != nil {
		mod(o)
	}
	c, err := twilio.NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStartStopStream(t *testing.T) {
	t.Parallel()
	srv := twiliotest.NewServer(&twiliotest.ServerOptions{APIKeys: map[string]string{"SK1": "key-secret"}})
	defer srv.Close()
	ctx := context.Background()
	const call = "CA00000000000000000000000000000001"
	c := newClient(t, srv, nil)
	params := []twilio.Parameter{{"session", "s-1"}, {"mode", "verify"}}
	r, err := c.StartStream(ctx, call, &twilio.StreamParams{
		URL: "wss://vb.example.com/twilio/media", Name: "vb", Track: twilio.TrackBoth,
		StatusCallback: "https://vb.example.com/cb", StatusCallbackMethod: "POST", Parameters: params,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.SID, "MZ") || r.Status != "in-progress" || r.CallSID != call || r.Name != "vb" {
		t.Errorf("resource %+v", r)
	}
	if _, err := r.Updated(); err != nil {
		t.Errorf("date_updated %q: %v", r.DateUpdated, err)
	}
	reqs := srv.Requests()
	f := reqs[len(reqs)-1].Form
	want := map[string]string{"Url": "wss://vb.example.com/twilio/media", "Name": "vb", "Track": "both_tracks",
		"StatusCallback": "https://vb.example.com/cb", "StatusCallbackMethod": "POST",
		"Parameter1.Name": "session", "Parameter1.Value": "s-1", "Parameter2.Name": "mode", "Parameter2.Value": "verify"}
	for k, v := range want {
		if f.Get(k) != v {
			t.Errorf("form %s = %q, want %q", k, f.Get(k), v)
		}
	}
	if len(f) != len(want) {
		t.Errorf("form has extra fields: %v", f)
	}
	if p := reqs[len(reqs)-1].Path; p != "/2010-04-01/Accounts/"+srv.AccountSID()+"/Calls/"+call+"/Streams.json" {
		t.Errorf("path %s", p)
	}

	// Stop by name with an API key.
	kc := newClient(t, srv, func(o *twilio.ClientOptions) { o.AuthToken = ""; o.APIKeySID, o.APIKeySecret = "SK1", "key-secret" })
	r2, err := kc.StopStream(ctx, call, "vb")
	if err != nil {
		t.Fatal(err)
	}
	if r2.Status != "stopped" || r2.SID != "vb" {
		t.Errorf("stop %+v", r2)
	}
	if u, p, _ := reqAuth(srv); u != "SK1" || p != "key-secret" {
		t.Errorf("basic auth %s:%s", u, p)
	}
	if got := srv.Requests()[len(srv.Requests())-1].Form.Get("Status"); got != "stopped" {
		t.Errorf("Status=%q", got)
	}
	// By SID, and an unknown stream gives Twilio's 404 body.
	if _, err := c.StopStream(ctx, call, r.SID); err != nil {
		t.Fatal(err)
	}
	_, err = c.StopStream(ctx, call, "nope")
	if e, ok := twilio.IsAPIError(err, 20404); !ok || e.Status != 404 || !strings.Contains(e.MoreInfo, "20404") {
		t.Errorf("unknown stream: %v", err)
	}

	// 99 parameters pass, 100 do not; query strings and long parameters are refused locally.
	var many []twilio.Parameter
	for i := range 100 {
		many = append(many, twilio.Parameter{Name: fmt.Sprintf("k%d", i), Value: "v"})
	}
	if _, err := c.StartStream(ctx, call, &twilio.StreamParams{URL: "wss://x.example/m", Parameters: many[:99]}); err != nil {
		t.Errorf("99 parameters: %v", err)
	}
	if got := srv.Streams(call); len(got[len(got)-1].Parameters) != 99 {
		t.Errorf("server saw %d parameters", len(got[len(got)-1].Parameters))
	}
	for _, tc := range []struct {
		p    twilio.StreamParams
		want error
	}{
		{twilio.StreamParams{URL: "wss://x.example/m", Parameters: many}, twilio.ErrTooManyParameters},
		{twilio.StreamParams{URL: "wss://x.example/m?token=1"}, twilio.ErrQueryInStreamURL},
		{twilio.StreamParams{}, twilio.ErrInvalidArgument},
		{twilio.StreamParams{URL: "wss://x.example/m", Parameters: []twilio.Parameter{{"k", strings.Repeat("v", 499)}}}, twilio.ErrParameterTooLong},
	} {
		if _, err := c.StartStream(ctx, call, &tc.p); !errors.Is(err, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.p.URL, err, tc.want)
		}
	}
}

func reqAuth(srv *twiliotest.Server) (string, string, bool) {
	reqs := srv.Requests()
	r := &http.Request{Header: reqs[len(reqs)-1].Header}
	return r.BasicAuth()
}

func TestRESTErrors(t *testing.T) {
	t.Parallel()
	srv := twiliotest.NewServer(nil)
	defer srv.Close()
	ctx := context.Background()
	const call = "CA1"
	p := &twilio.StreamParams{URL: "wss://x.example/m"}

	bad := newClient(t, srv, func(o *twilio.ClientOptions) { o.AuthToken = "wrong" })
	_, err := bad.StartStream(ctx, call, p)
	if e, ok := twilio.IsAPIError(err, 20003); !ok || e.Status != 401 || e.Message != "Authenticate" {
		t.Errorf("bad auth: %v", err)
	}

	c := newClient(t, srv, func(o *twilio.ClientOptions) { o.Timeout = 200 * time.Millisecond })
	srv.SetFaults(twiliotest.Fault{PathPrefix: "/2010-04-01/", Status: 503, Code: 20503, Message: "Service unavailable"})
	_, err = c.StartStream(ctx, call, p)
	if e, ok := twilio.IsAPIError(err, 20503); !ok || e.Status != 503 || e.Message != "Service unavailable" {
		t.Errorf("fault: %v", err)
	}
	srv.SetFaults(twiliotest.Fault{PathPrefix: "/2010-04-01/", Delay: 5 * time.Second})
	_, err = c.StartStream(ctx, call, p)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout: %v", err)
	}
	srv.SetFaults()
	if _, err := twilio.NewClient(&twilio.ClientOptions{AccountSID: "AC1"}); !errors.Is(err, twilio.ErrInvalidArgument) {
		t.Errorf("no credential: %v", err)
	}
	if _, err := twilio.NewClient(nil); !errors.Is(err, twilio.ErrInvalidArgument) {
		t.Errorf("nil options: %v", err)
	}
}

// An answer that is not Twilio's JSON error body (a proxy's error page, a
// truncated body) still gives an *APIError with the HTTP status, and an
// unparsable 2xx body is an error, never an empty resource.
func TestRESTNonJSONAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   *twilio.APIError // nil: a non-API error
	}{
		{"html 502", 502, "<html><body>Bad Gateway</body></html>", &twilio.APIError{Status: 502, Message: "<html><body>Bad Gateway</body></html>"}},
		{"empty 503", 503, "", &twilio.APIError{Status: 503, Message: "Service Unavailable"}},
		{"truncated json 500", 500, `{"code":20500,"mess`, &twilio.APIError{Status: 500, Message: `{"code":20500,"mess`}},
		{"long text 400", 400, strings.Repeat("x", 1000), &twilio.APIError{Status: 400, Message: strings.Repeat("x", 200)}},
		{"garbage 201", 201, "not json", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			c, err := twilio.NewClient(&twilio.ClientOptions{AccountSID: "AC1", AuthToken: "tok", BaseURL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.StartStream(context.Background(), "CA1", &twilio.StreamParams{URL: "wss://x.example/m"})
			if err == nil || res != nil {
				t.Fatalf("StartStream = %+v, %v; want an error", res, err)
			}
			e, ok := twilio.IsAPIError(err, 0)
			if tc.want == nil {
				if ok {
					t.Fatalf("error %v is an APIError", err)
				}
				return
			}
			if !ok || *e != *tc.want {
				t.Errorf("error %#v, want %#v", e, tc.want)
			}
		})
	}
}

func TestFlexValidator(t *testing.T) {
	t.Parallel()
	srv := twiliotest.NewServer(nil)
	defer srv.Close()
	ctx := context.Background()
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	srv.AddFlexToken("tok-agent", twilio.FlexIdentity{Identity: "user_40example_2Dcom", RealmUserID: "user@example.com",
		WorkerSID: "WK1", Roles: []string{"agent", "supervisor"}, Expiration: exp})
	srv.AddFlexToken("tok-expired", twilio.FlexIdentity{Identity: "old", Expiration: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)})
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	v, err := twilio.NewFlexValidator(&twilio.FlexValidatorOptions{AccountSID: srv.AccountSID(), AuthToken: srv.AuthToken(),
		BaseURL: srv.URL, Timeout: 300 * time.Millisecond, MaxRetries: 1, RetryBackoff: time.Millisecond, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Validate(ctx, "tok-agent")
	if err != nil {
		t.Fatal(err)
	}
	if id.Identity != "user_40example_2Dcom" || id.WorkerSID != "WK1" || !id.HasRole("supervisor") || id.HasRole("admin") ||
		!id.Expiration.Equal(exp) || id.RealmUserID != "user@example.com" {
		t.Errorf("identity %+v", id)
	}
	reqs := srv.Requests()
	last := reqs[len(reqs)-1]
	if last.Path != "/v1/Accounts/"+srv.AccountSID()+"/Tokens/validate" || string(last.Body) != `{"token":"tok-agent"}` ||
		last.Header.Get("Content-Type") != "application/json" || last.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("request %s %s %v", last.Path, last.Body, last.Header)
	}
	// Cached: no second request, even while the server fails.
	srv.SetFaults(twiliotest.Fault{PathPrefix: "/v1/", Status: 500, Code: 20500, Message: "boom"})
	n := len(srv.Requests())
	if _, err := v.Validate(ctx, "tok-agent"); err != nil || len(srv.Requests()) != n {
		t.Errorf("cache miss: %v, %d requests", err, len(srv.Requests())-n)
	}
	// Fails closed on server errors, timeouts, invalid and expired tokens.
	if _, err := v.Validate(ctx, "tok-new"); err == nil {
		t.Error("server error accepted")
	} else if _, ok := twilio.IsAPIError(err, 20500); !ok {
		t.Errorf("server error: %v", err)
	}
	srv.SetFaults(twiliotest.Fault{PathPrefix: "/v1/", Delay: 5 * time.Second})
	if _, err := v.Validate(ctx, "tok-slow"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout: %v", err)
	}
	srv.SetFaults()
	for _, tok := range []string{"tok-unknown", "tok-expired", ""} {
		if id, err := v.Validate(ctx, tok); !errors.Is(err, twilio.ErrFlexToken) || id != nil {
			t.Errorf("%q: %v %v", tok, id, err)
		}
	}
	// Wrong credentials: Twilio's error body, never a valid identity.
	bad, _ := twilio.NewFlexValidator(&twilio.FlexValidatorOptions{AccountSID: srv.AccountSID(), APIKeySID: "SKx", APIKeySecret: "y", BaseURL: srv.URL})
	if _, err := bad.Validate(ctx, "tok-agent"); err == nil {
		t.Error("bad credentials accepted")
	}
	// Cache expiry: past the token's expiration the answer is checked again and refused.
	now = exp.Add(time.Second)
	if _, err := v.Validate(ctx, "tok-agent"); !errors.Is(err, twilio.ErrFlexToken) {
		t.Errorf("expired cache entry: %v", err)
	}
}

func TestWebChat(t *testing.T) {
	t.Parallel()
	srv := twiliotest.NewServer(nil)
	defer srv.Close()
	ctx := context.Background()
	c := newClient(t, srv, nil)
	wc, err := c.CreateWebChat(ctx, &twilio.WebChatParams{AddressSID: "IG1", ChatFriendlyName: "Web", CustomerFriendlyName: "Jane",
		PreEngagementData: `{"friendlyName":"Jane"}`, UIVersion: "2.0"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(wc.ConversationSID, "CH") || wc.Identity == "" {
		t.Errorf("web chat %+v", wc)
	}
	last := srv.Requests()[len(srv.Requests())-1]
	if last.Path != "/v2/WebChats" || last.Form.Get("AddressSid") != "IG1" || last.Form.Get("CustomerFriendlyName") != "Jane" || last.Header.Get("Ui-Version") != "2.0" {
		t.Errorf("request %s %v", last.Path, last.Form)
	}
	if _, err := c.CreateWebChat(ctx, &twilio.WebChatParams{}); !errors.Is(err, twilio.ErrInvalidArgument) {
		t.Errorf("missing address: %v", err)
	}
	srv.SetFaults(twiliotest.Fault{PathPrefix: "/v2/WebChats", Status: 400, Code: 20001, Message: "Missing required parameter AddressSid"})
	_, err = c.CreateWebChat(ctx, &twilio.WebChatParams{AddressSID: "IG1"})
	if e, ok := twilio.IsAPIError(err, 20001); !ok || e.Status != 400 {
		t.Errorf("fault: %v", err)
	}
}

package genesys

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/audiohooktest"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/daspeak/offline"
	"github.com/voicegate/voicegate/internal/fixtures"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRegion(t *testing.T) {
	for _, c := range []struct {
		origin, env string
		want        string
		ok          bool
	}{
		{"https://apps.mypurecloud.ie", "", "mypurecloud.ie", true},
		{"https://apps.mypurecloud.ie/", "prod-euw1", "mypurecloud.ie", true},
		{"https://APPS.usw2.pure.cloud", "", "usw2.pure.cloud", true},
		{"https://apps.mypurecloud.com", "prod", "mypurecloud.com", true},
		{"", "prod-euc1", "mypurecloud.de", true},
		{"", "PROD-APSE2", "mypurecloud.com.au", true},
		{"https://apps.mypurecloud.ie", "prod-euc1", "", false}, // disagree
		{"https://apps.attacker.example", "", "", false},
		{"https://apps.mypurecloud.ie.attacker.example", "", "", false},
		{"http://apps.mypurecloud.ie", "", "", false},
		{"https://apps.mypurecloud.ie:8443", "", "", false},
		{"https://apps.mypurecloud.ie/x", "", "", false},
		{"", "prod-mars1", "", false},
		{"", "", "", false},
	} {
		got, err := Region(c.origin, c.env)
		if (err == nil) != c.ok || got != c.want || (err != nil && !errors.Is(err, ErrRegion)) {
			t.Errorf("Region(%q, %q) = %q, %v", c.origin, c.env, got, err)
		}
	}
	if u, err := APIBaseURL("mypurecloud.ie"); err != nil || u != "https://api.mypurecloud.ie" {
		t.Errorf("APIBaseURL: %q %v", u, err)
	}
	if _, err := APIBaseURL("example.com"); !errors.Is(err, ErrRegion) {
		t.Errorf("APIBaseURL of an unknown domain: %v", err)
	}
}

// fakeGenesys answers GET /api/v2/users/me for known tokens, as Genesys
// Cloud does: 200 with the user, 401 otherwise.
//
// It also answers GET /api/v2/conversations/{id}: 200 for agentToken on
// the conversations in visible (with the body stored there, when it is a
// string), 404 for others (as Genesys does for a conversation the user
// may not see), 401 for other tokens.
type fakeGenesys struct {
	*httptest.Server
	calls     atomic.Int32
	convCalls atomic.Int32
	status    atomic.Int32 // forced status when not 0
	visible   sync.Map     // conversation id → true or the answer's body
}

const agentToken = "genesys-agent-token"

func newFakeGenesys(t *testing.T) *fakeGenesys {
	f := &fakeGenesys{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conv, isConv := strings.CutPrefix(r.URL.Path, "/api/v2/conversations/")
		if isConv {
			f.convCalls.Add(1)
		} else {
			f.calls.Add(1)
		}
		if r.Method != http.MethodGet || (r.URL.Path != "/api/v2/users/me" && !isConv) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if s := f.status.Load(); s != 0 {
			w.WriteHeader(int(s))
			io.WriteString(w, `{"message":"forced","status":`+http.StatusText(int(s))+`}`)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+agentToken {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"message":"Invalid login credentials.","code":"bad.credentials","status":401}`)
			return
		}
		if isConv {
			v, ok := f.visible.Load(conv)
			if !ok {
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, `{"message":"Unable to find a conversation with that conversationId","code":"not.found","status":404}`)
				return
			}
			if b, ok := v.(string); ok {
				io.WriteString(w, b)
				return
			}
			io.WriteString(w, `{"id":"`+conv+`","participants":[]}`)
			return
		}
		io.WriteString(w, `{"id":"6f3a1c2e-1111-4222-8333-444455556666","name":"Ana Agent","email":"ana@example.com","state":"active"}`)
	}))
	t.Cleanup(f.Close)
	return f
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestAuthenticator(t *testing.T) {
	f := newFakeGenesys(t)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	now := time.Unix(1_800_000_000, 0)
	for _, c := range []struct {
		name    string
		base    string
		header  string
		status  int32
		wantErr error
		wantLog string
	}{
		{"valid", f.URL, "Bearer " + agentToken, 0, nil, ""},
		{"invalid", f.URL, "Bearer forged", 0, ErrToken, "genesys token refused"},
		{"no token", f.URL, "", 0, ErrToken, "genesys token refused"},
		{"basic auth", f.URL, "Basic " + agentToken, 0, ErrToken, "genesys token refused"},
		{"forbidden", f.URL, "Bearer " + agentToken, 403, ErrToken, "genesys token refused"},
		{"genesys 503", f.URL, "Bearer " + agentToken, 503, ErrUnavailable, "Genesys Cloud API unavailable"},
		{"rate limited", f.URL, "Bearer " + agentToken, 429, ErrUnavailable, "Genesys Cloud API unavailable"},
		{"unreachable", down.URL, "Bearer " + agentToken, 0, ErrUnavailable, "Genesys Cloud API unavailable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f.status.Store(c.status)
			defer f.status.Store(0)
			var logs logBuf
			a, err := NewAuthenticator(&AuthenticatorOptions{APIBaseURL: c.base, CacheTTL: -1, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodPost, "/agent/status", nil)
			if c.header != "" {
				r.Header.Set("Authorization", c.header)
			}
			p, err := a.Authenticate(context.Background(), r)
			if c.wantErr == nil {
				if err != nil || p.Subject != "6f3a1c2e-1111-4222-8333-444455556666" || p.Name != "Ana Agent" {
					t.Fatalf("%+v %v", p, err)
				}
				return
			}
			if !errors.Is(err, c.wantErr) || p != (agent.Principal{}) {
				t.Fatalf("%+v %v, want %v", p, err, c.wantErr)
			}
			// Genesys's faults, and only they, are the server's: 503.
			if errors.Is(err, agent.ErrAuthUnavailable) != (c.wantErr == ErrUnavailable) {
				t.Fatalf("%v: agent.ErrAuthUnavailable %v", err, errors.Is(err, agent.ErrAuthUnavailable))
			}
			if strings.Contains(err.Error(), agentToken) || strings.Contains(logs.String(), agentToken) {
				t.Fatal("token in the error or log")
			}
			if !strings.Contains(logs.String(), c.wantLog) {
				t.Fatalf("log %q lacks %q", logs.String(), c.wantLog)
			}
		})
	}
	for _, o := range []*AuthenticatorOptions{nil, {}, {APIBaseURL: "api.mypurecloud.ie"}} {
		if _, err := NewAuthenticator(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestAuthenticatorCache(t *testing.T) {
	f := newFakeGenesys(t)
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	a, err := NewAuthenticator(&AuthenticatorOptions{APIBaseURL: f.URL, CacheTTL: time.Minute, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		if _, err := a.Validate(ctx, agentToken); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d calls to Genesys, want 1 (cached)", n)
	}
	// Refused tokens are not cached.
	for range 2 {
		a.Validate(ctx, "forged")
	}
	if n := f.calls.Load(); n != 3 {
		t.Fatalf("%d calls, want 3", n)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	f.status.Store(401) // revoked meanwhile
	if _, err := a.Validate(ctx, agentToken); !errors.Is(err, ErrToken) {
		t.Fatalf("after the cache TTL a revoked token is refused: %v", err)
	}
}

// TestAuthorizeCall: an agent may act on a conversation their token can
// read (200), not on one Genesys hides from them (404, 403) nor on an id
// that is not a conversation's (not asked); a 401 is the token's fault, a
// 5xx or 429 the server's; allowed accesses are cached per token and
// conversation for ConversationCacheTTL, refusals are not.
func TestAuthorizeCall(t *testing.T) {
	f := newFakeGenesys(t)
	const other = "00000000-0000-4000-8000-000000000404"
	f.visible.Store(convID, true)
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	a, err := NewAuthenticator(&AuthenticatorOptions{APIBaseURL: f.URL, Now: clock, ConversationCacheTTL: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	req := func(token string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/agent/status", nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		return r
	}
	ctx := context.Background()
	p := agent.Principal{Subject: "6f3a1c2e-1111-4222-8333-444455556666"}
	for _, c := range []struct {
		name    string
		token   string
		conv    string
		status  int32
		want    []error
		request bool
	}{
		{"visible", agentToken, convID, 0, nil, true},
		{"hidden (404)", agentToken, other, 0, []error{agent.ErrForbidden, ErrConversation}, true},
		{"forbidden (403)", agentToken, other, 403, []error{agent.ErrForbidden, ErrConversation}, true},
		{"not a conversation id", agentToken, "../users/me", 0, []error{agent.ErrBadCallID}, false},
		{"not a conversation id either", agentToken, "CA00000000000000000000000000000001", 0, []error{agent.ErrBadCallID}, false},
		{"token refused", "forged", other, 0, []error{agent.ErrUnauthenticated, ErrToken}, true},
		{"no token", "", convID, 0, []error{agent.ErrUnauthenticated}, false},
		{"genesys 503", agentToken, other, 503, []error{agent.ErrAuthUnavailable, ErrUnavailable}, true},
		{"rate limited", agentToken, other, 429, []error{agent.ErrAuthUnavailable, ErrUnavailable}, true},
	} {
		f.status.Store(c.status)
		before := f.convCalls.Load()
		err := a.AuthorizeCall(ctx, req(c.token), p, c.conv)
		f.status.Store(0)
		if (err == nil) != (c.want == nil) {
			t.Errorf("%s: %v", c.name, err)
		}
		for _, w := range c.want {
			if !errors.Is(err, w) {
				t.Errorf("%s: %v is not %v", c.name, err, w)
			}
		}
		if err != nil && strings.Contains(err.Error(), agentToken) {
			t.Errorf("%s: token in the error", c.name)
		}
		if asked := f.convCalls.Load() != before; asked != c.request && !(c.name == "visible" && !asked) {
			t.Errorf("%s: asked Genesys %v", c.name, asked)
		}
	}
	// Cached: the visible conversation was asked once above.
	before := f.convCalls.Load()
	for range 3 {
		if err := a.AuthorizeCall(ctx, req(agentToken), p, convID); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.convCalls.Load() - before; n != 0 {
		t.Fatalf("%d requests for a cached access", n)
	}
	// Refusals are not cached: once visible, the conversation is allowed.
	f.visible.Store(other, true)
	if err := a.AuthorizeCall(ctx, req(agentToken), p, other); err != nil {
		t.Fatalf("refusal cached: %v", err)
	}
	// After the TTL Genesys is asked again.
	f.visible.Delete(convID)
	mu.Lock()
	now = now.Add(30 * time.Second)
	mu.Unlock()
	if err := a.AuthorizeCall(ctx, req(agentToken), p, convID); !errors.Is(err, agent.ErrForbidden) {
		t.Fatalf("after the TTL: %v", err)
	}
}

// TestAuthorizeCallEnded: a conversation the agent was on and that has
// ended for them (the conversation's endTime, or every participant of
// theirs disconnected: endTime, state, their calls' states) is refused
// with agent.ErrNoCall and ErrCallEnded, never as forbidden; one they were
// never on stays forbidden once ended and allowed while live (a
// supervisor); a 200 answer that is not a conversation is not judged.
// Such refusals are not cached.
func TestAuthorizeCallEnded(t *testing.T) {
	f := newFakeGenesys(t)
	const me = "6f3a1c2e-1111-4222-8333-444455556666"
	const them = "6f3a1c2e-1111-4222-8333-777777777777"
	p := agent.Principal{Subject: me}
	r := httptest.NewRequest(http.MethodPost, "/agent/status", nil)
	r.Header.Set("Authorization", "Bearer "+agentToken)
	customer := `{"id":"c1","purpose":"customer","calls":[{"state":"connected"}]}`
	customerGone := `{"id":"c1","purpose":"customer","endTime":"2026-11-29T10:05:00.000Z","calls":[{"state":"disconnected"}]}`
	agentOn := func(user, extra, callState string) string {
		return `{"id":"a-` + user[len(user)-4:] + `","purpose":"agent","userId":"` + user + `"` + extra + `,"calls":[{"state":"` + callState + `"}]}`
	}
	conv := func(end string, parts ...string) string {
		b := `{"id":"` + convID + `","startTime":"2026-11-29T10:00:00.000Z"`
		if end != "" {
			b += `,"endTime":"` + end + `"`
		}
		return b + `,"participants":[` + strings.Join(parts, ",") + `]}`
	}
	const ended = "2026-11-29T10:05:00.000Z"
	const agentEnd = `,"endTime":"2026-11-29T10:05:00.000Z"`
	for _, c := range []struct {
		name string
		body string
		want []error
		not  []error
	}{
		{"live, the agent connected", conv("", customer, agentOn(me, "", "connected")), nil, nil},
		{"live, a supervisor never on it", conv("", customer, agentOn(them, "", "connected")), nil, nil},
		{"live, the agent back after a transfer", conv("", customer, agentOn(me, agentEnd, "disconnected"), agentOn(them, agentEnd, "disconnected"), agentOn(me, "", "connected")), nil, nil},
		{"ended", conv(ended, customerGone, agentOn(me, agentEnd, "disconnected")),
			[]error{agent.ErrNoCall, ErrCallEnded}, []error{agent.ErrForbidden, agent.ErrAuthUnavailable}},
		{"the agent transferred the call", conv("", customer, agentOn(me, agentEnd, "disconnected"), agentOn(them, "", "connected")),
			[]error{agent.ErrNoCall, ErrCallEnded}, []error{agent.ErrForbidden}},
		{"the agent's leg terminated (no endTime yet)", conv("", customerGone, agentOn(me, "", "terminated")),
			[]error{agent.ErrNoCall, ErrCallEnded}, []error{agent.ErrForbidden}},
		{"the agent's participant disconnected (state)", conv("", customer, `{"purpose":"agent","userId":"`+me+`","state":"disconnected"}`),
			[]error{agent.ErrNoCall, ErrCallEnded}, []error{agent.ErrForbidden}},
		{"ended, never on it", conv(ended, customerGone, agentOn(them, agentEnd, "disconnected")),
			[]error{agent.ErrForbidden, ErrConversation}, []error{agent.ErrNoCall}},
		{"not a conversation", `<html>maintenance</html>`,
			[]error{agent.ErrAuthUnavailable, ErrUnavailable}, []error{agent.ErrNoCall, agent.ErrForbidden}},
	} {
		a, err := NewAuthenticator(&AuthenticatorOptions{APIBaseURL: f.URL})
		if err != nil {
			t.Fatal(err)
		}
		f.visible.Store(convID, c.body)
		err = a.AuthorizeCall(context.Background(), r, p, convID)
		if (err == nil) != (c.want == nil) {
			t.Errorf("%s: %v", c.name, err)
		}
		for _, w := range c.want {
			if !errors.Is(err, w) {
				t.Errorf("%s: %v is not %v", c.name, err, w)
			}
		}
		for _, w := range c.not {
			if errors.Is(err, w) {
				t.Errorf("%s: %v is %v", c.name, err, w)
			}
		}
		if c.want != nil {
			// Not cached: live again (a new participant of the agent's),
			// the conversation is allowed.
			f.visible.Store(convID, conv("", customer, agentOn(me, "", "connected")))
			if err := a.AuthorizeCall(context.Background(), r, p, convID); err != nil {
				t.Errorf("%s: refusal cached: %v", c.name, err)
			}
		}
	}
}

func TestWidgetPage(t *testing.T) {
	h, err := WidgetPage(&WidgetPageOptions{ClientID: "client-<id>", Region: "mypurecloud.ie", BasePath: "/vg/"})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/genesys/widget?conversationId=<script>&gcHostOrigin=https://apps.mypurecloud.ie", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	body := w.Body.String()
	csp := w.Header().Get("Content-Security-Policy")
	if w.Code != 200 || !strings.Contains(csp, "frame-ancestors https://apps.mypurecloud.ie") || strings.Contains(csp, "unsafe-eval") {
		t.Fatalf("%d CSP %q", w.Code, csp)
	}
	m := regexp.MustCompile(`'nonce-([^']+)'`).FindStringSubmatch(csp)
	if m == nil || !strings.Contains(body, `<script nonce="`+m[1]+`">`) {
		t.Fatalf("script nonce does not match the CSP %q", csp)
	}
	for _, want := range []string{
		`"clientId":"client-\u003cid\u003e"`, `"region":"mypurecloud.ie"`, `"basePath":"/vg"`,
		`document.createElement('voicegate-agent')`, `'conversation-id'`, `getTemporaryToken`,
		`cfg.basePath + '/voicegate-agent.js'`, `response_type: 'code'`, `code_challenge_method: 'S256'`,
		`grant_type: 'authorization_code'`, `"login":"https://login.mypurecloud.ie"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(body, "<script>&") || strings.Contains(body, "client-<id>") {
		t.Error("page reflects unescaped input")
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/genesys/widget", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", w.Code)
	}
	for _, o := range []*WidgetPageOptions{nil, {Region: "mypurecloud.ie"}, {ClientID: "c", Region: "attacker.example"}, {ClientID: "c", Region: "mypurecloud.ie", BasePath: "/a'b"}} {
		if _, err := WidgetPage(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// hookServer serves AudioHook sessions into a Source.
type hookServer struct {
	src  *Source
	srv  *httptest.Server
	url  string
	wg   sync.WaitGroup
	runs chan error
}

func newHookServer(t *testing.T, src *Source) *hookServer {
	t.Helper()
	return newHookServerCtx(t, src, context.Background())
}

// newHookServerCtx is newHookServer whose Run calls end with parent.
func newHookServerCtx(t *testing.T, src *Source, parent context.Context) *hookServer {
	t.Helper()
	ctx, cancel := context.WithCancel(parent)
	hs := &hookServer{src: src, runs: make(chan error, 8)}
	hs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hs.wg.Add(1)
		defer hs.wg.Done()
		// Buffers for a whole recording: the tests' clients send as fast
		// as they can.
		sess, err := audiohook.Accept(w, r, &audiohook.ServerOptions{
			InsecureSkipAuth: true, Media: []wire.MediaParameter{wire.MediaPCMUExternal, wire.MediaPCMUStereo},
			Buffer: 30 * time.Second, BufferFrames: 2000,
		})
		if err != nil {
			return
		}
		defer sess.Close()
		if _, err := sess.Open(ctx); err != nil {
			return
		}
		hs.runs <- src.Run(ctx, sess)
	}))
	hs.url = "ws" + strings.TrimPrefix(hs.srv.URL, "http")
	t.Cleanup(func() {
		cancel()
		hs.wg.Wait()
		hs.srv.Close()
	})
	return hs
}

const convID = "1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7081"

func dial(t *testing.T, ctx context.Context, url, conv, ani string) *audiohooktest.Client {
	t.Helper()
	c, err := audiohooktest.Dial(ctx, url, &audiohooktest.DialOptions{
		ConversationID: conv, PingInterval: -1,
		Participant: &wire.Participant{ID: audiohooktest.NewUUID(), ANI: ani, ANIName: "Caller", DNIS: "+34911000000"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAttachOnClick streams a second of audio before the agent's click and
// one after it, through audiohooktest.Dial: the operation reads exactly the
// audio after the click.
func TestAttachOnClick(t *testing.T) {
	src := NewSource(nil)
	hs := newHookServer(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl := dial(t, ctx, hs.url, convID, "tel:+34 600 000 000")

	if _, err := src.Open(ctx, agent.SourceRequest{OperationID: "op_1", CallID: "9b2c3d4e-5f60-4718-9a2b-3c4d5e6f7081"}); !errors.Is(err, agent.ErrNoCall) {
		t.Fatalf("unknown conversation: %v", err)
	}
	waitFor(t, "the session to register", func() bool { return src.Stats().Sessions == 1 })
	caller, live, err := src.Call(ctx, convID)
	if err != nil || caller != "+34600000000" || !live {
		t.Fatalf("Call: %q %v %v", caller, live, err)
	}

	// Before the click: 1 s in 20 ms messages, drained and dropped.
	if err := cl.Stream(ctx, audiohooktest.ToneSource(time.Second, 440), &audiohooktest.StreamOptions{Chunk: 20 * time.Millisecond, Fast: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the audio before the click to be drained", func() bool { return src.Stats().FramesRead == 50 })

	a, err := src.Open(ctx, agent.SourceRequest{OperationID: "op_2", CallID: convID, CallerID: "+34600000000"})
	if err != nil {
		t.Fatal(err)
	}
	if st := src.Stats(); st.Attached != 1 || st.FramesQueued != 0 {
		t.Fatalf("stats at the click %+v", st)
	}
	if err := cl.Stream(ctx, audiohooktest.ToneSource(time.Second, 440), &audiohooktest.StreamOptions{Chunk: 20 * time.Millisecond, Fast: true}); err != nil {
		t.Fatal(err)
	}
	var n int
	for n < 50 {
		f, err := a.ReadFrame(ctx)
		if err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		if want := time.Second + time.Duration(n)*20*time.Millisecond; f.Timestamp != want {
			t.Fatalf("frame %d at %v, want %v (audio from before the click?)", n, f.Timestamp, want)
		}
		if f.Samples() != 160 || f.Parties[0].String() != "customer" {
			t.Fatalf("frame %d: %d samples, party %v", n, f.Samples(), f.Parties[0])
		}
		n++
	}

	// The result goes to Genesys as an event message.
	ev := agent.Event{OperationID: "op_2", CallID: convID, CallerID: "+34600000000", Kind: daspeak.OperationVerify, Seq: 5,
		Type: daspeak.EventResultSuccess, Reason: agent.ReasonSuccess,
		Session: daspeak.Event{Type: daspeak.EventResultSuccess, Operation: daspeak.OperationVerify, Score: 0.9, Credential: "secret-credential"}}
	if err := a.(agent.ResultNotifier).NotifyResult(ctx, ev); err != nil {
		t.Fatal(err)
	}
	msg, err := cl.Next(ctx)
	if err != nil || msg.Type != wire.TypeEvent {
		t.Fatalf("client got %+v, %v", msg, err)
	}
	var p wire.EventParameters
	if err := json.Unmarshal(msg.Parameters, &p); err != nil || len(p.Entities) != 1 || p.Entities[0].Type != EntityResult {
		t.Fatalf("event %s", msg.Parameters)
	}
	var data map[string]any
	json.Unmarshal(p.Entities[0].Data, &data)
	if data["operation_id"] != "op_2" || data["type"] != "result-success" || data["reason"] != "success" || data["score"] != 0.9 ||
		strings.Contains(string(p.Entities[0].Data), "secret-credential") {
		t.Fatalf("entity data %s", p.Entities[0].Data)
	}

	// Closing the operation's audio leaves the conversation monitored.
	a.Close()
	a.Close()
	if _, err := a.ReadFrame(ctx); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrame after Close: %v", err)
	}
	if st := src.Stats(); st.Sessions != 1 || st.Attached != 0 {
		t.Fatalf("stats after Close %+v", st)
	}
	// A new operation sees the end of the call as io.EOF.
	b, err := src.Open(ctx, agent.SourceRequest{OperationID: "op_3", CallID: convID})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Close(ctx, wire.CloseEnd); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReadFrame(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("after the call ended: %v", err)
	}
	if err := <-hs.runs; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if caller, live, err := src.Call(ctx, convID); caller != "+34600000000" || live || err != nil {
		t.Fatalf("Call after the end = %q %v %v, want +34600000000 ended", caller, live, err)
	}
	if _, err := src.Open(ctx, agent.SourceRequest{OperationID: "op_4", CallID: convID}); !errors.Is(err, agent.ErrNoCall) {
		t.Fatalf("Open after the end: %v", err)
	}
	b.Close()
}

func TestDetachAndProbe(t *testing.T) {
	src := NewSource(&SourceOptions{QueueFrames: 4})
	hs := newHookServer(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A probe is not a conversation.
	pr, err := audiohooktest.Dial(ctx, hs.url, &audiohooktest.DialOptions{Probe: true, PingInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-hs.runs; !errors.Is(err, ErrNoConversation) {
		t.Fatalf("probe: %v", err)
	}
	pr.Close(ctx, wire.CloseEnd)

	cl := dial(t, ctx, hs.url, convID, "anonymous")
	waitFor(t, "the session", func() bool { return src.Stats().Sessions == 1 })
	if caller, _, err := src.Call(ctx, convID); err != nil || caller != "" {
		t.Fatalf("anonymous ani: %q %v", caller, err)
	}
	first, err := src.Open(ctx, agent.SourceRequest{OperationID: "op_1", CallID: convID})
	if err != nil {
		t.Fatal(err)
	}
	second, err := src.Open(ctx, agent.SourceRequest{OperationID: "op_2", CallID: convID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.ReadFrame(ctx); !errors.Is(err, ErrDetached) {
		t.Fatalf("detached operation: %v", err)
	}
	first.Close() // must not detach the second
	// The second reads slowly: its queue keeps the newest 4 frames.
	if err := cl.Stream(ctx, audiohooktest.ToneSource(200*time.Millisecond, 440), &audiohooktest.StreamOptions{Chunk: 20 * time.Millisecond, Fast: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the frames", func() bool { return src.Stats().FramesQueued == 10 })
	if st := src.Stats(); st.FramesDropped != 6 || st.Attached != 1 {
		t.Fatalf("stats %+v", st)
	}
	f, err := second.ReadFrame(ctx)
	if err != nil || f.Timestamp != 120*time.Millisecond {
		t.Fatalf("oldest kept frame at %v, %v", f.Timestamp, err)
	}
	// Close unblocks a waiting ReadFrame.
	for range 3 {
		second.ReadFrame(ctx)
	}
	done := make(chan error, 1)
	go func() { _, err := second.ReadFrame(ctx); done <- err }()
	time.Sleep(20 * time.Millisecond)
	second.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("blocked ReadFrame after Close: %v", err)
	}
	if err := cl.Close(ctx, wire.CloseEnd); err != nil {
		t.Fatal(err)
	}
	<-hs.runs
}

// TestAgentFlow runs the Genesys agent flow end to end: the conversation's
// AudioHook session (audiohooktest.Dial) is monitored; the agent, logged in to
// Genesys (fake users/me), registers the caller from the moment of the
// click through the agent API (offline engine); the events stream shows the
// result and Genesys receives it as an AudioHook event; the session stays
// open.
func TestAgentFlow(t *testing.T) {
	g := newFakeGenesys(t)
	auth, err := NewAuthenticator(&AuthenticatorOptions{APIBaseURL: g.URL})
	if err != nil {
		t.Fatal(err)
	}
	src := NewSource(nil)
	hs := newHookServer(t, src)
	mem := credstore.NewMemory()
	srv, err := agent.NewServer(&agent.Options{
		Engine: offline.New(nil), Store: &agent.CredentialStore{Store: mem}, Source: src, Authenticator: auth,
		Register: &daspeak.Config{AudioTotalDuration: 3 * time.Second}, AuthFailureDelay: 10 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(srv)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		api.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := dial(t, ctx, hs.url, convID, "tel:+34600000000")
	waitFor(t, "the session", func() bool { return src.Stats().Sessions == 1 })
	g.visible.Store(convID, true)

	post := func(token, path string, body any) (int, map[string]any) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, api.URL+"/agent"+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if code, m := post("forged", "/status", map[string]any{"call_id": convID}); code != 401 || m["code"] != "unauthenticated" {
		t.Fatalf("forged token: %d %v", code, m)
	}
	// A conversation the agent cannot see in Genesys: nothing, whatever
	// the AudioHook side knows.
	hidden := dial(t, ctx, hs.url, "2b2c3d4e-5f60-4718-9a2b-3c4d5e6f7082", "tel:+34600000001")
	waitFor(t, "the second session", func() bool { return src.Stats().Sessions == 2 })
	for _, path := range []string{"/status", "/register", "/verify", "/reverify", "/delete"} {
		if code, m := post(agentToken, path, map[string]any{"call_id": "2b2c3d4e-5f60-4718-9a2b-3c4d5e6f7082"}); code != 403 || m["code"] != "forbidden" {
			t.Fatalf("%s on a conversation the agent cannot see: %d %v", path, code, m)
		}
	}
	if err := hidden.Close(ctx, wire.CloseEnd); err != nil {
		t.Fatal(err)
	}
	if err := <-hs.runs; err != nil {
		t.Fatal(err)
	}
	// The caller id comes from the session's ani.
	if code, m := post(agentToken, "/status", map[string]any{"call_id": convID}); code != 200 || m["caller_id"] != "+34600000000" || m["call_in_progress"] != true || m["registered"] != false {
		t.Fatalf("status: %d %v", code, m)
	}
	code, op := post(agentToken, "/register", map[string]any{"call_id": convID})
	if code != 202 {
		t.Fatalf("register: %d %v", code, op)
	}
	// The caller speaks after the click.
	wav, err := audiohooktest.WAVSource(fixtures.Path("voices/slt_1.wav"))
	if err != nil {
		t.Fatal(err)
	}
	streamed := make(chan error, 1)
	go func() { streamed <- cl.Stream(ctx, wav, &audiohooktest.StreamOptions{Fast: true}) }()

	resp, err := http.Get(api.URL + op["events_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var last map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			last = nil
			json.Unmarshal([]byte(d), &last)
		}
	}
	resp.Body.Close()
	if last["type"] != "result-success" || last["operation_id"] != op["operation_id"] {
		t.Fatalf("register ended with %v", last)
	}
	if rec, err := mem.Get(ctx, "+34600000000"); err != nil || rec.Credential == "" {
		t.Fatalf("stored %+v %v", rec, err)
	}
	// Genesys got the result as an event message.
	msg, err := cl.Next(ctx)
	if err != nil || msg.Type != wire.TypeEvent || !bytes.Contains(msg.Parameters, []byte(`"type":"voicegate.result"`)) ||
		!bytes.Contains(msg.Parameters, []byte(`result-success`)) {
		t.Fatalf("event %+v %v", msg, err)
	}
	if err := <-streamed; err != nil {
		t.Fatalf("stream: %v (the session must stay open)", err)
	}
	if cl.Paused() {
		t.Fatal("session paused")
	}
	if err := cl.Close(ctx, wire.CloseEnd); err != nil {
		t.Fatal(err)
	}
	if err := <-hs.runs; err != nil {
		t.Fatal(err)
	}
}

func FuzzRegion(f *testing.F) {
	f.Add("https://apps.mypurecloud.ie", "prod-euw1")
	f.Add("https://apps.usw2.pure.cloud/", "")
	f.Add("", "PROD")
	f.Add("https://apps.mypurecloud.ie.evil", "")
	f.Add("javascript:alert(1)", "prod-x")
	f.Fuzz(func(t *testing.T, origin, env string) {
		d, err := Region(origin, env)
		if err != nil {
			if d != "" || !errors.Is(err, ErrRegion) {
				t.Fatalf("Region(%q, %q) = %q, %v", origin, env, d, err)
			}
			return
		}
		if !knownDomain(d) {
			t.Fatalf("Region(%q, %q) = %q, not a known region", origin, env, d)
		}
	})
}

// TestAuthorizeCallStartsNotCached: an access allowed while the agent
// was connected serves status reads and stops from the cache, but a
// start or a delete asks Genesys again, so once the agent's participant
// disconnected (a transfer) it is refused at once, not after the TTL.
func TestAuthorizeCallStartsNotCached(t *testing.T) {
	f := newFakeGenesys(t)
	const me = "6f3a1c2e-1111-4222-8333-444455556666"
	p := agent.Principal{Subject: me}
	live := `{"id":"` + convID + `","participants":[{"purpose":"customer","calls":[{"state":"connected"}]},` +
		`{"purpose":"agent","userId":"` + me + `","calls":[{"state":"connected"}]}]}`
	transferred := `{"id":"` + convID + `","participants":[{"purpose":"customer","calls":[{"state":"connected"}]},` +
		`{"purpose":"agent","userId":"` + me + `","endTime":"2026-11-29T10:05:00.000Z","calls":[{"state":"disconnected"}]},` +
		`{"purpose":"agent","userId":"6f3a1c2e-1111-4222-8333-777777777777","calls":[{"state":"connected"}]}]}`
	now := time.Unix(1_800_000_000, 0)
	a, err := NewAuthenticator(&AuthenticatorOptions{APIBaseURL: f.URL, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	req := func(path string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, path, nil)
		r.Header.Set("Authorization", "Bearer "+agentToken)
		return r
	}
	ctx := context.Background()
	f.visible.Store(convID, live)
	if err := a.AuthorizeCall(ctx, req("/agent/status"), p, convID); err != nil {
		t.Fatalf("live: %v", err)
	}
	f.visible.Store(convID, transferred)
	// Reads and stops within the TTL come from the cache.
	before := f.convCalls.Load()
	for _, path := range []string{"/agent/status", "/agent/stop", "/voice/status/"} {
		if err := a.AuthorizeCall(ctx, req(path), p, convID); err != nil {
			t.Errorf("%s within the TTL: %v", path, err)
		}
	}
	if n := f.convCalls.Load() - before; n != 0 {
		t.Errorf("%d requests for cached reads", n)
	}
	// Starts and deletes are judged afresh.
	for _, path := range []string{"/agent/register", "/agent/verify", "/agent/reverify", "/agent/delete", "/voice/register"} {
		before := f.convCalls.Load()
		err := a.AuthorizeCall(ctx, req(path), p, convID)
		if !errors.Is(err, agent.ErrNoCall) || !errors.Is(err, ErrCallEnded) {
			t.Errorf("%s after the transfer: %v, want ErrNoCall", path, err)
		}
		if n := f.convCalls.Load() - before; n != 1 {
			t.Errorf("%s: %d requests to Genesys, want 1", path, n)
		}
	}
	// A fresh allow of a start is cached for reads, not for starts.
	f.visible.Store(convID, live)
	if err := a.AuthorizeCall(ctx, req("/agent/register"), p, convID); err != nil {
		t.Fatalf("live again: %v", err)
	}
	f.visible.Store(convID, transferred)
	if err := a.AuthorizeCall(ctx, req("/agent/status"), p, convID); err != nil {
		t.Errorf("status after an allowed start: %v", err)
	}
	if err := a.AuthorizeCall(ctx, req("/agent/verify"), p, convID); !errors.Is(err, agent.ErrNoCall) {
		t.Errorf("verify after the transfer: %v", err)
	}
	if DefaultConversationCacheTTL > 5*time.Second {
		t.Errorf("DefaultConversationCacheTTL %v: a status read may be stale that long", DefaultConversationCacheTTL)
	}
}

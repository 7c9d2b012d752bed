package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/audiohook/audiohooktest"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak/agent/genesys"
	"github.com/voicegate/voicegate/daspeak/offline"
	"github.com/voicegate/voicegate/internal/browsertest"
)

// fakeServer is the example run with -agent -fake-genesys on a free
// loopback port.
type fakeServer struct {
	base  string // http://127.0.0.1:port
	ws    string
	logs  *lockedBuf
	hc    *http.Client
	token string // the agent token, as the fake login gives it
}

func startFake(t *testing.T, extra ...string) *fakeServer {
	t.Helper()
	t.Setenv("STATIC_API_KEY_MAP", "")
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeServer{logs: &lockedBuf{}, hc: &http.Client{Timeout: 30 * time.Second}}
	addr := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	args := append([]string{"-agent", "-fake-genesys", "-offline", "-listen", "127.0.0.1:0"}, extra...)
	go func() { errc <- run(ctx, args, f.logs, func(a net.Addr) { addr <- a }) }()
	select {
	case a := <-addr:
		f.base = "http://" + a.String()
		f.ws = "ws://" + a.String() + wsPath
	case err := <-errc:
		cancel()
		t.Fatalf("server: %v\n%s", err, f.logs)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("server exit: %v", err)
		}
		f.hc.CloseIdleConnections()
	})
	page := f.get(t, widgetURL(audiohooktest.NewUUID()))
	if !strings.Contains(page, `"login":"`+fakeLoginPath+`"`) || strings.Contains(page, "local-trial-") {
		t.Fatalf("the widget page does not log in at the fake login, or holds a token:\n%s", page)
	}
	f.token = f.login(t, "local-trial", f.base+genesys.DefaultWidgetPath, "")
	return f
}

// login runs the widget page's PKCE login against the fake: authorize
// (with the challenge of a fresh verifier) then the token exchange, with
// the verifier unless verifier is set. It returns the access token, or
// the token endpoint's error code after "error:".
func (f *fakeServer) login(t *testing.T, clientID, redirect, verifier string) string {
	t.Helper()
	v := base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	sum := sha256.Sum256([]byte(v))
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect}, "state": {"st-1"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	nc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := nc.Get(f.base + fakeLoginPath + "/oauth/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return fmt.Sprintf("error:authorize %d", resp.StatusCode)
	}
	back, _ := url.Parse(resp.Header.Get("Location"))
	if back.Scheme+"://"+back.Host+back.Path != redirect || back.Query().Get("state") != "st-1" || back.Query().Get("code") == "" {
		t.Fatalf("authorize redirected to %s", back)
	}
	code := back.Query().Get("code")
	if verifier == "" {
		verifier = v
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "client_id": {clientID}, "code_verifier": {verifier}}
	resp, err = nc.PostForm(f.base+fakeLoginPath+"/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct{ Access_Token, Error string }
	json.NewDecoder(resp.Body).Decode(&tok)
	if resp.StatusCode != 200 || tok.Access_Token == "" {
		return "error:" + tok.Error
	}
	return tok.Access_Token
}

func (f *fakeServer) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := f.hc.Get(f.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

func (f *fakeServer) status(t *testing.T, token, conv string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.base+"/agent/status", strings.NewReader(`{"call_id":"`+conv+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := f.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// post sends {"call_id":conv} to the agent API's path with token.
func (f *fakeServer) post(t *testing.T, path, token, conv string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.base+path, strings.NewReader(`{"call_id":"`+conv+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := f.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// dialFake opens a call as the audiohook-client does with the local key
// pair.
func dialFake(t *testing.T, ctx context.Context, f *fakeServer, conv, ani string) *audiohooktest.Client {
	t.Helper()
	c, err := audiohooktest.Dial(ctx, f.ws, &audiohooktest.DialOptions{
		APIKey: fakeAPIKey, Secret: fakeKeys()[fakeAPIKey], ConversationID: conv, PingInterval: -1,
		Participant: &wire.Participant{ID: audiohooktest.NewUUID(), ANI: ani, ANIName: "Caller", DNIS: "+18005550100"},
	})
	if err != nil {
		t.Fatalf("dial with the local key pair: %v\n%s", err, f.logs)
	}
	return c
}

// waitFor polls cond every 20 ms for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestFakeGenesys: the fake mode says it is for local trials, accepts the
// local AudioHook key pair, lists live conversations with their caller and
// widget link at /, and checks agent tokens with its fake users/me, which
// accepts the page's token only.
func TestFakeGenesys(t *testing.T) {
	f := startFake(t)
	if l := f.logs.String(); !strings.Contains(l, "for local trials only") || !strings.Contains(l, "AUDIOHOOK_API_KEY="+fakeAPIKey) {
		t.Fatalf("log %s", l)
	}
	if !regexp.MustCompile(`^local-trial-[0-9a-f]{48}$`).MatchString(f.token) {
		t.Fatalf("agent token %q", f.token)
	}
	// The fake login holds to the PKCE rules: the code goes only to the
	// client's redirect URI, and is exchanged only with the verifier of
	// its challenge.
	page := f.base + genesys.DefaultWidgetPath
	for _, c := range []struct{ name, client, redirect, verifier, want string }{
		{"another redirect URI", "local-trial", "http://evil.example/genesys/widget", "", "error:authorize 400"},
		{"another client", "someone-else", page, "", "error:authorize 400"},
		{"a wrong verifier", "local-trial", page, "x" + strings.Repeat("y", 42), "error:invalid_grant"},
	} {
		if got := f.login(t, c.client, c.redirect, c.verifier); got != c.want {
			t.Errorf("login with %s: %q, want %q", c.name, got, c.want)
		}
	}
	if idx := f.get(t, "/"); !strings.Contains(idx, `id="empty"`) || !strings.Contains(idx, "AUDIOHOOK_CLIENT_SECRET="+fakeSecretB64) ||
		!strings.Contains(idx, "-url "+f.ws+" ") {
		t.Fatalf("empty index:\n%s", idx)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conv := audiohooktest.NewUUID()
	c := dialFake(t, ctx, f, conv, "tel:+34600000077")
	defer c.CloseNow()
	var idx string
	waitFor(t, "the conversation in the index", func() bool { idx = f.get(t, "/"); return strings.Contains(idx, conv) })
	row := regexp.MustCompile(`<tr><td><a href="([^"]+)">` + conv + `</a></td><td>\+34600000077</td>`).FindStringSubmatch(html.UnescapeString(idx))
	if row == nil || row[1] != widgetURL(conv) || !strings.Contains(widgetURL(conv), "gcHostOrigin=https%3A%2F%2Fapps."+fakeRegion) {
		t.Fatalf("index:\n%s", idx)
	}

	for _, tok := range []string{"forged", f.token + "x", ""} {
		if code, m := f.status(t, tok, conv); code != 401 || m["code"] != "unauthenticated" {
			t.Errorf("token %q: %d %v", tok, code, m)
		}
	}
	if code, m := f.status(t, f.token, conv); code != 200 || m["caller_id"] != "+34600000077" || m["call_in_progress"] != true {
		t.Fatalf("status with the page's token: %d %v", code, m)
	}
	// The fake agent is on the live conversations only.
	if code, m := f.status(t, f.token, audiohooktest.NewUUID()); code != 403 || m["code"] != "forbidden" {
		t.Fatalf("status of a conversation the agent is not on: %d %v", code, m)
	}
	// Only loopback host names are answered (DNS rebinding).
	for host, want := range map[string]int{"evil.example": 421, "evil.example:8080": 421, "127.0.0.1.nip.io": 421, "localhost:8080": 200, "[::1]:8080": 200} {
		req, _ := http.NewRequest(http.MethodGet, f.base+widgetURL(conv), nil)
		req.Host = host
		resp, err := f.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want != 200 && strings.Contains(string(b), f.token)) {
			t.Errorf("Host %s: %d (want %d) %.80s", host, resp.StatusCode, want, b)
		}
		const refused = `{"code":"misdirected_request","error":"the fake Genesys Cloud answers requests to 127.0.0.1, [::1] or localhost only"}` + "\n"
		if want == 421 && (string(b) != refused || resp.Header.Get("Content-Type") != "application/json") {
			t.Errorf("Host %s: %s %q, want application/json %q", host, resp.Header.Get("Content-Type"), b, refused)
		}
	}
	if err := c.Close(ctx, wire.CloseEnd); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ended conversation to leave the index", func() bool { return !strings.Contains(f.get(t, "/"), conv) })
	// The conversation ended: the agent who was on it is told so (409
	// no_call), not that they are not assigned; one never on it stays
	// refused (403).
	if code, m := f.status(t, f.token, conv); code != 409 || m["code"] != "no_call" {
		t.Fatalf("status of the ended conversation: %d %v", code, m)
	}
	if code, m := f.status(t, f.token, audiohooktest.NewUUID()); code != 403 || m["code"] != "forbidden" {
		t.Fatalf("status of a conversation the agent was never on: %d %v", code, m)
	}
}

// TestFakeGenesysOnlyInFakeMode: a real -agent server has no index and
// no fake login, and its widget page logs in at login.<region>.
func TestFakeGenesysOnlyInFakeMode(t *testing.T) {
	t.Setenv("TEST_AUDIOHOOK_KEYS", `{"`+apiKey+`":"`+secretB64+`"}`)
	cfg := &config{KeysEnv: "TEST_AUDIOHOOK_KEYS", Agent: agentConfig{Enabled: true, Region: "mypurecloud.ie", ClientID: "client-1", APIURL: "https://api.mypurecloud.ie"}}
	srv, err := newServer(cfg, slog.New(slog.DiscardHandler), offline.New(nil), credstore.NewMemory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.shutdown(context.Background())
	h := srv.handler()
	for _, c := range []struct {
		path   string
		status int
	}{{"/", 404}, {fakeLoginPath + "/oauth/authorize?client_id=client-1", 404}, {widgetURL(audiohooktest.NewUUID()), 200}, {"/favicon.ico", 204}} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, c.path, nil))
		if w.Code != c.status || (c.status == 200 && !bytes.Contains(w.Body.Bytes(), []byte(`"login":"https://login.mypurecloud.ie"`))) {
			t.Errorf("GET %s: %d (want %d) %s", c.path, w.Code, c.status, w.Body)
		}
	}
}

// TestFakeGenesysBrowser is the trial the README describes: a call streams
// a recorded voice in real time, the agent opens / in Chromium, clicks the
// conversation, presses Register User and gets the green tick (the
// credential is stored, Genesys gets the result event), then Authenticate
// User verifies the voice; the call ends and its widget, reloaded, says
// the call ended; a second call from the same number by another voice is
// not verified, and a check on it ended by a delete from a third call
// says so.
// Screenshots go to $VOICEGATE_SCREENSHOTS (default: a temporary
// directory named in the log).
func TestFakeGenesysBrowser(t *testing.T) {
	b := browsertest.Start(t)
	f := startFake(t) // 5 s of net speech, as the README's trial
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	call := startCall(t, ctx, f, "voices/awb_1.wav")
	conv := call.conv

	p := b.NewPage(480, 720)
	p.Goto(f.base + "/")
	p.WaitText("#conversations", conv, 15*time.Second)
	p.Screenshot("genesys-01-conversations", "")
	p.Click("#conversations a")
	const w = "voicegate-agent"
	sel := func(id string) string { return w + " >> #" + id }
	p.WaitText(sel("main"), "^Register User$", 15*time.Second)
	if got := p.Text(sel("caller")); got != "+34600000077" {
		t.Errorf("caller shown as %q", got)
	}
	p.Screenshot("genesys-02-widget", w)
	p.Click(sel("main"))
	p.WaitText(sel("ptext"), `Voice collected`, 30*time.Second)
	p.WaitText(sel("otitle"), "^Voice registered$", 60*time.Second)
	var class string
	p.Eval(`document.querySelector('voicegate-agent').shadowRoot.getElementById('outcome').className`, &class)
	if class != "outcome success" {
		t.Errorf("outcome class %q", class)
	}
	p.WaitText(sel("main"), "^Authenticate User$", 5*time.Second)
	t.Logf("screenshot: %s", p.Screenshot("genesys-03-registered", w))
	if code, m := f.status(t, f.token, conv); code != 200 || m["registered"] != true {
		t.Errorf("status after register: %d %v", code, m)
	}
	call.expectResult(`"type":"result-success"`, `"kind":"register"`)

	// Authenticate User: the same voice is verified.
	p.Click(sel("main"))
	p.WaitText(sel("otitle"), "^Caller verified$", 60*time.Second)
	p.WaitText(sel("main"), "^Re-Authenticate User$", 5*time.Second)
	call.expectResult(`"type":"result-success"`, `"kind":"verify"`)
	call.end()

	// The call ended: its widget, reloaded, says so and offers nothing
	// (the service answers its status 409 no_call, not 403).
	p.Goto(f.base + widgetURL(conv))
	p.WaitText(sel("main"), "^Call ended$", 15*time.Second)
	p.WaitText(sel("state"), "^Call ended: voice checks are off$", time.Second)
	var off bool
	p.Eval(`document.querySelector('voicegate-agent').shadowRoot.getElementById('main').disabled`, &off)
	if !off || p.Text(sel("main")) == "Not assigned" {
		t.Errorf("the main button of the ended call's widget is enabled (%v) or says %q", !off, p.Text(sel("main")))
	}
	p.Screenshot("genesys-04-ended-reloaded", w)

	// Another call from the same number by another voice: not verified.
	imp := startCall(t, ctx, f, "voices/kal_1.wav")
	p.Goto(f.base + "/")
	p.WaitText("#conversations", imp.conv, 15*time.Second)
	if strings.Contains(p.Text("#conversations"), conv) {
		t.Error("the ended call is still listed")
	}
	p.Click("#conversations a")
	p.WaitText(sel("main"), "^Authenticate User$", 15*time.Second)
	p.Click(sel("main"))
	p.WaitText(sel("otitle"), "^Not verified$", 60*time.Second)
	p.Screenshot("genesys-05-impostor", w)
	imp.expectResult(`"type":"result-fail-score"`, `"kind":"verify"`)

	// A check running on this call is ended by a delete from another
	// call of the same caller: the widget says why, not "Stopped".
	other := startCall(t, ctx, f, "voices/awb_1.wav")
	p.Click(sel("main"))
	p.WaitText(sel("ptext"), `Voice collected`, 30*time.Second)
	if code, m := f.post(t, "/agent/delete", f.token, other.conv); code != 200 {
		t.Fatalf("delete from the other call: %d %v", code, m)
	}
	p.WaitText(sel("otitle"), "^Check ended$", 15*time.Second)
	p.WaitText(sel("ocause"), "^The check ended: the caller’s voice registration was deleted\\.$", time.Second)
	imp.expectResult(`"type":"error-cancelled"`, `credential was deleted`)
	p.WaitText(sel("main"), "^Register User$", 5*time.Second)
	if got := p.Text(sel("state")); got != "Not registered" {
		t.Errorf("state after the delete: %q", got)
	}
	t.Logf("screenshot: %s", p.Screenshot("genesys-06-deleted-elsewhere", w))
	if code, m := f.status(t, f.token, imp.conv); code != 200 || m["registered"] != false {
		t.Errorf("status after the delete: %d %v", code, m)
	}
	other.end()
	imp.end()
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %v", errs)
	}
}

// talkingCall is an AudioHook call whose caller repeats a recording in
// real time, as audiohook-client -loop does.
type talkingCall struct {
	t       *testing.T
	ctx     context.Context
	c       *audiohooktest.Client
	conv    string
	stop    context.CancelFunc
	talked  chan error
	results chan string
	read    chan struct{}
}

func startCall(t *testing.T, ctx context.Context, f *fakeServer, voice string) *talkingCall {
	t.Helper()
	k := &talkingCall{t: t, ctx: ctx, conv: audiohooktest.NewUUID(), talked: make(chan error, 1), results: make(chan string, 4), read: make(chan struct{})}
	k.c = dialFake(t, ctx, f, k.conv, "tel:+34600000077")
	t.Cleanup(func() { k.c.CloseNow() })
	sctx, stop := context.WithCancel(ctx)
	k.stop = stop
	go func() {
		for {
			src, err := audiohooktest.WAVSource(testdata(voice))
			if err == nil {
				err = k.c.Stream(sctx, src, nil)
			}
			if err != nil {
				k.talked <- err
				return
			}
		}
	}()
	go func() {
		defer close(k.read)
		for {
			m, err := k.c.Next(ctx)
			if err != nil {
				return
			}
			var p wire.EventParameters
			if m.Type == wire.TypeEvent && json.Unmarshal(m.Parameters, &p) == nil {
				for _, e := range p.Entities {
					if e.Type == entityResult {
						k.results <- string(e.Data)
					}
				}
			}
		}
	}()
	return k
}

// expectResult waits for the next voicegate.result event Genesys gets.
func (k *talkingCall) expectResult(want ...string) {
	k.t.Helper()
	select {
	case r := <-k.results:
		for _, w := range want {
			if !strings.Contains(r, w) {
				k.t.Errorf("Genesys got %s, want %s", r, w)
			}
		}
	case <-time.After(10 * time.Second):
		k.t.Errorf("no voicegate.result event reached the AudioHook client (want %v)", want)
	}
}

// end stops the talking and closes the call.
func (k *talkingCall) end() {
	k.t.Helper()
	k.stop()
	if err := <-k.talked; !errors.Is(err, context.Canceled) {
		k.t.Errorf("the call stopped talking on its own: %v", err)
	}
	if err := k.c.Close(k.ctx, wire.CloseEnd); err != nil {
		k.t.Errorf("close: %v", err)
	}
	<-k.read
}

// TestFakeGenesysSecondSession runs two audiohook-client sessions on one
// conversation, as a new user did: the second names another caller and is
// refused with disconnect "error"; the index and the agent API keep the
// first caller, and the conversation stays live until its last session
// (here a third, of the same caller, ends first) closes. After that a
// session on it, of either caller, is refused: the call stays ended.
func TestFakeGenesysSecondSession(t *testing.T) {
	f := startFake(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conv := audiohooktest.NewUUID()
	rowRE := regexp.MustCompile(`<tr><td><a href="[^"]+">` + conv + `</a></td><td>([^<]*)</td>`)
	row := func() string {
		m := rowRE.FindStringSubmatch(html.UnescapeString(f.get(t, "/")))
		if m == nil {
			return ""
		}
		return m[1]
	}
	first := dialFake(t, ctx, f, conv, "tel:+34600000500")
	defer first.CloseNow()
	waitFor(t, "the conversation in the index", func() bool { return row() == "+34600000500" })

	second := dialFake(t, ctx, f, conv, "tel:+34600000501")
	defer second.CloseNow()
	m, err := second.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"reason":"error","info":"conversation already monitored for another caller: session refused"}`; m.Type != wire.TypeDisconnect || string(m.Parameters) != want {
		t.Fatalf("second caller's session got %s %s, want disconnect %s", m.Type, m.Parameters, want)
	}
	if code, st := f.status(t, f.token, conv); code != 200 || st["caller_id"] != "+34600000500" || st["call_in_progress"] != true {
		t.Fatalf("status after the refusal: %d %v", code, st)
	}
	if got := row(); got != "+34600000500" {
		t.Fatalf("index row after the refusal: %q", got)
	}
	second.CloseNow()
	waitFor(t, "the refusal in the log", func() bool {
		return strings.Contains(f.logs.String(), `level=WARN msg="AudioHook session refused: it names another caller`)
	})

	// A second session of the same caller ends before the first: the
	// conversation stays listed and live.
	third := dialFake(t, ctx, f, conv, "tel:+34600000500")
	waitFor(t, "the third session", func() bool {
		return strings.Contains(f.logs.String(), "conversation has another AudioHook session for the same caller")
	})
	third.CloseNow()
	waitFor(t, "the third session's end", func() bool { return strings.Contains(f.logs.String(), "the conversation goes on") })
	if got := row(); got != "+34600000500" {
		t.Fatalf("index row after the third session ended: %q", got)
	}
	if code, st := f.status(t, f.token, conv); code != 200 || st["caller_id"] != "+34600000500" || st["call_in_progress"] != true {
		t.Fatalf("status after the third session ended: %d %v", code, st)
	}
	if strings.Contains(f.logs.String(), "conversation ended") {
		t.Fatalf("the conversation ended with a session live:\n%s", f.logs)
	}
	if err := first.Close(ctx, wire.CloseEnd); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the conversation to leave the index", func() bool { return row() == "" })
	if code, st := f.status(t, f.token, conv); code != 409 || st["code"] != "no_call" {
		t.Fatalf("status after the last session: %d %v", code, st)
	}

	// The call ended: a session of the other caller on it is refused, and
	// so is one of its own caller. The widget, reloaded, still says the
	// call ended; the conversation is never listed again, nor bound to
	// the other caller.
	for _, ani := range []string{"tel:+34600000501", "tel:+34600000500"} {
		late := dialFake(t, ctx, f, conv, ani)
		m, err := late.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"reason":"error","info":"conversation ended: session refused"}`; m.Type != wire.TypeDisconnect || string(m.Parameters) != want {
			t.Fatalf("%s on the ended conversation got %s %s, want disconnect %s", ani, m.Type, m.Parameters, want)
		}
		late.CloseNow()
		if code, st := f.status(t, f.token, conv); code != 409 || st["code"] != "no_call" {
			t.Fatalf("status after %s's session on the ended conversation: %d %v", ani, code, st)
		}
		if got := row(); got != "" {
			t.Fatalf("index row after %s's session on the ended conversation: %q", ani, got)
		}
	}
	if n := strings.Count(f.logs.String(), `level=WARN msg="AudioHook session refused: its conversation has ended"`); n != 2 {
		t.Fatalf("%d refusals of the ended conversation logged, want 2:\n%s", n, f.logs)
	}
}

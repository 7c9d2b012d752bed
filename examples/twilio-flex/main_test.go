package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/daspeaktest"
	"github.com/voicegate/voicegate/daspeak/offline"
	"github.com/voicegate/voicegate/examples/internal/vgexample"
	"github.com/voicegate/voicegate/internal/fixtures"
	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	publicURL   = "https://vb.example.com"
	flexToken   = "flex-token-of-alice"
	apiKeySID   = "SK00000000000000000000000000000001"
	apiSecret   = "api-key-secret"
	daspeakKey  = "daspeak-test-key"
	agentWorker = "WK00000000000000000000000000000001"
)

// env is a running twilio-flex server with a fake Twilio (REST, IAM and
// the Media Streams client simulator) and a das-Peak emulator on the
// offline engine, reached through the real das-Peak REST client.
type env struct {
	t      *testing.T
	srv    *server
	http   *httptest.Server
	twilio *twiliotest.Server
	store  credstore.Store

	mu    sync.Mutex
	wavs  map[string]string // call SID → fixture played when a stream starts
	plays chan playResult
}

type playResult struct {
	call string
	res  *twiliotest.Result
	err  error
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, wavs: map[string]string{}, plays: make(chan playResult, 16)}
	e.twilio = twiliotest.NewServer(&twiliotest.ServerOptions{
		APIKeys:       map[string]string{apiKeySID: apiSecret},
		OnStreamStart: e.play,
	})
	t.Cleanup(e.twilio.Close)
	e.twilio.AddFlexToken(flexToken, twilio.FlexIdentity{
		Identity: "alice", WorkerSID: agentWorker, Roles: []string{"agent"},
		Expiration: time.Now().Add(time.Hour),
	})
	emu := daspeaktest.NewServer(offline.New(nil), &daspeaktest.Options{APIKey: daspeakKey})
	t.Cleanup(emu.Close)

	cfg := &config{
		PublicURL: publicURL, AllowOrigin: "https://flex.twilio.com", QueueFrames: 2000, TokenTTL: time.Hour,
		AccountSID: e.twilio.AccountSID(), AuthToken: e.twilio.AuthToken(),
		APIKeySID: apiKeySID, APIKeySecret: apiSecret, TwiMLAppSID: "AP00000000000000000000000000000001",
		TwilioURL: e.twilio.URL,
		Engine:    vgexample.EngineConfig{URL: emu.URL(), APIKey: daspeakKey},
	}
	engine, _, err := cfg.Engine.New()
	if err != nil {
		t.Fatal(err)
	}
	store, closeStore, err := vgexample.OpenStore(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "creds.db"), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore() })
	e.store = store
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	e.srv, err = newServer(cfg, log, engine, store)
	if err != nil {
		t.Fatal(err)
	}
	e.http = httptest.NewServer(e.srv.handler())
	t.Cleanup(func() {
		e.http.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.srv.sessions.Shutdown(ctx); err != nil {
			t.Errorf("sessions still running: %v", err)
		}
	})
	return e
}

// play is the fake Twilio's reaction to a created stream: it connects to
// the stream URL (rewritten to the test server) as Twilio would, signed
// for the public URL, and plays the call's fixture.
func (e *env) play(cs twiliotest.CreatedStream) {
	e.mu.Lock()
	name, ok := e.wavs[cs.CallSID]
	e.mu.Unlock()
	if !ok {
		return // a call that never connects
	}
	wav, err := os.ReadFile(fixtures.Path(name))
	if err != nil {
		e.plays <- playResult{call: cs.CallSID, err: err}
		return
	}
	ws := "ws" + strings.TrimPrefix(e.http.URL, "http") + strings.TrimPrefix(cs.URL, "wss://vb.example.com")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := twiliotest.PlayWAV(ctx, ws, wav, &twiliotest.Options{
		AuthToken: e.twilio.AuthToken(), PublicURL: cs.URL,
		AccountSID: cs.AccountSID, CallSID: cs.CallSID, StreamSID: cs.SID,
		CustomParameters: cs.Parameters, Pace: twiliotest.AsFastAsPossible,
	})
	e.plays <- playResult{call: cs.CallSID, res: res, err: err}
}

// post sends a Flex plugin request with form fields and returns the status
// and decoded JSON body.
func (e *env) post(path string, form url.Values) (int, map[string]any) {
	e.t.Helper()
	resp, err := http.PostForm(e.http.URL+path, form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// sse reads the events of url until a terminal one and returns them.
func (e *env) sse(url string) []vgexample.Message {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		e.t.Fatalf("events: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	var out []vgexample.Message
	var m vgexample.Message
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			m.Event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			m.Data = []byte(strings.TrimPrefix(line, "data: "))
		case line == "" && m.Event != "":
			out = append(out, m)
			if vgexample.IsResult(m.Event) {
				return out
			}
			m = vgexample.Message{}
		}
	}
	e.t.Fatalf("event stream ended without a result: %v (%d events)", sc.Err(), len(out))
	return nil
}

func (e *env) eventsToken() string {
	e.t.Helper()
	code, body := e.post("/flex/token", url.Values{"Token": {flexToken}})
	if code != http.StatusOK {
		e.t.Fatalf("token: %d %v", code, body)
	}
	return body["events_token"].(string)
}

// session starts op on a new call that plays fixture and returns the
// call's terminal event.
func (e *env) session(path, call, caller, fixture string) map[string]any {
	e.t.Helper()
	e.mu.Lock()
	e.wavs[call] = fixture
	e.mu.Unlock()
	code, body := e.post(path, url.Values{"Token": {flexToken}, "CallSid": {call}, "CallerId": {caller}})
	if code != http.StatusCreated {
		e.t.Fatalf("%s: %d %v", path, code, body)
	}
	evs := e.sse(e.http.URL + body["events"].(string) + "&token=" + url.QueryEscape(e.eventsToken()))
	last := evs[len(evs)-1]
	var ev map[string]any
	if err := json.Unmarshal(last.Data, &ev); err != nil {
		e.t.Fatal(err)
	}
	for _, m := range evs {
		if strings.Contains(string(m.Data), `"credential"`) || strings.Contains(string(m.Data), `"audio"`) {
			e.t.Errorf("event leaks the credential or audio to the browser: %s", m.Data)
		}
	}
	select {
	case p := <-e.plays:
		if p.call != call {
			e.t.Fatalf("played call %s, want %s", p.call, call)
		}
		if p.err != nil && p.res == nil {
			e.t.Fatalf("simulator: %v", p.err)
		}
	case <-time.After(30 * time.Second):
		e.t.Fatal("simulator did not finish")
	}
	return ev
}

// TestRegisterVerifyDelete is the plugin's main flow: register a caller on
// one call, verify the same voice on another, refuse an impostor on a
// third (re-authentication), then delete the caller.
func TestRegisterVerifyDelete(t *testing.T) {
	e := newEnv(t)
	const caller = "+34600000001"
	callA, callB, callC := twiliotest.SID("CA"), twiliotest.SID("CA"), twiliotest.SID("CA")

	ev := e.session("/flex/register", callA, caller, fixtures.Utterances("slt")[0])
	if ev["type"] != string(daspeak.EventResultSuccess) || ev["operation"] != "register" || ev["stored"] != true {
		t.Fatalf("register: %v", ev)
	}
	rec, err := e.store.Get(context.Background(), caller)
	if err != nil || rec.Credential == "" || rec.ModelHash != offline.ModelHash {
		t.Fatalf("stored record %+v, %v", rec, err)
	}
	streams := e.twilio.Streams(callA)
	if len(streams) != 1 {
		t.Fatalf("streams on call A: %+v", streams)
	}
	cs := streams[0]
	if cs.URL != "wss://vb.example.com/twilio/media" || cs.Track != twilio.TrackInbound ||
		cs.Parameters[paramCallerID] != caller || cs.Parameters[paramOperation] != "register" || cs.Parameters[paramBinding] == "" {
		t.Fatalf("created stream %+v", cs)
	}

	ev = e.session("/flex/verify", callB, caller, fixtures.Utterances("slt")[1])
	if ev["type"] != string(daspeak.EventResultSuccess) || ev["operation"] != "verify" {
		t.Fatalf("verify same voice: %v", ev)
	}
	if s := ev["score"].(float64); s < ev["score_threshold"].(float64) {
		t.Fatalf("verify same voice: score %v", s)
	}

	ev = e.session("/flex/reverify", callC, caller, fixtures.Utterances("awb")[0])
	if ev["type"] != string(daspeak.EventResultFailScore) {
		t.Fatalf("verify impostor: %v", ev)
	}

	code, body := e.post("/flex/credential", url.Values{"Token": {flexToken}, "CallerId": {caller}})
	if code != http.StatusOK || body["registered"] != true || body["model_hash"] != offline.ModelHash {
		t.Fatalf("credential: %d %v", code, body)
	}
	if code, body = e.post("/flex/delete", url.Values{"Token": {flexToken}, "CallerId": {caller}}); code != http.StatusOK {
		t.Fatalf("delete: %d %v", code, body)
	}
	if code, body = e.post("/flex/credential", url.Values{"Token": {flexToken}, "CallerId": {caller}}); code != http.StatusOK || body["registered"] != false {
		t.Fatalf("credential after delete: %d %v", code, body)
	}
	if code, _ = e.post("/flex/verify", url.Values{"Token": {flexToken}, "CallSid": {callC}, "CallerId": {caller}}); code != http.StatusNotFound {
		t.Fatalf("verify after delete: %d, want 404", code)
	}
}

// TestFlexTokenFailsClosed checks that every /flex endpoint refuses a
// missing or invalid token, and a valid one when Twilio IAM fails.
func TestFlexTokenFailsClosed(t *testing.T) {
	e := newEnv(t)
	call := twiliotest.SID("CA")
	form := func(tok string) url.Values {
		return url.Values{"Token": {tok}, "CallSid": {call}, "CallerId": {"+34600000002"}}
	}
	paths := []string{"/flex/register", "/flex/verify", "/flex/reverify", "/flex/stop", "/flex/credential", "/flex/delete", "/flex/token"}
	for _, p := range paths {
		for _, tok := range []string{"", "not-a-valid-token"} {
			if code, _ := e.post(p, form(tok)); code != http.StatusForbidden {
				t.Errorf("%s with token %q: %d, want 403", p, tok, code)
			}
		}
	}
	// Token in a header and a JSON body are accepted too.
	req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/flex/credential", strings.NewReader(`{"CallerId":"+34600000002"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+flexToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bearer token + JSON body: %s", resp.Status)
	}
	// IAM down: a token that was never validated must be refused.
	e.twilio.AddFlexToken("fresh-token", twilio.FlexIdentity{Identity: "bob", Expiration: time.Now().Add(time.Hour)})
	e.twilio.SetFaults(twiliotest.Fault{PathPrefix: "/v1/Accounts", Status: 500, Code: 20500, Message: "Internal Server Error"})
	if code, _ := e.post("/flex/credential", form("fresh-token")); code != http.StatusForbidden {
		t.Fatalf("IAM failure: %d, want 403", code)
	}
	if n := len(e.twilio.Streams(call)); n != 0 {
		t.Fatalf("%d streams started without a valid token", n)
	}
}

// TestEventsToken checks the access token and the events endpoint's token.
func TestEventsToken(t *testing.T) {
	e := newEnv(t)
	code, body := e.post("/flex/token", url.Values{"Token": {flexToken}})
	if code != http.StatusOK || body["identity"] != "alice" {
		t.Fatalf("token: %d %v", code, body)
	}
	parts := strings.Split(body["token"].(string), ".")
	if len(parts) != 3 {
		t.Fatalf("access token %q", body["token"])
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Iss    string `json:"iss"`
		Sub    string `json:"sub"`
		Grants struct {
			Identity string `json:"identity"`
			Voice    struct {
				Outgoing struct {
					ApplicationSID string `json:"application_sid"`
				} `json:"outgoing"`
			} `json:"voice"`
		} `json:"grants"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Iss != apiKeySID || claims.Sub != e.twilio.AccountSID() || claims.Grants.Identity != "alice" ||
		claims.Grants.Voice.Outgoing.ApplicationSID != "AP00000000000000000000000000000001" {
		t.Fatalf("claims %+v", claims)
	}
	evTok := body["events_token"].(string)
	for _, c := range []struct {
		name string
		tok  string
		want int
	}{
		{"valid", evTok, http.StatusOK},
		{"none", "", http.StatusForbidden},
		{"tampered identity", evTok[:strings.LastIndexByte(evTok, '.')+1] + base64.RawURLEncoding.EncodeToString([]byte("mallory")), http.StatusForbidden},
		{"garbage", "x.y.z", http.StatusForbidden},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.http.URL+"/flex/events?call=CA1&token="+url.QueryEscape(c.tok), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != c.want {
			t.Errorf("%s: %s, want %d", c.name, resp.Status, c.want)
		}
		cancel()
		resp.Body.Close()
	}
}

// TestMediaStreamRefused checks that the WebSocket endpoint refuses a bad
// Twilio signature (HTTP 403) and a stream whose binding was not made by
// this server (closed, no session).
func TestMediaStreamRefused(t *testing.T) {
	e := newEnv(t)
	wav, err := os.ReadFile(fixtures.Path(fixtures.Utterances("kal")[0]))
	if err != nil {
		t.Fatal(err)
	}
	ws := "ws" + strings.TrimPrefix(e.http.URL, "http") + mediaPath
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = twiliotest.PlayWAV(ctx, ws, wav, &twiliotest.Options{
		AuthToken: "wrong-token", PublicURL: "wss://vb.example.com/twilio/media", Pace: twiliotest.AsFastAsPossible,
	})
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("bad signature: %v, want a 403 refusal", err)
	}
	call := twiliotest.SID("CA")
	res, err := twiliotest.PlayWAV(ctx, ws, wav, &twiliotest.Options{
		AuthToken: e.twilio.AuthToken(), PublicURL: "wss://vb.example.com/twilio/media", Pace: twiliotest.AsFastAsPossible,
		CallSID: call, HoldOpen: make(chan struct{}), // until the server closes
		CustomParameters: map[string]string{
			paramCallerID: "+34600000003", paramOperation: "register", paramName: "x",
			paramBinding: e.srv.binder.Sign(time.Minute, twiliotest.SID("CA"), "+34600000003", "register", "x"), // another call
		},
	})
	// Held open, the simulator only ends when the server closes the
	// stream: an error while sending, or a close after the audio.
	if errors.Is(err, context.DeadlineExceeded) || (err == nil && !res.ServerClosed) {
		t.Fatalf("forged binding: stream not closed by the server: %+v", res)
	}
	if _, err := e.store.Get(context.Background(), "+34600000003"); !errors.Is(err, credstore.ErrNotFound) {
		t.Fatalf("forged binding registered a caller: %v", err)
	}
}

// TestStopAndCORS stops a stream that never connected and checks the CORS
// preflight for the Flex origin.
func TestStopAndCORS(t *testing.T) {
	e := newEnv(t)
	call := twiliotest.SID("CA")
	e.store.Put(context.Background(), "+34600000004", credstore.Record{Credential: "c", ModelHash: offline.ModelHash})
	if code, body := e.post("/flex/verify", url.Values{"Token": {flexToken}, "CallSid": {call}, "CallerId": {"+34600000004"}}); code != http.StatusCreated {
		t.Fatalf("verify: %d %v", code, body)
	}
	if code, body := e.post("/flex/stop", url.Values{"Token": {flexToken}, "CallSid": {call}}); code != http.StatusOK {
		t.Fatalf("stop: %d %v", code, body)
	}
	if st := e.twilio.Streams(call); len(st) != 1 || st[0].Status != "stopped" {
		t.Fatalf("stream after stop: %+v", st)
	}
	if code, _ := e.post("/flex/stop", url.Values{"Token": {flexToken}, "CallSid": {call}}); code != http.StatusNotFound {
		t.Fatalf("second stop: %d, want 404", code)
	}
	if code, _ := e.post("/flex/verify", url.Values{"Token": {flexToken}, "CallSid": {"CA-bad"}, "CallerId": {"+34600000004"}}); code != http.StatusBadRequest {
		t.Fatalf("bad call SID: %d, want 400", code)
	}

	req, _ := http.NewRequest(http.MethodOptions, e.http.URL+"/flex/verify", nil)
	req.Header.Set("Origin", "https://flex.twilio.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://flex.twilio.com" {
		t.Fatalf("preflight: %s %v", resp.Status, resp.Header)
	}
	req.Header.Set("Origin", "https://evil.example.com")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin allowed: %v", resp.Header)
	}
}

// TestRunShutdown starts the command with flags and environment, checks
// /healthz and stops it as a signal would.
func TestRunShutdown(t *testing.T) {
	t.Setenv("TWILIO_ACCOUNT_SID", twiliotest.DefaultAccountSID)
	t.Setenv("TWILIO_AUTH_TOKEN", twiliotest.DefaultAuthToken)
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	var logs strings.Builder
	var mu sync.Mutex
	go func() {
		errc <- run(ctx, []string{"-listen", "127.0.0.1:0", "-offline", "-store", "sqlite:" + filepath.Join(t.TempDir(), "c.db")},
			writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) }),
			func(a net.Addr) { addrc <- a })
	}()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-errc:
		t.Fatalf("run: %v", err)
	}
	resp, err := http.Get("http://" + addr.String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %s", resp.Status)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run after shutdown: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), twiliotest.DefaultAuthToken) {
		t.Fatal("the auth token was logged")
	}
	if !strings.Contains(logs.String(), "engine=offline") {
		t.Fatalf("logs: %s", logs.String())
	}
	// Missing Twilio credentials are a start-up error.
	t.Setenv("TWILIO_AUTH_TOKEN", "")
	if err := run(context.Background(), []string{"-listen", "127.0.0.1:0", "-offline"}, io.Discard, nil); err == nil {
		t.Fatal("run without TWILIO_AUTH_TOKEN succeeded")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestShutdownEndsSessions checks that a shutdown ends a media stream
// waiting for more speech and an open event stream, instead of waiting
// for them.
func TestShutdownEndsSessions(t *testing.T) {
	e := newEnv(t)
	w := fixtures.LoadWAV(t, fixtures.Utterances("rms")[0])
	short, err := codec.EncodeWAV(nil, w.Format, w.Data[:16000]) // 2 s: never enough speech
	if err != nil {
		t.Fatal(err)
	}
	call := twiliotest.SID("CA")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// An agent watching the call.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.http.URL+"/flex/events?call="+call+"&token="+url.QueryEscape(e.eventsToken()), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	type played struct {
		res *twiliotest.Result
		err error
	}
	playc := make(chan played, 1)
	go func() {
		res, err := twiliotest.PlayWAV(ctx, "ws"+strings.TrimPrefix(e.http.URL, "http")+mediaPath, short, &twiliotest.Options{
			AuthToken: e.twilio.AuthToken(), PublicURL: "wss://vb.example.com" + mediaPath, Pace: twiliotest.AsFastAsPossible,
			CallSID: call, HoldOpen: make(chan struct{}),
			CustomParameters: map[string]string{
				paramCallerID: "+34600000005", paramOperation: "register", paramName: "n",
				paramBinding: e.srv.binder.Sign(time.Minute, call, "+34600000005", "register", "n"),
			},
		})
		playc <- played{res, err}
	}()
	// Wait until the session has produced progress: it is running.
	sc := bufio.NewScanner(resp.Body)
	running := false
	for !running && sc.Scan() {
		running = sc.Text() == "event: progress"
	}
	if !running {
		t.Fatalf("no progress event: %v", sc.Err())
	}
	if err := e.srv.sessions.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for sc.Scan() { // the event stream ends
	}
	// Held open, the simulator only ends when the server closes the stream.
	if p := <-playc; errors.Is(p.err, context.DeadlineExceeded) || (p.err == nil && !p.res.ServerClosed) {
		t.Fatalf("stream not closed by the server on shutdown: %v %+v", p.err, p.res)
	}
	if _, err := e.store.Get(context.Background(), "+34600000005"); err == nil {
		t.Fatal("registered from 1 s of audio")
	}
}

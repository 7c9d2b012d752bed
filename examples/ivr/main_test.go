package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/daspeak/offline"
	"github.com/voicegate/voicegate/internal/fixtures"
	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	publicURL = "https://ivr.example.com"
	authToken = "ivr-test-auth-token"
	apiKey    = "ivr-test-api-key-0123456789abcdef"
	basicUser = "studio"
	basicPass = "ivr-test-basic-password-0123"
	nextURL   = "https://flow.example.com/next?flow=FW1"
	failDelay = 60 * time.Millisecond
	// audioKey is ENROLMENT_AUDIO_KEY in these tests (base64 of 32 bytes).
	audioKey = "dm9pY2VnYXRlLWl2ci10ZXN0LWF1ZGlvLWtleS0wMDE="
)

type env struct {
	t     *testing.T
	srv   *server
	http  *httptest.Server
	store credstore.Store
}

// newEnv starts the server with API key and Basic credentials and a
// -next-url; edit tweaks the configuration first.
func newEnv(t *testing.T, edit ...func(*config)) *env {
	t.Helper()
	return newEnvEngine(t, offline.New(nil), edit...)
}

// newEnvEngine is newEnv with engine.
func newEnvEngine(t *testing.T, engine daspeak.Engine, edit ...func(*config)) *env {
	t.Helper()
	cfg := &config{PublicURL: publicURL, AuthToken: authToken, SessionTTL: time.Minute, Prompt: "Say something.", QueueFrames: 2000,
		APIKey: apiKey, BasicUser: basicUser, BasicPassword: basicPass, AuthFailDelay: failDelay, NextURL: nextURL, SayResult: true}
	for _, f := range edit {
		f(cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	// The adapter as cfg.Store.Open makes it, over a memory store, but
	// without creating -audio-dir: a test may want it missing.
	store := credstore.NewMemory()
	creds := &agent.CredentialStore{Store: store, AudioDir: cfg.Store.AudioDir}
	if creds.AudioDir != "" {
		key, err := base64.StdEncoding.DecodeString(cfg.Store.AudioKey)
		if err != nil {
			t.Fatal(err)
		}
		creds.AudioKey = key
	}
	srv, err := newServer(cfg, log, engine, creds)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, http: httptest.NewServer(srv.handler()), store: store}
	t.Cleanup(func() {
		e.http.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.streams.Shutdown(ctx); err != nil {
			t.Errorf("streams still running: %v", err)
		}
	})
	return e
}

// do sends an IVR request with the API key.
func (e *env) do(method, path, ctype string, body []byte) (int, doc) {
	e.t.Helper()
	return e.doAuth(method, path, ctype, body, func(r *http.Request) { r.Header.Set("X-API-Key", apiKey) })
}

// doAuth sends an IVR request with the credentials auth sets.
func (e *env) doAuth(method, path, ctype string, body []byte, auth func(*http.Request)) (int, doc) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.http.URL+path, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if auth != nil {
		auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var d doc
	json.NewDecoder(resp.Body).Decode(&d)
	return resp.StatusCode, d
}

func wav(t *testing.T, name string) []byte {
	b, err := os.ReadFile(fixtures.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func eventType(d doc) string {
	var ev struct{ Type string }
	json.Unmarshal(d.Event, &ev)
	return ev.Type
}

// play streams a fixture as Twilio would for call, with the parameters a
// pending session asked for.
func (e *env) play(call string, params map[string]string, name string) (*twiliotest.Result, error) {
	return e.playHold(call, params, name, nil)
}

// playHold is play, keeping the stream open after the audio until the
// server closes it when hold is not nil and never closed.
func (e *env) playHold(call string, params map[string]string, name string, hold <-chan struct{}) (*twiliotest.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws := "ws" + strings.TrimPrefix(e.http.URL, "http") + mediaPath
	return twiliotest.PlayWAV(ctx, ws, wav(e.t, name), &twiliotest.Options{
		AuthToken: authToken, PublicURL: "wss://ivr.example.com" + mediaPath,
		CallSID: call, CustomParameters: params, Pace: twiliotest.AsFastAsPossible, HoldOpen: hold,
	})
}

// poll polls a session until it leaves waiting_audio and processing.
func (e *env) poll(path string) doc {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		code, d := e.do(http.MethodGet, path, "", nil)
		if code != http.StatusOK {
			e.t.Fatalf("poll %s: %d", path, code)
		}
		if d.Status != statusWaiting && d.Status != statusProcessing {
			return d
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("session %s did not finish", path)
	return doc{}
}

// TestUploadAndStream registers a caller from an uploaded recording,
// verifies them from an upload and from a Twilio stream bound to a call,
// and refuses an impostor.
func TestUploadAndStream(t *testing.T) {
	e := newEnv(t)
	const caller = "+34600000010"
	q := "?caller=" + url.QueryEscape(caller)

	code, d := e.do(http.MethodPost, "/register"+q, "audio/wav", wav(t, fixtures.Utterances("rms")[0]))
	if code != http.StatusOK || d.Status != statusSuccess || d.Operation != "register" || strings.Contains(string(d.Event), "credential\"") {
		t.Fatalf("register upload: %d %+v %s", code, d, d.Event)
	}
	if rec, err := e.store.Get(context.Background(), caller); err != nil || rec.ModelHash != offline.ModelHash {
		t.Fatalf("stored: %+v %v", rec, err)
	}
	code, d = e.do(http.MethodPost, "/verify"+q, "audio/wav", wav(t, fixtures.Utterances("rms")[1]))
	if code != http.StatusOK || d.Status != statusSuccess || eventType(d) != "result-success" {
		t.Fatalf("verify upload: %d %+v %s", code, d, d.Event)
	}
	code, d = e.do(http.MethodPost, "/verify"+q, "audio/wav", wav(t, fixtures.Utterances("kal")[1]))
	if code != http.StatusOK || d.Status != statusFailScore {
		t.Fatalf("verify impostor upload: %d %+v %s", code, d, d.Event)
	}
	// A session already polled by id.
	if code, p := e.do(http.MethodGet, "/verify/"+d.ID, "", nil); code != http.StatusOK || p.Status != statusFailScore {
		t.Fatalf("poll finished upload: %d %+v", code, p)
	}

	// Bound to a Twilio call: create, stream, poll.
	call := twiliotest.SID("CA")
	code, d = e.do(http.MethodPost, "/verify"+q+"&call="+call, "", nil)
	if code != http.StatusAccepted || d.Status != statusWaiting || d.StreamURL != "wss://ivr.example.com/twilio/media" || d.Parameters[paramSession] != d.ID {
		t.Fatalf("create bound session: %d %+v", code, d)
	}
	if _, err := e.play(call, d.Parameters, fixtures.Utterances("rms")[2]); err != nil {
		t.Logf("simulator: %v", err) // the server may close first
	}
	if got := e.poll("/verify/" + d.ID); got.Status != statusSuccess || got.CallID != call {
		t.Fatalf("bound verify: %+v %s", got, got.Event)
	}
	// A session takes one stream only.
	refused := e.srv.refused.Load()
	res, err := e.playHold(call, d.Parameters, fixtures.Utterances("rms")[2], make(chan struct{}))
	// Held open, the simulator only ends when the server closes the
	// stream: an error while sending, or a close after the audio.
	if errors.Is(err, context.DeadlineExceeded) || (err == nil && !res.ServerClosed) {
		t.Fatalf("second stream on a finished session not closed: %v %+v", err, res)
	}
	if e.srv.refused.Load() != refused+1 {
		t.Fatal("second stream on a finished session not refused")
	}

	// Delete.
	if code, _ := e.do(http.MethodDelete, "/callers/"+url.PathEscape(caller), "", nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := e.do(http.MethodPost, "/verify"+q+"&call="+call, "", nil); code != http.StatusNotFound {
		t.Fatalf("verify after delete: %d, want 404", code)
	}
}

// TestStreamForAnotherCall checks that a stream whose call SID differs
// from the session's call is refused and leaves the session waiting.
func TestStreamForAnotherCall(t *testing.T) {
	e := newEnv(t)
	code, d := e.do(http.MethodPost, "/register?caller=%2B34600000011&call="+twiliotest.SID("CA"), "", nil)
	if code != http.StatusAccepted {
		t.Fatalf("create: %d", code)
	}
	res, err := e.playHold(twiliotest.SID("CA"), d.Parameters, fixtures.Utterances("slt")[0], make(chan struct{}))
	// Held open, the simulator only ends when the server closes the
	// stream: an error while sending, or a close after the audio.
	if errors.Is(err, context.DeadlineExceeded) || (err == nil && !res.ServerClosed) {
		t.Fatalf("stream for another call not closed: %+v", res)
	}
	if res.CloseStatus != websocket.StatusPolicyViolation {
		t.Fatalf("stream for another call closed with status %d, want 1008 (policy violation)", res.CloseStatus)
	}
	if _, p := e.do(http.MethodGet, "/register/"+d.ID, "", nil); p.Status != statusWaiting {
		t.Fatalf("session after a foreign stream: %+v", p)
	}
	if _, err := e.store.Get(context.Background(), "+34600000011"); err == nil {
		t.Fatal("a foreign stream registered the caller")
	}
	// Bad signature: refused before the upgrade.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws := "ws" + strings.TrimPrefix(e.http.URL, "http") + mediaPath
	if _, err := twiliotest.PlayWAV(ctx, ws, wav(t, fixtures.Utterances("slt")[0]), &twiliotest.Options{
		AuthToken: "wrong", PublicURL: "wss://ivr.example.com" + mediaPath, Pace: twiliotest.AsFastAsPossible,
	}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("bad signature: %v", err)
	}
}

// webhook posts a Twilio voice webhook (form params) to path, signed with
// sig (computed for the public URL when sig is "").
func (e *env) webhook(path string, form url.Values, sig string) (*http.Response, string) {
	e.t.Helper()
	if sig == "" {
		sig = twilio.ComputeSignature(authToken, publicURL+path, form)
	}
	req, _ := http.NewRequest(http.MethodPost, e.http.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(twilio.SignatureHeader, sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

const twimlHead = `<?xml version="1.0" encoding="UTF-8"?><Response>`

// TestTwiMLWebhook checks the voice webhook end to end: signature
// required; a <Connect action> whose stream goes to a session bound to the
// call; the server closing the stream with the result; the action answer
// speaking the result and redirecting to -next-url with it. TwiML is
// compared byte for byte.
func TestTwiMLWebhook(t *testing.T) {
	e := newEnv(t)
	call := twiliotest.SID("CA")
	form := url.Values{"CallSid": {call}, "From": {"+34600000012"}, "AccountSid": {twiliotest.DefaultAccountSID}}
	start := time.Now()
	if resp, _ := e.webhook("/twiml/register", form, "bad-signature"); resp.StatusCode != http.StatusForbidden || time.Since(start) < failDelay {
		t.Fatalf("unsigned webhook: %s after %v", resp.Status, time.Since(start))
	}
	// Every IVR error is the agent API's JSON, a refused signature too.
	if resp, b := e.webhook("/twiml/verify", form, "bad-signature"); resp.StatusCode != http.StatusForbidden ||
		resp.Header.Get("Content-Type") != "application/json" || b != `{"code":"forbidden","error":"invalid signature"}`+"\n" {
		t.Fatalf("bad signature on /twiml/verify: %s %q %s", resp.Status, resp.Header.Get("Content-Type"), b)
	}
	resp, b := e.webhook("/twiml/register", form, "")
	id := resp.Header.Get("X-Voicegate-Session")
	want := twimlHead + `<Say>Say something.</Say><Connect action="https://ivr.example.com/twiml/result?session=` + id + `" method="POST">` +
		`<Stream name="voicegate-` + id + `" url="wss://ivr.example.com/twilio/media"><Parameter name="session" value="` + id + `"/></Stream></Connect></Response>`
	if resp.StatusCode != http.StatusOK || len(id) != 32 || b != want || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/xml") {
		t.Fatalf("twiml: %s %q\n got %s\nwant %s", resp.Status, id, b, want)
	}
	if _, d := e.do(http.MethodGet, "/register/"+id, "", nil); d.Status != statusWaiting || d.CallID != call {
		t.Fatalf("session: %+v", d)
	}
	res, err := e.playHold(call, map[string]string{paramSession: id}, fixtures.Utterances("armelle")[0], make(chan struct{}))
	// Held open, the simulator ends only when the server closes the
	// stream: with <Connect>, that close is what makes Twilio request the
	// action URL.
	if errors.Is(err, context.DeadlineExceeded) || (err == nil && !res.ServerClosed) {
		t.Fatalf("server did not close the stream after the result: %v %+v", err, res)
	}
	if d := e.poll("/register/" + id); d.Status != statusSuccess {
		t.Fatalf("register via TwiML: %+v %s", d, d.Event)
	}
	if _, err := e.store.Get(context.Background(), "+34600000012"); err != nil {
		t.Fatalf("caller from From not registered: %v", err)
	}
	// Twilio requests the <Connect> action.
	action := resultPath + "?session=" + id
	resp, b = e.webhook(action, form, "")
	want = twimlHead + `<Say>Your voice has been registered.</Say><Redirect method="POST">https://flow.example.com/next?flow=FW1&amp;voicegate_operation=register&amp;voicegate_session=` + id + `&amp;voicegate_status=success</Redirect></Response>`
	if resp.StatusCode != http.StatusOK || b != want {
		t.Fatalf("result:\n got %s %s\nwant %s", resp.Status, b, want)
	}
	// The action of another call, or unsigned, learns nothing.
	other := url.Values{"CallSid": {twiliotest.SID("CA")}}
	if resp, b := e.webhook(action, other, ""); resp.StatusCode != http.StatusOK || strings.Contains(b, "success") ||
		b != twimlHead+`<Say>We could not process your voice at this time.</Say><Redirect method="POST">https://flow.example.com/next?flow=FW1&amp;voicegate_status=error</Redirect></Response>` {
		t.Fatalf("result for another call: %s", b)
	}
	if resp, _ := e.webhook(action, form, "bad"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned result: %s", resp.Status)
	}
}

// TestTwiMLAnswers: every answer to a signed voice webhook is TwiML that
// goes on (a <Redirect> to -next-url, or a <Hangup/> without one), never
// JSON: an unregistered caller, a missing or bad From, a caller registered
// twice.
func TestTwiMLAnswers(t *testing.T) {
	e := newEnv(t)
	if err := e.store.Put(context.Background(), "+34600000013", credstore.Record{Credential: "c", ModelHash: offline.ModelHash}); err != nil {
		t.Fatal(err)
	}
	call := twiliotest.SID("CA")
	redirect := func(op, status string) string {
		q := "flow=FW1&amp;voicegate_operation=" + op + "&amp;voicegate_status=" + status
		return `<Redirect method="POST">https://flow.example.com/next?` + q + `</Redirect></Response>`
	}
	for _, tc := range []struct {
		name, path string
		form       url.Values
		want       string
	}{
		{"verify unregistered", "/twiml/verify", url.Values{"CallSid": {call}, "From": {"+34600000099"}},
			twimlHead + `<Say>Your number is not registered for voice verification.</Say>` + redirect("verify", "not_registered")},
		{"verify without From", "/twiml/verify", url.Values{"CallSid": {call}},
			twimlHead + `<Say>We could not identify your phone number.</Say>` + redirect("verify", "bad_caller")},
		{"verify from a client", "/twiml/verify", url.Values{"CallSid": {call}, "From": {"client:alice"}},
			twimlHead + `<Say>We could not identify your phone number.</Say>` + redirect("verify", "bad_caller")},
		{"register twice", "/twiml/register", url.Values{"CallSid": {call}, "From": {"+34600000013"}},
			twimlHead + `<Say>Your number is already registered for voice verification.</Say>` + redirect("register", "already_registered")},
		// An unencoded + in ?caller= arrives as a space and is restored.
		{"caller query with raw +", "/twiml/register?caller=+34600000013", url.Values{"CallSid": {call}},
			twimlHead + `<Say>Your number is already registered for voice verification.</Say>` + redirect("register", "already_registered")},
	} {
		resp, b := e.webhook(tc.path, tc.form, "")
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/xml") || b != tc.want {
			t.Errorf("%s: %s %s\n got %s\nwant %s", tc.name, resp.Status, resp.Header.Get("Content-Type"), b, tc.want)
		}
	}
	// Without -next-url the call ends after the message; with
	// -say-result=false the flow speaks for itself.
	e = newEnv(t, func(c *config) { c.NextURL = "" })
	if _, b := e.webhook("/twiml/verify", url.Values{"CallSid": {call}, "From": {"+34600000099"}}, ""); b != twimlHead+`<Say>Your number is not registered for voice verification.</Say><Hangup/></Response>` {
		t.Errorf("no next url: %s", b)
	}
	e = newEnv(t, func(c *config) { c.SayResult = false })
	if _, b := e.webhook("/twiml/verify", url.Values{"CallSid": {call}, "From": {"+34600000099"}}, ""); b != twimlHead+redirect("verify", "not_registered") {
		t.Errorf("no say: %s", b)
	}
}

// TestAuthRequired: every IVR endpoint refuses a request without a valid
// credential, so nobody can overwrite a caller's voiceprint with another
// voice; both Basic and the API key header work.
func TestAuthRequired(t *testing.T) {
	e := newEnv(t)
	const victim = "+34600000030"
	q := "?caller=" + url.QueryEscape(victim)
	code, d := e.do(http.MethodPost, "/register"+q, "audio/wav", wav(t, fixtures.Utterances("rms")[0]))
	if code != http.StatusOK || d.Status != statusSuccess {
		t.Fatalf("register: %d %+v", code, d)
	}
	before, _ := e.store.Get(context.Background(), victim)
	impostor := wav(t, fixtures.Utterances("kal")[0])
	bad := map[string]func(*http.Request){
		"none":            nil,
		"wrong key":       func(r *http.Request) { r.Header.Set("X-API-Key", apiKey+"x") },
		"key prefix":      func(r *http.Request) { r.Header.Set("X-API-Key", apiKey[:10]) },
		"wrong password":  func(r *http.Request) { r.SetBasicAuth(basicUser, basicPass+"x") },
		"wrong user":      func(r *http.Request) { r.SetBasicAuth("other", basicPass) },
		"key as password": func(r *http.Request) { r.SetBasicAuth(basicUser, apiKey) },
		"bearer":          func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+apiKey) },
		// A valid key does not excuse a wrong password, nor the reverse.
		"key ok, password wrong": func(r *http.Request) { r.Header.Set("X-API-Key", apiKey); r.SetBasicAuth(basicUser, basicPass+"x") },
		"password ok, key wrong": func(r *http.Request) { r.Header.Set("X-API-Key", apiKey+"x"); r.SetBasicAuth(basicUser, basicPass) },
	}
	fails := e.srv.authFails.Load()
	for name, auth := range bad {
		for _, c := range []struct{ method, path string }{
			{http.MethodPost, "/register" + q}, {http.MethodPost, "/verify" + q}, {http.MethodGet, "/verify/" + d.ID},
			{http.MethodGet, "/register/" + d.ID}, {http.MethodGet, "/callers/" + url.PathEscape(victim)}, {http.MethodDelete, "/callers/" + url.PathEscape(victim)},
		} {
			if code, _ := e.doAuth(c.method, c.path, "audio/wav", impostor, auth); code != http.StatusUnauthorized {
				t.Errorf("%s: %s %s: %d, want 401", name, c.method, c.path, code)
			}
		}
	}
	if got := e.srv.authFails.Load() - fails; got != int64(6*len(bad)) {
		t.Errorf("%d failures counted, want %d", got, 6*len(bad))
	}
	after, err := e.store.Get(context.Background(), victim)
	if err != nil || after.Credential != before.Credential {
		t.Fatal("an unauthenticated request changed the caller's credential")
	}
	// Basic works, and a 401 names the scheme.
	code, v := e.doAuth(http.MethodPost, "/verify"+q, "audio/wav", wav(t, fixtures.Utterances("rms")[1]), func(r *http.Request) { r.SetBasicAuth(basicUser, basicPass) })
	if code != http.StatusOK || v.Status != statusSuccess {
		t.Fatalf("verify with Basic: %d %+v", code, v)
	}
	for _, set := range []func(*http.Request){
		func(*http.Request) {},
		// GET /callers/x with X-API-Key: <valid> and Authorization: Basic <wrong password>.
		func(r *http.Request) {
			r.Header.Set("X-API-Key", apiKey)
			r.SetBasicAuth(basicUser, "wrong-password-0123")
		},
	} {
		req, _ := http.NewRequest(http.MethodGet, e.http.URL+"/callers/x", nil)
		set(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Basic realm="voicegate-ivr", charset="UTF-8"` {
			t.Fatalf("401: %s %v", resp.Status, resp.Header)
		}
	}
	// Health and the Twilio endpoints do not take IVR credentials.
	if resp, err := http.Get(e.http.URL + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v", err)
	} else {
		resp.Body.Close()
	}
}

// TestAuthFailureDelay: every kind of authentication failure takes at
// least the same minimum time; a success does not wait for it.
func TestAuthFailureDelay(t *testing.T) {
	e := newEnv(t)
	for name, auth := range map[string]func(*http.Request){
		"none":           nil,
		"wrong key":      func(r *http.Request) { r.Header.Set("X-API-Key", "x") },
		"wrong user":     func(r *http.Request) { r.SetBasicAuth("x", basicPass) },
		"wrong password": func(r *http.Request) { r.SetBasicAuth(basicUser, "x") },
	} {
		start := time.Now()
		if code, _ := e.doAuth(http.MethodGet, "/callers/%2B34600000031", "", nil, auth); code != http.StatusUnauthorized {
			t.Fatalf("%s: %d", name, code)
		}
		if d := time.Since(start); d < failDelay {
			t.Errorf("%s: failed after %v < %v", name, d, failDelay)
		}
	}
	start := time.Now()
	if code, _ := e.do(http.MethodGet, "/callers/%2B34600000031", "", nil); code != http.StatusOK {
		t.Fatalf("with key: %d", code)
	}
	if d := time.Since(start); d >= failDelay {
		t.Logf("success took %v (slow machine?)", d)
	}
}

// TestRegisterOverExisting: registering a caller who has a credential is
// refused until the credential is deleted; two concurrent registrations of
// a new caller cannot both succeed.
func TestRegisterOverExisting(t *testing.T) {
	e := newEnv(t)
	const caller = "+34600000032"
	q := "?caller=" + url.QueryEscape(caller)
	if code, d := e.do(http.MethodPost, "/register"+q, "audio/wav", wav(t, fixtures.Utterances("rms")[0])); code != http.StatusOK || d.Status != statusSuccess {
		t.Fatalf("register: %d %+v", code, d)
	}
	before, _ := e.store.Get(context.Background(), caller)
	if code, _ := e.do(http.MethodPost, "/register"+q, "audio/wav", wav(t, fixtures.Utterances("kal")[0])); code != http.StatusConflict {
		t.Fatalf("second register: %d, want 409", code)
	}
	if code, _ := e.do(http.MethodPost, "/register"+q+"&call="+twiliotest.SID("CA"), "", nil); code != http.StatusConflict {
		t.Fatalf("second register bound to a call: %d, want 409", code)
	}
	if after, _ := e.store.Get(context.Background(), caller); after.Credential != before.Credential {
		t.Fatal("credential replaced")
	}
	if code, _ := e.do(http.MethodDelete, "/callers/"+url.PathEscape(caller), "", nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if code, d := e.do(http.MethodPost, "/register"+q, "audio/wav", wav(t, fixtures.Utterances("kal")[0])); code != http.StatusOK || d.Status != statusSuccess {
		t.Fatalf("register after delete: %d %+v", code, d)
	}

	// Two at once: exactly one success; the other is refused with 409,
	// whether before its session ran or at the store.
	const fresh = "+34600000033"
	type res struct {
		code int
		d    doc
	}
	out := make(chan res, 2)
	for _, name := range []string{fixtures.Utterances("rms")[0], fixtures.Utterances("kal")[0]} {
		body := wav(t, name)
		go func() {
			code, d := e.do(http.MethodPost, "/register?caller="+url.QueryEscape(fresh), "audio/wav", body)
			out <- res{code, d}
		}()
	}
	wins := 0
	for range 2 {
		r := <-out
		switch {
		case r.code == http.StatusOK && r.d.Status == statusSuccess:
			wins++
		case r.code == http.StatusConflict:
		default:
			t.Errorf("concurrent register: %d %+v %s", r.code, r.d, r.d.Event)
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent registrations succeeded, want 1", wins)
	}
}

// TestRegisterStoreFails: a registration whose credential cannot be kept
// (here: -audio-dir does not exist) is never reported as a success.
func TestRegisterStoreFails(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	e := newEnv(t, func(c *config) { c.Store = agent.StoreConfig{AudioDir: missing, AudioKey: audioKey} })
	code, d := e.do(http.MethodPost, "/register?caller=%2B34600000034", "audio/wav", wav(t, fixtures.Utterances("rms")[0]))
	if code != http.StatusOK || d.Status != statusError || eventType(d) != string(daspeak.EventErrorStore) || strings.Contains(string(d.Event), "success") {
		t.Fatalf("register without storage: %d %+v %s", code, d, d.Event)
	}
	if strings.Contains(string(d.Event), missing) {
		t.Fatalf("the store error reached the client: %s", d.Event)
	}
	if _, err := e.store.Get(context.Background(), "+34600000034"); !errors.Is(err, credstore.ErrNotFound) {
		t.Fatalf("stored anyway: %v", err)
	}
	// At start-up the directory is checked and the error names the fix.
	err := serve(context.Background(), &config{Listen: "127.0.0.1:0", Store: agent.StoreConfig{AudioDir: missing, AudioKey: audioKey}, APIKey: apiKey, PublicURL: publicURL}, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "mkdir -p "+missing) {
		t.Fatalf("missing -audio-dir at start-up: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if err := serve(context.Background(), &config{Listen: "127.0.0.1:0", Store: agent.StoreConfig{AudioDir: file, AudioKey: audioKey}, APIKey: apiKey, PublicURL: publicURL}, io.Discard, nil); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("-audio-dir is a file: %v", err)
	}
	if os.Geteuid() != 0 { // root writes anywhere
		ro := t.TempDir()
		os.Chmod(ro, 0o500)
		defer os.Chmod(ro, 0o700)
		if err := serve(context.Background(), &config{Listen: "127.0.0.1:0", Store: agent.StoreConfig{AudioDir: ro, AudioKey: audioKey}, APIKey: apiKey, PublicURL: publicURL}, io.Discard, nil); err == nil || !strings.Contains(err.Error(), "not writable") {
			t.Fatalf("read-only -audio-dir: %v", err)
		}
	}
	// A writable directory gets the enrolment audio.
	dir := t.TempDir()
	e = newEnv(t, func(c *config) { c.Store = agent.StoreConfig{AudioDir: dir, AudioKey: audioKey} })
	if code, d := e.do(http.MethodPost, "/register?caller=%2B34600000035", "audio/wav", wav(t, fixtures.Utterances("rms")[0])); code != http.StatusOK || d.Status != statusSuccess {
		t.Fatalf("register with audio dir: %d %+v", code, d)
	}
	if rec, err := e.store.Get(context.Background(), "+34600000035"); err != nil || rec.AudioRef == "" {
		t.Fatalf("audio not kept: %+v %v", rec, err)
	}
}

// TestDeleteRemovesVoice: DELETE /callers/{caller} removes the enrolment
// audio kept in -audio-dir with the credential, and the file's name is
// keyed (ENROLMENT_AUDIO_KEY), not a hash of the number that anyone could
// compute from a list of telephone numbers.
func TestDeleteRemovesVoice(t *testing.T) {
	const caller = "+34600000036"
	dir := t.TempDir()
	e := newEnv(t, func(c *config) { c.Store = agent.StoreConfig{AudioDir: dir, AudioKey: audioKey} })
	if code, d := e.do(http.MethodPost, "/register?caller="+url.QueryEscape(caller), "audio/wav", wav(t, fixtures.Utterances("rms")[0])); code != http.StatusOK || d.Status != statusSuccess {
		t.Fatalf("register: %d %+v", code, d)
	}
	files := wavFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("files in -audio-dir after register: %v, want 1", files)
	}
	name := files[0]
	sum := sha256.Sum256([]byte(caller))
	full := hex.EncodeToString(sum[:])
	if name == full[:32]+".wav" || strings.Contains(name, full[:16]) || strings.Contains(name, strings.TrimPrefix(caller, "+")) {
		t.Fatalf("audio file %q is named after an unkeyed hash of the number (sha256 %s)", name, full)
	}
	if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
		t.Fatalf("enrolment audio: %v", err)
	}
	if rec, err := e.store.Get(context.Background(), caller); err != nil || rec.AudioRef != name {
		t.Fatalf("record: %+v %v, want AudioRef %q", rec, err, name)
	}

	if code, _ := e.do(http.MethodDelete, "/callers/"+url.PathEscape(caller), "", nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if files := wavFiles(t, dir); len(files) != 0 {
		t.Fatalf("files left in -audio-dir after delete: %v", files)
	}
	if _, err := e.store.Get(context.Background(), caller); !errors.Is(err, credstore.ErrNotFound) {
		t.Fatalf("record left after delete: %v", err)
	}

	// A copy an older server kept under the unkeyed name goes too.
	legacy := filepath.Join(dir, full[:32]+".wav")
	if err := os.WriteFile(legacy, []byte("RIFF"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.do(http.MethodDelete, "/callers/"+url.PathEscape(caller), "", nil); code != http.StatusNoContent {
		t.Fatalf("delete of the legacy copy: %d", code)
	}
	if files := wavFiles(t, dir); len(files) != 0 {
		t.Fatalf("legacy copy left after delete: %v", files)
	}

	// Without ENROLMENT_AUDIO_KEY, -audio-dir does not start.
	err := serve(context.Background(), &config{Listen: "127.0.0.1:0", Store: agent.StoreConfig{Spec: "memory", AudioDir: dir},
		APIKey: apiKey, PublicURL: publicURL, Engine: agent.EngineConfig{Offline: true}}, io.Discard, nil)
	if !errors.Is(err, agent.ErrAudioKey) || !strings.Contains(err.Error(), "ENROLMENT_AUDIO_KEY") {
		t.Fatalf("-audio-dir without a key: %v", err)
	}
}

// wavFiles returns the names of the files in dir, hidden ones included.
func wavFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		method, path string
		body         []byte
		want         int
	}{
		{http.MethodPost, "/register", []byte("RIFF"), http.StatusBadRequest},                            // no caller
		{http.MethodPost, "/register?caller=alice", []byte("RIFF"), http.StatusBadRequest},               // not a number
		{http.MethodPost, "/register?caller=%2B34600000040", []byte("not a wav"), http.StatusBadRequest}, // not a WAV
		{http.MethodPost, "/verify?caller=%2B34600000041", nil, http.StatusNotFound},                     // not registered
		{http.MethodGet, "/verify/0123", nil, http.StatusNotFound},                                       // no session
		{http.MethodPost, "/register?caller=%2B34600000040", make([]byte, maxWAV+1), http.StatusRequestEntityTooLarge},
		{http.MethodPost, "/register?caller=%2B34600000040&channel=3", wav(t, fixtures.Utterances("slt")[0]), http.StatusBadRequest},
		{http.MethodPost, "/register?caller=%2B34600000040&channel=2", wav(t, fixtures.Utterances("slt")[0]), http.StatusBadRequest}, // mono
		{http.MethodGet, "/callers/alice", nil, http.StatusBadRequest},
		{http.MethodPost, "/register?caller=%2B34600000040", pcmWAV(t, make([]int16, 4410), 44101, 1), http.StatusBadRequest}, // no resampler for 44101→16000
	} {
		if code, _ := e.do(c.method, c.path, "audio/wav", c.body); code != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, code, c.want)
		}
	}
	// Too short a recording ends in error-audio, reported as status error.
	short := wav(t, fixtures.Utterances("slt")[0])
	w, err := truncate(short, 8000) // one second of μ-law
	if err != nil {
		t.Fatal(err)
	}
	code, d := e.do(http.MethodPost, "/register?caller=%2B34600000042", "audio/wav", w)
	if code != http.StatusOK || d.Status != statusError || eventType(d) != "error-audio" {
		t.Fatalf("short recording: %d %+v %s", code, d, d.Event)
	}
	if code, _ := e.do(http.MethodGet, "/callers/%2B34600000042", "", nil); code != http.StatusOK {
		t.Fatalf("get caller: %d", code)
	}
}

// TestCallerNormalized: "+34600000050" sent unencoded in a query (a
// space to the server), encoded, or with spaces, is one caller.
func TestCallerNormalized(t *testing.T) {
	e := newEnv(t)
	code, d := e.do(http.MethodPost, "/register?caller=+34600000050", "audio/wav", wav(t, fixtures.Utterances("rms")[0]))
	if code != http.StatusOK || d.Status != statusSuccess {
		t.Fatalf("register with a raw +: %d %+v", code, d)
	}
	if _, err := e.store.Get(context.Background(), "+34600000050"); err != nil {
		t.Fatalf("not stored under the E.164 id: %v", err)
	}
	for _, q := range []string{"%2B34600000050", "+34600000050", "%2B34%20600%2000%2000%2050"} {
		if code, d := e.do(http.MethodPost, "/verify?caller="+q, "audio/wav", wav(t, fixtures.Utterances("rms")[1])); code != http.StatusOK || d.Status != statusSuccess {
			t.Errorf("verify caller=%s: %d %+v", q, code, d)
		}
	}
	var got struct{ Registered bool }
	req, _ := http.NewRequest(http.MethodGet, e.http.URL+"/callers/%2B34%20600000050", nil)
	req.Header.Set("X-API-Key", apiKey)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(r.Body).Decode(&got)
	r.Body.Close()
	if !got.Registered {
		t.Fatal("GET /callers with spaces: not registered")
	}
}

// floatWAV encodes mono or interleaved samples as a 32-bit float WAV
// (format 3, or EXTENSIBLE with the float sub-format), as browsers and
// editors export.
func floatWAV(pcm []int16, rate, channels int, extensible bool) []byte {
	le := binary.LittleEndian
	data := make([]byte, 0, 4*len(pcm))
	for _, v := range pcm {
		data = le.AppendUint32(data, math.Float32bits(float32(v)/32768))
	}
	var f []byte
	tag := uint16(3)
	if extensible {
		tag = 0xFFFE
	}
	f = le.AppendUint16(f, tag)
	f = le.AppendUint16(f, uint16(channels))
	f = le.AppendUint32(f, uint32(rate))
	f = le.AppendUint32(f, uint32(rate*channels*4))
	f = le.AppendUint16(f, uint16(channels*4))
	f = le.AppendUint16(f, 32)
	if extensible {
		f = le.AppendUint16(f, 22)
		f = le.AppendUint16(f, 32)
		f = le.AppendUint32(f, 3)
		f = le.AppendUint16(f, 3)
		f = append(f, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71)
	}
	b := []byte("RIFF\x00\x00\x00\x00WAVEfmt ")
	b = le.AppendUint32(b, uint32(len(f)))
	b = append(b, f...)
	b = append(b, "data"...)
	b = le.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	le.PutUint32(b[4:], uint32(len(b)-8))
	return b
}

// voice returns a fixture as mono 16-bit samples at rate Hz.
func voice(t *testing.T, name string, rate int) []int16 {
	w, err := codec.ParseWAV(wav(t, name))
	if err != nil {
		t.Fatal(err)
	}
	pcm := w.Mono(0)
	if rate != w.Format.SampleRate {
		if pcm, err = resample(pcm, w.Format.SampleRate, rate); err != nil {
			t.Fatal(err)
		}
	}
	return pcm
}

// stereo interleaves a and b, padding the shorter with silence.
func stereo(a, b []int16) []int16 {
	out := make([]int16, 2*max(len(a), len(b)))
	for i := range a {
		out[2*i] = a[i]
	}
	for i := range b {
		out[2*i+1] = b[i]
	}
	return out
}

func pcmWAV(t *testing.T, pcm []int16, rate, channels int) []byte {
	data := make([]byte, 2*len(pcm))
	codec.Int16ToBytes(data, pcm)
	b, err := codec.EncodeWAV(nil, codec.WAVFormat{Encoding: voicegate.L16, SampleRate: rate, Channels: channels}, data)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUploadFormats: 44.1 and 48 kHz recordings, 32-bit float (plain and
// EXTENSIBLE) and stereo with an explicit channel are all used, and the
// result says how.
func TestUploadFormats(t *testing.T) {
	e := newEnv(t)
	const caller = "%2B34600000060"
	rms48 := floatWAV(voice(t, fixtures.Utterances("rms")[0], 48000), 48000, 1, false)
	code, d := e.do(http.MethodPost, "/register?caller="+caller, "audio/wav", rms48)
	want := inputInfo{Format: "float32", SampleRate: 48000, Channels: 1, Channel: "1", EngineRate: 16000}
	if code != http.StatusOK || d.Status != statusSuccess || d.Input == nil || !sameInput(*d.Input, want) {
		t.Fatalf("register 48 kHz float: %d %+v %+v %s", code, d, d.Input, d.Event)
	}
	rms, kal := voice(t, fixtures.Utterances("rms")[1], 44100), voice(t, fixtures.Utterances("kal")[1], 44100)
	for _, tc := range []struct {
		name, query string
		body        []byte
		status      string
		input       inputInfo
	}{
		{"44.1 kHz PCM", "", pcmWAV(t, rms, 44100, 1), statusSuccess, inputInfo{Format: "pcm16", SampleRate: 44100, Channels: 1, Channel: "1", EngineRate: 16000}},
		{"44.1 kHz extensible float", "", floatWAV(rms, 44100, 1, true), statusSuccess, inputInfo{Format: "float32", SampleRate: 44100, Channels: 1, Channel: "1", EngineRate: 16000}},
		{"stereo, caller on 2", "&channel=2", floatWAV(stereo(kal, rms), 44100, 2, false), statusSuccess, inputInfo{Format: "float32", SampleRate: 44100, Channels: 2, Channel: "2", EngineRate: 16000}},
		{"stereo, impostor on 1", "&channel=1", floatWAV(stereo(kal, rms), 44100, 2, false), statusFailScore, inputInfo{Format: "float32", SampleRate: 44100, Channels: 2, Channel: "1", EngineRate: 16000}},
		{"stereo, default channel 1", "", pcmWAV(t, stereo(kal, rms), 44100, 2), statusFailScore, inputInfo{Format: "pcm16", SampleRate: 44100, Channels: 2, Channel: "1", EngineRate: 16000}},
		{"stereo, same voice mixed", "&channel=mix", pcmWAV(t, stereo(rms, rms), 44100, 2), statusSuccess, inputInfo{Format: "pcm16", SampleRate: 44100, Channels: 2, Channel: "mix", EngineRate: 16000}},
	} {
		code, d := e.do(http.MethodPost, "/verify?caller="+caller+tc.query, "audio/wav", tc.body)
		if code != http.StatusOK || d.Status != tc.status || d.Input == nil || !sameInput(*d.Input, tc.input) {
			t.Errorf("%s: %d %s %+v %s", tc.name, code, d.Status, d.Input, d.Event)
		}
	}
	// An 8 kHz μ-law file goes to the engine as it is.
	code, d = e.do(http.MethodPost, "/verify?caller="+caller, "audio/wav", wav(t, fixtures.Utterances("rms")[2]))
	if code != http.StatusOK || d.Input == nil || !sameInput(*d.Input, inputInfo{Format: "ulaw", SampleRate: 8000, Channels: 1, Channel: "1", EngineRate: 8000}) {
		t.Errorf("8 kHz μ-law: %d %+v", code, d.Input)
	}
}

// sameInput compares all but the duration, which must be set.
func sameInput(got, want inputInfo) bool {
	d := got.Duration
	got.Duration = 0
	return got == want && d > 0
}

// TestRun starts the command and stops it as a signal would.
func TestRun(t *testing.T) {
	t.Setenv(envAPIKey, apiKey)
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-listen", "127.0.0.1:0", "-offline"}, io.Discard, func(a net.Addr) { addrc <- a })
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
	resp, err = http.Get("http://" + addr.String() + "/callers/%2B34600000070")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated request: %s", resp.Status)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := run(context.Background(), []string{"-public-url", "ftp://x", "-offline", "-listen", "127.0.0.1:0"}, io.Discard, nil); err == nil {
		t.Fatal("bad public URL accepted")
	}
}

// TestRunRefusesWithoutCredentials: without IVR credentials the server
// does not start, with a message saying how to set them; only
// -insecure-loopback on a loopback address runs, with a warning.
func TestRunRefusesWithoutCredentials(t *testing.T) {
	for _, k := range []string{envAPIKey, envBasicUser, envBasicPass} {
		t.Setenv(k, "")
	}
	for _, args := range [][]string{
		{"-listen", "0.0.0.0:0"},
		{"-listen", ":0"},
		{"-listen", "127.0.0.1:0"},
		{"-listen", "0.0.0.0:0", "-insecure-loopback"},
		{"-listen", "[::]:0", "-insecure-loopback"},
		{"-listen", "example.com:0", "-insecure-loopback"},
	} {
		err := run(context.Background(), append(args, "-offline"), io.Discard, func(net.Addr) { t.Errorf("%v: listening", args) })
		if !errors.Is(err, errExposed) || !strings.Contains(err.Error(), "IVR_API_KEY") || !strings.Contains(err.Error(), "IVR_BASIC_PASSWORD") {
			t.Errorf("%v: %v", args, err)
		}
	}
	// Bad credentials are refused too.
	for _, env := range []map[string]string{
		{envAPIKey: "short"},
		{envBasicUser: "u"},
		{envBasicUser: "u", envBasicPass: "short"},
	} {
		for k, v := range env {
			t.Setenv(k, v)
		}
		if err := run(context.Background(), []string{"-listen", "127.0.0.1:0", "-offline"}, io.Discard, nil); err == nil {
			t.Errorf("%v accepted", env)
		}
		for k := range env {
			t.Setenv(k, "")
		}
	}
	// -insecure-loopback on 127.0.0.1 runs and says so loudly.
	var log strings.Builder
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	up := make(chan struct{})
	go func() {
		errc <- run(ctx, []string{"-listen", "127.0.0.1:0", "-offline", "-insecure-loopback"}, &syncWriter{w: &log}, func(net.Addr) { close(up) })
	}()
	select {
	case <-up:
	case err := <-errc:
		t.Fatalf("insecure loopback: %v", err)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "level=WARN") || !strings.Contains(log.String(), "WITHOUT authentication") {
		t.Fatalf("no warning: %s", log.String())
	}
	// The paths open by design are named at start.
	if !strings.Contains(log.String(), "endpoints without authentication (no caller data): GET /healthz, GET /readyz, GET /metrics") {
		t.Errorf("the unauthenticated paths are not logged: %s", log.String())
	}
	// The offline engine and the memory store are not for production:
	// each says so.
	for _, w := range []string{"not a security control", "credentials are kept in memory"} {
		if !strings.Contains(log.String(), w) {
			t.Errorf("no warning %q: %s", w, log.String())
		}
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// truncate returns the first samples of a mono 8-bit WAV file as a WAV
// file.
func truncate(b []byte, samples int) ([]byte, error) {
	w, err := codec.ParseWAV(b)
	if err != nil {
		return nil, err
	}
	return codec.EncodeWAV(nil, w.Format, w.Data[:samples])
}

// TestPublicURLDefault: without -public-url (or PUBLIC_URL) the URLs the
// server hands out (stream_url, the TwiML <Stream url> and <Connect
// action>) and the URL it checks webhook signatures against point at the
// address it listens on, not at a fixed 127.0.0.1:8080; an explicit
// -public-url is used as given.
func TestPublicURLDefault(t *testing.T) {
	t.Setenv(envAPIKey, apiKey)
	t.Setenv("TWILIO_AUTH_TOKEN", authToken)
	t.Setenv("PUBLIC_URL", "")
	cases := []struct {
		name string
		args []string
		base func(addr string) string // public base URL expected
	}{
		{"default", nil, func(addr string) string { return "http://" + addr }},
		{"explicit", []string{"-public-url", "https://ivr.example.com/"}, func(string) string { return "https://ivr.example.com" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			addrc := make(chan net.Addr, 1)
			errc := make(chan error, 1)
			go func() {
				errc <- run(ctx, append([]string{"-listen", "127.0.0.1:0", "-offline"}, tc.args...), io.Discard, func(a net.Addr) { addrc <- a })
			}()
			var addr string
			select {
			case a := <-addrc:
				addr = a.String()
			case err := <-errc:
				t.Fatalf("run: %v", err)
			}
			defer func() {
				cancel()
				if err := <-errc; err != nil {
					t.Errorf("run: %v", err)
				}
			}()
			base := tc.base(addr)
			ws := "ws" + strings.TrimPrefix(base, "http") + mediaPath
			if strings.HasSuffix(addr, ":8080") {
				t.Fatalf("listening on %s: the test cannot tell the default from the address", addr)
			}

			req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/register?caller=%2B34600000090&call="+twiliotest.SID("CA"), nil)
			req.Header.Set("X-API-Key", apiKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var d struct {
				StreamURL string `json:"stream_url"`
			}
			err = json.NewDecoder(resp.Body).Decode(&d)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusAccepted || d.StreamURL != ws {
				t.Fatalf("POST /register: %s %v stream_url %q, want %q", resp.Status, err, d.StreamURL, ws)
			}

			form := url.Values{"CallSid": {twiliotest.SID("CA")}, "From": {"+34600000091"}, "AccountSid": {twiliotest.DefaultAccountSID}}
			req, _ = http.NewRequest(http.MethodPost, "http://"+addr+"/twiml/register", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set(twilio.SignatureHeader, twilio.ComputeSignature(authToken, base+"/twiml/register", form))
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			id := resp.Header.Get("X-Voicegate-Session")
			want := twimlHead + `<Say>Please tell us, in a few sentences, the reason for your call.</Say><Connect action="` + base + `/twiml/result?session=` + id + `" method="POST">` +
				`<Stream name="voicegate-` + id + `" url="` + ws + `"><Parameter name="session" value="` + id + `"/></Stream></Connect></Response>`
			if resp.StatusCode != http.StatusOK || string(b) != want {
				t.Fatalf("TwiML: %s\n got %s\nwant %s", resp.Status, b, want)
			}
		})
	}
}

// TestDeleteErasesSQLite: with -store sqlite:PATH, once DELETE
// /callers/{caller} has answered 204 the caller id, credential and model
// hash are in neither the database file nor a journal next to it, while
// the server still runs (a WAL file used to keep them until a
// checkpoint); the files are readable by their owner only.
func TestDeleteErasesSQLite(t *testing.T) {
	const caller = "+34600000000"
	t.Setenv(envAPIKey, apiKey)
	t.Setenv("PUBLIC_URL", "")
	path := filepath.Join(t.TempDir(), "creds.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-listen", "127.0.0.1:0", "-offline", "-store", "sqlite:" + path}, io.Discard, func(a net.Addr) { addrc <- a })
	}()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a.String()
	case err := <-errc:
		t.Fatalf("run: %v", err)
	}
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	do := func(method, path, ctype string, body []byte) int {
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
		req.Header.Set("X-API-Key", apiKey)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := do(http.MethodPost, "/register?caller="+url.QueryEscape(caller), "audio/wav", wav(t, fixtures.Utterances("rms")[0])); code != http.StatusOK {
		t.Fatalf("register: %d", code)
	}
	// What to look for: the stored record, read through a second
	// connection to the same file.
	store, closeStore, err := agent.OpenStore(context.Background(), "sqlite:"+path, "")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := store.Get(context.Background(), caller)
	closeStore()
	if err != nil || rec.Credential == "" || rec.ModelHash == "" {
		t.Fatalf("registered record: %+v %v", rec, err)
	}
	if code := do(http.MethodDelete, "/callers/"+url.PathEscape(caller), "", nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(path), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{caller, rec.Credential, rec.ModelHash} {
			if n := bytes.Count(b, []byte(s)); n > 0 {
				t.Errorf("%s holds %q %d times after the delete", e.Name(), s, n)
			}
		}
		if fi, err := e.Info(); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", e.Name(), fi.Mode())
		}
	}
}

// TestTruncatedUpload: a recording cut short in its data chunk (a
// truncated upload: the header declares more audio than arrived) is
// refused with 400, never registered or verified on the part that
// arrived.
func TestTruncatedUpload(t *testing.T) {
	e := newEnv(t)
	const caller = "%2B34600000090"
	whole := wav(t, fixtures.Utterances("rms")[0])
	w, err := codec.ParseWAV(whole)
	if err != nil {
		t.Fatal(err)
	}
	// The file's bytes up to half of its audio.
	cut := whole[:len(whole)-len(w.Data)/2]
	for _, path := range []string{"/register", "/verify"} {
		code, d := e.do(http.MethodPost, path+"?caller="+caller, "audio/wav", cut)
		var body struct{ Error string }
		if path == "/verify" && code == http.StatusNotFound {
			t.Fatalf("verify: the caller was registered from a truncated upload")
		}
		if code != http.StatusBadRequest || d.ID != "" {
			t.Fatalf("%s, truncated: %d %+v", path, code, d)
		}
		req, _ := http.NewRequest(http.MethodPost, e.http.URL+path+"?caller="+caller, bytes.NewReader(cut))
		req.Header.Set("X-API-Key", apiKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if !strings.Contains(body.Error, "cut short") || !strings.Contains(body.Error, "unexpected EOF") {
			t.Fatalf("%s, truncated: %q", path, body.Error)
		}
		if path == "/register" {
			if _, err := e.store.Get(context.Background(), "+34600000090"); !errors.Is(err, credstore.ErrNotFound) {
				t.Fatalf("registered from a truncated upload: %v", err)
			}
			// The whole file registers, so /verify checks the caller.
			if code, d := e.do(http.MethodPost, path+"?caller="+caller, "audio/wav", whole); code != http.StatusOK || d.Status != statusSuccess {
				t.Fatalf("register, whole: %d %+v", code, d)
			}
		}
	}
}

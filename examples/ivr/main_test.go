package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak/offline"
	"github.com/voicegate/voicegate/internal/fixtures"
	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	publicURL = "https://ivr.example.com"
	authToken = "ivr-test-auth-token"
)

type env struct {
	t     *testing.T
	srv   *server
	http  *httptest.Server
	store credstore.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cfg := &config{PublicURL: publicURL, AuthToken: authToken, SessionTTL: time.Minute, Prompt: "Say something.", Pause: 10, QueueFrames: 2000}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	store := credstore.NewMemory()
	srv, err := newServer(cfg, log, offline.New(nil), store)
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

func (e *env) do(method, path, ctype string, body []byte) (int, doc) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.http.URL+path, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
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

// TestTwiMLWebhook checks the voice webhook: signature required, a session
// bound to the call, a <Start><Stream> with its parameter.
func TestTwiMLWebhook(t *testing.T) {
	e := newEnv(t)
	call := twiliotest.SID("CA")
	form := url.Values{"CallSid": {call}, "From": {"+34600000012"}, "AccountSid": {twiliotest.DefaultAccountSID}}
	post := func(sig string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/twiml/register", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(twilio.SignatureHeader, sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := post("bad-signature")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned webhook: %s", resp.Status)
	}
	resp = post(twilio.ComputeSignature(authToken, publicURL+"/twiml/register", form))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("X-Voicegate-Session")
	if resp.StatusCode != http.StatusOK || id == "" ||
		!strings.Contains(string(b), `url="wss://ivr.example.com/twilio/media"`) ||
		!strings.Contains(string(b), `<Parameter name="session" value="`+id+`"`) || !strings.Contains(string(b), "<Say>Say something.</Say>") {
		t.Fatalf("twiml: %s %s", resp.Status, b)
	}
	if _, d := e.do(http.MethodGet, "/register/"+id, "", nil); d.Status != statusWaiting || d.CallID != call {
		t.Fatalf("session: %+v", d)
	}
	if _, err := e.play(call, map[string]string{paramSession: id}, fixtures.Utterances("armelle")[0]); err != nil {
		t.Logf("simulator: %v", err)
	}
	if d := e.poll("/register/" + id); d.Status != statusSuccess {
		t.Fatalf("register via TwiML: %+v %s", d, d.Event)
	}
	if _, err := e.store.Get(context.Background(), "+34600000012"); err != nil {
		t.Fatalf("caller from From not registered: %v", err)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		method, path string
		body         []byte
		want         int
	}{
		{http.MethodPost, "/register", []byte("RIFF"), http.StatusBadRequest},               // no caller
		{http.MethodPost, "/register?caller=x", []byte("not a wav"), http.StatusBadRequest}, // not a WAV
		{http.MethodPost, "/verify?caller=unknown", nil, http.StatusNotFound},               // not registered
		{http.MethodGet, "/verify/0123", nil, http.StatusNotFound},                          // no session
		{http.MethodPost, "/register?caller=x", make([]byte, maxWAV+1), http.StatusRequestEntityTooLarge},
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
	code, d := e.do(http.MethodPost, "/register?caller=short", "audio/wav", w)
	if code != http.StatusOK || d.Status != statusError || eventType(d) != "error-audio" {
		t.Fatalf("short recording: %d %+v %s", code, d, d.Event)
	}
	if code, _ := e.do(http.MethodGet, "/callers/short", "", nil); code != http.StatusOK {
		t.Fatalf("get caller: %d", code)
	}
}

// TestRun starts the command and stops it as a signal would.
func TestRun(t *testing.T) {
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
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := run(context.Background(), []string{"-public-url", "ftp://x", "-offline", "-listen", "127.0.0.1:0"}, io.Discard, nil); err == nil {
		t.Fatal("bad public URL accepted")
	}
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

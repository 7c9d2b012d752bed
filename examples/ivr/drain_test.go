package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/daspeak/offline"
	"github.com/voicegate/voicegate/internal/fixtures"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

// gateEngine holds every credential generation until open is closed (or
// its ctx ends), and says when one is waiting.
type gateEngine struct {
	*offline.Engine
	open    chan struct{}
	waiting chan struct{}
}

func newGate() *gateEngine {
	return &gateEngine{Engine: offline.New(nil), open: make(chan struct{}), waiting: make(chan struct{}, 16)}
}

func (g *gateEngine) GenerateCredential(ctx context.Context, hash string, audio []byte, opts *daspeak.AudioOptions) (*daspeak.CredentialResult, error) {
	g.waiting <- struct{}{}
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Engine.GenerateCredential(ctx, hash, audio, opts)
}

// wait waits until a credential generation waits at the gate.
func (g *gateEngine) wait(t *testing.T, answer <-chan doc) {
	t.Helper()
	select {
	case <-g.waiting:
	case d := <-answer:
		t.Fatalf("the upload ended before the engine was called: %+v %s", d, d.Event)
	case <-time.After(10 * time.Second):
		t.Fatal("the engine was not called")
	}
}

// get answers a GET without credentials: status and body.
func (e *env) get(path string) (int, string) {
	e.t.Helper()
	resp, err := http.Get(e.http.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startUpload posts a register upload in the background; the answer
// arrives on the channel.
func (e *env) startUpload(caller string) <-chan doc {
	ch := make(chan doc, 1)
	body := wav(e.t, fixtures.Utterances("rms")[0])
	go func() {
		req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/register?caller="+url.QueryEscape(caller), strings.NewReader(string(body)))
		req.Header.Set("X-API-Key", apiKey)
		var d doc
		if resp, err := http.DefaultClient.Do(req); err == nil {
			json.NewDecoder(resp.Body).Decode(&d)
			resp.Body.Close()
		}
		ch <- d
	}()
	return ch
}

// checkDraining checks what a draining server answers: /readyz 503, a
// new session 503 with a clear error, a voice webhook TwiML with
// voicegate_status=unavailable, and the drain on /metrics.
func checkDraining(t *testing.T, e *env) {
	t.Helper()
	if code, body := e.get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Errorf("/readyz while draining: %d %q", code, body)
	}
	code, d := e.do(http.MethodPost, "/verify?caller=%2B34600000901&call="+twiliotest.SID("CA"), "", nil)
	if code != http.StatusServiceUnavailable {
		t.Errorf("new stream session while draining: %d %+v", code, d)
	}
	req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/verify?caller=%2B34600000901", strings.NewReader(string(wav(t, fixtures.Utterances("rms")[1]))))
	req.Header.Set("X-API-Key", apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var answer map[string]string
	json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || answer["error"] != errDraining.Error() || resp.Header.Get("Retry-After") == "" {
		t.Errorf("new upload while draining: %d %v", resp.StatusCode, answer)
	}
	form := url.Values{"CallSid": {twiliotest.SID("CA")}, "From": {"+34600000902"}}
	if resp, body := e.webhook("/twiml/register", form, ""); resp.StatusCode != http.StatusOK || !strings.Contains(body, "voicegate_status=unavailable") || strings.Contains(body, "<Stream") {
		t.Errorf("voice webhook while draining: %d %s", resp.StatusCode, body)
	}
	if _, body := e.get("/metrics"); !strings.Contains(body, "voicegate_ivr_draining 1") {
		t.Error("/metrics does not show the drain")
	}
}

// TestDrainLetsSessionsFinish: a SIGTERM-style drain while an upload is
// being scored refuses new work at once, and the running session
// finishes with its result; the drain then returns nil.
func TestDrainLetsSessionsFinish(t *testing.T) {
	gate := newGate()
	e := newEnvEngine(t, gate)
	if code, body := e.get("/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	answer := e.startUpload("+34600000900")
	gate.wait(t, answer)
	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		drained <- e.srv.drain(ctx)
	}()
	for !e.srv.draining.Load() {
		time.Sleep(time.Millisecond)
	}
	checkDraining(t, e)
	select {
	case err := <-drained:
		t.Fatalf("drain returned while a session ran: %v", err)
	default:
	}
	close(gate.open)
	if d := <-answer; d.Status != statusSuccess {
		t.Fatalf("the running registration did not finish: %+v %s", d, d.Event)
	}
	if err := <-drained; err != nil {
		t.Fatalf("drain: %v", err)
	}
	if _, err := e.store.Get(context.Background(), "+34600000900"); err != nil {
		t.Fatalf("the finished registration was not stored: %v", err)
	}
}

// TestDrainDeadline: a session still running when the drain deadline
// passes ends with error-cancelled, saying the server shut down; nothing
// is registered.
func TestDrainDeadline(t *testing.T) {
	gate := newGate()
	e := newEnvEngine(t, gate)
	answer := e.startUpload("+34600000903")
	gate.wait(t, answer)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := e.srv.drain(ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}
	d := <-answer
	var ev struct {
		Type  string `json:"type"`
		Error string `json:"error"`
	}
	json.Unmarshal(d.Event, &ev)
	if d.Status != statusError || ev.Type != string(agent.EventErrorCancelled) || !strings.Contains(ev.Error, "shut down") {
		t.Fatalf("cut session: %+v %s", d, d.Event)
	}
	if _, err := e.store.Get(context.Background(), "+34600000903"); err == nil {
		t.Fatal("a cut registration was stored")
	}
	checkDraining(t, e)
}

// TestMetrics checks that /metrics, /readyz and /healthz answer without
// credentials and that /metrics counts sessions and refusals.
func TestMetrics(t *testing.T) {
	e := newEnv(t)
	const caller = "+34600000904"
	if code, d := e.do(http.MethodPost, "/register?caller="+url.QueryEscape(caller), "audio/wav", wav(t, fixtures.Utterances("rms")[0])); code != http.StatusOK || d.Status != statusSuccess {
		t.Fatalf("register: %d %+v", code, d)
	}
	if code, _ := e.doAuth(http.MethodGet, "/callers/"+url.PathEscape(caller), "", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d", code)
	}
	code, body := e.get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`voicegate_agent_operations_started_total{kind="register"} 1`,
		`voicegate_agent_operations_total{kind="register",reason="success",type="result-success"} 1`,
		`voicegate_agent_engine_seconds_count{result="ok"} 1`,
		"voicegate_ivr_auth_failures_total 1",
		"voicegate_ivr_sessions_waiting 0",
		"voicegate_ivr_draining 0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, caller) || strings.Contains(body, "34600000904") {
		t.Error("/metrics shows a caller id")
	}
	if code, _ := e.get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
}

// TestDrainDeadlineStream: a Twilio stream still being scored when the
// drain deadline passes ends with error-cancelled too, and the server
// closes the stream.
func TestDrainDeadlineStream(t *testing.T) {
	gate := newGate()
	e := newEnvEngine(t, gate)
	call := twiliotest.SID("CA")
	code, d := e.do(http.MethodPost, "/register?caller=%2B34600000905&call="+call, "", nil)
	if code != http.StatusAccepted {
		t.Fatalf("create: %d %+v", code, d)
	}
	played := make(chan error, 1)
	go func() {
		_, err := e.playHold(call, d.Parameters, fixtures.Utterances("rms")[0], make(chan struct{}))
		played <- err
	}()
	select {
	case <-gate.waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the engine was not called")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := e.srv.drain(ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if err := <-played; errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("the server did not close the stream")
	}
	got := e.poll("/register/" + d.ID)
	if got.Status != statusError || eventType(got) != string(agent.EventErrorCancelled) || !strings.Contains(string(got.Event), "shut down") {
		t.Fatalf("cut stream session: %+v %s", got, got.Event)
	}
}

// TestDrainEndsWaitingSessions: on a single node the drain waits for the
// stream of a session created before it; at the drain deadline a
// session whose stream never came ends with error-cancelled, logged,
// instead of vanishing with the process.
func TestDrainEndsWaitingSessions(t *testing.T) {
	e := newEnv(t)
	var buf strings.Builder
	logs := &syncWriter{w: &buf}
	e.srv.log = slog.New(slog.NewTextHandler(logs, nil))
	call := twiliotest.SID("CA")
	code, d := e.do(http.MethodPost, "/register?caller=%2B34600000906&call="+call, "", nil)
	if code != http.StatusAccepted {
		t.Fatalf("create: %d %+v", code, d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := e.srv.drain(ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Errorf("the drain returned after %v without waiting for the session's stream", el)
	}
	code, got := e.do(http.MethodGet, "/register/"+d.ID, "", nil)
	if code != http.StatusOK || got.Status != statusError || eventType(got) != string(agent.EventErrorCancelled) || !strings.Contains(string(got.Event), "shut down") {
		t.Fatalf("waiting session after the drain: %d %+v %s", code, got, got.Event)
	}
	logs.mu.Lock()
	l := buf.String()
	logs.mu.Unlock()
	if !strings.Contains(l, "session ended by the shutdown before its stream arrived") || !strings.Contains(l, d.ID) {
		t.Errorf("the ended session is not logged:\n%s", l)
	}
}

// lostAckStore holds every Put until release is closed, then stores (or,
// with fail, does not) and answers an error either way: the answer of a
// write that landed was lost. With readFail its Get fails once a Put
// began, so the registration cannot be read back.
type lostAckStore struct {
	credstore.Store
	entered  chan struct{}
	release  chan struct{}
	fail     bool
	readFail bool
	putting  atomic.Bool
}

func (s *lostAckStore) Put(ctx context.Context, id string, rec credstore.Record) error {
	s.putting.Store(true)
	s.entered <- struct{}{}
	<-s.release
	if !s.fail {
		if err := s.Store.Put(context.Background(), id, rec); err != nil {
			return err
		}
	}
	return errors.New("connection reset by peer (the answer was lost)")
}

func (s *lostAckStore) Get(ctx context.Context, id string) (credstore.Record, error) {
	if s.readFail && s.putting.Load() {
		return credstore.Record{}, errors.New("store unreachable")
	}
	return s.Store.Get(ctx, id)
}

// TestDrainDeadlineDuringStore: the drain deadline passes while a
// registration's store runs. The store runs to its end (the drain does not
// cut it) and the session says what is known: registered when the
// credential landed although the store's answer was lost; error-store
// "nothing was registered" only when reading the caller back found
// nothing; and error-store "may or may not be registered" when it could
// not be read back. Never error-cancelled "shut down", which tells the
// client that nothing happened.
func TestDrainDeadlineDuringStore(t *testing.T) {
	for _, c := range []struct {
		name           string
		fail, readFail bool
		status, says   string
		stored         bool
	}{
		{"landed", false, false, statusSuccess, "", true},
		{"not stored", true, false, statusError, "nothing was registered", false},
		{"unknown", false, true, statusError, "may or may not be registered", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			st := &lostAckStore{Store: e.store, entered: make(chan struct{}, 8), release: make(chan struct{}), fail: c.fail, readFail: c.readFail}
			e.srv.creds.Store = st
			const caller = "+34600000904"
			answer := e.startUpload(caller)
			select {
			case <-st.entered:
			case d := <-answer:
				t.Fatalf("the upload ended before the store: %+v %s", d, d.Event)
			case <-time.After(10 * time.Second):
				t.Fatal("the store was not called")
			}
			drained := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				defer cancel()
				drained <- e.srv.drain(ctx)
			}()
			time.Sleep(500 * time.Millisecond) // past the drain deadline: the session's ctx is cut
			close(st.release)
			d := <-answer
			var ev struct {
				Type  string `json:"type"`
				Error string `json:"error"`
			}
			json.Unmarshal(d.Event, &ev)
			if d.Status != c.status || ev.Type == string(agent.EventErrorCancelled) || !strings.Contains(ev.Error, c.says) {
				t.Errorf("session: %+v %s, want status %s saying %q", d, d.Event, c.status, c.says)
			}
			if c.status == statusError && ev.Type != string(daspeak.EventErrorStore) {
				t.Errorf("event %s, want error-store", ev.Type)
			}
			if _, err := e.store.Get(context.Background(), caller); (err == nil) != c.stored {
				t.Errorf("stored: %v, want %v", err == nil, c.stored)
			}
			if err := <-drained; err != nil {
				t.Errorf("drain: %v", err)
			}
		})
	}
}

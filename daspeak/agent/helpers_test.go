package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/offline"
	"github.com/voicegate/voicegate/internal/fixtures"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testToken = "dev-token-for-tests"

// wavFrames cuts the committed clips names (mono, one format) into 20 ms
// customer frames, numbered from 1.
func wavFrames(t testing.TB, names ...string) []voicegate.Frame {
	t.Helper()
	var out []voicegate.Frame
	for _, n := range names {
		w := fixtures.LoadWAV(t, n)
		per := w.Format.SampleRate / 50 * w.Format.Encoding.BytesPerSample() * w.Format.Channels
		for off := 0; off+per <= len(w.Data); off += per {
			f := voicegate.Frame{
				Encoding: w.Format.Encoding, SampleRate: w.Format.SampleRate, Channels: w.Format.Channels,
				Seq: uint64(len(out) + 1), Timestamp: time.Duration(len(out)) * 20 * time.Millisecond,
				Payload: w.Data[off : off+per],
			}
			f.Parties[0] = voicegate.Customer
			out = append(out, f)
		}
	}
	return out
}

// fakeCall is what the fake source gives for one call.
type fakeCall struct {
	clips []string // played at full speed on every Open
	hold  bool     // after the clips, ReadFrame blocks until ctx or Close (a live call)
	ani   string   // CallInfo caller id
	live  bool     // CallInfo in progress
}

// fakeSource is a Source (and CallInfo when info is set) over committed
// clips.
type fakeSource struct {
	t       testing.TB
	openErr error
	block   chan struct{} // when set, Open waits for it (or ctx)
	openCtx []error       // ctx errors Open returned with

	mu     sync.Mutex
	calls  map[string]fakeCall
	audios []*fakeAudio
	reqs   []SourceRequest
}

func newFakeSource(t testing.TB) *fakeSource {
	return &fakeSource{t: t, calls: map[string]fakeCall{}}
}

func (s *fakeSource) set(callID string, c fakeCall) {
	s.mu.Lock()
	s.calls[callID] = c
	s.mu.Unlock()
}

func (s *fakeSource) Open(ctx context.Context, req SourceRequest) (Audio, error) {
	s.mu.Lock()
	block := s.block
	s.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			s.mu.Lock()
			s.openCtx = append(s.openCtx, ctx.Err())
			s.mu.Unlock()
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.openErr != nil {
		return nil, s.openErr
	}
	c, ok := s.calls[req.CallID]
	if !ok {
		return nil, ErrNoCall
	}
	a := &fakeAudio{frames: wavFrames(s.t, c.clips...), hold: c.hold, closed: make(chan struct{}), hungUp: make(chan struct{})}
	s.audios = append(s.audios, a)
	s.reqs = append(s.reqs, req)
	return a, nil
}

// hangUp ends callID as a Genesys hang-up does: the call is forgotten
// (CallInfo answers ErrNoCall) and its open audio ends with io.EOF.
func (s *fakeSource) hangUp(callID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.calls, callID)
	for i, r := range s.reqs {
		if r.CallID == callID {
			a := s.audios[i]
			a.hangOnce.Do(func() { close(a.hungUp) })
		}
	}
}

// allClosed reports whether every Audio opened was closed exactly once.
func (s *fakeSource) allClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.audios {
		if a.closes.Load() != 1 {
			return false
		}
	}
	return true
}

// infoSource adds CallInfo to fakeSource.
type infoSource struct{ *fakeSource }

func (s infoSource) Call(ctx context.Context, callID string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.calls[callID]
	if !ok {
		return "", false, ErrNoCall
	}
	return c.ani, c.live, nil
}

type fakeAudio struct {
	frames []voicegate.Frame
	next   int
	hold   bool
	closed chan struct{}
	once   sync.Once
	closes atomic.Int32

	hungUp   chan struct{} // closed by fakeSource.hangUp: ReadFrame answers io.EOF
	hangOnce sync.Once

	mu       sync.Mutex
	notified []Event
}

func (a *fakeAudio) ReadFrame(ctx context.Context) (voicegate.Frame, error) {
	select {
	case <-a.closed:
		return voicegate.Frame{}, io.ErrClosedPipe
	default:
	}
	if a.next < len(a.frames) {
		a.next++
		return a.frames[a.next-1], nil
	}
	if !a.hold {
		return voicegate.Frame{}, io.EOF
	}
	select {
	case <-ctx.Done():
		return voicegate.Frame{}, ctx.Err()
	case <-a.closed:
		return voicegate.Frame{}, io.ErrClosedPipe
	case <-a.hungUp: // nil for an Audio made elsewhere: never ready
		return voicegate.Frame{}, io.EOF
	}
}

func (a *fakeAudio) Close() error {
	a.closes.Add(1)
	a.once.Do(func() { close(a.closed) })
	return nil
}

func (a *fakeAudio) NotifyResult(ctx context.Context, ev Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-a.closed:
		return errors.New("notified after Close")
	default:
	}
	a.notified = append(a.notified, ev)
	return nil
}

// env is a running test server.
type env struct {
	t     testing.TB
	srv   *Server
	http  *httptest.Server
	src   *fakeSource
	store *CredentialStore
	mem   *credstore.Memory
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newEnv starts a server with the offline engine, a memory store keeping
// audio in a temporary directory, a fake source and the development
// authenticator. edit may change the options.
func newEnv(t testing.TB, edit func(*Options, *fakeSource)) *env {
	t.Helper()
	e := &env{t: t, src: newFakeSource(t), mem: credstore.NewMemory(), logs: &syncBuffer{}}
	e.store = &CredentialStore{Store: e.mem, AudioDir: t.TempDir(), AudioKey: []byte("0123456789abcdef0123456789abcdef")}
	auth, err := NewDevAuthenticator(testToken)
	if err != nil {
		t.Fatal(err)
	}
	opts := &Options{
		Engine:           offline.New(nil),
		Store:            e.store,
		Source:           e.src,
		Authenticator:    auth,
		AuthFailureDelay: 20 * time.Millisecond,
		Logger:           slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Verify:           &daspeak.Config{AudioTotalDuration: 4 * time.Second},
		Register:         &daspeak.Config{AudioTotalDuration: 8 * time.Second},
	}
	if edit != nil {
		edit(opts, e.src)
	}
	e.srv, err = NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.http = httptest.NewServer(e.srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		e.http.Close()
		if !e.src.allClosed() {
			t.Error("an Audio was not closed exactly once")
		}
	})
	return e
}

// post calls the API with the development token and decodes the answer.
func (e *env) post(path string, body any) (int, map[string]any) {
	e.t.Helper()
	return e.postAs(testToken, path, body)
}

func (e *env) postAs(token, path string, body any) (int, map[string]any) {
	e.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		e.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/agent"+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			e.t.Fatalf("%s: answer %q: %v", path, raw, err)
		}
	}
	return resp.StatusCode, m
}

// start starts an operation and fails the test unless it is accepted.
func (e *env) start(path, callID, callerID string, extra map[string]any) map[string]any {
	e.t.Helper()
	body := map[string]any{"call_id": callID, "caller_id": callerID}
	for k, v := range extra {
		body[k] = v
	}
	code, m := e.post(path, body)
	if code != http.StatusAccepted {
		e.t.Fatalf("%s %s: %d %v", path, callID, code, m)
	}
	return m
}

// sseMsg is one parsed event-stream message.
type sseMsg struct {
	ID    string
	Event string
	Data  map[string]any
	Raw   string
}

// events reads an event stream (URL path from the API) to its end.
func (e *env) events(path, lastID string) (int, []sseMsg) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.http.URL+path, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	return resp.StatusCode, readSSE(e.t, resp)
}

// readSSE reads an event stream to its end.
func readSSE(t testing.TB, resp *http.Response) []sseMsg {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	var out []sseMsg
	var cur sseMsg
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Event != "" {
				if err := json.Unmarshal([]byte(cur.Raw), &cur.Data); err != nil {
					t.Fatalf("data %q: %v", cur.Raw, err)
				}
				out = append(out, cur)
			}
			cur = sseMsg{}
		case strings.HasPrefix(line, "id: "):
			cur.ID = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.Event = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.Raw += line[6:]
		}
	}
	return out
}

// checkStream checks the invariants of one operation's stream: ids 1..n
// in order, gap-free and equal to seq; first started; exactly one
// terminal event, last; every event of the operation, call and caller.
func checkStream(t testing.TB, msgs []sseMsg, op map[string]any) sseMsg {
	t.Helper()
	if len(msgs) < 2 {
		t.Fatalf("stream has %d events", len(msgs))
	}
	if msgs[0].Event != string(EventStarted) {
		t.Fatalf("first event %q", msgs[0].Event)
	}
	for i, m := range msgs {
		want := strconv.Itoa(i + 1)
		if m.ID != want || m.Data["seq"] != float64(i+1) {
			t.Fatalf("event %d: id %q seq %v", i, m.ID, m.Data["seq"])
		}
		if m.Data["type"] != m.Event {
			t.Fatalf("event %d: type %v, event %q", i, m.Data["type"], m.Event)
		}
		for _, k := range []string{"operation_id", "call_id", "caller_id", "kind"} {
			if m.Data[k] != op[k] {
				t.Fatalf("event %d (%s): %s %v, want %v", i, m.Event, k, m.Data[k], op[k])
			}
		}
		term := IsTerminal(daspeak.EventType(m.Event))
		if term != (i == len(msgs)-1) {
			t.Fatalf("event %d (%s): terminal %v", i, m.Event, term)
		}
		if term && m.Data["reason"] == nil {
			t.Fatalf("terminal event without reason: %s", m.Raw)
		}
	}
	return msgs[len(msgs)-1]
}

package audiohook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/codec"
)

const monoPCMU = `[{"type":"audio","format":"PCMU","channels":["external"],"rate":8000}]`

// A peer that vanishes without closing (half-open behind a proxy) sends
// nothing more: the session ends after IdleTimeout instead of living, and
// holding its readers, forever.
func TestIdleTimeoutEndsHalfOpenSession(t *testing.T) {
	got := make(chan error, 1)
	u := testServer(t, &ServerOptions{Keys: StaticKeys{testKey: nil}, IdleTimeout: 200 * time.Millisecond}, func(s *Session) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		for err == nil {
			_, err = s.ReadFrame(ctx)
		}
		got <- err
		<-s.Done()
	})
	ctx := ctxT(t)
	r := openMono(t, ctx, u)
	defer r.c.CloseNow()
	if err := r.c.Write(ctx, websocket.MessageBinary, make([]byte, 160)); err != nil {
		t.Fatal(err)
	}
	// Now silence: no ping, no audio, no close.
	select {
	case err := <-got:
		var se *voicegate.StreamError
		if !errors.As(err, &se) || !errors.Is(err, ErrIdleTimeout) {
			t.Fatalf("ReadFrame ended with %v, want a *voicegate.StreamError wrapping ErrIdleTimeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("session of a silent peer did not end")
	}
}

// The recorder fills a discarded gap with silence up to
// voicegate.MaxGapFill, not up to an hour.
func TestRecorderGapFillCap(t *testing.T) {
	dir := t.TempDir()
	done := make(chan struct{})
	u := testServer(t, &ServerOptions{Keys: StaticKeys{testKey: nil}, Recorder: DirSink(dir)}, func(s *Session) {
		<-s.Done()
		close(done)
	})
	ctx := ctxT(t)
	r := openMono(t, ctx, u)
	defer r.c.CloseNow()
	frame := make([]byte, 160) // 20 ms
	send := func(typ, params string) {
		r.seq++
		if err := r.c.Write(ctx, websocket.MessageText, []byte(tmsg(r.id, typ, r.seq, 1, "PT0S", params))); err != nil {
			t.Fatal(err)
		}
	}
	r.c.Write(ctx, websocket.MessageBinary, frame)
	send("discarded", `{"start":"PT0.02S","discarded":"PT1S"}`)
	r.c.Write(ctx, websocket.MessageBinary, frame)
	send("discarded", `{"start":"PT1.04S","discarded":"PT3600S"}`)
	r.c.Write(ctx, websocket.MessageBinary, frame)
	if _, err := r.roundTrip(ctx, "close", `{"reason":"end"}`); err != nil {
		t.Fatal(err)
	}
	r.c.Close(websocket.StatusNormalClosure, "")
	<-done
	b, err := os.ReadFile(filepath.Join(dir, r.id+".wav"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := codec.ParseWAV(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3*160 + 8000; len(w.Data) != want {
		t.Fatalf("WAV holds %d bytes of audio, want %d (three frames and the 1 s gap; the 1 h gap is not filled)", len(w.Data), want)
	}
}

// Messages recorded before open (here: pings of a session refused with
// disconnect "unauthorized", which never opens) are kept up to a bound.
func TestRecorderPreOpenBufferBounded(t *testing.T) {
	stats := make(chan Stats, 1)
	u := testServer(t, &ServerOptions{Keys: StaticKeys{"other": nil}, AuthFailure: AuthDisconnect, AuthFailureDelay: -1,
		Recorder: DirSink(t.TempDir())}, func(s *Session) {
		<-s.Done()
		stats <- s.Stats()
	})
	ctx := ctxT(t)
	r, err := dialRaw(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer r.c.CloseNow()
	go func() {
		for {
			if _, _, err := r.c.Read(ctx); err != nil {
				return
			}
		}
	}()
	for range 100 {
		r.seq++
		if err := r.c.Write(ctx, websocket.MessageText, []byte(tmsg(r.id, "ping", r.seq, 0, "PT0S", "{}"))); err != nil {
			t.Fatal(err)
		}
	}
	r.seq++
	r.c.Write(ctx, websocket.MessageText, []byte(tmsg(r.id, "close", r.seq, 0, "PT0S", `{"reason":"end"}`)))
	time.Sleep(100 * time.Millisecond)
	r.c.Close(websocket.StatusNormalClosure, "")
	st := <-stats
	if st.Pings != 100 || st.RecordDropped < 200-recordPending {
		t.Fatalf("pings %d, record entries dropped %d; want 100 pings and all but %d of the ~200 entries dropped", st.Pings, st.RecordDropped, recordPending)
	}
}

// The Genesys client answers an event without entities, or with an entity
// without data, with error 500 and close: SendEvent refuses to send them.
func TestSendEventRefusesEventsGenesysRejects(t *testing.T) {
	errs := make(chan []error, 1)
	u := testServer(t, &ServerOptions{Keys: StaticKeys{testKey: nil}}, func(s *Session) {
		ctx := ctxT(t)
		if _, err := s.Open(ctx); err != nil {
			t.Error(err)
		}
		errs <- []error{
			s.SendEvent(ctx),
			s.SendEvent(ctx, wire.Entity{Type: "transcript"}),
			s.SendEvent(ctx, wire.Entity{Type: "transcript", Data: json.RawMessage("null")}),
			s.SendEvent(ctx, wire.Entity{Data: json.RawMessage(`{}`)}),
			s.SendEvent(ctx, wire.Entity{Type: "x", Data: json.RawMessage(`{"a":1}`)}),
		}
	})
	ctx := ctxT(t)
	r := openMono(t, ctx, u)
	defer r.c.CloseNow()
	got := <-errs
	for i, err := range got[:4] {
		if !errors.Is(err, ErrBadEvent) {
			t.Errorf("event %d: %v, want ErrBadEvent", i, err)
		}
	}
	if got[4] != nil {
		t.Errorf("valid event: %v", got[4])
	}
	// Only the valid event reached the wire.
	_, b, err := r.c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Type       string          `json:"type"`
		Parameters json.RawMessage `json:"parameters"`
	}
	if json.Unmarshal(b, &m) != nil || m.Type != "event" || string(m.Parameters) != `{"entities":[{"type":"x","data":{"a":1}}]}` {
		t.Errorf("sent %s", b)
	}
}

type slowSink struct{ delay time.Duration }

type slowWriter struct{ delay time.Duration }

func (w slowWriter) Write(p []byte) (int, error) { time.Sleep(w.delay); return len(p), nil }
func (w slowWriter) Close() error                { return nil }

func (s slowSink) Create(context.Context, string) (io.WriteCloser, io.WriteCloser, error) {
	return slowWriter(s), slowWriter(s), nil
}

// The recorder writes on its own goroutine: a sink that takes 100 ms per
// write does not delay pongs.
func TestSlowRecorderDoesNotDelayPong(t *testing.T) {
	done := make(chan struct{})
	u := testServer(t, &ServerOptions{Keys: StaticKeys{testKey: nil}, Recorder: slowSink{100 * time.Millisecond}}, func(s *Session) {
		<-s.Done()
		close(done)
	})
	ctx := ctxT(t)
	r := openMono(t, ctx, u)
	defer r.c.CloseNow()
	for range 5 {
		r.c.Write(ctx, websocket.MessageBinary, make([]byte, 160))
	}
	rtt, err := r.roundTrip(ctx, "ping", "{}")
	if err != nil {
		t.Fatal(err)
	}
	if rtt > 300*time.Millisecond { // on the recorder's path it takes 500 ms or more
		t.Errorf("pong took %v behind a slow recorder", rtt)
	}
	r.c.CloseNow()
	<-done // the recording is finished with the session
}

// Architect may pass input variables that are not strings; the reference
// server opens the session, and so do we, exposing every value.
func TestOpenInputVariablesAnyJSON(t *testing.T) {
	infos := make(chan *OpenInfo, 1)
	u := testServer(t, &ServerOptions{Keys: StaticKeys{testKey: nil}}, func(s *Session) {
		info, err := s.Open(ctxT(t))
		if err != nil {
			t.Error(err)
		}
		infos <- info
	})
	ctx := ctxT(t)
	r, err := dialRaw(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer r.c.CloseNow()
	params := openParams(monoPCMU, func(m map[string]any) {
		m["inputVariables"] = json.RawMessage(`{"a":1,"b":"x","c":{"k":true},"d":null}`)
	})
	if _, err := r.roundTrip(ctx, "open", params); err != nil {
		t.Fatal(err)
	}
	info := <-infos
	if info == nil {
		t.Fatal("session did not open")
	}
	iv, raw := info.Params.InputVariables, info.Params.RawInputVariables
	if iv["a"] != "1" || iv["b"] != "x" || iv["c"] != `{"k":true}` || iv["d"] != "null" || len(iv) != 4 {
		t.Errorf("InputVariables %q", iv)
	}
	if string(raw["a"]) != "1" || string(raw["b"]) != `"x"` || string(raw["c"]) != `{"k":true}` {
		t.Errorf("RawInputVariables %q", raw)
	}
}

// Frames dropped because the application read too slowly are logged, not
// only counted.
func TestDroppedFramesLogged(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	done := make(chan struct{})
	opts := &ServerOptions{Keys: StaticKeys{testKey: nil}, BufferFrames: 2,
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))}
	u := testServer(t, opts, func(s *Session) {
		<-s.Done() // reads nothing
		close(done)
	})
	ctx := ctxT(t)
	r := openMono(t, ctx, u)
	for range 5 {
		r.c.Write(ctx, websocket.MessageBinary, make([]byte, 160))
	}
	r.roundTrip(ctx, "close", `{"reason":"end"}`)
	r.c.Close(websocket.StatusNormalClosure, "")
	<-done
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "frames dropped") || !strings.Contains(logs.String(), "dropped=3") {
		t.Fatalf("log:\n%s", logs.String())
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// openMono dials u and opens a mono PCMU session, failing t on an error.
func openMono(t *testing.T, ctx context.Context, u string) *rawSession {
	t.Helper()
	r, err := dialRaw(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.roundTrip(ctx, "open", openParams(monoPCMU, nil)); err != nil {
		r.c.CloseNow()
		t.Fatal(err)
	}
	return r
}

// doneSink records into memory and notes when the recorder has closed
// both files.
type doneSink struct {
	mu      sync.Mutex
	closed  int
	sidecar *doneWriter
}

type doneWriter struct {
	bytes.Buffer
	s *doneSink
}

func (w *doneWriter) Close() error {
	time.Sleep(20 * time.Millisecond) // a slow disk widens the window
	w.s.mu.Lock()
	w.s.closed++
	w.s.mu.Unlock()
	return nil
}

func (s *doneSink) Create(context.Context, string) (io.WriteCloser, io.WriteCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sidecar = &doneWriter{s: s}
	return &doneWriter{s: s}, s.sidecar, nil
}

func (s *doneSink) filesClosed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// A client holding the closed answer finds the recording complete: the
// server closes both files before it sends closed, and records closed.
func TestRecordingCompleteAtClosed(t *testing.T) {
	sink := &doneSink{}
	u := testServer(t, &ServerOptions{Keys: StaticKeys{testKey: nil}, Recorder: sink}, func(s *Session) {
		<-s.Done()
	})
	ctx := ctxT(t)
	r := openMono(t, ctx, u)
	defer r.c.CloseNow()
	r.c.Write(ctx, websocket.MessageBinary, make([]byte, 160))
	if _, err := r.roundTrip(ctx, "close", `{"reason":"end"}`); err != nil {
		t.Fatal(err)
	}
	if n := sink.filesClosed(); n != 2 {
		t.Fatalf("%d of 2 recording files closed when the client had closed", n)
	}
	var side struct {
		Messages []struct {
			Direction string
			Message   struct{ Type string }
		}
	}
	if err := json.Unmarshal(sink.sidecar.Bytes(), &side); err != nil {
		t.Fatal(err)
	}
	if m := side.Messages; len(m) == 0 || m[len(m)-1].Direction != "out" || m[len(m)-1].Message.Type != "closed" {
		t.Fatalf("sidecar messages %+v, want the last one closed, sent", m)
	}
}

package audiohook

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// blockSink's files block in Close until release is closed.
type blockSink struct {
	release chan struct{}
	mu      sync.Mutex
	closed  int
}

type blockWriter struct {
	bytes.Buffer
	s *blockSink
}

func (w *blockWriter) Close() error {
	<-w.s.release
	w.s.mu.Lock()
	w.s.closed++
	w.s.mu.Unlock()
	return nil
}

func (s *blockSink) Create(context.Context, string) (io.WriteCloser, io.WriteCloser, error) {
	return &blockWriter{s: s}, &blockWriter{s: s}, nil
}

// A sink that does not finish does not hold back closed past the bound
// (here WriteTimeout): the client gets closed, the delay is logged, and
// the recording still completes before Done.
func TestRecordingSlowSinkClosed(t *testing.T) {
	sink := &blockSink{release: make(chan struct{})}
	var logs bytes.Buffer
	var mu sync.Mutex
	done := make(chan struct{})
	opts := &ServerOptions{Keys: StaticKeys{testKey: nil}, Recorder: sink, WriteTimeout: 300 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))}
	u := testServer(t, opts, func(s *Session) {
		<-s.Done()
		close(done)
	})
	ctx := ctxT(t)
	r := openMono(t, ctx, u)
	defer r.c.CloseNow()
	released := false
	defer func() {
		if !released {
			close(sink.release)
		}
	}()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := r.roundTrip(cctx, "close", `{"reason":"end"}`); err != nil {
		t.Fatalf("no closed while the sink blocks: %v", err)
	}
	r.c.CloseNow() // the session ends once the recording is complete
	select {
	case <-done:
		t.Fatal("the session ended before its recording was complete")
	case <-time.After(50 * time.Millisecond):
	}
	close(sink.release)
	released = true
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end after the sink finished")
	}
	sink.mu.Lock()
	n := sink.closed
	sink.mu.Unlock()
	if n != 2 {
		t.Errorf("%d of 2 recording files closed at Done", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "recording not finished at closed") {
		t.Errorf("log:\n%s", logs.String())
	}
}

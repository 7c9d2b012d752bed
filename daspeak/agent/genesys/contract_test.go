package genesys

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/audiohook/audiohooktest"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/daspeak/agent"
)

// readToEnd reads a until an error, keeping the frames.
func readToEnd(ctx context.Context, a agent.Audio) ([]voicegate.Frame, error) {
	var out []voicegate.Frame
	for {
		f, err := a.ReadFrame(ctx)
		if err != nil {
			return out, err
		}
		out = append(out, f.Clone())
	}
}

// TestAudioFrameReaderContract runs an operation's Audio through the
// voicegate.FrameReader contract: io.EOF after a clean end and on every
// later call, a *voicegate.StreamError after the queued frames of an
// abnormal end (never a bare context error of Run's), concurrent readers
// each getting different frames, a cancelled read losing nothing, and
// net.ErrClosed at once after Close.
func TestAudioFrameReaderContract(t *testing.T) {
	tone := func(d time.Duration) voicegate.FrameReader { return audiohooktest.ToneSource(d, 440) }
	fast := &audiohooktest.StreamOptions{Chunk: 20 * time.Millisecond, Fast: true}
	// setup serves a Source, dials a call and opens an operation on it.
	setup := func(t *testing.T, runCtx context.Context) (*Source, *audiohooktest.Client, agent.Audio, *hookServer) {
		t.Helper()
		src := NewSource(nil)
		hs := newHookServerCtx(t, src, runCtx)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		cl := dial(t, ctx, hs.url, convID, "tel:+34600000000")
		t.Cleanup(func() { cl.CloseNow() })
		waitFor(t, "the session", func() bool { return src.Stats().Sessions == 1 })
		a, err := src.Open(ctx, agent.SourceRequest{OperationID: "op_1", CallID: convID})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		return src, cl, a, hs
	}
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		return c
	}

	t.Run("clean end with concurrent readers", func(t *testing.T) {
		c := ctx(t)
		_, cl, a, hs := setup(t, context.Background())
		var mu sync.Mutex
		seen := map[time.Duration]int{}
		ends := make(chan error, 4)
		for range 4 {
			go func() {
				for {
					f, err := a.ReadFrame(c)
					if err != nil {
						ends <- err
						return
					}
					mu.Lock()
					seen[f.Timestamp]++
					mu.Unlock()
				}
			}()
		}
		if err := cl.Stream(c, tone(time.Second), fast); err != nil {
			t.Fatal(err)
		}
		if err := cl.Close(c, wire.CloseEnd); err != nil {
			t.Fatal(err)
		}
		for range 4 {
			if err := <-ends; err != io.EOF {
				t.Errorf("a reader ended with %v, want io.EOF", err)
			}
		}
		if len(seen) != 50 {
			t.Errorf("%d distinct frames read, want 50", len(seen))
		}
		for ts, n := range seen {
			if n != 1 {
				t.Errorf("frame at %v read %d times", ts, n)
			}
		}
		for range 2 {
			if _, err := a.ReadFrame(c); err != io.EOF {
				t.Errorf("read after the end: %v, want io.EOF", err)
			}
		}
		if err := <-hs.runs; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	t.Run("abnormal end is a StreamError after the queued frames", func(t *testing.T) {
		c := ctx(t)
		src, cl, a, hs := setup(t, context.Background())
		if err := cl.Stream(c, tone(200*time.Millisecond), fast); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the frames", func() bool { return src.Stats().FramesQueued == 10 })
		cl.CloseNow() // the connection is lost, without the close transaction
		frames, err := readToEnd(c, a)
		var se *voicegate.StreamError
		if len(frames) != 10 || !errors.As(err, &se) {
			t.Fatalf("%d frames, then %v; want 10, then a *voicegate.StreamError", len(frames), err)
		}
		if _, err2 := a.ReadFrame(c); !errors.As(err2, &se) {
			t.Errorf("second read after the end: %v", err2)
		}
		<-hs.runs
	})

	t.Run("Run stopping is a StreamError, not a context error", func(t *testing.T) {
		c := ctx(t)
		runCtx, stopRun := context.WithCancel(context.Background())
		defer stopRun()
		src, cl, a, hs := setup(t, runCtx)
		if err := cl.Stream(c, tone(100*time.Millisecond), fast); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the frames", func() bool { return src.Stats().FramesQueued == 5 })
		stopRun()
		if err := <-hs.runs; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v", err)
		}
		frames, err := readToEnd(c, a)
		var se *voicegate.StreamError
		if len(frames) != 5 || !errors.As(err, &se) || !errors.Is(se.Err, context.Canceled) {
			t.Fatalf("%d frames, then %v; want 5, then a *voicegate.StreamError wrapping Run's context.Canceled", len(frames), err)
		}
		if err == context.Canceled {
			t.Fatal("a bare context.Canceled reads as the operation's own ctx")
		}
	})

	t.Run("detached is a StreamError wrapping ErrDetached", func(t *testing.T) {
		c := ctx(t)
		src, _, a, _ := setup(t, context.Background())
		b, err := src.Open(c, agent.SourceRequest{OperationID: "op_2", CallID: convID})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		_, err = a.ReadFrame(c)
		var se *voicegate.StreamError
		if !errors.As(err, &se) || !errors.Is(err, ErrDetached) {
			t.Fatalf("detached: %v", err)
		}
	})

	t.Run("cancelled read leaves the audio usable", func(t *testing.T) {
		c := ctx(t)
		_, cl, a, _ := setup(t, context.Background())
		short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if _, err := a.ReadFrame(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("read on an idle call: %v", err)
		}
		if err := cl.Stream(c, tone(100*time.Millisecond), fast); err != nil {
			t.Fatal(err)
		}
		if err := cl.Close(c, wire.CloseEnd); err != nil {
			t.Fatal(err)
		}
		if frames, err := readToEnd(c, a); len(frames) != 5 || err != io.EOF {
			t.Fatalf("%d frames, %v; want 5 and io.EOF", len(frames), err)
		}
	})

	t.Run("Close while reading", func(t *testing.T) {
		c := ctx(t)
		src, cl, a, _ := setup(t, context.Background())
		if err := cl.Stream(c, tone(100*time.Millisecond), fast); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the frames", func() bool { return src.Stats().FramesQueued == 5 })
		if _, err := a.ReadFrame(c); err != nil {
			t.Fatal(err)
		}
		a.Close()
		// Queued frames are not returned after Close.
		if _, err := a.ReadFrame(c); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadFrame after Close: %v", err)
		}
		if err := a.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

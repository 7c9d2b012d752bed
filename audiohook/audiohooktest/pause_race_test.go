package audiohooktest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/wire"
)

// answerCounter counts the client's paused and resumed messages as the
// server handled them (ServerOptions.OnMessage) and wakes a waiter.
type answerCounter struct {
	paused, resumed atomic.Int64
	wake            chan struct{}
}

func newAnswerCounter() *answerCounter { return &answerCounter{wake: make(chan struct{}, 1)} }

func (a *answerCounter) onMessage(_ *audiohook.Session, m *wire.Message) {
	switch m.Type {
	case wire.TypePaused:
		a.paused.Add(1)
	case wire.TypeResumed:
		a.resumed.Add(1)
	default:
		return
	}
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// waitResumed waits until the server has handled at least n resumed
// messages. It fails when ctx ends or the session ends first.
func (a *answerCounter) waitResumed(ctx context.Context, s *audiohook.Session, n int64) error {
	for a.resumed.Load() < n {
		select {
		case <-a.wake:
		case <-ctx.Done():
			return fmt.Errorf("client answered %d of %d resumes: %w", a.resumed.Load(), n, ctx.Err())
		case <-s.Done():
			if a.resumed.Load() >= n {
				return nil
			}
			return fmt.Errorf("session ended after %d of %d resumed answers", a.resumed.Load(), n)
		}
	}
	return nil
}

// TestInteropPauseResumeStorm pauses and resumes a fast stream many times:
// the client must never send audio after paused or before resumed, which
// the server would answer with disconnect "error", and must answer every
// pause with paused and every resume with resumed.
//
// The server keeps up to stormWindow pause/resume pairs unanswered, so
// pauses and resumes are in flight while audio is, but it never runs ahead
// of the client by more than that: the disconnect at the end is not queued
// behind a backlog the client needs an unknown time to work through (it
// used to be queued behind up to ~1,700 unanswered messages and the close
// timer, started when disconnect was sent, could expire on a loaded
// machine before the client even read the disconnect).
func TestInteropPauseResumeStorm(t *testing.T) {
	const (
		pairs       = 1000
		stormWindow = 32
	)
	acks := newAnswerCounter()
	opts := signedServerOptions(t)
	opts.OnMessage = acks.onMessage
	// The close timer only bounds a failure; the test context bounds the run.
	opts.CloseTimeout = 20 * time.Second
	type result struct{ err error }
	res := make(chan result, 1)
	url := testServer(t, opts, func(s *audiohook.Session) {
		ctx := ctxT(t)
		if _, err := s.Open(ctx); err != nil {
			res <- result{err: err}
			return
		}
		// The storm starts once audio flows, so pauses race with it.
		if _, err := s.ReadFrame(ctx); err != nil {
			res <- result{err: fmt.Errorf("first frame: %w", err)}
			return
		}
		end := make(chan error, 1)
		go func() {
			for {
				if _, err := s.ReadFrame(ctx); err != nil {
					end <- err
					return
				}
			}
		}()
		storm := func() error {
			for i := int64(0); i < pairs; i++ {
				if err := acks.waitResumed(ctx, s, i-stormWindow); err != nil {
					return err
				}
				if err := s.Pause(ctx); err != nil {
					return fmt.Errorf("pause %d: %w", i+1, err)
				}
				if err := s.Resume(ctx); err != nil {
					return fmt.Errorf("resume %d: %w", i+1, err)
				}
			}
			// Every resume answered: the client has nothing left to
			// answer when disconnect arrives.
			return acks.waitResumed(ctx, s, pairs)
		}
		err := storm()
		if derr := s.Disconnect(ctx, wire.ReasonCompleted, ""); err == nil && derr != nil {
			err = fmt.Errorf("disconnect: %w", derr)
		}
		switch rerr := <-end; {
		case errors.Is(rerr, io.EOF):
		case err == nil:
			err = fmt.Errorf("read: %w", rerr)
		default:
			// A protocol violation ends the storm with ErrNotOpen; the
			// reader has the cause.
			err = fmt.Errorf("%w; read: %w", err, rerr)
		}
		res <- result{err: err}
	})
	ctx := ctxT(t)
	c, err := Dial(ctx, url, signedDial(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	streamErr := c.Stream(ctx, ToneSource(time.Hour, 440, 880), &StreamOptions{Fast: true, Chunk: 200 * time.Millisecond})
	closeErr := c.Close(ctx, "")
	r := <-res
	if r.err != nil {
		t.Fatalf("server: %v", r.err)
	}
	var de *audiohook.DisconnectError
	if !errors.As(streamErr, &de) || de.Reason != wire.ReasonCompleted {
		t.Fatalf("stream: %v, want disconnect completed", streamErr)
	}
	if closeErr != nil {
		t.Fatalf("close: %v", closeErr)
	}
	if p, q := acks.paused.Load(), acks.resumed.Load(); p != pairs || q != pairs {
		t.Fatalf("client answered %d pauses and %d resumes, want %d each", p, q, pairs)
	}
}

// pausedGate passes the frames of src to Client.Stream and observes the
// media time that runs while the client is paused: Stream reads and drops
// one frame per chunk while paused, and a read follows the previous
// frame's emission. At the read after k frames were read while paused,
// at least k frames of media time have run since the pause began; the gate
// then closes reached and, when release is set, holds that read until
// release is closed, so the client is resumed at that exact media time.
type pausedGate struct {
	src     voicegate.FrameReader
	c       *Client
	k       int
	reached chan struct{}
	release <-chan struct{}
	n       int // reads while paused
}

func (g *pausedGate) ReadFrame(ctx context.Context) (voicegate.Frame, error) {
	if g.c.Paused() {
		g.n++
		if g.n == g.k+1 {
			close(g.reached)
			if g.release != nil {
				select {
				case <-g.release:
				case <-ctx.Done():
					return voicegate.Frame{}, ctx.Err()
				}
			}
		}
	}
	return g.src.ReadFrame(ctx)
}

// waitPaused waits until the server has handled at least n paused
// messages.
func (a *answerCounter) waitPaused(ctx context.Context, s *audiohook.Session, n int64) error {
	for a.paused.Load() < n {
		select {
		case <-a.wake:
		case <-ctx.Done():
			return fmt.Errorf("client answered %d of %d pauses: %w", a.paused.Load(), n, ctx.Err())
		case <-s.Done():
			if a.paused.Load() >= n {
				return nil
			}
			return fmt.Errorf("session ended after %d of %d paused answers", a.paused.Load(), n)
		}
	}
	return nil
}

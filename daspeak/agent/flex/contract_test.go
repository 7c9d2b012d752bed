package flex

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

// TestAudioFrameReaderContract runs an operation's Audio (a Media Stream
// through the Source) through the voicegate.FrameReader contract: io.EOF
// after Twilio's stop and on every later call, concurrent readers each
// getting different frames, a *voicegate.StreamError after the queued
// frames when the WebSocket closes without stop, a cancelled read losing
// nothing, and net.ErrClosed after Close, also for a read blocked in it.
func TestAudioFrameReaderContract(t *testing.T) {
	const op = "op_0123456789abcdef0123456789abcdef"
	open := func(t *testing.T, rg *rig) (context.Context, agent.Audio) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		a, err := rg.src.Open(ctx, agent.SourceRequest{OperationID: op, CallID: twiliotest.SID("CA"), CallerID: "+34600000000"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		return ctx, a
	}
	// frames is the number of 20 ms frames of the recording the rig plays.
	frames := (len(voice(t)) - 44 + 159) / 160

	t.Run("clean end with concurrent readers", func(t *testing.T) {
		rg := newRig(t, nil)
		ctx, a := open(t, rg)
		var mu sync.Mutex
		seen := map[uint64]int{}
		ends := make(chan error, 4)
		for range 4 {
			go func() {
				for {
					f, err := a.ReadFrame(ctx)
					if err != nil {
						ends <- err
						return
					}
					mu.Lock()
					seen[f.Seq]++
					mu.Unlock()
				}
			}()
		}
		for range 4 {
			if err := <-ends; err != io.EOF {
				t.Errorf("a reader ended with %v, want io.EOF", err)
			}
		}
		if len(seen) < frames-1 || len(seen) > frames+1 {
			t.Errorf("%d distinct frames read, the recording has %d", len(seen), frames)
		}
		for seq, n := range seen {
			if n != 1 {
				t.Errorf("frame %d read %d times", seq, n)
			}
		}
		for range 2 {
			if _, err := a.ReadFrame(ctx); err != io.EOF {
				t.Errorf("read after the end: %v, want io.EOF", err)
			}
		}
		<-rg.played
	})

	t.Run("WebSocket closed without stop is a StreamError after the queued frames", func(t *testing.T) {
		rg := newRig(t, func(_ *twiliotest.CreatedStream, o *twiliotest.Options) { o.OmitStop = true })
		ctx, a := open(t, rg)
		<-rg.played // all sent, then the WebSocket closed
		n := 0
		var err error
		for err == nil {
			_, err = a.ReadFrame(ctx)
			n++
		}
		var se *voicegate.StreamError
		if n-1 < frames-1 || !errors.As(err, &se) {
			t.Fatalf("%d frames, then %v; want %d, then a *voicegate.StreamError", n-1, err, frames)
		}
		if _, err := a.ReadFrame(ctx); !errors.As(err, &se) {
			t.Errorf("second read after the end: %v", err)
		}
	})

	t.Run("cancelled read leaves the audio usable", func(t *testing.T) {
		hold := make(chan struct{})
		rg := newRig(t, func(_ *twiliotest.CreatedStream, o *twiliotest.Options) { o.HoldOpen = hold })
		ctx, a := open(t, rg)
		n := 0
		for ; n < frames-1; n++ {
			if _, err := a.ReadFrame(ctx); err != nil {
				t.Fatalf("frame %d: %v", n, err)
			}
		}
		// Drain what is left, until the held-open call is idle.
		for {
			short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			_, err := a.ReadFrame(short)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		close(hold) // stop follows
		if _, err := a.ReadFrame(ctx); err != io.EOF {
			t.Fatalf("after a cancelled read and stop: %v, want io.EOF", err)
		}
		if n < frames-1 || n > frames+1 {
			t.Errorf("%d frames read, the recording has %d", n, frames)
		}
		<-rg.played
	})

	t.Run("Close while reading", func(t *testing.T) {
		hold := make(chan struct{})
		defer close(hold)
		rg := newRig(t, func(_ *twiliotest.CreatedStream, o *twiliotest.Options) { o.HoldOpen = hold })
		ctx, a := open(t, rg)
		if _, err := a.ReadFrame(ctx); err != nil {
			t.Fatal(err)
		}
		blocked := make(chan error, 1)
		go func() {
			for {
				if _, err := a.ReadFrame(ctx); err != nil {
					blocked <- err
					return
				}
			}
		}()
		time.Sleep(20 * time.Millisecond)
		if err := a.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := <-blocked; !errors.Is(err, net.ErrClosed) {
			t.Errorf("a read in progress ended with %v, want net.ErrClosed", err)
		}
		if _, err := a.ReadFrame(ctx); !errors.Is(err, net.ErrClosed) {
			t.Errorf("ReadFrame after Close: %v", err)
		}
		<-rg.played
	})
}

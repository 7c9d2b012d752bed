package audiohook

import (
	"errors"
	"io"
	"testing"
	"time"
)

// TestInteropPauseResumeStorm pauses and resumes a fast stream many times:
// the client must never send audio after paused or before resumed, which
// the server would answer with disconnect "error".
func TestInteropPauseResumeStorm(t *testing.T) {
	res := make(chan error, 1)
	url := testServer(t, signedServerOptions(t), func(s *Session) {
		ctx := ctxT(t)
		if _, err := s.Open(ctx); err != nil {
			res <- err
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
		for i := 0; i < 1000; i++ {
			if s.Pause(ctx) != nil || s.Resume(ctx) != nil {
				break
			}
		}
		_ = s.Disconnect(ctx, ReasonCompleted, "")
		err := <-end
		if errors.Is(err, io.EOF) {
			err = nil
		}
		res <- err
	})
	ctx := ctxT(t)
	c, err := Dial(ctx, url, signedDial(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	streamErr := c.Stream(ctx, ToneSource(time.Hour, 440, 880), &StreamOptions{Fast: true, Chunk: 200 * time.Millisecond})
	_ = c.Close(ctx, "")
	if err := <-res; err != nil {
		t.Fatalf("server: %v", err)
	}
	var de *DisconnectError
	if !errors.As(streamErr, &de) || de.Reason != ReasonCompleted {
		t.Fatalf("stream: %v, want disconnect completed", streamErr)
	}
}

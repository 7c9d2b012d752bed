package audiohooktest

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/wire"
)

// logBuffer is an io.Writer safe for the session's goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSessionLag: a consumer that reads 200 ms frames every 400 ms falls
// behind the real-time client: Lag passes the budget, frames are counted
// in FramesLagged and one warning is logged; a prompt consumer's lag stays
// small and nothing is logged.
func TestSessionLag(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pause time.Duration
	}{{"slow", 400 * time.Millisecond}, {"prompt", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logBuffer{}
			opts := signedServerOptions(t)
			opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
			res := make(chan audiohook.Stats, 1)
			url := testServer(t, opts, func(s *audiohook.Session) {
				ctx := ctxT(t)
				if _, err := s.Open(ctx); err != nil {
					res <- audiohook.Stats{}
					return
				}
				for {
					if _, err := s.ReadFrame(ctx); err != nil {
						break
					}
					time.Sleep(tc.pause)
				}
				res <- s.Stats()
			})
			ctx := ctxT(t)
			c, err := Dial(ctx, url, signedDial(t, &DialOptions{Media: []wire.MediaParameter{wire.MediaPCMUExternal}}))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Stream(ctx, ToneSource(2*time.Second), &StreamOptions{Chunk: 200 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(ctx, ""); err != nil {
				t.Fatal(err)
			}
			st := <-res
			warnings := strings.Count(logs.String(), "lag over budget")
			if st.FramesRead != 10 {
				t.Fatalf("read %d frames, want 10: %+v", st.FramesRead, st)
			}
			if tc.pause > 0 {
				// Frame k is read about k×400 ms after the first, due
				// k×200 ms after it.
				if st.Lag < 900*time.Millisecond || st.MaxLag < st.Lag || st.FramesLagged < 5 || warnings != 1 {
					t.Fatalf("slow consumer: lag %v max %v lagged %d, %d warnings:\n%s", st.Lag, st.MaxLag, st.FramesLagged, warnings, logs)
				}
				return
			}
			if st.MaxLag >= 500*time.Millisecond || uint64(warnings) > st.FramesLagged {
				t.Fatalf("prompt consumer: lag %v max %v lagged %d, %d warnings:\n%s", st.Lag, st.MaxLag, st.FramesLagged, warnings, logs)
			}
		})
	}
}

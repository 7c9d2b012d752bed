package twilio_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

// logBuffer is an io.Writer safe for the stream's goroutines.
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

// TestStreamLag: against a real-time sender, a consumer that reads a
// 20 ms frame every 40 ms falls behind: Lag passes the budget, frames are
// counted in FramesLagged and one warning is logged, naming the stream. A
// prompt consumer's lag stays small.
func TestStreamLag(t *testing.T) {
	audio := synthULaw(time.Second)
	for _, tc := range []struct {
		name  string
		pause time.Duration
	}{{"slow", 40 * time.Millisecond}, {"prompt", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logBuffer{}
			ms := newMediaServer(t, &twilio.AcceptOptions{AuthTokens: []string{testToken},
				Logger: slog.New(slog.NewTextHandler(logs, nil))})
			done := make(chan error, 1)
			go func() {
				_, err := twiliotest.PlayAudio(context.Background(), ms.URL, audio, nil, &twiliotest.Options{AuthToken: testToken})
				done <- err
			}()
			s := ms.next(t)
			for {
				if _, err := s.ReadFrame(context.Background()); err != nil {
					break
				}
				time.Sleep(tc.pause)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			st := s.Stats()
			warnings := strings.Count(logs.String(), "lag over budget")
			if st.FramesRead != 50 || st.FramesDropped != 0 {
				t.Fatalf("read %d frames, %d dropped: %+v", st.FramesRead, st.FramesDropped, st)
			}
			if tc.pause > 0 {
				// Frame k is read at least k×40 ms after the first, due
				// k×20 ms after it: the last is about a second late.
				if st.Lag < 700*time.Millisecond || st.MaxLag < st.Lag || st.FramesLagged < 10 || warnings != 1 ||
					!strings.Contains(logs.String(), "stream_sid=MZ") {
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

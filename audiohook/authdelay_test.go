package audiohook

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/audiohook/wire"
)

// waits records the durations passed to ServerOptions.Sleep without
// sleeping.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(_ context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
	return nil
}

func (w *waits) get() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

// TestAuthFailureDelayOptions checks the wait asked of Sleep before a
// failed authentication is answered: AuthFailureDelay (500 ms by default)
// less the time verification took, none when that time is longer or the
// delay is disabled; and that sleep ends with its context.
func TestAuthFailureDelayOptions(t *testing.T) {
	base := time.Unix(1641013200, 0)
	for _, tc := range []struct {
		name    string
		delay   time.Duration
		elapsed time.Duration // clock advance during verification
		want    []time.Duration
	}{
		{"default", 0, 0, []time.Duration{500 * time.Millisecond}},
		{"custom", 2 * time.Second, 0, []time.Duration{2 * time.Second}},
		{"verification took 120 ms", 0, 120 * time.Millisecond, []time.Duration{380 * time.Millisecond}},
		{"verification took longer than the delay", 0, 600 * time.Millisecond, nil},
		{"disabled", -1, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &waits{}
			calls := 0
			opts := &ServerOptions{
				Keys: StaticKeys{testKey: mustB64(t, testSecret)}, AuthFailureDelay: tc.delay, Sleep: w.sleep,
				Now: func() time.Time { calls++; return base.Add(time.Duration(calls-1) * tc.elapsed) },
			}
			r := docRequest()
			r.Header.Set(wire.HeaderAPIKey, testKey) // unsigned: fails
			rec := &statusRecorder{header: http.Header{}}
			if _, err := Accept(rec, r, opts); !errors.Is(err, ErrUnauthorized) || rec.status != http.StatusUnauthorized {
				t.Fatalf("Accept: %v, HTTP %d", err, rec.status)
			}
			if got := w.get(); len(got) != len(tc.want) || len(got) == 1 && got[0] != tc.want[0] {
				t.Fatalf("waits %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("client gone", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
			t.Fatalf("sleep: %v", err)
		}
		if err := sleep(context.Background(), 0); err != nil {
			t.Fatalf("sleep 0: %v", err)
		}
	})
}

// statusRecorder is a minimal http.ResponseWriter for refused upgrades.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(code int)        { r.status = code }

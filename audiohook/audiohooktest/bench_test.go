package audiohooktest

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/wire"
)

func raiseFileLimit(tb testing.TB, n uint64) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		tb.Skip("getrlimit:", err)
	}
	if r.Cur < n {
		r.Cur = min(n, r.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur < n {
			tb.Skipf("need %d file descriptors: %v", n, err)
		}
	}
}

// serverStats collects the Stats of every finished benchmark session.
type serverStats struct {
	mu    sync.Mutex
	stats []audiohook.Stats
}

func (ss *serverStats) take(n int) []audiohook.Stats {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ss.mu.Lock()
		if len(ss.stats) >= n || time.Now().After(deadline) {
			out := ss.stats
			ss.stats = nil
			ss.mu.Unlock()
			return out
		}
		ss.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
}

func benchServer(b *testing.B) (string, *serverStats) {
	opts := &audiohook.ServerOptions{Keys: audiohook.StaticKeys{testKey: nil}, CloseTimeout: 5 * time.Second, OpenTimeout: 30 * time.Second}
	ss := &serverStats{}
	u := testServer(b, opts, func(s *audiohook.Session) {
		ctx := context.Background()
		for {
			if _, err := s.ReadFrame(ctx); err != nil {
				break
			}
		}
		ss.mu.Lock()
		ss.stats = append(ss.stats, s.Stats())
		ss.mu.Unlock()
	})
	return u, ss
}

// rawSession is a hand-driven client used to time the server precisely.
type rawSession struct {
	c   *websocket.Conn
	id  string
	seq int
}

func dialRaw(ctx context.Context, u string) (*rawSession, error) {
	id := NewUUID()
	h := http.Header{}
	h.Set(wire.HeaderSessionID, id)
	h.Set(wire.HeaderOrganizationID, tOrg)
	h.Set(wire.HeaderCorrelationID, NewUUID())
	h.Set(wire.HeaderAPIKey, testKey)
	c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, err
	}
	return &rawSession{c: c, id: id}, nil
}

func (r *rawSession) roundTrip(ctx context.Context, typ, params string) (time.Duration, error) {
	r.seq++
	msg := tmsg(r.id, typ, r.seq, r.seq-1, "PT0S", params)
	start := time.Now()
	if err := r.c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		return 0, err
	}
	for {
		mt, _, err := r.c.Read(ctx)
		if err != nil {
			return 0, err
		}
		if mt == websocket.MessageText {
			return time.Since(start), nil
		}
	}
}

func p99(d []time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return float64(d[(len(d)*99)/100]) / float64(time.Millisecond)
}

// BenchmarkLatency500 opens 500 concurrent sessions (started over 20 ms)
// that stream stereo PCMU in real time (20 ms frames) and ping every 100 ms;
// it reports the 99th
// percentile of open→opened and ping→pong round trips as seen by the
// clients (which share the process and its CPUs), and, measured inside the
// server from receiving a message to writing the answer, the 99th percentile
// of opened latency and of each session's slowest pong.
func BenchmarkLatency500(b *testing.B) {
	const sessions = 500
	raiseFileLimit(b, 4*sessions+256)
	u, ss := benchServer(b)
	for b.Loop() {
		var mu sync.Mutex
		var openLat, pongLat []time.Duration
		var wg sync.WaitGroup
		errs := make(chan error, sessions)
		for i := 0; i < sessions; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Calls start at independent times: spread the 20 ms frame
				// clocks instead of firing all sessions at once.
				time.Sleep(time.Duration(i) * 20 * time.Millisecond / sessions)
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				r, err := dialRaw(ctx, u)
				if err != nil {
					errs <- err
					return
				}
				defer r.c.CloseNow()
				d, err := r.roundTrip(ctx, "open", openParams(stereoPCMU, nil))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				openLat = append(openLat, d)
				mu.Unlock()
				frame := make([]byte, 320)
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for k := 1; k <= 50; k++ {
					<-tick.C
					if err := r.c.Write(ctx, websocket.MessageBinary, frame); err != nil {
						errs <- err
						return
					}
					if k%5 == 0 {
						d, err := r.roundTrip(ctx, "ping", "{}")
						if err != nil {
							errs <- err
							return
						}
						mu.Lock()
						pongLat = append(pongLat, d)
						mu.Unlock()
					}
				}
				_, _ = r.roundTrip(ctx, "close", `{"reason":"end"}`)
				r.c.Close(websocket.StatusNormalClosure, "")
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		b.ReportMetric(p99(openLat), "opened-rtt-p99-ms")
		b.ReportMetric(p99(pongLat), "pong-rtt-p99-ms")
		var srvOpen, srvPong []time.Duration
		for _, st := range ss.take(sessions) {
			srvOpen = append(srvOpen, st.OpenLatency)
			srvPong = append(srvPong, st.MaxPongLatency)
		}
		if len(srvOpen) != sessions {
			b.Fatalf("stats of %d sessions, want %d", len(srvOpen), sessions)
		}
		b.ReportMetric(p99(srvOpen), "srv-opened-p99-ms")
		b.ReportMetric(p99(srvPong), "srv-maxpong-p99-ms")
	}
}

// BenchmarkStereoPCMU1000 streams 1 s of stereo PCMU per session from 1,000
// concurrent Genesys-like clients as fast as possible and reports the
// process CPU time (server and clients together) per second of audio.
func BenchmarkStereoPCMU1000(b *testing.B) {
	const sessions = 1000
	raiseFileLimit(b, 4*sessions+256)
	u, _ := benchServer(b)
	for b.Loop() {
		var ru0, ru1 syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		var wg sync.WaitGroup
		errs := make(chan error, sessions)
		for i := 0; i < sessions; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
				defer cancel()
				c, err := Dial(ctx, u, &DialOptions{APIKey: testKey, PingInterval: -1, Media: []wire.MediaParameter{wire.MediaPCMUStereo}, OpenTimeout: 60 * time.Second})
				if err != nil {
					errs <- err
					return
				}
				if err := c.Stream(ctx, ToneSource(time.Second, 440, 880), &StreamOptions{Fast: true, Chunk: 20 * time.Millisecond}); err != nil {
					errs <- err
				}
				_ = c.Close(ctx, "")
			}()
		}
		wg.Wait()
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
		b.ReportMetric(float64(cpu/time.Microsecond)/sessions, "cpu-µs/audio-s")
	}
}

// BenchmarkBinaryFrameLoopback measures one 20 ms stereo PCMU frame from a
// client write to the server's ReadFrame over loopback.
func BenchmarkBinaryFrameLoopback(b *testing.B) {
	got := make(chan *audiohook.Session, 1)
	opts := &audiohook.ServerOptions{Keys: audiohook.StaticKeys{testKey: nil}, BufferFrames: 4096, Buffer: time.Hour}
	u := testServer(b, opts, func(s *audiohook.Session) {
		got <- s
		<-s.Done()
	})
	ctx := context.Background()
	r, err := dialRaw(ctx, u)
	if err != nil {
		b.Fatal(err)
	}
	defer r.c.CloseNow()
	if _, err := r.roundTrip(ctx, "open", openParams(stereoPCMU, nil)); err != nil {
		b.Fatal(err)
	}
	s := <-got
	frame := make([]byte, 320)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if err := r.c.Write(ctx, websocket.MessageBinary, frame); err != nil {
			b.Fatal(err)
		}
		if _, err := s.ReadFrame(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

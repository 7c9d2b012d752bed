//go:build linux

package twilio

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/wsconn"
)

// BenchmarkRealtimeStreams opens VOICEGATE_STREAMS (default 1000) Twilio
// streams over loopback, each sending one media message every 20 ms of
// wall time for VOICEGATE_SECONDS (default 20) seconds, from a generator
// in its own process (this test binary re-run, see runLoadGenerator), into
// one server: twilio.Accept with a ReadFrame consumer per stream, at
// several read cadences, and a floor server that only reads the WebSocket
// messages (wsconn.ReadMessage) and discards them. Each sub-benchmark is
// one run; use -benchtime 1x. It reports:
//
//   - server-µs/stream-s: the server process's CPU time (user + system,
//     getrusage) per second of one stream, over the middle of the run
//     (after all streams started, before any ended);
//   - gen-µs/stream-s: the generator's, over the same window;
//   - reads/msg: the server's read system calls per media message
//     (/proc/self/io), and ctxsw/stream-s its threads' context switches;
//   - lag-p50-ms, lag-p99-ms: from the time a message was due at the
//     generator (its media.timestamp) to the return of ReadFrame;
//   - dropped, missing: frames dropped from a queue, and media messages
//     sent but never read.
//
// Example (about a minute for all sub-benchmarks at 1,000 streams):
//
//	go test -run '^$' -bench RealtimeStreams -benchtime 1x ./twilio/
func BenchmarkRealtimeStreams(b *testing.B) {
	streams := envInt("VOICEGATE_STREAMS", 1000)
	secs := envInt("VOICEGATE_SECONDS", 20)
	for _, c := range []struct {
		name    string
		floor   bool
		cadence time.Duration
	}{
		{"floor", true, -1},
		{"floor-cadence=60ms", true, 60 * time.Millisecond},
		{"stream-cadence=off", false, -1},
		{"stream-cadence=20ms", false, 20 * time.Millisecond},
		{"stream-cadence=40ms", false, 40 * time.Millisecond},
		{"stream-cadence=60ms", false, 60 * time.Millisecond},
		{"stream-cadence=80ms", false, 80 * time.Millisecond},
	} {
		b.Run(fmt.Sprintf("%s/n=%d", c.name, streams), func(b *testing.B) {
			for b.Loop() {
				realtimeRun(b, streams, secs, c.floor, c.cadence)
			}
		})
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// lagHist counts delivery lags in 1 ms buckets up to 10 s.
type lagHist [10001]atomic.Uint64

func (h *lagHist) add(d time.Duration) {
	ms := min(max(int(d/time.Millisecond), 0), len(h)-1)
	h[ms].Add(1)
}

func (h *lagHist) quantile(q float64) float64 {
	var total uint64
	for i := range h {
		total += h[i].Load()
	}
	want := uint64(q * float64(total))
	var acc uint64
	for i := range h {
		acc += h[i].Load()
		if acc > want {
			return float64(i)
		}
	}
	return float64(len(h) - 1)
}

// rusageSelf returns the process's CPU time and context switches.
func rusageSelf() (time.Duration, int64) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Nvcsw + ru.Nivcsw
}

// readCalls returns the read system calls the process made (syscr in
// /proc/self/io).
func readCalls() int64 {
	b, _ := os.ReadFile("/proc/self/io")
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "syscr: "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// procCPU returns the CPU time of process pid from /proc/pid/stat.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

func realtimeRun(b *testing.B, streams, secs int, floor bool, cadence time.Duration) {
	var (
		hist              lagHist
		dropped, received atomic.Uint64
		wg                sync.WaitGroup
		errs              atomic.Uint64
	)
	epoch := time.Now().UnixMilli()
	opts := &AcceptOptions{InsecureSkipVerify: true, ReadCadence: cadence}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if floor {
			c, err := wsconn.Accept(w, r, &wsconn.AcceptOptions{InsecureSkipVerify: true})
			if err != nil {
				return
			}
			c.SetReadLimit(DefaultReadLimit)
			c.SetReadCadence(cadence)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.CloseNow()
				for {
					if _, _, err := c.ReadMessage(); err != nil {
						return
					}
					received.Add(1)
				}
			}()
			return
		}
		s, err := Accept(w, r, opts)
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.CloseNow()
			ctx := context.Background()
			var n uint64
			for {
				f, err := s.ReadFrame(ctx)
				if err != nil {
					if err != io.EOF {
						errs.Add(1)
					}
					break
				}
				n++
				first, _ := s.FirstTimestamp()
				due := time.UnixMilli(epoch + first).Add(f.Timestamp)
				hist.add(time.Since(due))
			}
			received.Add(n)
			dropped.Add(s.Stats().FramesDropped)
		}()
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), loadGenEnv+"="+l.Addr().String(), loadGenEpoch+"="+strconv.FormatInt(epoch, 10),
		loadGenStreams+"="+strconv.Itoa(streams), loadGenSeconds+"="+strconv.Itoa(secs))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	pid := cmd.Process.Pid
	// Measure the middle of the run: the generator dials every stream
	// first (a second or two), then all send for secs seconds.
	win := time.Duration(secs) * time.Second / 2
	time.Sleep(time.Until(t0.Add(time.Duration(secs)*time.Second/4 + 2*time.Second)))
	s0, cs0 := rusageSelf()
	g0, r0, w0 := procCPU(pid), readCalls(), time.Now()
	time.Sleep(win)
	s1, cs1 := rusageSelf()
	g1, r1, w1 := procCPU(pid), readCalls(), time.Now()
	if err := cmd.Wait(); err != nil {
		b.Fatalf("generator: %v\n%s", err, out.String())
	}
	wg.Wait()
	var sent uint64
	for line := range strings.Lines(out.String()) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "sent "); ok {
			sent, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	if sent != uint64(streams*secs*50) {
		b.Fatalf("generator sent %d media messages, want %d:\n%s", sent, streams*secs*50, out.String())
	}
	streamSecs := float64(streams) * w1.Sub(w0).Seconds()
	b.ReportMetric(float64((s1-s0).Microseconds())/streamSecs, "server-µs/stream-s")
	b.ReportMetric(float64((g1-g0).Microseconds())/streamSecs, "gen-µs/stream-s")
	b.ReportMetric(float64(r1-r0)/(streamSecs*50), "reads/msg")
	b.ReportMetric(float64(cs1-cs0)/streamSecs, "ctxsw/stream-s")
	if !floor {
		b.ReportMetric(hist.quantile(0.5), "lag-p50-ms")
		b.ReportMetric(hist.quantile(0.99), "lag-p99-ms")
		b.ReportMetric(float64(dropped.Load()), "dropped")
	}
	got := int64(received.Load())
	if floor {
		got -= 3 * int64(streams) // connected, start and stop
	}
	b.ReportMetric(float64(int64(sent)-got), "missing")
	if e := errs.Load(); e > 0 {
		b.Errorf("%d streams ended with an error", e)
	}
}

package loadtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	benchStreams  = flag.Int("loadtest.n", 50, "streams of the BenchmarkLoad benchmarks")
	benchDuration = flag.Duration("loadtest.duration", 3*time.Second, "measured window of the BenchmarkLoad benchmarks")
)

// benchLoad runs the harness once per iteration against a server of kind
// and reports its figures: server and generator CPU in µs per
// stream-second, lag p50/p99 and the generator's own send delay p99 in ms,
// RSS per stream in KB, dropped frames (and pong p99 for AudioHook), and
// logs the run's line with its verdict on which side fell behind. Wall
// time per op is the run's length and means nothing.
func benchLoad(b *testing.B, kind string) {
	cfg := Config{Kind: kind, Streams: *benchStreams, Ramp: time.Second, Warmup: time.Second,
		Duration: *benchDuration, Log: io.Discard}
	var r *Result
	for b.Loop() {
		var err error
		r, err = Run(context.Background(), cfg)
		if errors.Is(err, ErrNoNode) {
			b.Skipf("skipped: %v", err)
		}
		if err != nil {
			b.Fatal(err)
		}
		if r.DialErrors+r.ServerErrors > 0 || r.GenErrors > 0 {
			b.Fatalf("errors: %v", r)
		}
	}
	b.ReportMetric(r.ServerCPUUs, "µs-cpu/stream-s")
	b.ReportMetric(r.GenCPUUs, "µs-gen-cpu/stream-s")
	b.ReportMetric(r.RSSPerStreamKB, "KB-rss/stream")
	b.ReportMetric(float64(r.Dropped), "dropped")
	b.ReportMetric(r.GenLateP99Ms, "gen-send-delay-p99-ms")
	if kind != KindFloor {
		b.ReportMetric(r.LagP50Ms, "lag-p50-ms")
		b.ReportMetric(r.LagP99Ms, "lag-p99-ms")
	}
	b.Logf("%s", r)
	if r.Proto == ProtoAudioHook {
		b.ReportMetric(r.PongP99Ms, "pong-p99-ms")
	}
}

// BenchmarkLoadTwilio: twilio.Accept and a ReadFrame loop per stream,
// under -loadtest.n real-time Twilio streams.
func BenchmarkLoadTwilio(b *testing.B) { benchLoad(b, KindTwilio) }

// BenchmarkLoadAudioHook: audiohook.Accept and a ReadFrame loop per
// session, under -loadtest.n real-time AudioHook sessions.
func BenchmarkLoadAudioHook(b *testing.B) { benchLoad(b, KindAudioHook) }

// BenchmarkLoadFloor: a server that upgrades and discards bytes, under the
// Twilio load: the least a goroutine-per-connection Go server costs.
func BenchmarkLoadFloor(b *testing.B) { benchLoad(b, KindFloor) }

// BenchmarkLoadNode: the Node ws consumer (node/consumer.js) under the
// Twilio load; skipped without node and npm.
func BenchmarkLoadNode(b *testing.B) { benchLoad(b, KindNode) }

// BenchmarkMediaWrite measures the generator's CPU per Twilio media
// message: the thread CPU time (getrusage RUSAGE_THREAD, so other jobs on
// the machine do not count) of sendDue writing one message (coalesce=1,
// real time) or a group of three with one write(2) (coalesce=3, not what
// Twilio does) to one of 200 loopback streams whose server reads and
// discards. On loopback the writer's system call also runs the receiving
// side of TCP, which is in the figure.
func BenchmarkMediaWrite(b *testing.B) {
	for _, k := range []int{1, 3} {
		b.Run(fmt.Sprintf("coalesce=%d", k), func(b *testing.B) { benchMediaWrite(b, k) })
	}
}

func benchMediaWrite(b *testing.B, k int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var accepted []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted = append(accepted, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	defer func() {
		ln.Close()
		mu.Lock()
		for _, c := range accepted {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	g := &generator{proto: ProtoTwilio, period: twilioPeriod, epoch: time.Now().Truncate(twilioPeriod), coalesce: k}
	s := &sender{}
	g.senders = []*sender{s}
	const n = 200
	streams := make([]*genStream, n)
	for i := range streams {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		if streams[i], err = g.newStream(i, conn); err != nil {
			b.Fatal(err)
		}
		if err := streams[i].startTwilio(i, n); err != nil {
			b.Fatal(err)
		}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU(b)
	i := 0
	for b.Loop() {
		st := streams[i%n]
		g.sendDue(s, st, st.t0.Add(time.Duration(st.next+k-1)*twilioPeriod))
		i++
	}
	cpu := threadCPU(b) - cpu0
	if g.errs.Load() != 0 {
		b.Fatalf("%d write errors, last %v", g.errs.Load(), g.lastErr)
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(i*k), "cpu-ns/msg")
	b.ReportMetric(float64(g.backlogged.Load()), "backlogged")
}

// threadCPU returns the user+system CPU time of the calling thread.
func threadCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

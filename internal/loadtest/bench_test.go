package loadtest

import (
	"context"
	"errors"
	"flag"
	"io"
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

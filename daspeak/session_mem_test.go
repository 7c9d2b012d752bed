package daspeak_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/internal/fixtures"
)

// speechFrames returns committed voices as 20 ms μ-law frames.
func speechFrames(tb testing.TB) []voicegate.Frame {
	var out []voicegate.Frame
	for _, name := range fixtures.Utterances("slt") {
		r := wavReader(tb, name)
		for {
			fr, err := r.ReadFrame(context.Background())
			if err != nil {
				break
			}
			fr.Payload = bytes.Clone(fr.Payload)
			out = append(out, fr)
		}
	}
	return out
}

// cycleReader returns n frames cycling over fs with a continuous media
// clock, then io.EOF with eof set, or else the ctx's error: a session
// reading it keeps its state and waits to be resumed, as one on a live
// call does between frames.
type cycleReader struct {
	fs  []voicegate.Frame
	i   int
	n   int
	eof bool
}

func (r *cycleReader) ReadFrame(ctx context.Context) (voicegate.Frame, error) {
	if r.i >= r.n {
		if r.eof {
			return voicegate.Frame{}, io.EOF
		}
		<-ctx.Done()
		return voicegate.Frame{}, ctx.Err()
	}
	f := r.fs[r.i%len(r.fs)]
	f.Seq = uint64(r.i + 1)
	f.Timestamp = time.Duration(r.i) * 20 * time.Millisecond
	r.i++
	return f, nil
}

// feedSession runs s until its reader is exhausted (ctx is cancelled).
func feedSession(tb testing.TB, s *daspeak.Session, ctx context.Context) {
	for {
		ev, err := s.Next(ctx)
		if err != nil {
			return
		}
		if ev.IsTerminal() {
			tb.Fatalf("terminal event while collecting: %s (%v)", ev.Type, ev.Err)
		}
	}
}

// BenchmarkSessionMemory reports the heap a verify session holds after
// it has read the given seconds of a voice (8 kHz μ-law, Twilio's format),
// averaged over 1,000 live sessions: B/session. The session collects the
// audio in the source's encoding and grows its buffer as speech arrives,
// so it holds about 8 KB per second collected, plus a fixed part (the
// MaxPause ring: 8 KB, the detector, scratch).
//
//	go test -run '^$' -bench SessionMemory -benchtime 1x ./daspeak/
func BenchmarkSessionMemory(b *testing.B) {
	fs := speechFrames(b)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	const sessions = 1000
	for _, secs := range []int{0, 2, 5, 10, 28} {
		b.Run(fmt.Sprintf("audio=%ds", secs), func(b *testing.B) {
			var perSession, collected float64
			for range b.N {
				held := make([]*daspeak.Session, sessions)
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				for i := range held {
					s, err := daspeak.Verify(&cycleReader{fs: fs, n: secs * 50}, &fakeEngine{authenticity: 1, score: 1}, "cred",
						&daspeak.Config{ModelHash: "m", AudioTotalDuration: 30 * time.Second, ProgressInterval: -1})
					if err != nil {
						b.Fatal(err)
					}
					feedSession(b, s, ctx)
					held[i] = s
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perSession = float64(after.HeapAlloc-before.HeapAlloc) / sessions
				collected = 0
				for _, s := range held {
					collected += s.Stats().Received.Seconds()
				}
				runtime.KeepAlive(held)
			}
			b.ReportMetric(perSession, "B/session")
			b.ReportMetric(collected/sessions, "s-read/session")
		})
	}
}

// BenchmarkSessionSpeech measures the per-frame cost of sessions that
// collect speech: a voice is played to verify sessions one after another,
// each one collecting until it calls the engine (AudioTotalDuration 30 s,
// so up to MaxTotalAudio). The collected audio grows by one-second blocks,
// so allocations are amortised over 50 frames; allocs/op stays 0.
func BenchmarkSessionSpeech(b *testing.B) {
	fs := speechFrames(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(160)
	r := &cycleReader{fs: fs, n: b.N, eof: true}
	sessions := 0
	for r.i < r.n {
		s, _ := daspeak.Verify(r, &fakeEngine{authenticity: 1, score: 1}, "c",
			&daspeak.Config{ModelHash: "m", AudioTotalDuration: 30 * time.Second, ProgressInterval: -1})
		sessions++
		for r.i < r.n {
			ev, err := s.Next(ctx)
			if err != nil || ev.IsTerminal() {
				break
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(20*time.Millisecond), "rtf")
	b.ReportMetric(float64(b.N)/float64(sessions), "frames/session")
}

package daspeak_test

import (
	"context"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/daspeak"
)

// FuzzSessionFrames feeds arbitrary frames (format fields and payloads as a
// peer could send them) to a session: it must end with one terminal event
// and never panic.
func FuzzSessionFrames(f *testing.F) {
	f.Add([]byte{1, 1, 0, 1, 0xff, 0x7f, 0x00, 0x80})
	f.Add([]byte{3, 2, 1, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{2, 1, 0, 0, 0xd5, 0xd5, 0xd5})
	f.Add([]byte{0, 9, 5, 200, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		var frames []voicegate.Frame
		rates := []int{8000, 16000, 48000, 0, -1, 11025}
		for len(data) >= 4 {
			h := data[:4]
			n := int(binary.LittleEndian.Uint16([]byte{h[3], 0})) % 64
			data = data[4:]
			n = min(n, len(data))
			frames = append(frames, voicegate.Frame{
				Encoding:   voicegate.Encoding(h[0] % 5),
				Channels:   int(h[1] % 4),
				SampleRate: rates[int(h[2])%len(rates)],
				Parties:    [2]voicegate.Party{voicegate.Party(h[2] % 3), voicegate.Party(h[1] % 3)},
				Seq:        uint64(h[3]),
				Timestamp:  time.Duration(h[3]) * 20 * time.Millisecond,
				Payload:    data[:n],
			})
			data = data[n:]
		}
		s, _ := daspeak.Verify(voicegate.NewSliceReader(frames), &fakeEngine{authenticity: 1, score: 1}, "c",
			&daspeak.Config{ModelHash: "m", NoAudioTimeout: time.Second, FillGaps: true})
		ctx := context.Background()
		for i := 0; ; i++ {
			ev, err := s.Next(ctx)
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if ev.IsTerminal() {
				break
			}
			if i > 10000 {
				t.Fatal("no terminal event")
			}
		}
		if _, err := s.Next(ctx); err != io.EOF {
			t.Fatalf("after terminal: %v", err)
		}
	})
}

// BenchmarkSessionFrame measures the per-frame cost of a session: decoding
// a 20 ms μ-law frame, running the detector and collecting the audio.
func BenchmarkSessionFrame(b *testing.B) {
	payload := make([]byte, 160)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	frame := voicegate.Frame{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1, Payload: payload}
	src := &loopReader{f: frame}
	s, _ := daspeak.Verify(src, &fakeEngine{authenticity: 1, score: 1}, "c",
		&daspeak.Config{ModelHash: "m", AudioTotalDuration: 30 * time.Second, ProgressInterval: -1})
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(160)
	src.left = b.N
	b.ResetTimer()
	for {
		ev, err := s.Next(ctx)
		if err != nil || ev.IsTerminal() {
			break
		}
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(20*time.Millisecond), "rtf")
}

// loopReader returns the same frame left times, then io.EOF.
type loopReader struct {
	f    voicegate.Frame
	left int
}

func (r *loopReader) ReadFrame(ctx context.Context) (voicegate.Frame, error) {
	if r.left <= 0 {
		return voicegate.Frame{}, io.EOF
	}
	r.left--
	return r.f, nil
}

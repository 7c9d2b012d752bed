package daspeak_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"testing"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/internal/fixtures"
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

// FuzzEngineResult gives a session arbitrary authenticity and score values
// from an engine: it must end with a result or error-das-Peak, never judge
// an out-of-range value, and its JSON must encode without the credential.
func FuzzEngineResult(f *testing.F) {
	f.Add(1.0, 0.9, true)
	f.Add(daspeak.AuthenticityNotPerformed, 0.4, false)
	f.Add(math.NaN(), 0.9, true)
	f.Add(0.5, math.Inf(-1), true)
	f.Add(math.Copysign(0, -1), 1.0, false)
	frames := fuzzSpeech(f)
	f.Fuzz(func(t *testing.T, authenticity, score float64, register bool) {
		e := &fakeEngine{authenticity: authenticity, score: score}
		var s *daspeak.Session
		if register {
			s, _ = daspeak.Register(voicegate.NewSliceReader(frames), e, &daspeak.Config{ModelHash: "m1", ProgressInterval: -1})
		} else {
			s, _ = daspeak.Verify(voicegate.NewSliceReader(frames), e, "cred", &daspeak.Config{ModelHash: "m1", ProgressInterval: -1})
		}
		ev, err := s.Next(context.Background())
		if err != nil || !ev.IsTerminal() {
			t.Fatalf("Next: %v %s", err, ev.Type)
		}
		validA := authenticity == daspeak.AuthenticityNotPerformed || (authenticity >= 0 && authenticity <= 1)
		validS := register || (score >= 0 && score <= 1)
		switch {
		case !validA || !validS:
			if ev.Type != daspeak.EventErrorDasPeak || !errors.Is(ev.Err, daspeak.ErrInvalidResult) {
				t.Fatalf("authenticity %v score %v: %s (%v)", authenticity, score, ev.Type, ev.Err)
			}
		case authenticity == daspeak.AuthenticityNotPerformed:
			if ev.Type == daspeak.EventResultFailSpoof || ev.AntiSpoofing != daspeak.AntiSpoofingNotPerformed {
				t.Fatalf("not performed: %s %q", ev.Type, ev.AntiSpoofing)
			}
		case authenticity < 0.8:
			if ev.Type != daspeak.EventResultFailSpoof {
				t.Fatalf("authenticity %v: %s", authenticity, ev.Type)
			}
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("json: %v", err)
		}
		if bytes.Contains(b, []byte("cred-m1")) {
			t.Fatalf("credential in JSON: %s", b)
		}
	})
}

// fuzzSpeech is a committed voice as 20 ms μ-law frames.
func fuzzSpeech(f *testing.F) []voicegate.Frame {
	r := wavReader(f, fixtures.Utterances("slt")[0])
	var out []voicegate.Frame
	for {
		fr, err := r.ReadFrame(context.Background())
		if err != nil {
			return out
		}
		fr.Payload = bytes.Clone(fr.Payload)
		out = append(out, fr)
	}
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

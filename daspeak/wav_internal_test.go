package daspeak

import (
	"bytes"
	"testing"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
)

// TestSessionWAV: the WAV file built in place holds the collected audio,
// byte for byte, as encoding a copy of it does, for every collected
// encoding and for odd and even sizes.
func TestSessionWAV(t *testing.T) {
	for _, c := range []struct {
		enc  voicegate.Encoding
		bps  int
		size int
	}{
		{voicegate.PCMU, 1, 8000*2 + 161},
		{voicegate.PCMA, 1, 8000 * 3},
		{voicegate.L16, 2, 16000 * 2 * 2},
		{voicegate.PCMU, 1, 1},
		{voicegate.PCMU, 1, 0},
	} {
		s := &Session{enc: c.enc, rate: 8000, bps: c.bps, audio: clip{block: 8000 * c.bps, max: 1 << 20}}
		audio := make([]byte, c.size)
		for i := range audio {
			audio[i] = byte(i*7 + i/251)
		}
		for p := audio; len(p) > 0; {
			k := min(len(p), 160*c.bps)
			s.audio.add(p[:k])
			p = p[k:]
		}
		want, err := codec.EncodeWAV(nil, codec.WAVFormat{Encoding: c.enc, SampleRate: 8000, Channels: 1}, audio)
		if err != nil {
			t.Fatal(err)
		}
		// A reused buffer holds an earlier file's bytes: big enough it is
		// written over, too small it is left alone.
		big := bytes.Repeat([]byte{0xa5}, len(want)+200)
		small := bytes.Repeat([]byte{0x5a}, len(want)/2)
		for _, b := range []struct {
			name string
			buf  []byte
		}{{"new", nil}, {"reused", big[:7]}, {"too small", small}} {
			got, err := s.wav(b.buf)
			if err != nil {
				t.Fatalf("%v %d bytes, %s buffer: %v", c.enc, c.size, b.name, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%v %d bytes, %s buffer: the WAV file differs from encoding a copy (%d and %d bytes)", c.enc, c.size, b.name, len(got), len(want))
			}
			if b.name == "reused" && len(got) > 0 && &got[0] != &big[0] {
				t.Errorf("%v %d bytes: a big enough buffer was not reused", c.enc, c.size)
			}
		}
		got, err := s.wav(nil)
		if err != nil {
			t.Fatal(err)
		}
		w, err := codec.ParseWAV(got)
		if err != nil || !bytes.Equal(w.Data, audio) {
			t.Errorf("%v %d bytes: parsed back %v, %d data bytes", c.enc, c.size, err, len(w.Data))
		}
	}
}

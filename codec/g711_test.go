package codec_test

//go:generate sh testdata/gen.sh

import (
	"encoding/binary"
	"os"
	"testing"

	"github.com/zaf/g711"
	"go.uber.org/goleak"

	"github.com/voicegate/voicegate/codec"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func allCodes() []byte {
	c := make([]byte, 256)
	for i := range c {
		c[i] = byte(i)
	}
	return c
}

func readS16(t *testing.T, name string) []int16 {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int16, len(b)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

// TestDecodeGolden compares the decoding of all 256 codes with zaf/g711 and
// with sox (testdata/*_decode_sox.s16, made by testdata/gen.sh).
func TestDecodeGolden(t *testing.T) {
	laws := []struct {
		name   string
		decode func([]int16, []byte) int
		float  func([]float32, []byte) int
		sample func(byte) int16
		zaf    func(uint8) int16
		sox    string
	}{
		{"ulaw", codec.DecodeULaw, codec.DecodeULawFloat, codec.DecodeULawSample, g711.DecodeUlawFrame, "testdata/ulaw_decode_sox.s16"},
		{"alaw", codec.DecodeALaw, codec.DecodeALawFloat, codec.DecodeALawSample, g711.DecodeAlawFrame, "testdata/alaw_decode_sox.s16"},
	}
	for _, law := range laws {
		t.Run(law.name, func(t *testing.T) {
			sox := readS16(t, law.sox)
			if len(sox) != 256 {
				t.Fatalf("%s: %d samples, want 256", law.sox, len(sox))
			}
			got := make([]int16, 256)
			if n := law.decode(got, allCodes()); n != 256 {
				t.Fatalf("decoded %d codes", n)
			}
			gotF := make([]float32, 256)
			law.float(gotF, allCodes())
			for c := range 256 {
				if z := law.zaf(uint8(c)); got[c] != z {
					t.Errorf("code %#02x: %d, zaf %d", c, got[c], z)
				}
				if got[c] != sox[c] {
					t.Errorf("code %#02x: %d, sox %d", c, got[c], sox[c])
				}
				if s := law.sample(byte(c)); s != got[c] {
					t.Errorf("code %#02x: sample function %d, slice %d", c, s, got[c])
				}
				if gotF[c] != float32(got[c])/32768 {
					t.Errorf("code %#02x: float %v, want %v", c, gotF[c], float32(got[c])/32768)
				}
			}
		})
	}
}

// TestEncodeAll compares encoding of all 65,536 int16 values with zaf/g711's
// per-sample encoders.
func TestEncodeAll(t *testing.T) {
	pcm := make([]int16, 65536)
	for i := range pcm {
		pcm[i] = int16(i - 32768)
	}
	u := make([]byte, len(pcm))
	a := make([]byte, len(pcm))
	if codec.EncodeULaw(u, pcm) != 65536 || codec.EncodeALaw(a, pcm) != 65536 {
		t.Fatal("short encode")
	}
	bad := 0
	for i, s := range pcm {
		if z := g711.EncodeUlawFrame(s); u[i] != z || codec.EncodeULawSample(s) != z {
			bad++
			if bad < 10 {
				t.Errorf("μ-law %d: %#02x, zaf %#02x", s, u[i], z)
			}
		}
		if z := g711.EncodeAlawFrame(s); a[i] != z || codec.EncodeALawSample(s) != z {
			bad++
			if bad < 10 {
				t.Errorf("A-law %d: %#02x, zaf %#02x", s, a[i], z)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d encodings differ from zaf/g711", bad)
	}
}

// TestRoundTrip checks encode(decode(c)) == c for every code but μ-law 0x7F
// (negative zero, which comes back as 0xFF), and the transcoding tables
// against decode-then-encode.
func TestRoundTrip(t *testing.T) {
	for c := range 256 {
		u := codec.EncodeULawSample(codec.DecodeULawSample(byte(c)))
		want := byte(c)
		if c == 0x7F {
			want = 0xFF
		}
		if u != want {
			t.Errorf("μ-law %#02x → %#02x", c, u)
		}
		if a := codec.EncodeALawSample(codec.DecodeALawSample(byte(c))); a != byte(c) {
			t.Errorf("A-law %#02x → %#02x", c, a)
		}
	}
	codes := allCodes()
	ua := make([]byte, 256)
	au := make([]byte, 256)
	codec.ULawToALaw(ua, codes)
	codec.ALawToULaw(au, codes)
	// And against zaf/g711's transcoding tables, taken from G.711.
	if z := g711.Ulaw2Alaw(codes); string(z) != string(ua) {
		t.Errorf("ULawToALaw differs from zaf/g711 Ulaw2Alaw")
	}
	if z := g711.Alaw2Ulaw(codes); string(z) != string(au) {
		t.Errorf("ALawToULaw differs from zaf/g711 Alaw2Ulaw")
	}
	for c := range 256 {
		if want := codec.EncodeALawSample(codec.DecodeULawSample(byte(c))); ua[c] != want {
			t.Errorf("ULawToALaw(%#02x) = %#02x, want %#02x", c, ua[c], want)
		}
		if want := codec.EncodeULawSample(codec.DecodeALawSample(byte(c))); au[c] != want {
			t.Errorf("ALawToULaw(%#02x) = %#02x, want %#02x", c, au[c], want)
		}
	}
	// In place.
	buf := allCodes()
	codec.ULawToALaw(buf, buf)
	for c := range 256 {
		if buf[c] != ua[c] {
			t.Fatalf("in-place ULawToALaw differs at %#02x", c)
		}
	}
	if codec.DecodeULawSample(codec.ULawSilence) != 0 || codec.DecodeALawSample(codec.ALawSilence) != 8 {
		t.Errorf("silence codes decode to %d and %d", codec.DecodeULawSample(codec.ULawSilence), codec.DecodeALawSample(codec.ALawSilence))
	}
}

// TestG711ShortDst checks the documented short-destination behaviour: a
// prefix of src is converted and the count says how much.
func TestG711ShortDst(t *testing.T) {
	src := []byte{0x00, 0x7F, 0x80, 0xFF}
	pcm := []int16{-1, -1, -1, -1, -1}
	if n := codec.DecodeULaw(pcm[:2], src); n != 2 || pcm[2] != -1 || pcm[0] != -32124 || pcm[1] != 0 {
		t.Errorf("DecodeULaw short dst: n=%d %v", n, pcm)
	}
	if n := codec.DecodeULaw(pcm, src[:1]); n != 1 || pcm[1] != 0 {
		t.Errorf("DecodeULaw short src: n=%d %v", n, pcm)
	}
	f := make([]float32, 1)
	if n := codec.DecodeALawFloat(f, src); n != 1 {
		t.Errorf("DecodeALawFloat short dst: n=%d", n)
	}
	out := []byte{9, 9, 9}
	if n := codec.EncodeALaw(out[:1], []int16{0, 0}); n != 1 || out[1] != 9 {
		t.Errorf("EncodeALaw short dst: n=%d %v", n, out)
	}
	if n := codec.ULawToALaw(nil, src); n != 0 {
		t.Errorf("ULawToALaw(nil) = %d", n)
	}
}

func TestG711Allocs(t *testing.T) {
	src := speechLikeULaw(160)
	pcm := make([]int16, 160)
	f := make([]float32, 160)
	out := make([]byte, 160)
	for name, fn := range map[string]func(){
		"DecodeULaw":      func() { codec.DecodeULaw(pcm, src) },
		"DecodeALaw":      func() { codec.DecodeALaw(pcm, src) },
		"DecodeULawFloat": func() { codec.DecodeULawFloat(f, src) },
		"DecodeALawFloat": func() { codec.DecodeALawFloat(f, src) },
		"EncodeULaw":      func() { codec.EncodeULaw(out, pcm) },
		"EncodeALaw":      func() { codec.EncodeALaw(out, pcm) },
		"ULawToALaw":      func() { codec.ULawToALaw(out, src) },
		"ALawToULaw":      func() { codec.ALawToULaw(out, src) },
	} {
		if a := testing.AllocsPerRun(100, fn); a != 0 {
			t.Errorf("%s: %v allocs", name, a)
		}
	}
}

func FuzzG711(f *testing.F) {
	f.Add([]byte{0x00, 0x7F, 0x80, 0xFF, 0xD5, 0x55})
	f.Add([]byte("\x01\x02\x03 any bytes are valid G.711"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pcm := make([]int16, len(b))
		if codec.DecodeULaw(pcm, b) != len(b) {
			t.Fatal("short DecodeULaw")
		}
		u := make([]byte, len(b))
		codec.EncodeULaw(u, pcm)
		for i := range b {
			if u[i] != b[i] && !(b[i] == 0x7F && u[i] == 0xFF) {
				t.Fatalf("μ-law %#02x → %d → %#02x", b[i], pcm[i], u[i])
			}
		}
		codec.DecodeALaw(pcm, b)
		a := make([]byte, len(b))
		codec.EncodeALaw(a, pcm)
		if string(a) != string(b) {
			t.Fatal("A-law round trip changed the codes")
		}
		// Transcoding equals decode + encode.
		codec.ULawToALaw(a, b)
		codec.DecodeULaw(pcm, b)
		codec.EncodeALaw(u, pcm)
		if string(a) != string(u) {
			t.Fatal("ULawToALaw differs from decode + encode")
		}
		// Bytes as little-endian PCM: encode never panics and decodes near
		// the input.
		s := make([]int16, len(b)/2)
		codec.BytesToInt16(s, b)
		e := make([]byte, len(s))
		codec.EncodeULaw(e, s)
		back := make([]int16, len(s))
		codec.DecodeULaw(back, e)
		for i := range s {
			d := int32(back[i]) - int32(s[i])
			if d < 0 {
				d = -d
			}
			if lim := int32(max(abs32(int32(s[i]))/16, 8)) + 32; d > lim && abs32(int32(s[i])) < 32124 {
				t.Fatalf("μ-law round trip of %d gave %d", s[i], back[i])
			}
		}
	})
}

func abs32(v int32) int32 {
	if v < 0 {
		return -v
	}
	return v
}

package codec_test

import (
	"math"
	"slices"
	"testing"

	"github.com/voicegate/voicegate/codec"
)

func TestBytesInt16(t *testing.T) {
	b := []byte{0xFF, 0x7F, 0x00, 0x80, 0x01, 0x00, 0xFF, 0xFF, 0xAA}
	s := make([]int16, 8)
	if n := codec.BytesToInt16(s, b); n != 4 || !slices.Equal(s[:4], []int16{32767, -32768, 1, -1}) {
		t.Fatalf("BytesToInt16 = %d %v", n, s)
	}
	if n := codec.BytesToInt16(s[:2], b); n != 2 {
		t.Fatalf("short dst: %d", n)
	}
	out := make([]byte, 9)
	out[8] = 0xAA
	if n := codec.Int16ToBytes(out, s[:4]); n != 4 || !slices.Equal(out, b) {
		t.Fatalf("Int16ToBytes = %d % x", n, out)
	}
	if n := codec.Int16ToBytes(out[:3], s[:4]); n != 1 {
		t.Fatalf("short dst: %d", n)
	}
}

func TestFloatConversion(t *testing.T) {
	f := []float32{0, 1, -1, 0.5, 2, -2, float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 1.5 / 32768, -1.5 / 32768, 32766.5 / 32768}
	want := []int16{0, 32767, -32768, 16384, 32767, -32768, 0, 32767, -32768, 2, -2, 32766}
	got := make([]int16, len(f))
	if n := codec.FloatToInt16(got, f); n != len(f) || !slices.Equal(got, want) {
		t.Fatalf("FloatToInt16 = %v, want %v", got, want)
	}
	back := make([]float32, 3)
	codec.Int16ToFloat(back, []int16{32767, -32768, 16384})
	if back[0] != 32767.0/32768 || back[1] != -1 || back[2] != 0.5 {
		t.Fatalf("Int16ToFloat = %v", back)
	}
	// Every int16 survives a float round trip.
	all := make([]int16, 65536)
	for i := range all {
		all[i] = int16(i - 32768)
	}
	fl := make([]float32, len(all))
	rt := make([]int16, len(all))
	codec.Int16ToFloat(fl, all)
	codec.FloatToInt16(rt, fl)
	if !slices.Equal(rt, all) {
		t.Fatal("int16 → float → int16 is not the identity")
	}
}

func TestStereo(t *testing.T) {
	src := []int16{1, -1, 2, -2, 32767, 32767, -32768, -32768, 32767, -32768, 9}
	l := make([]int16, 6)
	r := make([]int16, 6)
	if n := codec.Deinterleave(l, r, src); n != 5 || !slices.Equal(l[:5], []int16{1, 2, 32767, -32768, 32767}) || !slices.Equal(r[:5], []int16{-1, -2, 32767, -32768, -32768}) {
		t.Fatalf("Deinterleave = %d %v %v", n, l, r)
	}
	if n := codec.Deinterleave(l, r[:2], src); n != 2 {
		t.Fatalf("short channel: %d", n)
	}
	codec.Deinterleave(l, r, src)
	dst := make([]int16, 10)
	if n := codec.Interleave(dst, l[:5], r[:5]); n != 5 || !slices.Equal(dst, src[:10]) {
		t.Fatalf("Interleave = %d %v", n, dst)
	}
	if n := codec.Interleave(dst[:3], l, r); n != 1 {
		t.Fatalf("Interleave short dst = %d", n)
	}
	mono := make([]int16, 6)
	// Sums clip at the int16 edges instead of wrapping.
	if n := codec.MixStereoToMono(mono, src); n != 5 || !slices.Equal(mono[:5], []int16{0, 0, 32767, -32768, -1}) {
		t.Fatalf("MixStereoToMono = %d %v", n, mono)
	}
	ch := make([]int16, 6)
	if n := codec.ExtractChannel(ch, src, 2, 1); n != 5 || !slices.Equal(ch[:5], r[:5]) {
		t.Fatalf("ExtractChannel = %d %v", n, ch)
	}
	for _, bad := range [][2]int{{2, 2}, {2, -1}, {0, 0}} {
		if n := codec.ExtractChannel(ch, src, bad[0], bad[1]); n != 0 {
			t.Fatalf("ExtractChannel(%d channels, ch %d) = %d", bad[0], bad[1], n)
		}
	}
}

func TestMixGain(t *testing.T) {
	a := []int16{32767, -32768, 100, -100, 32767}
	b := []int16{1, -1, 200, 100, -32768}
	dst := make([]int16, 5)
	if n := codec.Mix(dst, a, b); n != 5 || !slices.Equal(dst, []int16{32767, -32768, 300, 0, -1}) {
		t.Fatalf("Mix = %v", dst)
	}
	if n := codec.Mix(a, a, b[:2]); n != 2 || a[0] != 32767 || a[1] != -32768 {
		t.Fatalf("Mix in place = %d %v", n, a)
	}
	src := []int16{32767, -32768, 3, -3, 1000}
	if n := codec.Gain(dst, src, 2); n != 5 || !slices.Equal(dst, []int16{32767, -32768, 6, -6, 2000}) {
		t.Fatalf("Gain(2) = %v", dst)
	}
	codec.Gain(dst, src, 0.5) // 1.5 rounds to even: 2; 16383.5 to 16384
	if !slices.Equal(dst, []int16{16384, -16384, 2, -2, 500}) {
		t.Fatalf("Gain(0.5) = %v", dst)
	}
	codec.Gain(dst, src, -1) // -(-32768) clips to 32767
	if !slices.Equal(dst, []int16{-32767, 32767, -3, 3, -1000}) {
		t.Fatalf("Gain(-1) = %v", dst)
	}
	if g := codec.DBToGain(-6.0206); math.Abs(float64(g)-0.5) > 1e-4 {
		t.Fatalf("DBToGain(-6.02) = %v", g)
	}
	if g := codec.DBToGain(0); g != 1 {
		t.Fatalf("DBToGain(0) = %v", g)
	}
}

func TestPCMAllocs(t *testing.T) {
	s := make([]int16, 320)
	b := make([]byte, 640)
	f := make([]float32, 320)
	l := make([]int16, 160)
	r := make([]int16, 160)
	m := make([]int16, 160)
	for name, fn := range map[string]func(){
		"BytesToInt16":    func() { codec.BytesToInt16(s, b) },
		"Int16ToBytes":    func() { codec.Int16ToBytes(b, s) },
		"Int16ToFloat":    func() { codec.Int16ToFloat(f, s) },
		"FloatToInt16":    func() { codec.FloatToInt16(s, f) },
		"Deinterleave":    func() { codec.Deinterleave(l, r, s) },
		"Interleave":      func() { codec.Interleave(s, l, r) },
		"ExtractChannel":  func() { codec.ExtractChannel(l, s, 2, 1) },
		"MixStereoToMono": func() { codec.MixStereoToMono(m, s) },
		"Mix":             func() { codec.Mix(m, l, r) },
		"Gain":            func() { codec.Gain(m, l, 1.5) },
	} {
		if a := testing.AllocsPerRun(100, fn); a != 0 {
			t.Errorf("%s: %v allocs", name, a)
		}
	}
}

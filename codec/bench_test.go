package codec_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/zaf/g711"

	"github.com/voicegate/voicegate/codec"
)

// benchSizes are 20 ms frames and 1 s buffers at 8 kHz.
var benchSizes = []struct {
	name string
	n    int
}{{"20ms", 160}, {"1s", 8000}}

// reportRealtime reports how many seconds of audio one second of CPU time
// processes.
func reportRealtime(b *testing.B, audioSeconds float64) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(audioSeconds*float64(b.N)/s, "x_realtime")
	}
}

func speechLikeULaw(n int) []byte {
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(8000*math.Sin(float64(i)*0.3) + 3000*math.Sin(float64(i)*1.7))
	}
	u := make([]byte, n)
	codec.EncodeULaw(u, pcm)
	return u
}

func BenchmarkDecodeULaw(b *testing.B) {
	for _, sz := range benchSizes {
		src := speechLikeULaw(sz.n)
		dst := make([]int16, sz.n)
		b.Run("voicegate/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				codec.DecodeULaw(dst, src)
			}
			reportRealtime(b, float64(sz.n)/8000)
		})
		b.Run("zaf/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				g711.DecodeUlaw(src)
			}
			reportRealtime(b, float64(sz.n)/8000)
		})
	}
}

func BenchmarkDecodeULawFloat(b *testing.B) {
	for _, sz := range benchSizes {
		src := speechLikeULaw(sz.n)
		dst := make([]float32, sz.n)
		b.Run(sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				codec.DecodeULawFloat(dst, src)
			}
			reportRealtime(b, float64(sz.n)/8000)
		})
	}
}

func BenchmarkEncodeULaw(b *testing.B) {
	for _, sz := range benchSizes {
		pcm := make([]int16, sz.n)
		codec.DecodeULaw(pcm, speechLikeULaw(sz.n))
		dst := make([]byte, sz.n)
		b.Run("voicegate/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(2 * sz.n))
			for b.Loop() {
				codec.EncodeULaw(dst, pcm)
			}
			reportRealtime(b, float64(sz.n)/8000)
		})
		le := make([]byte, 2*sz.n)
		codec.Int16ToBytes(le, pcm)
		b.Run("zaf/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(2 * sz.n))
			for b.Loop() {
				g711.EncodeUlaw(le)
			}
			reportRealtime(b, float64(sz.n)/8000)
		})
	}
}

func BenchmarkULawToALaw(b *testing.B) {
	for _, sz := range benchSizes {
		src := speechLikeULaw(sz.n)
		dst := make([]byte, sz.n)
		b.Run(sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				codec.ULawToALaw(dst, src)
			}
			reportRealtime(b, float64(sz.n)/8000)
		})
	}
}

func BenchmarkResample(b *testing.B) {
	for _, p := range []struct{ in, out int }{{8000, 16000}, {16000, 8000}, {8000, 48000}, {8000, 44100}} {
		for _, q := range []codec.Quality{codec.Telephone, codec.High} {
			for _, d := range []struct {
				name string
				ms   int
			}{{"20ms", 20}, {"1s", 1000}} {
				n := p.in * d.ms / 1000
				b.Run(fmt.Sprintf("%dto%d/%v/%s", p.in/1000, p.out/1000, q, d.name), func(b *testing.B) {
					r, err := codec.NewResampler(p.in, p.out, q)
					if err != nil {
						b.Fatal(err)
					}
					src := tone(n, 1000, float64(p.in), 0.5)
					dst := make([]float32, r.MaxOut(n))
					b.ReportAllocs()
					b.SetBytes(int64(4 * n))
					for b.Loop() {
						r.Process(dst, src)
					}
					reportRealtime(b, float64(d.ms)/1000)
				})
			}
		}
	}
}

func BenchmarkResampleInt16(b *testing.B) {
	r, _ := codec.NewResampler(8000, 16000, codec.Telephone)
	src := make([]int16, 160)
	dst := make([]int16, r.MaxOut(160))
	b.ReportAllocs()
	b.SetBytes(2 * 160)
	for b.Loop() {
		r.ProcessInt16(dst, src)
	}
	reportRealtime(b, 0.02)
}

func BenchmarkDecodeALaw(b *testing.B) {
	for _, sz := range benchSizes {
		src := speechLikeULaw(sz.n)
		dst := make([]int16, sz.n)
		b.Run("voicegate/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				codec.DecodeALaw(dst, src)
			}
			reportRealtime(b, float64(sz.n)/8000)
		})
		b.Run("zaf/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				g711.DecodeAlaw(src)
			}
			reportRealtime(b, float64(sz.n)/8000)
		})
	}
}

func BenchmarkMixStereoToMono(b *testing.B) {
	for _, sz := range benchSizes {
		src := make([]int16, 2*sz.n)
		codec.DecodeULaw(src, speechLikeULaw(2*sz.n))
		dst := make([]int16, sz.n)
		b.Run(sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(4 * sz.n))
			for b.Loop() {
				codec.MixStereoToMono(dst, src)
			}
			reportRealtime(b, float64(sz.n)/8000)
		})
	}
}

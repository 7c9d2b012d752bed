package codec_test

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/voicegate/voicegate/codec"
)

// tone returns n samples of a sine of frequency f Hz at rate fs and the
// given amplitude.
func tone(n int, f, fs, amp float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(amp * math.Sin(2*math.Pi*f*float64(i)/fs))
	}
	return x
}

// resampleAll runs src through a new resampler in one call and returns the
// output without its latency, plus the flushed tail.
func resampleAll(t testing.TB, in, out int, q codec.Quality, src []float32) []float32 {
	t.Helper()
	r, err := codec.NewResampler(in, out, q)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, r.MaxOut(len(src))+r.Latency())
	n := r.Process(dst, src)
	n += r.Flush(dst[n:])
	return dst[r.Latency():n]
}

// sineFit fits a·sin + b·cos + c at frequency f to x by least squares and
// returns the amplitude and the RMS of the residual.
func sineFit(x []float32, f, fs float64) (amp, resid float64) {
	var m [3][4]float64 // normal equations, augmented
	for i, v := range x {
		ph := 2 * math.Pi * f * float64(i) / fs
		row := [3]float64{math.Sin(ph), math.Cos(ph), 1}
		for r := range 3 {
			for c := range 3 {
				m[r][c] += row[r] * row[c]
			}
			m[r][3] += row[r] * float64(v)
		}
	}
	// Gaussian elimination.
	for p := range 3 {
		for r := p + 1; r < 3; r++ {
			k := m[r][p] / m[p][p]
			for c := p; c < 4; c++ {
				m[r][c] -= k * m[p][c]
			}
		}
	}
	var s [3]float64
	for r := 2; r >= 0; r-- {
		v := m[r][3]
		for c := r + 1; c < 3; c++ {
			v -= m[r][c] * s[c]
		}
		s[r] = v / m[r][r]
	}
	var e float64
	for i, v := range x {
		ph := 2 * math.Pi * f * float64(i) / fs
		d := float64(v) - (s[0]*math.Sin(ph) + s[1]*math.Cos(ph) + s[2])
		e += d * d
	}
	return math.Hypot(s[0], s[1]), math.Sqrt(e / float64(len(x)))
}

// goertzel returns the amplitude of the component of x at f Hz, measured
// through a Kaiser (β = 20) window so that a strong tone elsewhere does not
// leak into the measurement.
func goertzel(x []float32, f, fs float64) float64 {
	n := len(x)
	beta := 20.0
	i0 := besselI0(beta)
	var re, im, wsum float64
	for i, v := range x {
		t := 2*float64(i)/float64(n-1) - 1
		w := besselI0(beta*math.Sqrt(1-t*t)) / i0
		ph := 2 * math.Pi * f * float64(i) / fs
		re += w * float64(v) * math.Cos(ph)
		im -= w * float64(v) * math.Sin(ph)
		wsum += w
	}
	return 2 * math.Hypot(re, im) / wsum
}

func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 500; k++ {
		term *= (x / (2 * float64(k))) * (x / (2 * float64(k)))
		sum += term
		if term < sum*1e-17 {
			break
		}
	}
	return sum
}

func db(x float64) float64 { return 20 * math.Log10(x) }

// middle returns the middle half of x (the steady state).
func middle(x []float32) []float32 { return x[len(x)/4 : 3*len(x)/4] }

const amp = 0.5

func TestResamplerPassbandAndImages(t *testing.T) {
	tests := []struct {
		in, out int
		q       codec.Quality
		flat    float64 // passband tolerance, dB
		images  float64 // image/alias limit, dB
	}{
		{8000, 16000, codec.Telephone, 0.05, -65},
		{8000, 16000, codec.High, 0.05, -80},
		{8000, 48000, codec.Telephone, 0.05, -65},
		{8000, 48000, codec.High, 0.05, -80},
		{8000, 44100, codec.Telephone, 0.05, -65},
		{8000, 44100, codec.High, 0.05, -80},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%dto%d/%v", tc.in, tc.out, tc.q), func(t *testing.T) {
			worstLevel, worstImage := 0.0, -math.MaxFloat64
			for _, f := range []float64{300, 1000, 2000, 3000, 3400} {
				y := middle(resampleAll(t, tc.in, tc.out, tc.q, tone(2*tc.in, f, float64(tc.in), amp)))
				a, _ := sineFit(y, f, float64(tc.out))
				level := db(a / amp)
				if math.Abs(level) > math.Abs(worstLevel) {
					worstLevel = level
				}
				if math.Abs(level) > tc.flat {
					t.Errorf("%v Hz: level %+.4f dB, want within ±%v dB", f, level, tc.flat)
				}
				// Images sit at k·in ± f below the output Nyquist frequency.
				for k := 1; float64(k*tc.in)-f < float64(tc.out)/2; k++ {
					for _, fi := range []float64{float64(k*tc.in) - f, float64(k*tc.in) + f} {
						if fi >= float64(tc.out)/2 {
							continue
						}
						lv := db(goertzel(y, fi, float64(tc.out)) / amp)
						worstImage = max(worstImage, lv)
						if lv > tc.images {
							t.Errorf("%v Hz: image at %v Hz is %.1f dB, want ≤ %v dB", f, fi, lv, tc.images)
						}
					}
				}
			}
			t.Logf("passband worst %+.4f dB, worst image %.1f dB", worstLevel, worstImage)
		})
	}
}

func TestResamplerDownsampling(t *testing.T) {
	tests := []struct {
		in      int
		q       codec.Quality
		aliases float64
	}{
		{16000, codec.Telephone, -65},
		{16000, codec.High, -80},
		{48000, codec.Telephone, -65},
		{44100, codec.Telephone, -65},
		{44100, codec.High, -80},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%dto8000/%v", tc.in, tc.q), func(t *testing.T) {
			fs := float64(tc.in)
			worstLevel, worstAlias := 0.0, -math.MaxFloat64
			for _, f := range []float64{300, 1000, 2000, 3000, 3400} {
				y := middle(resampleAll(t, tc.in, 8000, tc.q, tone(2*tc.in, f, fs, amp)))
				a, _ := sineFit(y, f, 8000)
				level := db(a / amp)
				if math.Abs(level) > math.Abs(worstLevel) {
					worstLevel = level
				}
				tol := 0.05
				if f == 3400 {
					tol = 0.1
				}
				if math.Abs(level) > tol {
					t.Errorf("%v Hz: level %+.4f dB, want within ±%v dB", f, level, tol)
				}
			}
			// Tones above 4 kHz fold into the telephone band.
			for _, f := range []float64{4600, 5000, 7000, 9000, 13000, 20000} {
				if f >= fs/2 {
					continue
				}
				alias := math.Mod(f, 8000)
				if alias > 4000 {
					alias = 8000 - alias
				}
				y := middle(resampleAll(t, tc.in, 8000, tc.q, tone(2*tc.in, f, fs, amp)))
				lv := db(goertzel(y, alias, 8000) / amp)
				worstAlias = max(worstAlias, lv)
				if lv > tc.aliases {
					t.Errorf("%v Hz: alias at %v Hz is %.1f dB, want ≤ %v dB", f, alias, lv, tc.aliases)
				}
			}
			t.Logf("passband worst %+.4f dB, worst alias %.1f dB", worstLevel, worstAlias)
		})
	}
}

func TestResamplerLatency(t *testing.T) {
	// An impulse comes out centred at Latency(): the output's peak.
	for _, p := range [][2]int{{8000, 16000}, {16000, 8000}, {8000, 48000}, {8000, 44100}, {44100, 8000}, {48000, 16000}} {
		for _, q := range []codec.Quality{codec.Telephone, codec.High} {
			r, err := codec.NewResampler(p[0], p[1], q)
			if err != nil {
				t.Fatal(err)
			}
			src := make([]float32, 400)
			src[0] = 1
			dst := make([]float32, r.MaxOut(len(src)))
			n := r.Process(dst, src)
			peak := 0
			for i := range dst[:n] {
				if math.Abs(float64(dst[i])) > math.Abs(float64(dst[peak])) {
					peak = i
				}
			}
			if peak != r.Latency() {
				t.Errorf("%d→%d %v: impulse peak at output %d, Latency() = %d", p[0], p[1], q, peak, r.Latency())
			}
		}
	}
}

// TestResamplerChunking feeds the same signal in chunks of 1, 7, 160 and 8000
// samples: the outputs must be bit-identical.
func TestResamplerChunking(t *testing.T) {
	src := make([]float32, 16000+37)
	for i := range src {
		src[i] = float32(0.3*math.Sin(float64(i)*0.37) + 0.2*math.Sin(float64(i)*1.91))
	}
	for _, p := range [][2]int{{8000, 16000}, {16000, 8000}, {8000, 48000}, {8000, 44100}} {
		for _, q := range []codec.Quality{codec.Telephone, codec.High} {
			var ref []float32
			for _, chunk := range []int{8000, 1, 7, 160} {
				r, err := codec.NewResampler(p[0], p[1], q)
				if err != nil {
					t.Fatal(err)
				}
				var out []float32
				buf := make([]float32, r.MaxOut(chunk))
				for s := src; len(s) > 0; {
					c := min(chunk, len(s))
					n := r.Process(buf, s[:c])
					out = append(out, buf[:n]...)
					s = s[c:]
				}
				tail := make([]float32, r.Latency())
				out = append(out, tail[:r.Flush(tail)]...)
				if want := r.MaxOut(len(src)) + r.Latency(); len(out) != want {
					t.Errorf("%d→%d chunk %d: %d samples, want %d", p[0], p[1], chunk, len(out), want)
				}
				if ref == nil {
					ref = out
					continue
				}
				if !slices.Equal(out, ref) {
					t.Errorf("%d→%d %v: chunk size %d changes the output", p[0], p[1], q, chunk)
				}
			}
		}
	}
}

func TestResamplerInt16(t *testing.T) {
	src16 := make([]int16, 8000)
	srcF := make([]float32, len(src16))
	for i := range src16 {
		src16[i] = int16(20000 * math.Sin(float64(i)*0.5))
	}
	src16[100], src16[101] = 32767, -32768 // full-scale steps overshoot: clipped
	codec.Int16ToFloat(srcF, src16)
	for _, chunk := range []int{1, 7, 160, 8000} {
		r, _ := codec.NewResampler(8000, 16000, codec.Telephone)
		rf, _ := codec.NewResampler(8000, 16000, codec.Telephone)
		want := make([]int16, rf.MaxOut(len(srcF)))
		wf := make([]float32, len(want))
		codec.FloatToInt16(want, wf[:rf.Process(wf, srcF)])
		var got []int16
		buf := make([]int16, r.MaxOut(chunk))
		for s := src16; len(s) > 0; {
			c := min(chunk, len(s))
			got = append(got, buf[:r.ProcessInt16(buf, s[:c])]...)
			s = s[c:]
		}
		if !slices.Equal(got, want) {
			t.Errorf("chunk %d: ProcessInt16 differs from Process + FloatToInt16", chunk)
		}
	}
}

func TestResamplerFlushReset(t *testing.T) {
	r, _ := codec.NewResampler(8000, 16000, codec.Telephone)
	src := tone(800, 1000, 8000, amp)
	out1 := make([]float32, r.MaxOut(len(src))+r.Latency())
	n1 := r.Process(out1, src)
	n1 += r.Flush(out1[n1:])
	// After Flush the resampler starts a new stream: same input, same output.
	out2 := make([]float32, len(out1))
	n2 := r.Process(out2, src)
	n2 += r.Flush(out2[n2:])
	if n1 != n2 || !slices.Equal(out1[:n1], out2[:n2]) || n1 != 1600+r.Latency() {
		t.Fatalf("Flush: %d then %d samples, want %d twice and equal", n1, n2, 1600+r.Latency())
	}
	// Reset mid-stream discards the state.
	r.Process(out2, src[:333])
	r.Reset()
	n3 := r.Process(out2, src)
	if !slices.Equal(out2[:n3], out1[:n3]) {
		t.Fatal("Reset did not clear the state")
	}
	// A short Flush destination gets the start of the tail.
	r.Reset()
	r.Process(out2, src)
	short := make([]float32, 5)
	if n := r.Flush(short); n != 5 || !slices.Equal(short, out1[1600:1605]) {
		t.Fatalf("short Flush wrote %d samples %v, want %v", n, short, out1[1600:1605])
	}
}

func TestResamplerShortDst(t *testing.T) {
	r, _ := codec.NewResampler(8000, 16000, codec.Telephone)
	defer func() {
		if recover() == nil {
			t.Fatal("Process with a short dst did not panic")
		}
	}()
	r.Process(make([]float32, 10), make([]float32, 10))
}

func TestResamplerIdentityAndErrors(t *testing.T) {
	r, err := codec.NewResampler(8000, 8000, codec.Telephone)
	if err != nil {
		t.Fatal(err)
	}
	src := []float32{1, 2, 3}
	dst := make([]float32, 3)
	if n := r.Process(dst, src); n != 3 || !slices.Equal(dst, src) || r.Latency() != 0 {
		t.Fatalf("identity: %d %v latency %d", n, dst, r.Latency())
	}
	for _, p := range [][2]int{{0, 8000}, {8000, -1}, {8000, 1 << 30}, {8000, 383999}} {
		if _, err := codec.NewResampler(p[0], p[1], codec.Telephone); !errors.Is(err, codec.ErrRate) {
			t.Errorf("NewResampler(%d, %d): %v, want ErrRate", p[0], p[1], err)
		}
	}
	if _, err := codec.NewResampler(8000, 16000, codec.Quality(9)); err == nil {
		t.Error("unknown quality accepted")
	}
}

func TestResamplerAllocs(t *testing.T) {
	for _, p := range [][2]int{{8000, 16000}, {16000, 8000}, {8000, 48000}, {8000, 44100}} {
		r, _ := codec.NewResampler(p[0], p[1], codec.Telephone)
		src := tone(160, 1000, float64(p[0]), amp)
		dst := make([]float32, r.MaxOut(len(src))+r.Latency())
		src16 := make([]int16, 160)
		dst16 := make([]int16, r.MaxOut(160))
		if a := testing.AllocsPerRun(100, func() { r.Process(dst, src) }); a != 0 {
			t.Errorf("%d→%d Process: %v allocs", p[0], p[1], a)
		}
		if a := testing.AllocsPerRun(100, func() { r.ProcessInt16(dst16, src16) }); a != 0 {
			t.Errorf("%d→%d ProcessInt16: %v allocs", p[0], p[1], a)
		}
		if a := testing.AllocsPerRun(100, func() { r.Flush(dst) }); a != 0 {
			t.Errorf("%d→%d Flush: %v allocs", p[0], p[1], a)
		}
	}
}

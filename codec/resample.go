package codec

import (
	"fmt"
	"math"
)

// Quality selects a resampler filter preset. The zero value is Telephone.
type Quality int

const (
	// Telephone is tuned for G.711 speech: the passband is flat within
	// ±0.05 dB from 300 to 3400 Hz, and images (up-sampling) and aliases
	// (down-sampling) of that band are at least 65 dB down. At 8↔16 kHz it
	// costs 32 (up) or 96 (down) multiply-adds per output sample.
	Telephone Quality = iota
	// High pushes the same images and aliases at least 80 dB down for about
	// 1.5 times the cost of Telephone.
	High
)

// String returns "telephone" or "high".
func (q Quality) String() string {
	switch q {
	case Telephone:
		return "telephone"
	case High:
		return "high"
	}
	return fmt.Sprintf("Quality(%d)", int(q))
}

// filter preset: taps per phase for a ratio of 1 (scaled by the decimation
// factor when down-sampling), stopband attenuation in dB and the cutoff as a
// fraction of the lower of the two Nyquist frequencies.
type preset struct {
	taps   int
	atten  float64
	cutoff float64
}

var presets = map[Quality][2]preset{ // [up, down]
	Telephone: {{taps: 32, atten: 70, cutoff: 1.0}, {taps: 48, atten: 65, cutoff: 0.925}},
	High:      {{taps: 48, atten: 80, cutoff: 1.0}, {taps: 64, atten: 75, cutoff: 0.925}},
}

// Rate limits accepted by NewResampler.
const (
	minRate = 1000
	maxRate = 384000
	// maxBank bounds the coefficient table (L phases × N taps), which only
	// odd rate pairs with huge reduced ratios would exceed.
	maxBank = 1 << 20
)

// Resampler converts a stream of mono samples from one sample rate to
// another with a polyphase FIR filter (Kaiser-windowed sinc). Any rational
// ratio of rates between 1 kHz and 384 kHz works; 8↔16 kHz and 8 kHz →
// 44.1/48 kHz are the tested paths.
//
// The filter state carries across calls, so the output does not depend on
// how the input is split into chunks. The output is delayed by Latency()
// output samples: drop that many from the start to align output with input,
// and call Flush at the end to get the tail.
//
// A Resampler holds the state of one stream. It is not safe for concurrent
// use; use one per stream. After NewResampler, no method allocates.
type Resampler struct {
	inRate, outRate int
	l, m            int       // interpolate by l, decimate by m (reduced)
	taps            int       // taps per phase
	bank            []float32 // l phases × taps, each phase reversed
	delay           []float32 // 2×taps, written twice so a window is contiguous
	w               int       // next write index in delay, [0, taps)
	phase           int       // phase accumulator
	latency         int
	identity        bool

	in, out int64 // samples consumed and produced since Reset

	fin  []float32 // ProcessInt16 scratch: input chunk
	fout []float32 // ProcessInt16 scratch: output of one chunk
}

// int16Chunk is the input chunk size ProcessInt16 converts at a time.
const int16Chunk = 256

// NewResampler returns a resampler from inRate to outRate Hz with filter
// preset q. Equal rates give a pass-through with no delay. It returns an
// error wrapping ErrRate for rates outside 1–384 kHz or for a ratio whose
// filter would be unreasonably large (reduced interpolation factor × taps
// above 2^20).
func NewResampler(inRate, outRate int, q Quality) (*Resampler, error) {
	if inRate < minRate || inRate > maxRate || outRate < minRate || outRate > maxRate {
		return nil, fmt.Errorf("%w: %d Hz to %d Hz (want %d–%d Hz)", ErrRate, inRate, outRate, minRate, maxRate)
	}
	ps, ok := presets[q]
	if !ok {
		return nil, fmt.Errorf("codec: unknown resampler quality %d", int(q))
	}
	g := gcd(inRate, outRate)
	r := &Resampler{inRate: inRate, outRate: outRate, l: outRate / g, m: inRate / g}
	if r.l == r.m {
		r.identity = true
		return r, nil
	}
	p := ps[0]
	ratio := 1.0
	if r.m > r.l {
		p = ps[1]
		ratio = float64(r.m) / float64(r.l)
	}
	n := int(math.Ceil(float64(p.taps) * ratio))
	n = (n + 7) &^ 7 // a multiple of 8 for the unrolled dot product
	if r.l*n > maxBank {
		return nil, fmt.Errorf("%w: %d Hz to %d Hz needs %d×%d filter taps", ErrRate, inRate, outRate, r.l, n)
	}
	r.taps = n

	// Total length K = 2D+1 (odd, so the delay D is a whole number of
	// samples at the high rate), with D a multiple of m so that the delay is
	// also a whole number of output samples.
	d := r.m * ((r.l*n - 2) / (2 * r.m))
	r.latency = d / r.m
	k := 2*d + 1
	// Cutoff in cycles per high-rate sample.
	fc := p.cutoff * 0.5 / float64(max(r.l, r.m))
	h := kaiserSinc(k, fc, p.atten)
	var sum float64
	for _, v := range h {
		sum += v
	}
	gain := float64(r.l) / sum
	r.bank = make([]float32, r.l*n)
	for ph := range r.l {
		for i := range n {
			// bank[ph][i] multiplies window[i] = x[n0-(n-1)+i].
			j := ph + (n-1-i)*r.l
			if j < k {
				r.bank[ph*n+i] = float32(h[j] * gain)
			}
		}
	}
	r.delay = make([]float32, 2*n)
	r.fin = make([]float32, int16Chunk)
	r.fout = make([]float32, r.MaxOut(int16Chunk))
	return r, nil
}

// kaiserSinc designs a low-pass filter of length k with cutoff fc (cycles
// per sample) and stopband attenuation atten dB, centred on (k-1)/2.
func kaiserSinc(k int, fc, atten float64) []float64 {
	var beta float64
	switch {
	case atten > 50:
		beta = 0.1102 * (atten - 8.7)
	case atten >= 21:
		beta = 0.5842*math.Pow(atten-21, 0.4) + 0.07886*(atten-21)
	}
	h := make([]float64, k)
	c := float64(k-1) / 2
	i0b := besselI0(beta)
	for i := range h {
		x := float64(i) - c
		s := 2 * fc
		if x != 0 {
			s = math.Sin(2*math.Pi*fc*x) / (math.Pi * x)
		}
		t := x / c
		h[i] = s * besselI0(beta*math.Sqrt(max(0, 1-t*t))) / i0b
	}
	return h
}

// besselI0 is the zeroth-order modified Bessel function of the first kind.
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 200; k++ {
		term *= (x / (2 * float64(k))) * (x / (2 * float64(k)))
		sum += term
		if term < sum*1e-17 {
			break
		}
	}
	return sum
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// InRate returns the input sample rate in Hz.
func (r *Resampler) InRate() int { return r.inRate }

// OutRate returns the output sample rate in Hz.
func (r *Resampler) OutRate() int { return r.outRate }

// Latency returns the filter delay in output samples: output sample
// Latency()+i corresponds to input time i/OutRate. It is 31 for 8→16 kHz
// and 23 for 16→8 kHz with Telephone (about 2 and 3 ms).
func (r *Resampler) Latency() int { return r.latency }

// MaxOut returns the largest number of output samples Process can produce
// from nIn input samples, whatever the state: ceil(nIn × out/in).
func (r *Resampler) MaxOut(nIn int) int {
	if nIn <= 0 {
		return 0
	}
	return int((int64(nIn)*int64(r.l) + int64(r.m) - 1) / int64(r.m))
}

// outFor returns the exact number of outputs the next nIn inputs produce.
func (r *Resampler) outFor(nIn int) int {
	if r.identity {
		return nIn
	}
	// Outputs k with k·m < (in+nIn)·l, minus those already produced.
	end := (r.in+int64(nIn))*int64(r.l) + int64(r.m) - 1
	return int(end/int64(r.m) - r.out)
}

// Process resamples src into dst and returns the number of samples written.
// All of src is consumed. dst must have room for MaxOut(len(src)) samples;
// Process panics if it is too short for the output this call produces, since
// dropping samples would silently corrupt the stream. It never allocates.
func (r *Resampler) Process(dst, src []float32) int {
	need := r.outFor(len(src))
	if len(dst) < need {
		panic(fmt.Sprintf("codec: Resampler.Process: dst holds %d samples, %d needed (see MaxOut)", len(dst), need))
	}
	if r.identity {
		r.in += int64(len(src))
		r.out += int64(len(src))
		return copy(dst, src)
	}
	n := r.taps
	l, m := r.l, r.m
	delay := r.delay
	w, phase := r.w, r.phase
	o := 0
	for _, x := range src {
		delay[w] = x
		delay[w+n] = x
		w++
		if w == n {
			w = 0
		}
		win := delay[w : w+n]
		for phase < l {
			dst[o] = dot(r.bank[phase*n:phase*n+n], win)
			o++
			phase += m
		}
		phase -= l
	}
	r.w, r.phase = w, phase
	r.in += int64(len(src))
	r.out += int64(o)
	return o
}

// dot returns the inner product of a and b[:len(a)]; len(a) is a multiple
// of 8. Four partial sums let the CPU overlap the multiply-adds.
func dot(a, b []float32) float32 {
	var s0, s1, s2, s3 float32
	for len(a) >= 8 && len(b) >= 8 {
		x, y := (*[8]float32)(a), (*[8]float32)(b)
		s0 += x[0]*y[0] + x[4]*y[4]
		s1 += x[1]*y[1] + x[5]*y[5]
		s2 += x[2]*y[2] + x[6]*y[6]
		s3 += x[3]*y[3] + x[7]*y[7]
		a, b = a[8:], b[8:]
	}
	return (s0 + s1) + (s2 + s3)
}

// ProcessInt16 is Process for 16-bit samples: it converts to float, resamples
// and rounds back with clipping. The output equals Process on
// float32(s)/32768 followed by FloatToInt16, whatever the chunking. Like
// Process, it panics if dst is shorter than the output of this call.
func (r *Resampler) ProcessInt16(dst, src []int16) int {
	need := r.outFor(len(src))
	if len(dst) < need {
		panic(fmt.Sprintf("codec: Resampler.ProcessInt16: dst holds %d samples, %d needed (see MaxOut)", len(dst), need))
	}
	if r.identity {
		r.in += int64(len(src))
		r.out += int64(len(src))
		return copy(dst, src)
	}
	o := 0
	for len(src) > 0 {
		c := min(len(src), int16Chunk)
		Int16ToFloat(r.fin, src[:c])
		k := r.Process(r.fout, r.fin[:c])
		o += FloatToInt16(dst[o:], r.fout[:k])
		src = src[c:]
	}
	return o
}

// Flush ends the stream: it feeds silence through the filter, writes the
// delayed tail (Latency() samples) to dst, and resets the resampler for a
// new stream. With the first Latency() output samples dropped, the samples
// from Process and Flush together then cover the input exactly:
// ceil(inputs × out/in) samples. A dst shorter than Latency() receives only
// the start of the tail.
func (r *Resampler) Flush(dst []float32) int {
	if r.identity {
		r.Reset()
		return 0
	}
	target := r.out + int64(r.latency)
	o := 0
	var zero [1]float32
	for r.out < target && o < len(dst) {
		k := r.Process(r.fout, zero[:]) // fout holds MaxOut(int16Chunk) ≥ MaxOut(1)
		k = min(k, int(target-(r.out-int64(k))), len(dst)-o)
		copy(dst[o:], r.fout[:k])
		o += k
	}
	r.Reset()
	return o
}

// Reset clears the filter state and counters for a new stream.
func (r *Resampler) Reset() {
	clear(r.delay)
	r.w, r.phase = 0, 0
	r.in, r.out = 0, 0
}

package offline

import (
	"math"
	"sync"

	"github.com/voicegate/voicegate/internal/vad"
)

// Front end: 25 ms Hamming frames every 10 ms, pre-emphasis 0.97, 24
// triangular mel bands between 100 and 3800 Hz, 20 cepstral coefficients
// (c1…c20; c0, the frame energy, is left out).
const (
	numBands  = 24
	numCeps   = 20
	lowHz     = 100.0
	highHz    = 3800.0
	preEmph   = 0.97
	frameMs   = 25
	hopMs     = 10
	deltaSpan = 2           // frames each side for delta coefficients
	featDim   = 2 * numCeps // c1…c20 and their deltas
)

// frontEnd holds the tables for one sample rate. It is immutable and shared.
type frontEnd struct {
	rate   int
	frame  int // samples per analysis frame
	hop    int
	nfft   int
	window []float64
	bands  [numBands]band
	dct    [numCeps][numBands]float64
	twr    []float64 // cos(2πk/nfft), k < nfft/2
	twi    []float64 // -sin(2πk/nfft)
	rev    []int     // bit reversal of the half-size FFT
}

type band struct {
	start   int
	weights []float64
}

var (
	frontEndsMu sync.Mutex
	frontEnds   = map[int]*frontEnd{}
)

func frontEndFor(rate int) *frontEnd {
	frontEndsMu.Lock()
	defer frontEndsMu.Unlock()
	if fe, ok := frontEnds[rate]; ok {
		return fe
	}
	fe := newFrontEnd(rate)
	frontEnds[rate] = fe
	return fe
}

func newFrontEnd(rate int) *frontEnd {
	fe := &frontEnd{rate: rate, frame: rate * frameMs / 1000, hop: rate * hopMs / 1000}
	fe.nfft = 1
	for fe.nfft < fe.frame {
		fe.nfft <<= 1
	}
	fe.window = make([]float64, fe.frame)
	for i := range fe.window {
		fe.window[i] = 0.54 - 0.46*math.Cos(2*math.Pi*float64(i)/float64(fe.frame-1))
	}
	mel := func(f float64) float64 { return 2595 * math.Log10(1+f/700) }
	hz := func(m float64) float64 { return 700 * (math.Pow(10, m/2595) - 1) }
	lo, hi := mel(lowHz), mel(highHz)
	var edges [numBands + 2]float64
	for i := range edges {
		edges[i] = hz(lo + (hi-lo)*float64(i)/float64(numBands+1))
	}
	binHz := float64(rate) / float64(fe.nfft)
	for b := range numBands {
		l, c, r := edges[b], edges[b+1], edges[b+2]
		start := int(math.Ceil(l / binHz))
		var w []float64
		for k := start; float64(k)*binHz < r; k++ {
			f := float64(k) * binHz
			switch {
			case f <= c:
				w = append(w, (f-l)/(c-l))
			default:
				w = append(w, (r-f)/(r-c))
			}
		}
		fe.bands[b] = band{start: start, weights: w}
	}
	for k := range numCeps {
		for b := range numBands {
			fe.dct[k][b] = math.Sqrt(2.0/numBands) * math.Cos(math.Pi*float64(k+1)*(float64(b)+0.5)/numBands)
		}
	}
	n := fe.nfft
	fe.twr, fe.twi = make([]float64, n/2), make([]float64, n/2)
	for i := range fe.twr {
		fe.twr[i] = math.Cos(2 * math.Pi * float64(i) / float64(n))
		fe.twi[i] = -math.Sin(2 * math.Pi * float64(i) / float64(n))
	}
	// Bit reversal for the half-size complex FFT of the real frame.
	h := n / 2
	fe.rev = make([]int, h)
	bits := 0
	for 1<<bits < h {
		bits++
	}
	for i := range fe.rev {
		r := 0
		for b := range bits {
			if i&(1<<b) != 0 {
				r |= 1 << (bits - 1 - b)
			}
		}
		fe.rev[i] = r
	}
	return fe
}

// power writes the power spectrum |X[k]|², k = 0…nfft/2, of the real
// frame x (len nfft) into pow (len nfft/2+1), using re and im (len
// nfft/2 each) as scratch: the even and odd samples are packed into one
// complex sequence, transformed by a radix-2 FFT of half the size, and the
// two halves' spectra separated (the usual real-input FFT).
func (fe *frontEnd) power(x, re, im, pow []float64) {
	h := len(re)
	im = im[:h]
	twr, twi := fe.twr[:h], fe.twi[:h]
	for i, r := range fe.rev[:h] {
		re[r], im[r] = x[2*i], x[2*i+1]
	}
	for size := 2; size <= h; size <<= 1 {
		half, step := size/2, 2*h/size
		for start := 0; start < h; start += size {
			for k := range half {
				wr, wi := twr[k*step], twi[k*step]
				i, j := start+k, start+k+half
				tr := wr*re[j] - wi*im[j]
				ti := wr*im[j] + wi*re[j]
				re[j], im[j] = re[i]-tr, im[i]-ti
				re[i] += tr
				im[i] += ti
			}
		}
	}
	pow = pow[:h+1]
	for k := 0; k <= h; k++ {
		a, b := k, h-k
		if k == h {
			a, b = 0, 0
		} else if k == 0 {
			b = 0
		}
		// even = (Z[k] + conj(Z[h-k]))/2, odd = (Z[k] - conj(Z[h-k]))/(2i)
		er, ei := 0.5*(re[a]+re[b]), 0.5*(im[a]-im[b])
		or, oi := 0.5*(im[a]+im[b]), -0.5*(re[a]-re[b])
		wr, wi := -1.0, 0.0
		if k < h {
			wr, wi = twr[k], twi[k]
		}
		xr := er + wr*or - wi*oi
		xi := ei + wr*oi + wi*or
		pow[k] = xr*xr + xi*xi
	}
}

// analysis is the front end's output for one signal: cepstra of the frames
// the voice activity detector marks as speech.
type analysis struct {
	ceps      [][featDim]float64 // speech frames only, in time order
	energy    []float64          // log mel energy of each frame in ceps
	netSpeech float64            // seconds, as the VAD counts it
	duration  float64            // seconds
}

// workspace holds the buffers of one engine call: decoded samples, the
// detector, the front end's frame buffers, the cepstra, the supervector,
// the embeddings and the cohort cosines. The engine takes one from
// workspaces for each call and puts it back at the end, so a call
// allocates little beyond its result. Before, each call allocated about
// 0.9 MB (mostly the growing cepstra), and a burst of 1,000 calls drove
// 15 garbage collections whose background work took more CPU than the
// burst's 100 ms allowance:
//
//	go test -run '^$' -bench GenerateCredential -benchmem ./daspeak/offline/
//	go test -run '^$' -bench Burst -benchtime 1x -v ./daspeak/
//
// A workspace is used by one call at a time. It keeps the largest buffers
// its calls needed: after a 30 s stereo 16 kHz request, about 4 MB, until
// the pool drops it (two collections without use).
type workspace struct {
	det              *vad.Energy
	pcm, mono        []int16 // decoded samples; one channel of a stereo file
	buf, re, im, pow []float64
	ceps             [][featDim]float64
	energy           []float64
	sv               []float64 // supervector
	emb, ref         []float32 // the audio's embedding; a decoded credential's
	raw, text        []byte    // a credential's bytes and text
	cos              []float64 // cosines with the cohort rows
}

var workspaces = sync.Pool{New: func() any { return new(workspace) }}

// grow returns s with length n, reusing its array when it is large enough.
// The contents are not cleared.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// detector returns a new or reset detector for rate.
func (ws *workspace) detector(rate int) *vad.Energy {
	if ws.det != nil && ws.det.SampleRate() == rate {
		ws.det.Reset()
		return ws.det
	}
	ws.det, _ = vad.New(rate, &vad.Options{MaxSegments: 4096})
	return ws.det
}

// analyse runs the VAD and the cepstral front end over mono pcm at rate Hz.
// maxSpeech > 0 stops at the sample where the VAD's net speech reaches it
// (the rest of pcm is ignored).
func analyse(pcm []int16, rate int, maxSpeech float64) analysis {
	return new(workspace).analyse(pcm, rate, maxSpeech)
}

// analyse is analyse with ws's buffers: the result's cepstra and energies
// are ws's until its next analyse.
func (ws *workspace) analyse(pcm []int16, rate int, maxSpeech float64) analysis {
	fe := frontEndFor(rate)
	det := ws.detector(rate)
	step := rate / 50
	end := len(pcm)
	for i := 0; i < len(pcm); i += step {
		det.Process(pcm[i:min(i+step, len(pcm))])
		if maxSpeech > 0 && det.NetSpeech().Seconds() >= maxSpeech-1e-9 {
			end = min(i+step, len(pcm))
			break
		}
	}
	det.Flush()
	a := analysis{netSpeech: det.NetSpeech().Seconds(), duration: float64(len(pcm)) / float64(rate)}
	segs := det.Segments()
	if len(segs) == 0 {
		return a
	}
	ws.buf = grow(ws.buf, fe.nfft)
	ws.re, ws.im = grow(ws.re, fe.nfft/2), grow(ws.im, fe.nfft/2)
	ws.pow = grow(ws.pow, fe.nfft/2+1)
	buf, re, im, pow := ws.buf, ws.re, ws.im, ws.pow
	a.ceps, a.energy = ws.ceps[:0], ws.energy[:0]
	var logmel [numBands]float64
	seg := 0
	prev := 0.0
	for start := 0; start+fe.frame <= end; start += fe.hop {
		center := float64(start+fe.frame/2) / float64(rate)
		for seg < len(segs) && segs[seg].End.Seconds() <= center {
			seg++
		}
		if seg == len(segs) {
			break
		}
		if center < segs[seg].Start.Seconds() {
			continue
		}
		if start > 0 {
			prev = float64(pcm[start-1])
		} else {
			prev = 0
		}
		for i := range fe.frame {
			s := float64(pcm[start+i])
			buf[i] = (s - preEmph*prev) * fe.window[i] / 32768
			prev = s
		}
		for i := fe.frame; i < fe.nfft; i++ {
			buf[i] = 0
		}
		fe.power(buf, re, im, pow)
		for b := range numBands {
			bd := &fe.bands[b]
			var e float64
			for j, w := range bd.weights {
				e += w * pow[bd.start+j]
			}
			logmel[b] = math.Log(e + 1e-10)
		}
		var tot float64
		for _, l := range logmel {
			tot += l
		}
		a.energy = append(a.energy, tot/numBands)

		var c [featDim]float64
		for k := range numCeps {
			var v float64
			for b := range numBands {
				v += fe.dct[k][b] * logmel[b]
			}
			c[k] = v
		}
		a.ceps = append(a.ceps, c)
	}
	ws.ceps, ws.energy = a.ceps, a.energy
	a = dropQuiet(a)
	addDeltas(a.ceps)
	// The cepstra are not mean- or variance-normalised: a fixed handset
	// or line response is a constant in the cepstrum, but on 3–5 s of
	// speech the mean removes more of the voice than of the channel. The
	// channel is removed in the supervector instead (nuisance directions
	// fitted across simulated telephone channels, fit_test.go). Mean EER
	// over the eight lines of the development split (TestDevSplit, trials
	// on the second half, then the first, with the model of
	// offline-mfcc-v3 otherwise): mean over a sliding 3 s window 16.7%,
	// 17.7%; half that mean 14.4%, 15.6%; feature warping over 3 s 17.7%,
	// 16.2%; no normalisation 13.6%, 13.8%.
	return a
}

// quietDrop is how far below the loudest speech frame (in natural-log mel
// energy units: 9.2 is 40 dB) a frame may be and still feed the
// embedding. Quieter frames inside speech segments (pauses between words,
// breath) carry the channel more than the voice.
const quietDrop = 9.2

func dropQuiet(a analysis) analysis {
	if len(a.energy) == 0 || quietDrop <= 0 {
		return a
	}
	top := a.energy[0]
	for _, e := range a.energy {
		top = max(top, e)
	}
	ceps, energy := a.ceps[:0], a.energy[:0]
	for i, e := range a.energy {
		if e >= top-quietDrop {
			ceps = append(ceps, a.ceps[i])
			energy = append(energy, e)
		}
	}
	a.ceps, a.energy = ceps, energy
	return a
}

// addDeltas fills the second half of each frame with the regression
// slope of the cepstra over deltaSpan frames each side (clamped at the
// ends): Σ n·(c[t+n] − c[t−n]) / (2 Σ n²).
func addDeltas(f [][featDim]float64) {
	n := len(f)
	const norm = 2 * (1*1 + 2*2)
	for t := range f {
		for d := range numCeps {
			var v float64
			for k := 1; k <= deltaSpan; k++ {
				v += float64(k) * (f[min(n-1, t+k)][d] - f[max(0, t-k)][d])
			}
			f[t][numCeps+d] = v / norm
		}
	}
}

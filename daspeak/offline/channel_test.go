package offline

import (
	"math"
	"math/rand/v2"

	"github.com/voicegate/voicegate/codec"
)

// channel is a simulated telephone path: a handset frequency response, a
// gain, additive noise and a G.711 codec, applied in that order to clean
// 8 kHz speech.
type channel struct {
	handset []biquad // nil: flat
	tilt    float64  // first-order tilt y = x + tilt·x[n-1], with handset
	gainDB  float64
	noise   string  // "", "white", "pink" or "babble"
	snrDB   float64 // speech-to-noise ratio over active speech
	alaw    bool
}

// biquad is one second-order section (RBJ cookbook), normalised by a0.
type biquad struct{ b0, b1, b2, a1, a2 float64 }

func rbj(kind string, f, q, gainDB float64) biquad {
	w := 2 * math.Pi * f / 8000
	cw, sw := math.Cos(w), math.Sin(w)
	al := sw / (2 * q)
	var b0, b1, b2, a0, a1, a2 float64
	switch kind {
	case "hp":
		b0, b1, b2 = (1+cw)/2, -(1 + cw), (1+cw)/2
		a0, a1, a2 = 1+al, -2*cw, 1-al
	case "lp":
		b0, b1, b2 = (1-cw)/2, 1-cw, (1-cw)/2
		a0, a1, a2 = 1+al, -2*cw, 1-al
	default: // peaking
		A := math.Pow(10, gainDB/40)
		b0, b1, b2 = 1+al*A, -2*cw, 1-al*A
		a0, a1, a2 = 1+al/A, -2*cw, 1-al/A
	}
	return biquad{b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0}
}

// randomHandset draws a handset response: a high-pass between 150 and
// 500 Hz, a low-pass between 2.6 and 3.6 kHz, one or two resonances or
// notches of ±9 dB and a spectral tilt.
func randomHandset(r *rand.Rand) ([]biquad, float64) {
	f := []biquad{
		rbj("hp", 150+350*r.Float64(), 0.6+0.5*r.Float64(), 0),
		rbj("lp", 2600+1000*r.Float64(), 0.6+0.5*r.Float64(), 0),
	}
	for range 1 + r.IntN(2) {
		f = append(f, rbj("peak", 400+2600*r.Float64(), 0.7+1.5*r.Float64(), -9+18*r.Float64()))
	}
	return f, -0.6 + 1.2*r.Float64()
}

// randomChannel draws a training channel: a quarter clean, otherwise a
// handset (60%), noise of a random kind at 10–30 dB (60%), a gain of -12 to
// +6 dB, and μ-law or A-law.
func randomChannel(r *rand.Rand) channel {
	var c channel
	c.alaw = r.IntN(2) == 0
	if r.IntN(4) == 0 {
		return c
	}
	if r.Float64() < 0.6 {
		c.handset, c.tilt = randomHandset(r)
	}
	if r.Float64() < 0.6 {
		c.noise = []string{"white", "pink", "babble"}[r.IntN(3)]
		c.snrDB = 10 + 20*r.Float64()
	}
	c.gainDB = -12 + 18*r.Float64()
	return c
}

// apply passes clean through the channel; babble is the babble noise
// source (other speakers' speech, looped), used when c.noise is "babble".
func (c channel) apply(clean []int16, babble []float64, r *rand.Rand) []int16 {
	x := make([]float64, len(clean))
	for i, s := range clean {
		x[i] = float64(s)
	}
	if c.handset != nil {
		for _, bq := range c.handset {
			var x1, x2, y1, y2 float64
			for i, v := range x {
				y := bq.b0*v + bq.b1*x1 + bq.b2*x2 - bq.a1*y1 - bq.a2*y2
				x2, x1, y2, y1 = x1, v, y1, y
				x[i] = y
			}
		}
		prev := 0.0
		for i, v := range x {
			x[i], prev = v+c.tilt*prev, v
		}
		// Keep the speech level: scale to the clean signal's power.
		scale := math.Sqrt(activePower(clean) / math.Max(activePowerF(x), 1e-9))
		for i := range x {
			x[i] *= scale
		}
	}
	g := math.Pow(10, c.gainDB/20)
	for i := range x {
		x[i] *= g
	}
	if c.noise != "" {
		n := make([]float64, len(x))
		switch c.noise {
		case "white":
			for i := range n {
				n[i] = r.NormFloat64()
			}
		case "pink": // Paul Kellet's economy pink filter
			var b0, b1, b2 float64
			for i := range n {
				w := r.NormFloat64()
				b0 = 0.99765*b0 + w*0.0990460
				b1 = 0.96300*b1 + w*0.2965164
				b2 = 0.57000*b2 + w*1.0526913
				n[i] = b0 + b1 + b2 + w*0.1848
			}
		case "babble":
			off := r.IntN(max(1, len(babble)))
			for i := range n {
				n[i] = babble[(off+i)%len(babble)]
			}
		}
		var pn float64
		for _, v := range n {
			pn += v * v
		}
		pn /= float64(len(n))
		k := math.Sqrt(activePowerF(x) / math.Pow(10, c.snrDB/10) / math.Max(pn, 1e-12))
		for i := range x {
			x[i] += k * n[i]
		}
	}
	out := make([]int16, len(x))
	for i, v := range x {
		out[i] = int16(max(-32768, min(32767, math.Round(v))))
	}
	b := make([]byte, len(out))
	if c.alaw {
		codec.EncodeALaw(b, out)
		codec.DecodeALaw(out, b)
	} else {
		codec.EncodeULaw(b, out)
		codec.DecodeULaw(out, b)
	}
	return out
}

func activePower(pcm []int16) float64 {
	x := make([]float64, len(pcm))
	for i, s := range pcm {
		x[i] = float64(s)
	}
	return activePowerF(x)
}

// activePowerF is the mean power of the 20 ms frames within 30 dB of the
// loudest one (the active speech level, roughly as ITU-T P.56 measures it).
func activePowerF(x []float64) float64 {
	const n = 160
	var p []float64
	top := 0.0
	for i := 0; i+n <= len(x); i += n {
		var s float64
		for _, v := range x[i : i+n] {
			s += v * v
		}
		p = append(p, s/n)
		top = max(top, s/n)
	}
	var sum float64
	var cnt int
	for _, v := range p {
		if v >= top/1000 {
			sum += v
			cnt++
		}
	}
	if cnt == 0 {
		return 0
	}
	return sum / float64(cnt)
}

// evalCondition is one column of the evaluation table.
type evalCondition struct {
	name             string
	handset, noise20 bool
}

var evalConditions = []evalCondition{
	{"clean", false, false},
	{"20 dB noise", false, true},
	{"handset", true, false},
	{"handset+noise", true, true},
}

// channel draws the condition's channel for one utterance: μ-law always;
// a random handset and/or white noise at 20 dB as the condition says.
func (e evalCondition) channel(r *rand.Rand) channel {
	var c channel
	if e.handset {
		c.handset, c.tilt = randomHandset(r)
	}
	if e.noise20 {
		c.noise, c.snrDB = "white", 20
	}
	return c
}

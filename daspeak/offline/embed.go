package offline

import "math"

// Embedding: a Gaussian mixture supervector. A 32-component diagonal
// Gaussian mixture over normalised cepstra and deltas (the background
// model, fitted once on speech through simulated telephone channels,
// norm.go) gives each speech frame a posterior over the components. The
// utterance's component means are adapted from the background means
// towards the frames (maximum a posteriori, relevance factor 4), and the
// supervector holds the shifts, scaled by the square root of the component
// weight over the component's standard deviation (32·40 = 1,280 values).
// Scaled to unit length, with the nuisance directions of model.bin
// projected out and scaled to unit length again, it is the embedding: the
// dot product of two embeddings is their cosine similarity.
const (
	ubmSize   = 32
	relevance = 4.0
	embedDim  = ubmSize * featDim
)

// mixture is a diagonal Gaussian mixture with precomputed terms.
type mixture struct {
	weight [ubmSize]float64
	mean   [ubmSize][featDim]float64
	vari   [ubmSize][featDim]float64

	logConst [ubmSize]float64 // log w - ½ Σ log var
	invVar   [ubmSize][featDim]float64
	scale    [ubmSize][featDim]float64 // sqrt(w) / sqrt(var)
}

func newMixture(w [ubmSize]float64, mean, vari [ubmSize][featDim]float64) *mixture {
	m := &mixture{weight: w, mean: mean, vari: vari}
	for k := range ubmSize {
		c := math.Log(w[k])
		for d := range featDim {
			c -= 0.5 * math.Log(vari[k][d])
			m.invVar[k][d] = 1 / vari[k][d]
			m.scale[k][d] = math.Sqrt(w[k] / vari[k][d])
		}
		m.logConst[k] = c
	}
	return m
}

// background is the model the engine uses, from norm.go.
var background = newMixture(ubmWeight, ubmMean, ubmVar)

// posteriors writes the component posteriors of frame f into post.
func (m *mixture) posteriors(f *[featDim]float64, post *[ubmSize]float64) {
	best := math.Inf(-1)
	for k := range ubmSize {
		ll := m.logConst[k]
		mu, iv := &m.mean[k], &m.invVar[k]
		for d := range featDim {
			x := f[d] - mu[d]
			ll -= 0.5 * x * x * iv[d]
		}
		post[k] = ll
		best = max(best, ll)
	}
	var sum float64
	for k := range ubmSize {
		post[k] = math.Exp(post[k] - best)
		sum += post[k]
	}
	for k := range ubmSize {
		post[k] /= sum
	}
}

// supervector returns the scaled mean shifts of a's speech frames, or nil
// when a holds none.
func (m *mixture) supervector(a analysis) []float64 {
	return m.supervectorInto(nil, a)
}

// supervectorInto is supervector written into v's array when its
// capacity is at least embedDim (allocated otherwise).
func (m *mixture) supervectorInto(v []float64, a analysis) []float64 {
	if len(a.ceps) == 0 {
		return nil
	}
	var n [ubmSize]float64
	var sx [ubmSize][featDim]float64
	var post [ubmSize]float64
	for i := range a.ceps {
		f := &a.ceps[i]
		m.posteriors(f, &post)
		for k, p := range post {
			if p < 1e-8 {
				continue
			}
			n[k] += p
			for d := range featDim {
				sx[k][d] += p * f[d]
			}
		}
	}
	v = grow(v, embedDim)
	for k := range ubmSize {
		for d := range featDim {
			adapted := (sx[k][d] + relevance*m.mean[k][d]) / (n[k] + relevance)
			v[k*featDim+d] = (adapted - m.mean[k][d]) * m.scale[k][d]
		}
	}
	return v
}

// embedding returns the unit-length embedding of a, or nil when a holds no
// speech frames.
func embedding(a analysis) []float32 {
	return new(workspace).embedding(a)
}

// embedding is embedding with ws's buffers: the result is ws's until its
// next embedding.
func (ws *workspace) embedding(a analysis) []float32 {
	v := background.supervectorInto(ws.sv, a)
	if v == nil {
		return nil
	}
	ws.sv = v
	unitLength(v)
	comp.project(v)
	var nn float64
	for _, x := range v {
		nn += x * x
	}
	nn = math.Sqrt(nn)
	if nn == 0 {
		nn = 1
	}
	out := grow(ws.emb, len(v))
	ws.emb = out
	for i, x := range v {
		out[i] = float32(x / nn)
	}
	return out
}

// cosine returns the dot product of two unit-length embeddings, clamped to
// [-1, 1].
func cosine(a, b []float32) float64 {
	var s float64
	for i := range min(len(a), len(b)) {
		s += float64(a[i]) * float64(b[i])
	}
	return max(-1, min(1, s))
}

// unitLength scales v to unit length (a zero vector stays zero).
func unitLength(v []float64) {
	var nn float64
	for _, x := range v {
		nn += x * x
	}
	if nn == 0 {
		return
	}
	nn = 1 / math.Sqrt(nn)
	for i := range v {
		v[i] *= nn
	}
}

// score compares two embeddings: the normalised score of the pair
// (model.go), calibrated.
func score(a, b []float32) float64 {
	return new(workspace).score(a, b)
}

// score is score with ws's buffers.
func (ws *workspace) score(a, b []float32) float64 {
	ws.cos = grow(ws.cos, len(comp.cohort))
	return calibrate(comp.normScore(a, b, nil, ws.cos))
}

// calibrate maps a normalised score z to a score in (0, 1) with a logistic
// curve: 0.5 at calCenter, the normalised score that impostors exceed with
// probability calFalseAccept on the fit trials pooled over channel
// conditions (see the package documentation), and slope calSlope, fitted
// by logistic regression on those trials.
func calibrate(z float64) float64 {
	return 1 / (1 + math.Exp(-calSlope*(z-calCenter)))
}

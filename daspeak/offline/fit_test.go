package offline

import (
	"bytes"
	"fmt"
	"go/format"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/voicegate/voicegate/internal/fixtures"
)

// fixtureWeight is how many times the frames of each committed clip count
// in the fit of the background model. The synthetic voices are close to one
// another and far from real telephone speech; weighting them lets the
// model spend components on them so they are told apart.
const fixtureWeight = 12

// emIterations is the number of EM iterations of the fit.
const emIterations = 8

// napRank is the number of nuisance directions removed from supervectors.
const napRank = 24

// cohortExcluded is the person left out of the cohort: Armelle
// Desjardins' prompts are also committed test clips (testdata/voices), and
// a cohort holding the enrolled speaker lowers that speaker's own scores.
const cohortExcluded = "armelle"

// fixtureDraws is the number of cohort rows of each committed synthetic
// clip (clean, then random channels): the synthetic voices are close to
// one another, so they need cohort rows of their own, but few, as the
// enrolled voice's own rows lower its scores.
const fixtureDraws = 2

// Fit sizes: fit utterances per speaker set, and the channel draws of each
// fit utterance for the background model and the nuisance directions.
const (
	fitPerSet = 25
	fitDraws  = 6
)

// Seeds of the channel draws: one stream per use, none shared with the
// evaluation (eer_test.go).
const (
	seedUBM    = 101
	seedCohort = 202
	seedCal    = 303
)

// fitModel is the result of a fit: background model, compensation and
// calibration.
type fitModel struct {
	ubm            *mixture
	comp           *compensation
	speakers       []string
	center, slope  float64
	calTar, calNon int
	calEER         float64
	calQuantiles   []float64 // per calibration set: random channels, then calFamilies
	utts, frames   int
	clips          int
}

// fit fits the whole model on the fit prompts and the committed clips.
func fit(t *testing.T) *fitModel {
	raw5 := rawCorpus(t, 5, fitPerSet, true)
	raw3 := rawCorpus(t, 3, fitPerSet, true)
	var aug []trialUtt
	for d := range fitDraws {
		var u []trialUtt
		if d == 0 {
			u, _ = degrade(raw5, 5, seedUBM, func(*rand.Rand) channel { return channel{} })
		} else {
			u, _ = degrade(raw5, 5, seedUBM+uint64(d), randomChannel)
		}
		aug = append(aug, u...)
	}
	var frames [][featDim]float64
	for _, u := range aug {
		frames = append(frames, u.a.ceps...)
	}
	fm := &fitModel{utts: len(aug), frames: len(frames)}
	for _, v := range fixtures.Voices() {
		for _, name := range fixtures.Utterances(v) {
			w := fixtures.LoadWAV(t, name)
			a := analyse(w.Mono(0), w.Format.SampleRate, 0)
			for range fixtureWeight {
				frames = append(frames, a.ceps...)
			}
			fm.clips++
		}
	}
	fm.ubm = trainMixture(frames, emIterations)

	oldBG, oldComp, oldSpk := background, comp, cohortSpeakers
	t.Cleanup(func() { background, comp, cohortSpeakers = oldBG, oldComp, oldSpk })
	background = fm.ubm
	comp = &compensation{}

	// Nuisance directions: the main directions of within-person scatter
	// of the channel-augmented fit supervectors.
	byPerson := map[string][][]float64{}
	for _, u := range aug {
		v := background.supervector(u.a)
		unitLength(v)
		byPerson[u.person] = append(byPerson[u.person], v)
	}
	comp.nap = nuisance(byPerson, napRank)

	// Cohort: every 5 s fit utterance through one more random channel.
	cu, _ := degrade(raw5, 5, seedCohort, randomChannel)
	embedAll(cu)
	for _, v := range fixtures.Voices() {
		if v == cohortExcluded {
			continue
		}
		var fx []rawUtt
		for _, name := range fixtures.Utterances(v) {
			fx = append(fx, rawUtt{set: "fixture/" + v, person: "fixture/" + v, pcm: fixtures.LoadWAV(t, name).Mono(0)})
		}
		for d := range fixtureDraws {
			u, _ := degrade(fx, 0, seedCohort+uint64(1+d), func(r *rand.Rand) channel {
				if d == 0 {
					return channel{}
				}
				return randomChannel(r)
			})
			embedAll(u)
			cu = append(cu, u...)
		}
	}
	for _, u := range cu {
		if u.person == cohortExcluded {
			continue
		}
		i := slices.Index(fm.speakers, u.person)
		if i < 0 {
			fm.speakers = append(fm.speakers, u.person)
			i = len(fm.speakers) - 1
		}
		comp.cohort = append(comp.cohort, u.emb)
		comp.speaker = append(comp.speaker, uint8(i))
	}
	cohortSpeakers = fm.speakers

	// Calibration on 3 s and 5 s fit trials: every utterance through its
	// own random channel, and, so that the threshold holds where both
	// sides share a kind of channel, four sets where every utterance goes
	// through its own draw of one kind (calFamilies). The centre is the
	// highest of the sets' (1-calFalseAccept) impostor quantiles.
	var tar, non []float64
	for f, fam := range append([]func(*rand.Rand) channel{randomChannel}, calFamilies...) {
		var fnon []float64
		for i, raw := range [][]rawUtt{raw3, raw5} {
			u, _ := degrade(raw, []float64{3, 5}[i], seedCal+uint64(10*f+i), fam)
			embedAll(u)
			a, b := trialScores(u)
			tar, non = append(tar, a...), append(non, b...)
			fnon = append(fnon, b...)
		}
		slices.Sort(fnon)
		q := round4(fnon[int(math.Ceil(float64(len(fnon))*(1-calFalseAccept)))-1])
		if f == 0 || q > fm.center {
			fm.center = q
		}
		fm.calQuantiles = append(fm.calQuantiles, q)
	}
	fm.calEER, _ = eer(tar, non)
	fm.slope = fitSlope(tar, non, fm.center)
	fm.calTar, fm.calNon = len(tar), len(non)
	fm.comp = comp
	return fm
}

// calFamilies are the matched-channel calibration sets: clean; noise of a
// random kind (white, pink, babble) at 15–25 dB; a random handset; both.
// Each utterance gets its own draw (G.711 μ-law or A-law, gain -6 to +6 dB).
var calFamilies = []func(*rand.Rand) channel{
	func(r *rand.Rand) channel { return calChannel(r, false, false) },
	func(r *rand.Rand) channel { return calChannel(r, false, true) },
	func(r *rand.Rand) channel { return calChannel(r, true, false) },
	func(r *rand.Rand) channel { return calChannel(r, true, true) },
}

func calChannel(r *rand.Rand, handset, noise bool) channel {
	c := channel{alaw: r.IntN(2) == 0, gainDB: -6 + 12*r.Float64()}
	if handset {
		c.handset, c.tilt = randomHandset(r)
	}
	if noise {
		c.noise = []string{"white", "pink", "babble"}[r.IntN(3)]
		c.snrDB = 15 + 10*r.Float64()
	}
	return c
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// TestFitNorm fits the background model, the nuisance directions, the
// cohort and the calibration on the fit prompts of the Asterisk speaker
// sets (prompts the evaluation does not use) and the committed clips. With
// VOICEGATE_UPDATE_NORM=1 it rewrites norm.go and model.bin; without, it
// checks that they match the fit.
func TestFitNorm(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("the fit takes minutes: run go test -run TestFitNorm ./daspeak/offline (without -short and -race)")
	}
	fm := fit(t)
	t.Logf("fit: %d channel-augmented 5 s utterances (%d frames), %d clips ×%d; %d nuisance directions; cohort %d of %d people; calibration on %d target and %d non-target trials (EER %.1f%%): centre %.4f (the highest of the %.0f%% impostor quantiles %v of the random-channel set and the matched-channel sets), slope %.2f",
		fm.utts, fm.frames, fm.clips, fixtureWeight, len(fm.comp.nap), len(fm.comp.cohort), len(fm.speakers), fm.calTar, fm.calNon, 100*fm.calEER, fm.center, 100*calFalseAccept, fm.calQuantiles, fm.slope)

	if os.Getenv("VOICEGATE_UPDATE_NORM") == "" {
		checkClose(t, "calCenter", []float64{calCenter}, []float64{fm.center})
		checkClose(t, "calSlope", []float64{calSlope}, []float64{fm.slope})
		checkClose(t, "ubmWeight", background.weight[:], fm.ubm.weight[:])
		for k := range ubmSize {
			checkClose(t, fmt.Sprintf("ubmMean[%d]", k), background.mean[k][:], fm.ubm.mean[k][:])
			checkClose(t, fmt.Sprintf("ubmVar[%d]", k), background.vari[k][:], fm.ubm.vari[k][:])
		}
		if !slices.Equal(cohortSpeakers, fm.speakers) || len(comp.nap) != len(fm.comp.nap) || len(comp.cohort) != len(fm.comp.cohort) {
			t.Fatalf("model.bin: %d directions, cohort %d of %v; the fit gives %d, %d of %v; run VOICEGATE_UPDATE_NORM=1 go test -run TestFitNorm ./daspeak/offline",
				len(comp.nap), len(comp.cohort), cohortSpeakers, len(fm.comp.nap), len(fm.comp.cohort), fm.speakers)
		}
		for i := range comp.cohort {
			have, want := make([]float64, embedDim), make([]float64, embedDim)
			for d := range embedDim {
				have[d], want[d] = float64(comp.cohort[i][d]), float64(fm.comp.cohort[i][d])
			}
			checkAbs(t, fmt.Sprintf("cohort[%d]", i), have, want)
		}
		return
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by VOICEGATE_UPDATE_NORM=1 go test -run TestFitNorm ./daspeak/offline; DO NOT EDIT.\n\n")
	fmt.Fprintf(&b, "package offline\n\n")
	fmt.Fprintf(&b, "// The background model: a %d-component diagonal Gaussian mixture over\n", ubmSize)
	fmt.Fprintf(&b, "// cepstra and their deltas, fitted by %d EM iterations on the speech frames of\n", emIterations)
	fmt.Fprintf(&b, "// %d utterances of 5 s net speech: a quarter of the prompts of seven\n", fm.utts)
	fmt.Fprintf(&b, "// Asterisk speaker sets (six people), each clean and through %d simulated\n// telephone channels, and of the %d committed test clips, each counted %d times.\n", fitDraws-1, fm.clips, fixtureWeight)
	fmt.Fprintf(&b, "var (\n\tubmWeight = [ubmSize]float64{")
	for _, x := range fm.ubm.weight {
		fmt.Fprintf(&b, "%.6g, ", x)
	}
	fmt.Fprintf(&b, "}\n\tubmMean = [ubmSize][featDim]float64{\n")
	for k := range ubmSize {
		fmt.Fprintf(&b, "{")
		for _, x := range fm.ubm.mean[k] {
			fmt.Fprintf(&b, "%.6g, ", x)
		}
		fmt.Fprintf(&b, "},\n")
	}
	fmt.Fprintf(&b, "}\n\tubmVar = [ubmSize][featDim]float64{\n")
	for k := range ubmSize {
		fmt.Fprintf(&b, "{")
		for _, x := range fm.ubm.vari[k] {
			fmt.Fprintf(&b, "%.6g, ", x)
		}
		fmt.Fprintf(&b, "},\n")
	}
	fmt.Fprintf(&b, "}\n)\n\n")
	fmt.Fprintf(&b, "// Score calibration: score = 1/(1+exp(-calSlope·(z-calCenter))) for a\n")
	fmt.Fprintf(&b, "// normalised score z. calCenter is the highest z that calFalseAccept of\n")
	fmt.Fprintf(&b, "// the impostors exceed in any of five sets of fit trials (3 s and 5 s;\n")
	fmt.Fprintf(&b, "// random simulated telephone channels, and four sets where every utterance\n")
	fmt.Fprintf(&b, "// has its own channel of one kind, calFamilies); the sets' quantiles:\n")
	fmt.Fprintf(&b, "// random %.4f, clean %.4f, noise %.4f, handset %.4f, both %.4f.\n", fm.calQuantiles[0], fm.calQuantiles[1], fm.calQuantiles[2], fm.calQuantiles[3], fm.calQuantiles[4])
	fmt.Fprintf(&b, "// calSlope is fitted by logistic regression on all %d non-target and\n", fm.calNon)
	fmt.Fprintf(&b, "// %d target trials (EER %.1f%%).\n", fm.calTar, 100*fm.calEER)
	fmt.Fprintf(&b, "const (\n\tcalCenter = %.4f\n\tcalSlope = %.2f\n\tcalFalseAccept = %g\n)\n\n", fm.center, fm.slope, calFalseAccept)
	fmt.Fprintf(&b, "// cohortSpeakers names the people of the cohort rows in model.bin (the\n// evaluation leaves a trial's own people out of its cohort).\n")
	fmt.Fprintf(&b, "var cohortSpeakers = %#v\n", fm.speakers)
	src, err := format.Source(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("norm.go", src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("model.bin", encodeCompensation(fm.comp), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkClose reports values that differ by more than 0.1% (the file holds
// six significant digits; EM on another CPU may round differently).
func checkClose(t *testing.T, name string, have, want []float64) {
	t.Helper()
	for i := range have {
		if d := math.Abs(have[i] - want[i]); d > 1e-3*math.Max(math.Abs(want[i]), 1e-2) {
			t.Errorf("norm.go %s[%d] = %g, the fit gives %g; run VOICEGATE_UPDATE_NORM=1 go test -run TestFitNorm ./daspeak/offline", name, i, have[i], want[i])
			return
		}
	}
}

// checkAbs reports unit-vector components that differ by more than 1e-3.
func checkAbs(t *testing.T, name string, have, want []float64) {
	t.Helper()
	for i := range have {
		if math.Abs(have[i]-want[i]) > 1e-3 {
			t.Errorf("model.bin %s[%d] = %g, the fit gives %g; run VOICEGATE_UPDATE_NORM=1 go test -run TestFitNorm ./daspeak/offline", name, i, have[i], want[i])
			return
		}
	}
}

// nuisance returns the k leading eigenvectors of the within-person scatter
// of the vectors, by subspace iteration from a fixed start.
func nuisance(byPerson map[string][][]float64, k int) [][]float64 {
	if k == 0 {
		return nil
	}
	var centred [][]float64
	for _, vs := range byPerson {
		mean := make([]float64, embedDim)
		for _, v := range vs {
			for i, x := range v {
				mean[i] += x / float64(len(vs))
			}
		}
		for _, v := range vs {
			c := make([]float64, embedDim)
			for i, x := range v {
				c[i] = x - mean[i]
			}
			centred = append(centred, c)
		}
	}
	// Scatter matrix S = Σ c cᵀ.
	s := make([][]float64, embedDim)
	for i := range s {
		s[i] = make([]float64, embedDim)
	}
	for _, c := range centred {
		for i, x := range c {
			if x == 0 {
				continue
			}
			row := s[i]
			for j, y := range c {
				row[j] += x * y
			}
		}
	}
	r := rand.New(rand.NewPCG(7, 7))
	q := make([][]float64, k)
	for i := range q {
		q[i] = make([]float64, embedDim)
		for j := range q[i] {
			q[i][j] = r.NormFloat64()
		}
	}
	orthonormalise(q)
	for range 100 {
		next := make([][]float64, k)
		for i, v := range q {
			next[i] = make([]float64, embedDim)
			for a := range embedDim {
				var d float64
				for b, x := range v {
					d += s[a][b] * x
				}
				next[i][a] = d
			}
		}
		orthonormalise(next)
		q = next
	}
	// Fix signs so the fit is reproducible: largest component positive.
	for _, v := range q {
		big := 0
		for i := range v {
			if math.Abs(v[i]) > math.Abs(v[big]) {
				big = i
			}
		}
		if v[big] < 0 {
			for i := range v {
				v[i] = -v[i]
			}
		}
	}
	return q
}

// orthonormalise applies modified Gram–Schmidt to the rows of q.
func orthonormalise(q [][]float64) {
	for i := range q {
		for j := range i {
			var d float64
			for a := range q[i] {
				d += q[i][a] * q[j][a]
			}
			for a := range q[i] {
				q[i][a] -= d * q[j][a]
			}
		}
		unitLength(q[i])
	}
}

// trainMixture fits a ubmSize-component diagonal Gaussian mixture to
// frames by EM, starting from frames picked with a fixed seed.
func trainMixture(frames [][featDim]float64, iters int) *mixture {
	r := rand.New(rand.NewPCG(1, 1))
	var gm, gv [featDim]float64
	for _, f := range frames {
		for d := range featDim {
			gm[d] += f[d]
		}
	}
	for d := range featDim {
		gm[d] /= float64(len(frames))
	}
	for _, f := range frames {
		for d := range featDim {
			gv[d] += (f[d] - gm[d]) * (f[d] - gm[d]) / float64(len(frames))
		}
	}
	var w [ubmSize]float64
	var mean, vari [ubmSize][featDim]float64
	for k := range ubmSize {
		w[k] = 1.0 / ubmSize
		mean[k] = frames[r.IntN(len(frames))]
		vari[k] = gv
	}
	m := newMixture(w, mean, vari)
	var post [ubmSize]float64
	for range iters {
		var n [ubmSize]float64
		var sx, sxx [ubmSize][featDim]float64
		for i := range frames {
			f := &frames[i]
			m.posteriors(f, &post)
			for k, p := range post {
				if p < 1e-8 {
					continue
				}
				n[k] += p
				for d := range featDim {
					sx[k][d] += p * f[d]
					sxx[k][d] += p * f[d] * f[d]
				}
			}
		}
		for k := range ubmSize {
			if n[k] < 1 {
				continue
			}
			w[k] = n[k] / float64(len(frames))
			for d := range featDim {
				mu := sx[k][d] / n[k]
				mean[k][d] = mu
				vari[k][d] = max(sxx[k][d]/n[k]-mu*mu, 0.01*gv[d])
			}
		}
		m = newMixture(w, mean, vari)
	}
	// Round as norm.go stores the values, so the fit and the file agree.
	round := func(x float64) float64 {
		r, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 6, 64), 64)
		return r
	}
	for k := range ubmSize {
		w[k] = round(w[k])
		for d := range featDim {
			mean[k][d] = round(mean[k][d])
			vari[k][d] = round(vari[k][d])
		}
	}
	return newMixture(w, mean, vari)
}

// fitSlope fits the slope of a logistic curve centred on center to the
// trials (balanced classes) by Newton's method on the log-likelihood.
func fitSlope(tar, non []float64, center float64) float64 {
	a := 1.0
	for range 50 {
		var g, h float64
		add := func(s, y, w float64) {
			x := s - center
			p := 1 / (1 + math.Exp(-a*x))
			g += w * (y - p) * x
			h += w * p * (1 - p) * x * x
		}
		for _, s := range tar {
			add(s, 1, 1/float64(len(tar)))
		}
		for _, s := range non {
			add(s, 0, 1/float64(len(non)))
		}
		if h == 0 {
			break
		}
		a += g / h
		a = max(0.05, min(a, 100))
	}
	return math.Round(a*100) / 100
}

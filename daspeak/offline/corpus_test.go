package offline

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/internal/fixtures"
	"github.com/voicegate/voicegate/internal/vad"
)

// rawUtt is clean speech of one Asterisk speaker set: prompts concatenated
// until the engine's VAD counts a margin over the target net speech, so
// that a channel that hides some of it still leaves the target.
type rawUtt struct {
	set, person string
	pcm         []int16
}

// trialUtt is one side of a trial: a rawUtt through a channel, analysed up
// to the target net speech.
type trialUtt struct {
	set, person string
	a           analysis
	emb         []float32
}

// Prompts with index%4 == 3 (in a fixed shuffled order per speaker set)
// are the fit prompts (background model, nuisance directions, cohort,
// calibration); the others are held out for the evaluation.
const fitEvery = 4

// rawMargin is the clean net speech built per utterance, as a multiple of
// the target.
const rawMargin = 1.4

var (
	corpusMu    sync.Mutex
	corpusCache = map[string][]rawUtt{}
)

// rawCorpus builds up to perSet clean utterances of target·rawMargin
// seconds of net speech per Asterisk speaker set, from the fit prompts or
// the held-out ones. Results are cached for the test binary's lifetime.
func rawCorpus(t testing.TB, target float64, perSet int, fit bool) []rawUtt {
	t.Helper()
	sets := fixtures.Asterisk(t)
	return buildUtts(t, "asterisk", sets, fixtures.Person, target, perSet, func(i int) bool { return (i%fitEvery == fitEvery-1) == fit }, fit)
}

// buildUtts concatenates the files of each set (in a fixed shuffled order,
// those use accepts) into utterances. Results are cached.
func buildUtts(t testing.TB, name string, sets map[string][]string, person func(string) string, target float64, perSet int, use func(int) bool, fit bool) []rawUtt {
	key := fmt.Sprint(name, target, perSet, fit)
	corpusMu.Lock()
	defer corpusMu.Unlock()
	if u, ok := corpusCache[key]; ok {
		return u
	}
	var keys []string
	for k := range sets {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []rawUtt
	for si, k := range keys {
		files := slices.Clone(sets[k])
		r := rand.New(rand.NewPCG(uint64(si+1), 42))
		r.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
		var cur []int16
		got := 0
		for i, f := range files {
			if !use(i) {
				continue
			}
			pcm := loadPrompt(t, f)
			if pcm == nil {
				continue
			}
			cur = append(cur, pcm...)
			if vadNetSpeech(cur) < target*rawMargin {
				continue
			}
			out = append(out, rawUtt{set: k, person: person(k), pcm: cur})
			cur = nil
			if got++; got == perSet {
				break
			}
		}
	}
	corpusCache[key] = out
	return out
}

// vadNetSpeech returns the net speech analyse would count in pcm, without
// the cepstral analysis.
func vadNetSpeech(pcm []int16) float64 {
	det, _ := vad.New(8000, &vad.Options{MaxSegments: 4096})
	det.Process(pcm)
	det.Flush()
	return det.NetSpeech().Seconds()
}

// loadPrompt reads an 8 kHz WAV prompt. Other formats give nil.
func loadPrompt(t testing.TB, path string) []int16 {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := codec.ParseWAV(b)
	if err != nil || w.Format.SampleRate != 8000 {
		return nil
	}
	return w.Mono(0)
}

// babbleFor mixes four utterances of other people than raw[i].person, each
// at unit power, into a babble noise source.
func babbleFor(raw []rawUtt, i int, r *rand.Rand) []float64 {
	var others []int
	for j, u := range raw {
		if u.person != raw[i].person {
			others = append(others, j)
		}
	}
	if len(others) == 0 {
		return nil
	}
	out := make([]float64, len(raw[i].pcm))
	for range 4 {
		src := raw[others[r.IntN(len(others))]].pcm
		p := math.Sqrt(math.Max(activePower(src), 1))
		off := r.IntN(len(src))
		for k := range out {
			out[k] += float64(src[(off+k)%len(src)]) / p
		}
	}
	return out
}

// degrade passes every raw utterance through the channel pick draws for it
// (seeded by seed and the utterance's index) and analyses it up to target
// seconds of net speech. Utterances the engine would refuse (less net
// speech than the target left) are counted in dropped.
func degrade(raw []rawUtt, target float64, seed uint64, pick func(r *rand.Rand) channel) (out []trialUtt, dropped int) {
	for i, u := range raw {
		r := rand.New(rand.NewPCG(seed, uint64(i)))
		c := pick(r)
		var bab []float64
		if c.noise == "babble" {
			bab = babbleFor(raw, i, r)
		}
		pcm := c.apply(u.pcm, bab, r)
		a := analyse(pcm, 8000, target)
		if a.netSpeech < target {
			dropped++
			continue
		}
		out = append(out, trialUtt{set: u.set, person: u.person, a: a})
	}
	return out, dropped
}

// embedAll fills the embeddings of utts with the current model.
func embedAll(utts []trialUtt) {
	for i := range utts {
		utts[i].emb = embedding(utts[i].a)
	}
}

// skipPeople returns a cohort filter that leaves out the cohort speakers
// named a or b: in service the callers are never in the cohort, so a trial
// between cohort speakers must not see their own cohort rows.
func skipPeople(a, b string) func(uint8) bool {
	return func(s uint8) bool {
		n := cohortSpeakers[s]
		return n == a || n == b
	}
}

// trialScores scores every pair of utterances (embedded): target trials are
// pairs of the same person (across languages for Allison), non-target
// trials pairs of different people. Scores are normalised scores, before
// calibration, as comp.normScore gives them (each utterance's cosines to
// the cohort are computed once; the per-trial statistics then leave out
// the trial's own people).
func trialScores(utts []trialUtt) (tar, non []float64) {
	cos := make([][]float64, len(utts))
	for i, u := range utts {
		cos[i] = make([]float64, len(comp.cohort))
		for k, row := range comp.cohort {
			cos[i][k] = cosine(u.emb, row)
		}
	}
	buf := make([]float64, 0, len(comp.cohort))
	for i := range utts {
		for j := i + 1; j < len(utts); j++ {
			skip := skipPeople(utts[i].person, utts[j].person)
			var ms, ss [2]float64
			for side, k := range [2]int{i, j} {
				buf = buf[:0]
				for r, c := range cos[k] {
					if !skip(comp.speaker[r]) {
						buf = append(buf, c)
					}
				}
				ms[side], ss[side] = cohortStats(buf)
			}
			c := cosine(utts[i].emb, utts[j].emb)
			s := 0.5 * ((c-ms[0])/ss[0] + (c-ms[1])/ss[1])
			if utts[i].person == utts[j].person {
				tar = append(tar, s)
			} else {
				non = append(non, s)
			}
		}
	}
	return tar, non
}

// eer returns the equal error rate and the threshold where it occurs.
func eer(tar, non []float64) (rate, threshold float64) {
	tar, non = slices.Clone(tar), slices.Clone(non)
	sort.Float64s(tar)
	sort.Float64s(non)
	cands := append(slices.Clone(tar), non...)
	sort.Float64s(cands)
	rate = 1
	for _, th := range cands {
		frr := float64(sort.SearchFloat64s(tar, th)) / float64(len(tar))
		far := float64(len(non)-sort.SearchFloat64s(non, th)) / float64(len(non))
		if d := math.Max(frr, far); d < rate {
			rate, threshold = d, th
		}
	}
	return rate, threshold
}

// errorRates returns the false reject and false accept rates at threshold
// (accept when score >= threshold).
func errorRates(tar, non []float64, threshold float64) (frr, far float64) {
	for _, s := range tar {
		if s < threshold {
			frr++
		}
	}
	for _, s := range non {
		if s >= threshold {
			far++
		}
	}
	return frr / float64(len(tar)), far / float64(len(non))
}

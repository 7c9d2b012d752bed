package offline

import (
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

// trialUtt is one side of a trial: prompts of one Asterisk speaker set,
// concatenated until the engine's VAD counts the target net speech.
type trialUtt struct {
	set, person string
	a           analysis
}

// Prompts with index%4 == 3 (in a fixed shuffled order per speaker set)
// fit the normalisation constants; the others are held out for the EER.
const fitEvery = 4

var (
	corpusMu    sync.Mutex
	corpusCache = map[[2]float64][]trialUtt{}
)

// corpus builds up to perSet utterances of target seconds of net speech per
// Asterisk speaker set, from the fit prompts or the held-out ones. Results
// are cached for the test binary's lifetime.
func corpus(t *testing.T, target float64, perSet int, fit bool) []trialUtt {
	t.Helper()
	sets := fixtures.Asterisk(t)
	key := [2]float64{target, float64(perSet)}
	if fit {
		key[1] = -key[1]
	}
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
	var out []trialUtt
	for si, k := range keys {
		files := slices.Clone(sets[k])
		r := rand.New(rand.NewPCG(uint64(si+1), 42))
		r.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
		var cur []int16
		got := 0
		for i, f := range files {
			if (i%fitEvery == fitEvery-1) != fit {
				continue
			}
			pcm := loadTelephone(t, f)
			if pcm == nil {
				continue
			}
			cur = append(cur, pcm...)
			if vadNetSpeech(cur) < target {
				continue
			}
			a := analyse(cur, 8000, target)
			if a.netSpeech < target {
				continue
			}
			out = append(out, trialUtt{set: k, person: fixtures.Person(k), a: a})
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

// loadTelephone reads an 8 kHz WAV prompt and passes it through μ-law, as a
// telephone call would. Other formats give nil.
func loadTelephone(t *testing.T, path string) []int16 {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := codec.ParseWAV(b)
	if err != nil || w.Format.SampleRate != 8000 {
		return nil
	}
	pcm := w.Mono(0)
	mu := make([]byte, len(pcm))
	codec.EncodeULaw(mu, pcm)
	codec.DecodeULaw(pcm, mu)
	return pcm
}

// trialScores scores every pair of utterances with the engine's embedding
// and cosine: target trials are pairs of the same person (across languages
// for Allison), non-target trials pairs of different people.
func trialScores(utts []trialUtt) (tar, non []float64) {
	embs := make([][]float32, len(utts))
	for i, u := range utts {
		embs[i] = embedding(u.a)
	}
	for i := range utts {
		for j := i + 1; j < len(utts); j++ {
			s := cosine(embs[i], embs[j])
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

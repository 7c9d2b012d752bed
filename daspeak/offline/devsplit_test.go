package offline

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/fixtures"
)

// seedDev seeds the channel draws of the development trials, none shared
// with the fit or the evaluation.
const seedDev = 7000

// devHalf builds the utterances of one half of the fit prompts (half 0 or
// 1: alternate fit prompts in each speaker set's fixed order), as many as
// the half holds. The evaluation's held-out prompts are never used.
func devHalf(t *testing.T, target float64, half int) []rawUtt {
	return buildUtts(t, fmt.Sprint("dev", half), fixtures.Asterisk(t), fixtures.Person, target, 1000,
		func(i int) bool { return i%(2*fitEvery) == fitEvery-1+fitEvery*half }, true)
}

// devFit fits the background model, the nuisance directions and the cohort
// as fit does, on the 5 s utterances raw5 (one half of the fit prompts)
// and the committed clips, and installs them (the caller restores the
// embedded model).
func devFit(t *testing.T, raw5 []rawUtt) {
	var aug []trialUtt
	for d := range fitDraws {
		pick := randomChannel
		if d == 0 {
			pick = func(*rand.Rand) channel { return channel{} }
		}
		u, _ := degrade(raw5, 5, seedUBM+uint64(d), pick)
		aug = append(aug, u...)
	}
	var frames [][featDim]float64
	for _, u := range aug {
		frames = append(frames, u.a.ceps...)
	}
	for _, v := range fixtures.Voices() {
		for _, name := range fixtures.Utterances(v) {
			w := fixtures.LoadWAV(t, name)
			a := analyse(w.Mono(0), w.Format.SampleRate, 0)
			for range fixtureWeight {
				frames = append(frames, a.ceps...)
			}
		}
	}
	background = trainMixture(frames, emIterations)
	comp = &compensation{}
	byPerson := map[string][][]float64{}
	for _, u := range aug {
		v := background.supervector(u.a)
		unitLength(v)
		byPerson[u.person] = append(byPerson[u.person], v)
	}
	comp.nap = nuisance(byPerson, napRank)
	cu, _ := degrade(raw5, 5, seedCohort, randomChannel)
	embedAll(cu)
	cohortSpeakers = nil
	for _, u := range cu {
		i := slices.Index(cohortSpeakers, u.person)
		if i < 0 {
			cohortSpeakers = append(cohortSpeakers, u.person)
			i = len(cohortSpeakers) - 1
		}
		comp.cohort = append(comp.cohort, u.emb)
		comp.speaker = append(comp.speaker, uint8(i))
	}
}

// TestDevSplit is the development check for changes to the front end or
// the model: the fit prompts split in two halves, the model fitted on one
// half and the equal error rates measured on the other, in the conditions
// of the evaluation table, both ways round. Compare changes here, never on
// the evaluation trials (TestEqualErrorRate). It takes several minutes and
// runs only with VOICEGATE_DEV_SPLIT=1:
//
//	VOICEGATE_DEV_SPLIT=1 go test -run TestDevSplit -v ./daspeak/offline
func TestDevSplit(t *testing.T) {
	if os.Getenv("VOICEGATE_DEV_SPLIT") == "" || testing.Short() || raceEnabled {
		t.Skip("development check: run VOICEGATE_DEV_SPLIT=1 go test -run TestDevSplit -v ./daspeak/offline (without -short and -race)")
	}
	oldBG, oldComp, oldSpk := background, comp, cohortSpeakers
	t.Cleanup(func() { background, comp, cohortSpeakers = oldBG, oldComp, oldSpk })
	for fold := range 2 {
		devFit(t, devHalf(t, 5, fold))
		var line []string
		var sum float64
		for ti, target := range []float64{3, 5} {
			raw := devHalf(t, target, 1-fold)
			for ci, c := range evalConditions {
				u, _ := degrade(raw, target, seedDev+uint64(10*ti+ci), func(r *rand.Rand) channel { return c.channel(r) })
				embedAll(u)
				tar, non := trialScores(u)
				if len(tar) == 0 || len(non) == 0 {
					t.Fatalf("fold %d, %.0f s %s: %d target and %d non-target trials", fold, target, c.name, len(tar), len(non))
				}
				rate, _ := eer(tar, non)
				sum += rate
				line = append(line, fmt.Sprintf("%s %.1f%%", c.name, 100*rate))
			}
		}
		t.Logf("trials on half %d: EER at 3 s: %s; at 5 s: %s; mean %.1f%%", 1-fold,
			strings.Join(line[:4], ", "), strings.Join(line[4:], ", "), 100*sum/8)
	}
}

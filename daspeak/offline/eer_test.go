package offline

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/fixtures"
)

// evalPerSet is the number of held-out utterances per speaker set.
const evalPerSet = 20

// seedEval seeds the evaluation's channel draws (one stream per condition
// and target), none shared with the fit.
const seedEval = 9000

// evalRow is one line of the evaluation table.
type evalRow struct {
	target        float64
	cond          string
	utts, dropped int
	people        int
	tar, non      int
	eer, frr, far float64
	eerScore      float64 // calibrated score at the equal error point
}

// evaluate scores the held-out prompts of the Asterisk speaker sets in
// every condition and net-speech target.
func evaluate(t *testing.T) []evalRow {
	var rows []evalRow
	for ti, target := range []float64{3, 5} {
		raw := rawCorpus(t, target, evalPerSet, false)
		perSet := map[string]int{}
		for _, u := range raw {
			perSet[u.set]++
		}
		if len(perSet) != len(fixtures.AsteriskSpeakers) || len(raw) != len(fixtures.AsteriskSpeakers)*evalPerSet {
			t.Fatalf("%.0f s: %d utterances from %d speaker sets %v, want %d from each of %d", target, len(raw), len(perSet), perSet, evalPerSet, len(fixtures.AsteriskSpeakers))
		}
		for ci, c := range evalConditions {
			utts, dropped := degrade(raw, target, seedEval+uint64(10*ti+ci), func(r *rand.Rand) channel { return c.channel(r) })
			embedAll(utts)
			people := map[string]bool{}
			for _, u := range utts {
				people[u.person] = true
			}
			tar, non := trialScores(utts)
			rate, th := eer(tar, non)
			frr, far := errorRates(tar, non, calCenter)
			rows = append(rows, evalRow{target: target, cond: c.name, utts: len(utts), dropped: dropped, people: len(people),
				tar: len(tar), non: len(non), eer: rate, frr: frr, far: far, eerScore: calibrate(th)})
		}
	}
	return rows
}

// table formats rows as the package documentation quotes them.
func table(rows []evalRow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "net speech  condition       EER    FR at 0.5  FA at 0.5  score at EER  people  utterances  target/non-target trials\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "%.0f s         %-14s %5.1f%%  %6.1f%%    %6.1f%%     %.3f        %d       %3d (%d refused)  %d / %d\n",
			r.target, r.cond, 100*r.eer, 100*r.frr, 100*r.far, r.eerScore, r.people, r.utts, r.dropped, r.tar, r.non)
	}
	return b.String()
}

// TestEqualErrorRate measures the engine on real multi-speaker trials: the
// held-out prompts of the seven Asterisk speaker sets (six people; Allison
// Smith's English and Spanish sets are the same person), concatenated per
// set to 3 s and 5 s of net speech, each utterance through its own
// simulated telephone channel (clean: μ-law only; 20 dB white noise; a
// random handset response; both). Every pair of utterances is a trial. The
// table is quoted in the package documentation.
func TestEqualErrorRate(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("the evaluation takes minutes: run go test -run TestEqualErrorRate -v ./daspeak/offline (without -short and -race)")
	}
	rows := evaluate(t)
	t.Logf("\n%s", table(rows))
	var unmet []string
	for _, r := range rows {
		// The goals: EER at most 8% at 5 s and 12% at 3 s, false
		// accepts at most 5% and false rejects at most 15% at the
		// default threshold, in every condition. Reported, not yet met.
		goal := map[float64]float64{3: 0.12, 5: 0.08}[r.target]
		if r.eer > goal || r.far > 0.05 || r.frr > 0.15 {
			unmet = append(unmet, fmt.Sprintf("%.0f s %s", r.target, r.cond))
		}
		// What the model achieves, with a margin: a regression fails.
		limit := map[float64]float64{3: 0.22, 5: 0.17}[r.target]
		if r.eer > limit {
			t.Errorf("%.0f s %s: EER %.1f%% > %.0f%%", r.target, r.cond, 100*r.eer, 100*limit)
		}
		if r.far > 0.10 {
			t.Errorf("%.0f s %s: false accepts at the default threshold %.1f%% > 10%%", r.target, r.cond, 100*r.far)
		}
		if r.dropped > 0 {
			t.Errorf("%.0f s %s: %d utterances refused", r.target, r.cond, r.dropped)
		}
	}
	if unmet != nil {
		t.Logf("goals (EER ≤ 8%% at 5 s, ≤ 12%% at 3 s; FA ≤ 5%%, FR ≤ 15%% at the default threshold) not met in: %s", strings.Join(unmet, "; "))
	}
}

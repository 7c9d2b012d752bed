package offline

import (
	"testing"

	"github.com/voicegate/voicegate/internal/fixtures"
)

// TestEqualErrorRate measures the engine on real multi-speaker trials: the
// held-out prompts of the seven Asterisk speaker sets (six people; Allison
// Smith's English and Spanish sets are the same person), μ-law coded,
// concatenated per set to 3 s and 5 s of net speech. Every pair of
// utterances is a trial. The numbers are quoted in the package
// documentation.
func TestEqualErrorRate(t *testing.T) {
	cases := []struct {
		target float64
		maxEER float64
		perSet int
	}{
		{3, 0.16, 20},
		{5, 0.10, 20}, // the goal: at most 10% at 5 s
	}
	for _, c := range cases {
		utts := corpus(t, c.target, c.perSet, false)
		// Every speaker set must give its full share of held-out
		// utterances, or the figures would come from a smaller trial set
		// than the package documentation states.
		perSet := map[string]int{}
		for _, u := range utts {
			perSet[u.set]++
		}
		if len(perSet) != len(fixtures.AsteriskSpeakers) || len(utts) != len(fixtures.AsteriskSpeakers)*c.perSet {
			t.Fatalf("%.0f s: %d utterances from %d speaker sets %v, want %d from each of %d", c.target, len(utts), len(perSet), perSet, c.perSet, len(fixtures.AsteriskSpeakers))
		}
		tar, non := trialScores(utts)
		rate, th := eer(tar, non)
		frr, far := errorRates(tar, non, calCenter)
		t.Logf("%.0f s net speech: %d utterances, %d target and %d non-target trials: EER %.1f%% (cosine %.3f); at the default threshold (score %.2f) FRR %.1f%%, FAR %.1f%%",
			c.target, len(utts), len(tar), len(non), 100*rate, th, DefaultScoreThreshold, 100*frr, 100*far)
		if rate > c.maxEER {
			t.Errorf("%.0f s: EER %.1f%% > %.0f%%", c.target, 100*rate, 100*c.maxEER)
		}
	}
}

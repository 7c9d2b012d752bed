package agent_test

import (
	"context"
	"testing"

	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/daspeak/daspeaktest"
)

// TestEngineConfigLimiter: the das-Peak client New returns takes its
// calls through the Limiter the sessions share, so that a request waiting
// out a 429 gives its slot back (daspeak's TestClientRateLimitLimiter).
func TestEngineConfigLimiter(t *testing.T) {
	srv := daspeaktest.NewServer(daspeaktest.FakeEngine{}, &daspeaktest.Options{APIKey: "k3y"})
	t.Cleanup(srv.Close)
	cfg := agent.EngineConfig{URL: srv.URL(), APIKey: "k3y"}
	cfg.Limiter = cfg.NewLimiter(0)
	e, _, err := cfg.New()
	if err != nil {
		t.Fatal(err)
	}
	cl, ok := e.(*daspeak.Client)
	if !ok {
		t.Fatalf("engine %T", e)
	}
	if err := cl.Alive(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := cfg.Limiter.Stats(); st.Admitted != 1 || st.InFlight != 0 {
		t.Fatalf("limiter %+v: the client's call did not go through it", st)
	}
	if got := (agent.EngineConfig{}).NewLimiter(0).Stats().Limit; got != 16 {
		t.Errorf("das-Peak default %d slots, want 16", got)
	}
}

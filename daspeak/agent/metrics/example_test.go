package metrics_test

import (
	"net/http"

	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/daspeak/agent/metrics"
)

// The agent server reports to Metrics; /metrics serves them.
func ExampleNew() {
	m := metrics.New()
	opts := &agent.Options{Observer: m /* Engine, Store, Source, Authenticator… */}
	_ = opts // api, err := agent.NewServer(opts)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
}

package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/daspeak/agent/metrics"
)

// scrape fetches /metrics and parses it with the Prometheus text parser.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q", ct)
	}
	body, _ := io.ReadAll(resp.Body)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parsing:\n%s\n%v", body, err)
	}
	return fams
}

func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range f.Metric {
		for k, v := range labels {
			found := false
			for _, l := range m.Label {
				found = found || (l.GetName() == k && l.GetValue() == v)
			}
			if !found {
				continue next
			}
		}
		return m
	}
	t.Fatalf("no %s with %v", name, labels)
	return nil
}

// TestMetrics drives the Observer and checks the scraped values.
func TestMetrics(t *testing.T) {
	m := metrics.New()
	m.SetSessions(func() float64 { return 3 })
	var o agent.Observer = m
	o.OperationStarted(daspeak.OperationVerify)
	o.OperationStarted(daspeak.OperationVerify)
	o.OperationEnded(daspeak.OperationVerify, daspeak.EventResultSuccess, agent.ReasonSuccess)
	o.OperationEnded(daspeak.OperationVerify, agent.EventErrorCancelled, agent.ReasonCancelled)
	o.AudioOpened()
	o.AudioOpened()
	o.AudioClosed()
	o.StreamOpened()
	o.Frames(250, 3, 1)
	o.EngineCall(120*time.Millisecond, nil)
	o.EngineCall(2*time.Second, errors.New("x"))
	o.StoreCall("store", 4*time.Millisecond, nil)
	o.EventSent(2 * time.Millisecond)
	fams := scrape(t, m.Handler())
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"voicegate_agent_operations_started_total", map[string]string{"kind": "verify"}, 2},
		{"voicegate_agent_operations_total", map[string]string{"kind": "verify", "type": "result-success", "reason": "success"}, 1},
		{"voicegate_agent_operations_total", map[string]string{"type": "error-cancelled", "reason": "cancelled"}, 1},
		{"voicegate_agent_audio_open", nil, 1},
		{"voicegate_agent_event_streams_open", nil, 1},
		{"voicegate_agent_sessions_open", nil, 3},
		{"voicegate_agent_frames_read_total", nil, 250},
		{"voicegate_agent_frames_dropped_total", nil, 3},
		{"voicegate_agent_frames_late_total", nil, 1},
	} {
		mm := value(t, fams, c.name, c.labels)
		var got float64
		switch {
		case mm.Counter != nil:
			got = mm.Counter.GetValue()
		case mm.Gauge != nil:
			got = mm.Gauge.GetValue()
		}
		if got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		count  uint64
	}{
		{"voicegate_agent_engine_seconds", map[string]string{"result": "ok"}, 1},
		{"voicegate_agent_engine_seconds", map[string]string{"result": "error"}, 1},
		{"voicegate_agent_store_seconds", map[string]string{"op": "store", "result": "ok"}, 1},
		{"voicegate_agent_bus_lag_seconds", nil, 1},
	} {
		h := value(t, fams, c.name, c.labels).Histogram
		if h == nil || h.GetSampleCount() != c.count {
			t.Errorf("%s%v: %v", c.name, c.labels, h)
		}
	}
	if fams["go_goroutines"] == nil || fams["process_cpu_seconds_total"] == nil {
		t.Error("no Go or process collector")
	}
}

func gaugeOrCounter(t *testing.T, fams map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	mm := value(t, fams, name, nil)
	if mm.Counter != nil {
		return mm.Counter.GetValue()
	}
	return mm.Gauge.GetValue()
}

// TestLimiterAndLagMetrics checks the engine Limiter's metrics and the
// stream lag metrics of tracked streams, before and after a stream ends.
func TestLimiterAndLagMetrics(t *testing.T) {
	m := metrics.New()
	l := daspeak.NewLimiter(1)
	m.WatchLimiter(l)
	if _, err := l.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if _, err := l.Acquire(ctx); err == nil {
		t.Fatal("second slot of a limit of 1")
	}
	a := metrics.StreamLag{Lag: 300 * time.Millisecond, MaxLag: 2 * time.Second, FramesLagged: 40}
	b := metrics.StreamLag{Lag: 10 * time.Millisecond, MaxLag: 50 * time.Millisecond, FramesLagged: 2}
	untrackA := m.TrackStream(func() metrics.StreamLag { return a })
	untrackB := m.TrackStream(func() metrics.StreamLag { return b })
	fams := scrape(t, m.Handler())
	for name, want := range map[string]float64{
		"voicegate_agent_engine_calls_in_flight":      1,
		"voicegate_agent_engine_queue_length":         0,
		"voicegate_agent_engine_calls_admitted_total": 1,
		"voicegate_agent_engine_queue_canceled_total": 1,
		"voicegate_agent_stream_lag_seconds":          0.3,
		"voicegate_agent_stream_lag_max_seconds":      2,
		"voicegate_agent_frames_lagged_total":         42,
	} {
		if got := gaugeOrCounter(t, fams, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	a.FramesLagged = 45
	untrackA()
	untrackA()
	fams = scrape(t, m.Handler())
	for name, want := range map[string]float64{
		"voicegate_agent_stream_lag_seconds":     0.01,
		"voicegate_agent_stream_lag_max_seconds": 0.05,
		"voicegate_agent_frames_lagged_total":    47, // the ended stream's frames stay counted
	} {
		if got := gaugeOrCounter(t, fams, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	untrackB()
	l.Release()
}

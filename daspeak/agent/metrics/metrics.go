// Package metrics measures an agent server (daspeak/agent) in the
// Prometheus text format: a [Metrics] is the server's Options.Observer
// and serves /metrics.
//
// Metrics (all prefixed voicegate_agent_):
//
//	event_streams_open                      gauge     SSE event streams open on this node
//	audio_open                              gauge     operations holding a call's audio on this node
//	sessions_open                           gauge     media sessions open (Twilio Media Streams, AudioHook), when the server reports them (SetSessions)
//	frames_read_total                       counter   audio frames read by operations
//	frames_dropped_total                    counter   frames dropped by full queues
//	frames_late_total                       counter   frames that came late (out of order, duplicates)
//	operations_started_total{kind}          counter   operations started on this node
//	operations_total{kind,type,reason}      counter   operations ended by this node, by terminal event (outcome)
//	engine_seconds{result}                  histogram biometric engine call latency; result ok or error
//	store_seconds{op,result}                histogram credential store latency; op get, store or delete
//	bus_lag_seconds                         histogram from an event's append to the operation log to its write on an event stream
//
// plus the Go runtime and process collectors.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent"
)

const ns = "voicegate_agent"

// Metrics implements agent.Observer with Prometheus metrics. It is safe
// for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	streams, audio                     prometheus.Gauge
	framesRead, framesDrop, framesLate prometheus.Counter
	started                            *prometheus.CounterVec
	ended                              *prometheus.CounterVec
	engine                             *prometheus.HistogramVec
	store                              *prometheus.HistogramVec
	lag                                prometheus.Histogram
}

// New returns Metrics registered on a new registry with the Go and
// process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{reg: reg}
	m.streams = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "event_streams_open", Help: "SSE event streams open on this node."})
	m.audio = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "audio_open", Help: "Operations holding a call's audio on this node."})
	m.framesRead = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "frames_read_total", Help: "Audio frames read by operations."})
	m.framesDrop = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "frames_dropped_total", Help: "Audio frames dropped because a queue was full."})
	m.framesLate = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "frames_late_total", Help: "Audio frames that came late (out of order or duplicated)."})
	m.started = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "operations_started_total", Help: "Operations started on this node."}, []string{"kind"})
	m.ended = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "operations_total", Help: "Operations ended by this node, by terminal event type and reason."}, []string{"kind", "type", "reason"})
	latency := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m.engine = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "engine_seconds", Help: "Biometric engine call latency.", Buckets: latency}, []string{"result"})
	m.store = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "store_seconds", Help: "Credential store call latency.", Buckets: latency}, []string{"op", "result"})
	m.lag = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "bus_lag_seconds", Help: "Time from an event's append to the operation log to its write on an event stream.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}})
	for _, c := range []prometheus.Collector{m.streams, m.audio, m.framesRead, m.framesDrop, m.framesLate, m.started, m.ended, m.engine, m.store, m.lag} {
		f(c)
	}
	return m
}

// Registry returns the registry, to add the server's own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SetSessions reports the media sessions open through f (called at each
// scrape), as voicegate_agent_sessions_open.
func (m *Metrics) SetSessions(f func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "sessions_open",
		Help: "Media sessions open (Twilio Media Streams, AudioHook sessions)."}, f))
}

// Handler serves the metrics in the Prometheus text format (mount it at
// /metrics).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// OperationStarted implements agent.Observer.
func (m *Metrics) OperationStarted(kind daspeak.Operation) {
	m.started.WithLabelValues(string(kind)).Inc()
}

// OperationEnded implements agent.Observer.
func (m *Metrics) OperationEnded(kind daspeak.Operation, t daspeak.EventType, r agent.Reason) {
	m.ended.WithLabelValues(string(kind), string(t), string(r)).Inc()
}

// AudioOpened implements agent.Observer.
func (m *Metrics) AudioOpened() { m.audio.Inc() }

// AudioClosed implements agent.Observer.
func (m *Metrics) AudioClosed() { m.audio.Dec() }

// StreamOpened implements agent.Observer.
func (m *Metrics) StreamOpened() { m.streams.Inc() }

// StreamClosed implements agent.Observer.
func (m *Metrics) StreamClosed() { m.streams.Dec() }

// Frames implements agent.Observer.
func (m *Metrics) Frames(read, dropped, late uint64) {
	m.framesRead.Add(float64(read))
	m.framesDrop.Add(float64(dropped))
	m.framesLate.Add(float64(late))
}

// EngineCall implements agent.Observer.
func (m *Metrics) EngineCall(d time.Duration, err error) {
	m.engine.WithLabelValues(result(err)).Observe(d.Seconds())
}

// StoreCall implements agent.Observer.
func (m *Metrics) StoreCall(op string, d time.Duration, err error) {
	m.store.WithLabelValues(op, result(err)).Observe(d.Seconds())
}

// EventSent implements agent.Observer.
func (m *Metrics) EventSent(lag time.Duration) { m.lag.Observe(lag.Seconds()) }

var _ agent.Observer = (*Metrics)(nil)

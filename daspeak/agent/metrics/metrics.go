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
//	operations_total{kind,type,reason}      counter   operations ended by this node, by terminal event (outcome);
//	                                                  reason is one of agent.Reason's nine values (success, authentication,
//	                                                  spoof, configuration, connection, speech, store, cancelled,
//	                                                  already_registered: a register another beat to the store)
//	engine_seconds{result}                  histogram biometric engine call latency; result ok or error
//	store_seconds{op,result}                histogram credential store latency; op get, store or delete
//	bus_lag_seconds                         histogram from an event's append to the operation log to its write on an event stream
//
// With WatchLimiter, the engine's daspeak.Limiter, read at each scrape:
//
//	engine_calls_in_flight                  gauge     engine calls holding a slot
//	engine_queue_length                     gauge     engine calls waiting for a slot
//	engine_calls_admitted_total             counter   slots granted
//	engine_queue_canceled_total             counter   waits ended by their context before a slot
//	engine_queue_waits_total                counter   admissions that had to wait
//	engine_queue_wait_seconds_total         counter   total time they waited
//	engine_queue_wait_max_seconds           gauge     the longest wait so far
//
// With TrackStream, the delivery lag of media streams (twilio.Stats,
// audiohook.Stats), read at each scrape:
//
//	stream_lag_seconds                      gauge     the largest current Lag among the streams tracked now
//	stream_lag_max_seconds                  gauge     the largest MaxLag among them
//	frames_lagged_total                     counter   frames delivered with a lag over the budget, by every stream tracked
//
// plus the Go runtime and process collectors.
package metrics

import (
	"net/http"
	"sync"
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

	smu     sync.Mutex
	tracked map[*trackedStream]struct{}
	lagged  uint64 // FramesLagged of the streams no longer tracked
}

type trackedStream struct{ f func() StreamLag }

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
	m.registerLag()
	return m
}

// StreamLag is a media stream's delivery lag: the Lag, MaxLag and
// FramesLagged fields of twilio.Stats or audiohook.Stats.
type StreamLag struct {
	Lag          time.Duration
	MaxLag       time.Duration
	FramesLagged uint64
}

// TrackStream adds a media stream to the lag metrics until the returned
// function is called (call it once, when the stream ends). f is called at
// each scrape, from the scraping goroutine: pass a function that reads the
// stream's Stats.
func (m *Metrics) TrackStream(f func() StreamLag) (untrack func()) {
	ts := &trackedStream{f: f}
	m.smu.Lock()
	m.tracked[ts] = struct{}{}
	m.smu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			last := f()
			m.smu.Lock()
			delete(m.tracked, ts)
			m.lagged += last.FramesLagged
			m.smu.Unlock()
		})
	}
}

// lagNow returns the lag figures of the tracked streams.
func (m *Metrics) lagNow() (lag, maxLag time.Duration, lagged uint64) {
	m.smu.Lock()
	fs := make([]func() StreamLag, 0, len(m.tracked))
	for ts := range m.tracked {
		fs = append(fs, ts.f)
	}
	lagged = m.lagged
	m.smu.Unlock()
	for _, f := range fs {
		l := f()
		lag, maxLag = max(lag, l.Lag), max(maxLag, l.MaxLag)
		lagged += l.FramesLagged
	}
	return lag, maxLag, lagged
}

// registerLag registers the stream lag metrics.
func (m *Metrics) registerLag() {
	m.tracked = make(map[*trackedStream]struct{})
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "stream_lag_seconds",
		Help: "The largest current delivery lag among the media streams open (twilio.Stats.Lag, audiohook.Stats.Lag)."},
		func() float64 { l, _, _ := m.lagNow(); return l.Seconds() }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "stream_lag_max_seconds",
		Help: "The largest MaxLag among the media streams open."},
		func() float64 { _, l, _ := m.lagNow(); return l.Seconds() }))
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "frames_lagged_total",
		Help: "Audio frames delivered with a lag over the stream's budget."},
		func() float64 { _, _, n := m.lagNow(); return float64(n) }))
}

// WatchLimiter exports the state of l, the Limiter the server's sessions
// share for engine calls, read at each scrape. Call it once.
func (m *Metrics) WatchLimiter(l *daspeak.Limiter) {
	gauge := func(name, help string, v func(daspeak.LimiterStats) float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: name, Help: help},
			func() float64 { return v(l.Stats()) }))
	}
	counter := func(name, help string, v func(daspeak.LimiterStats) float64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help},
			func() float64 { return v(l.Stats()) }))
	}
	gauge("engine_calls_in_flight", "Engine calls holding a Limiter slot.", func(s daspeak.LimiterStats) float64 { return float64(s.InFlight) })
	gauge("engine_queue_length", "Engine calls waiting for a Limiter slot.", func(s daspeak.LimiterStats) float64 { return float64(s.Queued) })
	counter("engine_calls_admitted_total", "Limiter slots granted.", func(s daspeak.LimiterStats) float64 { return float64(s.Admitted) })
	counter("engine_queue_canceled_total", "Waits for a Limiter slot ended by their context.", func(s daspeak.LimiterStats) float64 { return float64(s.Canceled) })
	counter("engine_queue_waits_total", "Engine calls that waited for a Limiter slot.", func(s daspeak.LimiterStats) float64 { return float64(s.Waited) })
	counter("engine_queue_wait_seconds_total", "Total time engine calls waited for a Limiter slot.", func(s daspeak.LimiterStats) float64 { return s.WaitTime.Seconds() })
	gauge("engine_queue_wait_max_seconds", "The longest wait for a Limiter slot so far.", func(s daspeak.LimiterStats) float64 { return s.MaxWait.Seconds() })
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

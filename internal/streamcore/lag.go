package streamcore

import "time"

// DefaultLagBudget is the delivery lag a stream tolerates before it warns:
// the audio latency budget of voice biometrics, where a result a tenth of
// a second later changes nothing for the caller.
const DefaultLagBudget = 100 * time.Millisecond

// LagRearm is how long (in media time) a stream's lag must stay under
// half its budget before a new crossing is reported: one episode of
// falling behind, however often a slow consumer catches up for a moment
// in it (an engine call that blocks the reader for a second, then a
// quick catch-up, over and over), warns once.
const LagRearm = 5 * time.Second

// LagCounters are a stream's delivery lag figures (the fields of the same
// names in twilio.Stats and audiohook.Stats).
type LagCounters struct {
	// Lag is the delivery lag of the last frame Pop returned: the time it
	// was returned less the time its media time was due, where a frame's
	// due time is its media time on the stream's best delivery so far
	// (the running minimum of delivery time less media time). It is 0 for
	// a consumer that keeps up, and grows by the time a consumer or a
	// reader falls behind the sender's real-time clock.
	Lag time.Duration
	// MaxLag is the largest Lag so far.
	MaxLag time.Duration
	// FramesLagged counts frames returned with a Lag over the budget.
	FramesLagged uint64
}

// lagMeter computes LagCounters. It is used under the Queue's lock.
type lagMeter struct {
	budget  time.Duration // <= 0: no FramesLagged, no crossing
	started bool
	base    time.Time     // first delivery, for monotonic offsets
	origin  time.Duration // running minimum of (delivery − base) − media time
	over    bool          // a crossing was reported and not re-armed
	calm    bool          // the lag is under half the budget since calmTS
	calmTS  time.Duration // media time the lag went under half the budget
	c       LagCounters
}

// observe records the delivery at now of a frame of media time ts and
// reports whether the lag just went over the budget (a crossing: reported
// once until the lag has stayed under half the budget for LagRearm of
// media time, so that a stream whose lag swings around the budget, as a
// read cadence or a slow engine makes it, warns once per episode rather
// than at every swing).
func (m *lagMeter) observe(now time.Time, ts time.Duration) (crossed bool) {
	if !m.started {
		m.started, m.base = true, now
		m.origin = -ts
	}
	d := now.Sub(m.base) - ts
	m.origin = min(m.origin, d)
	lag := d - m.origin
	m.c.Lag = lag
	m.c.MaxLag = max(m.c.MaxLag, lag)
	if m.budget <= 0 {
		return false
	}
	if lag <= m.budget {
		if lag >= m.budget/2 {
			m.calm = false
		} else if !m.calm {
			m.calm, m.calmTS = true, ts
		}
		if m.calm && ts-m.calmTS >= LagRearm {
			m.over = false
		}
		return false
	}
	m.calm = false
	m.c.FramesLagged++
	crossed = !m.over
	m.over = true
	return crossed
}

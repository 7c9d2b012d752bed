package daspeak

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"time"
)

// Limiter bounds the engine calls in progress across sessions and clients
// and queues the others in arrival order (FIFO), so that a burst of
// sessions reaching enough speech at once is served in the order it came,
// each result after the calls before it, rather than all of them competing
// for the cores (or for the das-Peak service's rate limit) and finishing
// late together.
//
// Share one Limiter among the sessions of a server through Config.Limiter
// (and, for the das-Peak REST client, ClientOptions.Limiter). A session
// holds a slot for its engine call; the wait for it is reported in
// SessionStats.EngineWait and Event.EngineWait. A Client holds a slot for
// each attempt of a request and gives it back while it waits to retry
// (Retry-After, backoff), queueing again at the back. When a session whose
// Config.Limiter is the Client's own calls that Client, the Client uses the
// session's slot instead of taking a second one.
//
// A Limiter is safe for concurrent use. The zero value is not usable; use
// NewLimiter.
type Limiter struct {
	limit int

	mu       sync.Mutex
	inFlight int
	queue    []*waiter // FIFO; granted waiters are removed
	arrivals uint64    // Acquire calls so far: the next caller's arrival number
	grants   uint64    // slots granted so far: the next admission number
	stats    LimiterStats
}

type waiter struct {
	ready   chan struct{} // closed when the slot is granted
	granted bool          // guarded by Limiter.mu
	order   callOrder     // guarded by Limiter.mu until ready is closed
}

// callOrder numbers an Acquire among the Limiter's callers: when it
// arrived and when it was admitted, both counted from 1. A FIFO Limiter
// admits callers in arrival order; BenchmarkBurst checks it with these.
type callOrder struct {
	arrival, admission uint64
}

// LimiterStats are a Limiter's counters.
type LimiterStats struct {
	// Limit is the most calls in progress at once.
	Limit int
	// InFlight is the number of slots held now, and Queued the number of
	// callers waiting for one.
	InFlight int
	Queued   int
	// MaxQueued is the most callers that waited at once.
	MaxQueued int
	// Admitted counts slots granted; Queued ones are included once they
	// are granted. Canceled counts waits that ended with their context
	// before a slot was granted.
	Admitted uint64
	Canceled uint64
	// Waited counts the admissions that had to queue; WaitTime is the
	// total time they queued and MaxWait the longest.
	Waited   uint64
	WaitTime time.Duration
	MaxWait  time.Duration
}

// NewLimiter returns a Limiter of n concurrent calls; n <= 0 means
// runtime.GOMAXPROCS(0), the right bound for the in-process offline engine,
// whose calls are CPU-bound. For the das-Peak REST service pick the
// concurrency your contract allows.
func NewLimiter(n int) *Limiter {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return &Limiter{limit: n, stats: LimiterStats{Limit: n}}
}

// Limit returns the most calls in progress at once.
func (l *Limiter) Limit() int { return l.limit }

// Stats returns a snapshot of the counters.
func (l *Limiter) Stats() LimiterStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.stats
	st.InFlight, st.Queued = l.inFlight, len(l.queue)
	return st
}

// Acquire waits for a slot, in the order callers arrived, and returns how
// long it waited. It returns ctx's error, holding no slot, when ctx ends
// first; a slot granted at that very moment is passed on to the next
// caller. Every successful Acquire must be followed by one Release.
func (l *Limiter) Acquire(ctx context.Context) (time.Duration, error) {
	wait, _, err := l.acquire(ctx)
	return wait, err
}

// acquire is Acquire, also returning the caller's arrival and admission
// numbers.
func (l *Limiter) acquire(ctx context.Context) (time.Duration, callOrder, error) {
	l.mu.Lock()
	l.arrivals++
	if l.inFlight < l.limit && len(l.queue) == 0 {
		l.inFlight++
		l.stats.Admitted++
		l.grants++
		o := callOrder{arrival: l.arrivals, admission: l.grants}
		l.mu.Unlock()
		return 0, o, nil
	}
	if err := ctx.Err(); err != nil {
		l.stats.Canceled++
		l.mu.Unlock()
		return 0, callOrder{}, err
	}
	w := &waiter{ready: make(chan struct{}), order: callOrder{arrival: l.arrivals}}
	l.queue = append(l.queue, w)
	l.stats.MaxQueued = max(l.stats.MaxQueued, len(l.queue))
	start := time.Now()
	l.mu.Unlock()

	select {
	case <-w.ready:
		wait := time.Since(start)
		l.mu.Lock()
		l.stats.Waited++
		l.stats.WaitTime += wait
		l.stats.MaxWait = max(l.stats.MaxWait, wait)
		l.mu.Unlock()
		return wait, w.order, nil
	case <-ctx.Done():
		l.mu.Lock()
		if w.granted {
			// Granted while ctx ended: hand the slot on.
			l.stats.Admitted--
			l.releaseLocked()
		} else {
			for i, q := range l.queue {
				if q == w {
					l.queue = slices.Delete(l.queue, i, i+1)
					break
				}
			}
		}
		l.stats.Canceled++
		l.mu.Unlock()
		return 0, callOrder{}, ctx.Err()
	}
}

// Release gives back a slot taken by Acquire; the longest waiting caller
// gets it.
func (l *Limiter) Release() {
	l.mu.Lock()
	l.releaseLocked()
	l.mu.Unlock()
}

func (l *Limiter) releaseLocked() {
	if len(l.queue) == 0 {
		if l.inFlight <= 0 {
			panic("daspeak: Limiter.Release without Acquire")
		}
		l.inFlight--
		return
	}
	// The slot passes to the head of the queue: inFlight stays.
	w := l.queue[0]
	l.queue[0] = nil
	l.queue = l.queue[1:]
	w.granted = true
	l.stats.Admitted++
	l.grants++
	w.order.admission = l.grants
	close(w.ready)
}

// slot is a Limiter slot held for one engine call, carried in the call's
// context so that a Client called by a session with the same Limiter uses
// the session's slot instead of queueing for a second one (which could
// deadlock with a small limit). It also collects the call's queueing time.
type slot struct {
	l     *Limiter
	held  bool
	wait  time.Duration
	order callOrder // of the last acquire
}

type slotKey struct{}

func withSlot(ctx context.Context, s *slot) context.Context {
	return context.WithValue(ctx, slotKey{}, s)
}

func slotFrom(ctx context.Context) *slot {
	s, _ := ctx.Value(slotKey{}).(*slot)
	return s
}

// acquire takes a slot of s.l (nothing for a nil s or without a Limiter)
// and adds the wait to s.wait.
func (s *slot) acquire(ctx context.Context) error {
	if s == nil || s.l == nil || s.held {
		return nil
	}
	w, o, err := s.l.acquire(ctx)
	s.wait += w
	if err != nil {
		return err
	}
	s.held, s.order = true, o
	return nil
}

// release gives the slot back, if held.
func (s *slot) release() {
	if s != nil && s.l != nil && s.held {
		s.held = false
		s.l.Release()
	}
}

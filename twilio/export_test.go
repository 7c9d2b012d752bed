package twilio

import (
	"sync"
	"time"
)

// SetClock makes the streams accepted with o time their idle timeout on c.
func SetClock(o *AcceptOptions, c *FakeClock) { o.clock = c }

// FakeClock is a clock whose time moves only in Advance, which runs the
// callbacks of the timers that come due synchronously, in time order. It
// lets a test put a message or a silence of exact length on either side of
// the idle timeout, whatever the load of the machine.
type FakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	onNow  func() // run once, by the next Now, outside mu
	early  bool   // onNow runs before the time is taken
}

// NewFakeClock returns a FakeClock set to start.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{now: start} }

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	now, hook, early := c.now, c.onNow, c.early
	c.onNow = nil
	c.mu.Unlock()
	if hook != nil {
		hook()
		if early {
			c.mu.Lock()
			now = c.now
			c.mu.Unlock()
		}
	}
	return now
}

// OnNextNow makes the next call of Now run f in the caller's goroutine,
// before it takes the time if early, else after. The reader goroutine
// calls Now once per message, after reading the message and before
// recording it.
func (c *FakeClock) OnNextNow(f func(), early bool) {
	c.mu.Lock()
	c.onNow, c.early = f, early
	c.mu.Unlock()
}

// AfterFunc arms a timer that calls f when Advance reaches now+d.
func (c *FakeClock) AfterFunc(d time.Duration, f func()) timer {
	t := &fakeTimer{c: c, f: f}
	t.Reset(d)
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	return t
}

// Advance moves the time forward by d, running every timer that comes due
// on the way at its due time; it returns after their callbacks returned.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	for {
		var next *fakeTimer
		for _, t := range c.timers {
			if t.armed && !t.when.After(end) && (next == nil || t.when.Before(next.when)) {
				next = t
			}
		}
		if next == nil {
			break
		}
		c.now = next.when
		next.armed = false
		c.mu.Unlock()
		next.f()
		c.mu.Lock()
	}
	c.now = end
	c.mu.Unlock()
}

// Armed reports how many timers are armed.
func (c *FakeClock) Armed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if t.armed {
			n++
		}
	}
	return n
}

type fakeTimer struct {
	c     *FakeClock
	f     func()
	when  time.Time // guarded by c.mu
	armed bool
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.when, t.armed = t.c.now.Add(d), true
	return was
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.armed = false
	return was
}

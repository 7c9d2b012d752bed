package audiohook

import (
	"sync/atomic"
	"testing"
	"time"
)

// The idle watch fires once when no message is counted, and never after
// stop returned, however its looks and stop interleave (run with -race:
// a look reading the timer before startIdleWatch stored it, or re-arming
// it after stop, was reported so or fired late).
func TestIdleWatch(t *testing.T) {
	var late, twice atomic.Int32
	for i := range 400 {
		var msgs atomic.Uint64
		var stopped atomic.Bool
		var fired atomic.Int32
		d := time.Duration(1+i%16) * time.Microsecond
		w := startIdleWatch(d, &msgs, func() {
			if fired.Add(1) > 1 {
				twice.Add(1)
			}
			if stopped.Load() {
				late.Add(1)
			}
		})
		// Messages for a while (the looks re-arm), then none (the looks
		// count to the idle timeout) while stop comes at some point.
		busy := time.Now().Add(time.Duration(i%5) * 10 * time.Microsecond)
		for time.Now().Before(busy) {
			msgs.Add(1)
		}
		for range i % 7 {
			time.Sleep(time.Microsecond)
		}
		w.stop()
		stopped.Store(true)
		w.stop() // idempotent
	}
	time.Sleep(20 * time.Millisecond)
	if n := late.Load(); n != 0 {
		t.Errorf("the watch fired %d times after stop returned", n)
	}
	if n := twice.Load(); n != 0 {
		t.Errorf("%d watches fired more than once", n)
	}

	// Without messages it fires, once, after about d.
	var msgs atomic.Uint64
	fired := make(chan time.Time, 2)
	start := time.Now()
	w := startIdleWatch(20*time.Millisecond, &msgs, func() { fired <- time.Now() })
	defer w.stop()
	select {
	case at := <-fired:
		if el := at.Sub(start); el < 20*time.Millisecond {
			t.Errorf("fired after %v, under the idle timeout 20ms", el)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the watch of a silent session did not fire in 5 s")
	}
	select {
	case <-fired:
		t.Error("fired twice")
	case <-time.After(100 * time.Millisecond):
	}
}

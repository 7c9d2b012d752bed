package natsbus_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak/agent/natsbus"
	"github.com/voicegate/voicegate/daspeak/agent/natsbus/natsbustest"
)

// TestLock takes one lock from several nodes at once, many times: never
// two holders at a time, and every taker gets it in the end.
func TestLock(t *testing.T) {
	srv := natsbustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var buses []*natsbus.Bus
	for i := range 3 {
		buses = append(buses, connect(t, srv.URL, "lk", fmt.Sprintf("n%d", i), 0))
	}
	var inside, most, taken atomic.Int32
	var wg sync.WaitGroup
	for _, b := range buses {
		for range 4 {
			wg.Go(func() {
				for range 5 {
					unlock, err := b.Lock(ctx, "caller-1", 10*time.Second)
					if err != nil {
						t.Error(err)
						return
					}
					n := inside.Add(1)
					if n > most.Load() {
						most.Store(n)
					}
					time.Sleep(time.Millisecond)
					inside.Add(-1)
					taken.Add(1)
					unlock()
				}
			})
		}
	}
	wg.Wait()
	if most.Load() != 1 || taken.Load() != 3*4*5 {
		t.Fatalf("at most %d holders at once (want 1), %d of %d takes", most.Load(), taken.Load(), 3*4*5)
	}
	// Another lock name is independent.
	u1, err := buses[0].Lock(ctx, "caller-1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	u2, err := buses[1].Lock(ctx, "caller-2", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	u2()
	// A holder that is taken: others wait until ctx ends.
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	if _, err := buses[1].Lock(short, "caller-1", time.Minute); err == nil {
		t.Fatal("took a lock another node holds")
	}
	cancelShort()
	u1()
}

// TestLockHolderStops checks that a lock whose holder stopped (its lease
// gone) is taken over at once, and one held past its hold too.
func TestLockHolderStops(t *testing.T) {
	srv := natsbustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, b := connect(t, srv.URL, "lks", "a", 0), connect(t, srv.URL, "lks", "b", 0)
	if _, err := a.Lock(ctx, "x", time.Hour); err != nil {
		t.Fatal(err)
	}
	a.Close()
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	unlock, err := b.Lock(short, "x", 100*time.Millisecond)
	if err != nil {
		t.Fatalf("the lock of a stopped node was not taken over: %v", err)
	}
	_ = unlock // held past its hold now
	c := connect(t, srv.URL, "lks", "c", 0)
	time.Sleep(150 * time.Millisecond)
	unlockC, err := c.Lock(short, "x", time.Second)
	if err != nil {
		t.Fatalf("a lock held past its hold was not taken over: %v", err)
	}
	unlock() // releases nothing: c holds it now
	if _, err := b.Lock(context.Background(), "bad name!", time.Second); err == nil {
		t.Fatal("a bad lock name was accepted")
	}
	ctx2, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	if _, err := b.Lock(ctx2, "x", time.Second); err == nil {
		t.Fatal("b's late unlock released c's lock")
	}
	unlockC()
}

// TestLockClockSkew: a live holder whose wall clock differs from the
// taker's (its lock says it expired an hour ago, or in a year) keeps the
// lock for the hold measured on the taker's own clock: the taker takes it
// over only after seeing the same revision for the whole hold.
func TestLockClockSkew(t *testing.T) {
	srv := natsbustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, b := connect(t, srv.URL, "lkk", "a", 0), connect(t, srv.URL, "lkk", "b", 0)
	for _, expires := range []time.Time{time.Now().Add(-time.Hour), time.Now().Add(365 * 24 * time.Hour)} {
		if _, err := a.Lock(ctx, "x", 600*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		// a's clock is off: what it wrote as the end of its hold is far
		// from b's time.
		if err := natsbus.PutLock(ctx, a, "x", fmt.Appendf(nil, `{"node":"a","hold":%d,"expires":%q}`, 600*time.Millisecond, expires.Format(time.RFC3339Nano))); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
		if _, err := b.Lock(short, "x", time.Second); err == nil {
			t.Fatalf("expires %v: b took a live holder's lock after %v, under its hold", expires, time.Since(start))
		}
		cancelShort()
		unlock, err := b.Lock(ctx, "x", time.Second)
		if err != nil {
			t.Fatalf("expires %v: the lock was not taken over after its hold: %v", expires, err)
		}
		// b's first sighting was after start: the hold runs from there,
		// across b's two calls.
		if el := time.Since(start); el < 600*time.Millisecond {
			t.Errorf("expires %v: taken over %v after b began to wait, under the hold 600ms", expires, el)
		}
		unlock()
	}
}

// TestLockShortWaiters: a live holder that never releases its lock (its
// unlock failed, or it stalled) loses it once its hold has passed, even
// when every taker waits less than the hold and then asks again, as the
// IVR's registrations do (a 10 s wait under a 30 s hold): the Bus keeps
// what it saw across Lock calls. Before, each call began its watch anew
// and the lock was never taken over, so the caller could be neither
// registered nor deleted.
func TestLockShortWaiters(t *testing.T) {
	srv := natsbustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, b := connect(t, srv.URL, "lks", "a", 0), connect(t, srv.URL, "lks", "b", 0)
	if _, err := a.Lock(ctx, "y", time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
		unlock, err := b.Lock(short, "y", time.Second)
		cancelShort()
		if err == nil {
			if el := time.Since(start); el < time.Second {
				t.Fatalf("taken over %v after the first try, under the holder's hold of 1s", el)
			}
			unlock()
			return
		}
		if ctx.Err() != nil || time.Since(start) > 5*time.Second {
			t.Fatalf("never taken over by waits of 300 ms each (%v): %v", time.Since(start), err)
		}
	}
}

// TestLockNodeRestarted: a node that restarted under the same name (its
// predecessor died without closing, so the name's lease lives on) does
// not keep its predecessor's lock alive: it, and another node, take it
// over at once.
func TestLockNodeRestarted(t *testing.T) {
	srv := natsbustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, taker := range []string{"a", "b"} {
		prefix := "lkr" + taker
		a := connect(t, srv.URL, prefix, "a", 0)
		if _, err := a.Lock(ctx, "x", time.Hour); err != nil {
			t.Fatal(err)
		}
		a.Conn().Close() // died: no goodbye, the lease stays for a while
		a2 := connect(t, srv.URL, prefix, "a", 0)
		tk := a2
		if taker == "b" {
			tk = connect(t, srv.URL, prefix, "b", 0)
		}
		short, cancelShort := context.WithTimeout(ctx, time.Second)
		unlock, err := tk.Lock(short, "x", time.Second)
		cancelShort()
		if err != nil {
			t.Fatalf("%s: the lock of node a's predecessor was not taken over: %v", taker, err)
		}
		unlock()
	}
}

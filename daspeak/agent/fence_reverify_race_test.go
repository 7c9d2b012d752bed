package agent

import (
	"context"
	"testing"
	"time"
)

// TestFencedReverifyAlreadyCancelled: a re-verify that won its claim
// cancels the call's operation in reserve and waits for it to end. A stop
// arriving in that wait must not answer fenced:true ("never ran an
// operation and never will"): the start already ended the call's
// operation. It answers unsettled, and the start goes on to hold the
// call, where the stop's next try finds and stops it.
func TestFencedReverifyAlreadyCancelled(t *testing.T) {
	e := newEnv(t, nil)
	s := e.srv
	ctxOld, cancelOld := context.WithCancelCause(context.Background())
	old := &run{id: "op_old", cancel: cancelOld, done: make(chan struct{})}
	s.mu.Lock()
	s.running[callA] = old
	s.mu.Unlock()
	ps := s.pend("op_new", reqA)
	defer s.unpend(ps)
	type res struct{ e *Error }
	ch := make(chan res, 1)
	go func() {
		_, _, done, e := s.reserve(context.Background(), kindReverify, callA, callerA, ps)
		if done != nil {
			done()
		}
		ch <- res{e}
	}()
	select {
	case <-ctxOld.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("reserve did not cancel the old operation")
	}
	// The start has acted (it ended the call's operation): a stop now is
	// unsettled, never fenced, and asks again.
	if _, serr := s.stopStarted(context.Background(), Principal{}, callA, reqA, "op_new"); serr != errUnsettled {
		t.Fatalf("stop while the re-verify replaces the call's operation: %v, want %v", serr, errUnsettled)
	}
	s.mu.Lock()
	delete(s.running, callA)
	s.mu.Unlock()
	close(old.done)
	if r := <-ch; r.e != nil {
		t.Fatalf("the re-verify, not fenced, was refused: %v", r.e)
	}
	s.mu.Lock()
	rn := s.running[callA]
	s.mu.Unlock()
	if rn == nil || rn.reqID != reqA {
		t.Fatal("the re-verify does not hold the call, so the next stop cannot find it")
	}
}

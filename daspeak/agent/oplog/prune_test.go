package oplog

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func rec(seq uint64, typ string, term bool) Record {
	return Record{Seq: seq, Type: typ, Terminal: term, Data: []byte(`{"type":"` + typ + `"}`)}
}

// TestMemoryPrune checks that finished operations are forgotten after the
// retention time or beyond the limit, and running ones never.
func TestMemoryPrune(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	m := NewMemory(time.Minute, 3)
	m.now = func() time.Time { return now }
	for _, id := range []string{"done1", "done2", "running"} {
		m.Create(ctx, Op{ID: id})
		m.Append(ctx, id, rec(1, "started", false))
	}
	m.Append(ctx, "done1", rec(2, "result-success", true))
	cur, _ := m.Subscribe(ctx, "done1", 0)
	defer cur.Close()
	now = now.Add(30 * time.Second)
	m.Append(ctx, "done2", rec(2, "result-success", true))
	// Over the limit: the oldest finished goes.
	m.Create(ctx, Op{ID: "new"})
	if _, err := m.Get(ctx, "done1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("done1 kept over the limit: %v", err)
	}
	// A cursor keeps its records.
	if r, err := cur.Next(ctx); err != nil || r.Seq != 1 {
		t.Fatalf("cursor of a forgotten operation: %+v %v", r, err)
	}
	now = now.Add(time.Minute)
	m.Create(ctx, Op{ID: "new2"})
	if _, err := m.Get(ctx, "done2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("done2 kept after retention: %v", err)
	}
	for _, id := range []string{"running", "new", "new2"} {
		if _, err := m.Get(ctx, id); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	if len(m.order) != 3 {
		t.Fatalf("order %v", m.order)
	}
}

// TestMemoryRequestPrune: request claims are forgotten
// max(retain, MinRequestRetain) after they were made, never earlier, and
// a full Memory refuses new claims instead of forgetting held ones.
func TestMemoryRequestPrune(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	m := NewMemory(time.Minute, 2)
	m.now = func() time.Time { return now }
	claim := func(call, id string) (bool, error) {
		_, won, err := m.ClaimRequest(ctx, id, Request{CallID: call})
		return won, err
	}
	mustClaim := func(call, id string) bool {
		t.Helper()
		won, err := claim(call, id)
		if err != nil {
			t.Fatal(err)
		}
		return won
	}
	if !mustClaim("CA1", "request-1") || mustClaim("CA1", "request-1") {
		t.Fatal("a claim did not hold")
	}
	now = now.Add(30 * time.Second)
	mustClaim("CA2", "request-2")
	// Full: a new claim is refused, the held ones stay.
	_, err := claim("CA3", "request-3")
	var le *LimitError
	if !errors.As(err, &le) || !errors.Is(err, ErrTooManyRequests) || le.CallID != "" || le.Limit != 2 || le.RetryAfter != MinRequestRetain-30*time.Second {
		t.Fatalf("claim over the limit: %v", err)
	}
	if mustClaim("CA1", "request-1") || mustClaim("CA2", "request-2") {
		t.Fatal("a held claim was forgotten when the Memory was full")
	}
	// Kept MinRequestRetain, not only retain (a minute).
	now = now.Add(2 * time.Minute)
	if mustClaim("CA1", "request-1") {
		t.Fatal("a claim was forgotten before MinRequestRetain")
	}
	now = time.Unix(1000, 0).Add(MinRequestRetain)
	if !mustClaim("CA1", "request-1") {
		t.Fatal("an expired claim was kept")
	}
	if mustClaim("CA2", "request-2") {
		t.Fatal("a claim was forgotten before its time")
	}
}

// TestMemoryRequestFlood: a flood of new request ids on one call by one
// subject (stops an agent allowed on that call can send) fills that
// subject's MaxSubjectRequests and is then refused with a *LimitError
// naming the call and subject; other subjects fill the call up to
// MaxCallRequests, beyond which any subject is refused; another call's
// fence, made before the flood, holds, and another call can still claim.
func TestMemoryRequestFlood(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	m := NewMemory(time.Minute, 0)
	m.now = func() time.Time { return now }
	fence := Request{Fenced: true, CallID: "CAB"}
	if _, won, err := m.ClaimRequest(ctx, "fence-of-b", fence); err != nil || !won {
		t.Fatalf("fence of B: %v %v", won, err)
	}
	refused := 0
	for i := range 10 * MaxSubjectRequests {
		now = now.Add(time.Millisecond)
		_, won, err := m.ClaimRequest(ctx, fmt.Sprintf("flood-%06d", i), Request{Fenced: true, CallID: "CAA", Subject: "x"})
		var le *LimitError
		switch {
		case err == nil && won && i < MaxSubjectRequests:
		case errors.As(err, &le) && i >= MaxSubjectRequests:
			if le.CallID != "CAA" || !le.PerSubject || le.Subject != "x" || le.Limit != MaxSubjectRequests || le.RetryAfter <= 0 || le.RetryAfter > MinRequestRetain {
				t.Fatalf("claim %d: %+v", i, le)
			}
			refused++
		default:
			t.Fatalf("claim %d of A's flood: won %v, %v", i, won, err)
		}
	}
	if refused != 9*MaxSubjectRequests {
		t.Fatalf("%d claims refused", refused)
	}
	// Other subjects claim on A until the call holds MaxCallRequests.
	for i := MaxSubjectRequests; i < MaxCallRequests; i++ {
		sub := fmt.Sprintf("y%d", i/MaxSubjectRequests)
		if _, won, err := m.ClaimRequest(ctx, fmt.Sprintf("other-%06d", i), Request{CallID: "CAA", Subject: sub}); err != nil || !won {
			t.Fatalf("claim %d of %s on A: %v %v", i, sub, won, err)
		}
	}
	var le *LimitError
	if _, _, err := m.ClaimRequest(ctx, "one-more-on-a", Request{CallID: "CAA", Subject: "z"}); !errors.As(err, &le) || le.PerSubject || le.CallID != "CAA" || le.Limit != MaxCallRequests {
		t.Fatalf("a claim on a full call: %v", err)
	}
	// B's fence holds: a start of its id on B loses to it.
	held, won, err := m.ClaimRequest(ctx, "fence-of-b", Request{CallID: "CAB", OpID: "op_b"})
	if err != nil || won || held != (Request{Fenced: true, CallID: "CAB", Node: MemoryNode}) {
		t.Fatalf("start on B after A's flood: %+v %v %v", held, won, err)
	}
	// A's own ids already claimed are still answered.
	if held, won, err := m.ClaimRequest(ctx, "flood-000000", Request{CallID: "CAA", OpID: "op_a"}); err != nil || won || !held.Fenced {
		t.Fatalf("start of a fenced id on A: %+v %v %v", held, won, err)
	}
	if _, won, err := m.ClaimRequest(ctx, "start-of-c", Request{CallID: "CAC", OpID: "op_c"}); err != nil || !won {
		t.Fatalf("start on C: %v %v", won, err)
	}
	// Once A's first claim expires, A may claim again.
	now = time.Unix(1000, 0).Add(time.Millisecond).Add(MinRequestRetain)
	if _, won, err := m.ClaimRequest(ctx, "after-expiry", Request{CallID: "CAA", Subject: "x"}); err != nil || !won {
		t.Fatalf("A after its oldest claim expired: %v %v", won, err)
	}
}

// TestMemoryKeepsClaimedOps: a finished operation a kept request claim
// names (Request.OpID) is neither expired by retain nor evicted over
// maxOps until the claim expires: a stop of the claim's id must find
// what the start did, not take it for a start that never created it.
func TestMemoryKeepsClaimedOps(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	m := NewMemory(time.Second, 2)
	m.now = func() time.Time { return now }
	if _, won, err := m.ClaimRequest(ctx, "req-00000001", Request{CallID: "c", OpID: "claimed"}); err != nil || !won {
		t.Fatalf("claim: %v %v", won, err)
	}
	for _, id := range []string{"claimed", "plain"} {
		m.Create(ctx, Op{ID: id, CallID: "c"})
		m.Append(ctx, id, rec(1, "result-success", true))
	}
	now = now.Add(time.Minute)
	for i := range 3 {
		m.Create(ctx, Op{ID: fmt.Sprint("x", i)})
		m.Append(ctx, fmt.Sprint("x", i), rec(1, "result-success", true))
	}
	if _, err := m.Get(ctx, "plain"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unclaimed operation kept after retain: %v", err)
	}
	if _, err := m.Get(ctx, "claimed"); err != nil {
		t.Fatalf("operation of a kept claim forgotten: %v", err)
	}
	now = now.Add(MinRequestRetain)
	m.Create(ctx, Op{ID: "y"})
	if _, err := m.Get(ctx, "claimed"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("operation kept after its claim expired: %v", err)
	}
	if len(m.claimedOps) != 0 {
		t.Fatalf("claimedOps after expiry: %v", m.claimedOps)
	}
}

// TestMemoryCallSummary checks a call's summary: its running operations,
// the one that ended last with its terminal record, other calls apart,
// and nothing once the call's operations are pruned.
func TestMemoryCallSummary(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	m := NewMemory(time.Minute, 100)
	m.now = func() time.Time { return now }
	check := func(call string, running int, last, typ string) {
		t.Helper()
		n, op, r, ok, err := m.CallSummary(ctx, call)
		if err != nil || n != running || ok != (last != "") || op.ID != last || r.Type != typ || (ok && !r.Terminal) {
			t.Errorf("CallSummary(%s) = %d %q %q %v %v, want %d %q %q", call, n, op.ID, r.Type, ok, err, running, last, typ)
		}
	}
	check("CA1", 0, "", "")
	m.Create(ctx, Op{ID: "a", CallID: "CA1"})
	m.Create(ctx, Op{ID: "b", CallID: "CA1"})
	m.Create(ctx, Op{ID: "x", CallID: "CA2"})
	check("CA1", 2, "", "")
	m.Append(ctx, "b", rec(1, "result-fail-score", true))
	now = now.Add(time.Second)
	check("CA1", 1, "b", "result-fail-score")
	m.Append(ctx, "a", rec(1, "started", false))
	m.Append(ctx, "a", rec(2, "result-success", true))
	check("CA1", 0, "a", "result-success")
	check("CA2", 1, "", "")
	// Pruned: the call's summary goes with its operations.
	now = now.Add(2 * time.Minute)
	m.Create(ctx, Op{ID: "y", CallID: "CA3"})
	check("CA1", 0, "", "")
	if len(m.calls) != 2 {
		t.Errorf("%d call summaries kept, want 2 (CA2, CA3)", len(m.calls))
	}
}

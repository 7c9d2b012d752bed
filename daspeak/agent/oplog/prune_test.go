package oplog

import (
	"context"
	"errors"
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

// TestMemoryRequestPrune: request claims are forgotten after the
// retention time, and the oldest beyond the limit.
func TestMemoryRequestPrune(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	m := NewMemory(time.Minute, 2)
	m.now = func() time.Time { return now }
	claim := func(id string) bool {
		_, won, err := m.ClaimRequest(ctx, id, Request{CallID: "CA1"})
		if err != nil {
			t.Fatal(err)
		}
		return won
	}
	if !claim("request-1") || claim("request-1") {
		t.Fatal("a claim did not hold")
	}
	now = now.Add(30 * time.Second)
	claim("request-2")
	claim("request-3") // over the limit: request-1 goes
	if !claim("request-1") {
		t.Fatal("the oldest claim was kept beyond the limit")
	}
	if claim("request-3") {
		t.Fatal("a recent claim was forgotten")
	}
	now = now.Add(2 * time.Minute)
	if !claim("request-3") {
		t.Fatal("an expired claim was kept")
	}
}

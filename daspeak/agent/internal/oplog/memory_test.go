package oplog

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func rec(seq uint64, typ string, term bool) Record {
	return Record{Seq: seq, Type: typ, Terminal: term, Data: []byte(`{"type":"` + typ + `"}`)}
}

// TestMemory checks the Log contract on Memory: creation, gap-free
// sequence numbers, nothing after the terminal record, subscribers from a
// position, and operations kept apart.
func TestMemory(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(0, 0)
	if err := m.Create(ctx, Op{ID: "a", Kind: "verify", CallID: "CA1", CallerID: "+34"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Create(ctx, Op{ID: "a"}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := m.Create(ctx, Op{ID: "b", CallID: "CA1"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   string
		rec  Record
		want error
	}{
		{"a", rec(2, "progress", false), ErrSeq},
		{"a", rec(1, "started", false), nil},
		{"a", rec(1, "started", false), ErrSeq},
		{"b", rec(1, "started", false), nil},
		{"a", rec(2, "progress", false), nil},
		{"a", rec(3, "result-success", true), nil},
		{"a", rec(4, "progress", false), ErrSeq},
		{"nope", rec(1, "started", false), ErrNotFound},
	} {
		if err := m.Append(ctx, c.id, c.rec); !errors.Is(err, c.want) {
			t.Errorf("Append(%s, %d) = %v, want %v", c.id, c.rec.Seq, err, c.want)
		}
	}
	op, err := m.Get(ctx, "a")
	if err != nil || op.LastSeq != 3 || !op.Done || op.Ended.IsZero() || op.CallID != "CA1" || op.Kind != "verify" {
		t.Fatalf("Get: %+v %v", op, err)
	}
	if _, err := m.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	for _, after := range []uint64{0, 1, 3} {
		cur, err := m.Subscribe(ctx, "a", after)
		if err != nil {
			t.Fatal(err)
		}
		for want := after + 1; want <= 3; want++ {
			r, err := cur.Next(ctx)
			if err != nil || r.Seq != want {
				t.Fatalf("after %d: %+v %v", after, r, err)
			}
		}
		if _, err := cur.Next(ctx); err != io.EOF {
			t.Fatalf("after the terminal record: %v", err)
		}
		cur.Close()
		cur.Close()
		if _, err := cur.Next(ctx); !errors.Is(err, ErrClosed) {
			t.Fatalf("after Close: %v", err)
		}
	}
	// b's subscriber sees b's record only and waits for more.
	cur, err := m.Subscribe(ctx, "b", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	if r, err := cur.Next(ctx); err != nil || r.Seq != 1 || r.Type != "started" {
		t.Fatalf("b: %+v %v", r, err)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := cur.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting: %v", err)
	}
	got := make(chan Record)
	go func() {
		r, _ := cur.Next(ctx)
		got <- r
	}()
	time.Sleep(5 * time.Millisecond)
	if err := m.Append(ctx, "b", rec(2, "error-cancelled", true)); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.Seq != 2 || !r.Terminal {
		t.Fatalf("woken with %+v", r)
	}
	// A record already appended is returned even to a done context.
	cur2, _ := m.Subscribe(ctx, "b", 0)
	done, cancel2 := context.WithCancel(ctx)
	cancel2()
	if r, err := cur2.Next(done); err != nil || r.Seq != 1 {
		t.Fatalf("done ctx: %+v %v", r, err)
	}
	cur2.Close()
	if _, err := m.Subscribe(ctx, "nope", 0); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if err := m.Create(done, Op{ID: "c"}); err == nil {
		t.Fatal("Create with a done ctx")
	}
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

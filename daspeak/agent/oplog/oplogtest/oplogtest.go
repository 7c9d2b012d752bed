// Package oplogtest is the conformance suite of oplog.Log
// implementations.
package oplogtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak/agent/oplog"
)

// Rec returns a record whose data is {"type":typ}.
func Rec(seq uint64, typ string, term bool) oplog.Record {
	return oplog.Record{Seq: seq, Type: typ, Terminal: term, Data: []byte(`{"type":"` + typ + `"}`)}
}

// Run checks the single-node contract of oplog.Log on logs made by
// newLog: creation, gap-free sequence numbers, nothing after the terminal
// record, claims, subscribers from a position, each record once and in
// order to concurrent readers, and operations kept apart. Operation ids
// are unique per call of newLog.
func Run(t *testing.T, newLog func(t *testing.T) oplog.Log) {
	t.Run("Contract", func(t *testing.T) { contract(t, newLog(t)) })
	t.Run("Claim", func(t *testing.T) { claim(t, newLog(t)) })
	t.Run("Readers", func(t *testing.T) { readers(t, newLog(t)) })
	t.Run("Requests", func(t *testing.T) { requests(t, newLog(t)) })
	t.Run("RequestFlood", func(t *testing.T) { requestFlood(t, newLog(t)) })
}

// requestFlood checks that claims are bounded per call and subject and
// never evicted: a flood of new request ids on call A by subject X (as
// stops from an agent allowed on A send), from concurrent clients, wins
// exactly MaxSubjectRequests claims and the rest are refused with a
// *LimitError naming A and X; subject Y can still claim on A; other
// subjects fill A up to MaxCallRequests, beyond which any subject is
// refused; a fence on call B made before the flood still holds against a
// start of its id, and B can still claim.
func requestFlood(t *testing.T, m oplog.Log) {
	ctx := context.Background()
	var b [8]byte
	rand.Read(b[:])
	tag := hex.EncodeToString(b[:])
	callA, callB := "CAflood"+tag, "CAfenced"+tag
	fence := oplog.Request{Fenced: true, CallID: callB, Node: m.Node()}
	if _, won, err := m.ClaimRequest(ctx, "fence-"+tag, fence); err != nil || !won {
		t.Fatalf("fence on B: %v %v", won, err)
	}
	const clients, extra = 4, 12
	total := oplog.MaxSubjectRequests + extra
	var mu sync.Mutex
	won, refused := 0, 0
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < total; i += clients {
				_, ok, err := m.ClaimRequest(ctx, fmt.Sprintf("flood-%s-%04d", tag, i), oplog.Request{Fenced: true, CallID: callA, Node: m.Node(), Subject: "agent-x"})
				var le *oplog.LimitError
				mu.Lock()
				switch {
				case err == nil && ok:
					won++
				case errors.As(err, &le) && errors.Is(err, oplog.ErrTooManyRequests) && le.CallID == callA && le.PerSubject && le.Subject == "agent-x" && le.RetryAfter > 0:
					refused++
				default:
					t.Errorf("flood claim %d: won %v, %v", i, ok, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != oplog.MaxSubjectRequests || refused != extra {
		t.Fatalf("flood of %d new ids by one subject on one call: %d won, %d refused; want %d and %d", total, won, refused, oplog.MaxSubjectRequests, extra)
	}
	// Another subject on A is not limited by X.
	if _, ok, err := m.ClaimRequest(ctx, "y-start-"+tag, oplog.Request{CallID: callA, OpID: "op_y", Node: m.Node(), Subject: "agent-y"}); err != nil || !ok {
		t.Fatalf("Y's claim on A after X's flood: %v %v", ok, err)
	}
	// The call as a whole is bounded.
	for i := oplog.MaxSubjectRequests + 1; i < oplog.MaxCallRequests; i++ {
		sub := fmt.Sprintf("agent-z%d", i/oplog.MaxSubjectRequests)
		if _, ok, err := m.ClaimRequest(ctx, fmt.Sprintf("fill-%s-%04d", tag, i), oplog.Request{Fenced: true, CallID: callA, Node: m.Node(), Subject: sub}); err != nil || !ok {
			t.Fatalf("claim %d by %s on A: %v %v", i, sub, ok, err)
		}
	}
	var le *oplog.LimitError
	if _, _, err := m.ClaimRequest(ctx, "over-"+tag, oplog.Request{Fenced: true, CallID: callA, Node: m.Node(), Subject: "agent-w"}); !errors.As(err, &le) || le.PerSubject || le.CallID != callA || le.Limit != oplog.MaxCallRequests || le.RetryAfter <= 0 {
		t.Fatalf("a new subject's claim on a full call: %v", err)
	}
	held, ok, err := m.ClaimRequest(ctx, "fence-"+tag, oplog.Request{CallID: callB, OpID: "op_b", Node: m.Node()})
	if err != nil || ok || held != fence {
		t.Fatalf("start of B's fenced id after A's flood: %+v %v %v", held, ok, err)
	}
	if _, ok, err := m.ClaimRequest(ctx, "start-"+tag, oplog.Request{CallID: callB, OpID: "op_b2", Node: m.Node()}); err != nil || !ok {
		t.Fatalf("new claim on B after A's flood: %v %v", ok, err)
	}
	// An id A already claimed (the first of each client's, claimed while
	// A held few) is answered at any count.
	held, ok, err = m.ClaimRequest(ctx, fmt.Sprintf("flood-%s-%04d", tag, 0), oplog.Request{CallID: callA, OpID: "op_a", Node: m.Node()})
	if err != nil || ok || !held.Fenced {
		t.Fatalf("start of a flood id on A: %+v %v %v", held, ok, err)
	}
}

// requests checks ClaimRequest: the first claim of an id holds, later
// ones read it, of concurrent claims exactly one wins, and malformed ids
// are refused.
func requests(t *testing.T, m oplog.Log) {
	ctx := context.Background()
	var b [8]byte
	rand.Read(b[:])
	id := "req-" + hex.EncodeToString(b[:])
	start := oplog.Request{CallID: "CA1", OpID: "op_r", Node: m.Node()}
	if held, ok, err := m.HeldRequest(ctx, "CA1", id); err != nil || ok {
		t.Fatalf("HeldRequest before any claim: %+v %v %v", held, ok, err)
	}
	held, won, err := m.ClaimRequest(ctx, id, start)
	if err != nil || !won || held != start {
		t.Fatalf("first claim: %+v %v %v", held, won, err)
	}
	if held, ok, err := m.HeldRequest(ctx, "CA1", id); err != nil || !ok || held != start {
		t.Fatalf("HeldRequest after the claim: %+v %v %v", held, ok, err)
	}
	// Reading makes no claim: the id is free on another call.
	if held, ok, err := m.HeldRequest(ctx, "CA2", id); err != nil || ok {
		t.Fatalf("HeldRequest on another call: %+v %v %v", held, ok, err)
	}
	if _, _, err := m.HeldRequest(ctx, "CA1", "short"); !errors.Is(err, oplog.ErrBadRequestID) {
		t.Fatalf("HeldRequest of a malformed id: %v", err)
	}
	held, won, err = m.ClaimRequest(ctx, id, oplog.Request{Fenced: true, CallID: "CA1", Node: m.Node()})
	if err != nil || won || held != start {
		t.Fatalf("second claim: %+v %v %v", held, won, err)
	}
	// Claims are per call: the same id on another call is its own claim.
	other := oplog.Request{Fenced: true, CallID: "CA2", Node: m.Node()}
	if held, won, err := m.ClaimRequest(ctx, id, other); err != nil || !won || held != other {
		t.Fatalf("claim of the id on another call: %+v %v %v", held, won, err)
	}
	if held, won, err := m.ClaimRequest(ctx, id, oplog.Request{CallID: "CA1", OpID: "op_x", Node: m.Node()}); err != nil || won || held != start {
		t.Fatalf("claim on the first call after one on another: %+v %v %v", held, won, err)
	}
	for _, bad := range []string{"", "short", "a.b.c.d.e.f", strings.Repeat("x", oplog.MaxRequestID+1)} {
		if _, _, err := m.ClaimRequest(ctx, bad, start); !errors.Is(err, oplog.ErrBadRequestID) {
			t.Fatalf("claim of %q: %v", bad, err)
		}
	}
	const n = 8
	wins := make(chan bool, n)
	id2 := id + "-2"
	for i := range n {
		go func() {
			_, won, err := m.ClaimRequest(ctx, id2, oplog.Request{CallID: "CA1", OpID: fmt.Sprint("op_", i)})
			if err != nil {
				t.Error(err)
			}
			wins <- won
		}()
	}
	count := 0
	for range n {
		if <-wins {
			count++
		}
	}
	if count != 1 {
		t.Fatalf("%d of %d concurrent claims won", count, n)
	}
}

func contract(t *testing.T, m oplog.Log) {
	ctx := context.Background()
	if err := m.Create(ctx, oplog.Op{ID: "op_a", Kind: "verify", CallID: "CA1", CallerID: "+34", Spec: []byte(`{"x":1}`)}); err != nil {
		t.Fatal(err)
	}
	if err := m.Create(ctx, oplog.Op{ID: "op_a"}); !errors.Is(err, oplog.ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := m.Create(ctx, oplog.Op{ID: "op_big", Spec: make([]byte, oplog.MaxSpec+1)}); !errors.Is(err, oplog.ErrTooLarge) {
		t.Fatalf("spec over MaxSpec: %v", err)
	}
	if err := m.Create(ctx, oplog.Op{ID: "op_b", CallID: "CA1"}); err != nil {
		t.Fatal(err)
	}
	running := func(callID string, want ...string) {
		t.Helper()
		ops, err := m.Running(ctx, callID)
		var got []string
		for _, o := range ops {
			if o.CallID != callID || o.Done || o.Owner != m.Node() {
				t.Errorf("Running(%s) has %+v", callID, o)
			}
			got = append(got, o.ID)
		}
		if err != nil || strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("Running(%s) = %q, %v; want %q", callID, got, err, want)
		}
	}
	running("CA1", "op_a", "op_b")
	running("CA2")
	before := time.Now().Add(-time.Second)
	for _, c := range []struct {
		id   string
		rec  oplog.Record
		want error
	}{
		{"op_a", Rec(2, "progress", false), oplog.ErrSeq},
		{"op_a", Rec(1, "started", false), nil},
		{"op_a", Rec(1, "started", false), oplog.ErrSeq},
		{"op_b", Rec(1, "started", false), nil},
		{"op_a", Rec(2, "progress", false), nil},
		{"op_a", Rec(3, "result-success", true), nil},
		{"op_a", Rec(4, "progress", false), oplog.ErrSeq},
		{"op_nope", Rec(1, "started", false), oplog.ErrNotFound},
	} {
		if err := m.Append(ctx, c.id, c.rec); !errors.Is(err, c.want) {
			t.Errorf("Append(%s, %d) = %v, want %v", c.id, c.rec.Seq, err, c.want)
		}
	}
	running("CA1", "op_b")
	op, err := m.Get(ctx, "op_a")
	if err != nil || op.LastSeq != 3 || !op.Done || op.Ended.IsZero() || op.CallID != "CA1" || op.Kind != "verify" ||
		op.CallerID != "+34" || op.Owner != m.Node() || string(op.Spec) != `{"x":1}` {
		t.Fatalf("Get: %+v %v", op, err)
	}
	if op, err := m.Get(ctx, "op_b"); err != nil || op.LastSeq != 1 || op.Done {
		t.Fatalf("Get b: %+v %v", op, err)
	}
	if _, err := m.Get(ctx, "op_nope"); !errors.Is(err, oplog.ErrNotFound) {
		t.Fatal(err)
	}
	for _, after := range []uint64{0, 1, 3} {
		cur, err := m.Subscribe(ctx, "op_a", after)
		if err != nil {
			t.Fatal(err)
		}
		for want := after + 1; want <= 3; want++ {
			r, err := cur.Next(ctx)
			if err != nil || r.Seq != want || r.Time.Before(before) {
				t.Fatalf("after %d: %+v %v", after, r, err)
			}
		}
		if _, err := cur.Next(ctx); err != io.EOF {
			t.Fatalf("after the terminal record: %v", err)
		}
		cur.Close()
		cur.Close()
		if _, err := cur.Next(ctx); !errors.Is(err, oplog.ErrClosed) {
			t.Fatalf("after Close: %v", err)
		}
	}
	// b's subscriber sees b's record only and waits for more.
	cur, err := m.Subscribe(ctx, "op_b", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	if r, err := cur.Next(ctx); err != nil || r.Seq != 1 || r.Type != "started" || string(r.Data) != `{"type":"started"}` {
		t.Fatalf("b: %+v %v", r, err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := cur.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting: %v", err)
	}
	got := make(chan oplog.Record)
	go func() {
		r, _ := cur.Next(ctx)
		got <- r
	}()
	time.Sleep(10 * time.Millisecond)
	if err := m.Append(ctx, "op_b", Rec(2, "error-cancelled", true)); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if r.Seq != 2 || !r.Terminal {
			t.Fatalf("woken with %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the subscriber was not woken by the append")
	}
	running("CA1")
	if _, err := m.Subscribe(ctx, "op_nope", 0); !errors.Is(err, oplog.ErrNotFound) {
		t.Fatal(err)
	}
	done, cancel2 := context.WithCancel(ctx)
	cancel2()
	if err := m.Create(done, oplog.Op{ID: "op_c"}); err == nil {
		t.Fatal("Create with a done ctx")
	}
	if err := m.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}

func claim(t *testing.T, m oplog.Log) {
	ctx := context.Background()
	if err := m.Create(ctx, oplog.Op{ID: "op_c1", CallID: "CA1", Owner: "elsewhere"}); err != nil {
		t.Fatal(err)
	}
	if op, _ := m.Get(ctx, "op_c1"); op.Owner != "elsewhere" {
		t.Fatalf("owner %q", op.Owner)
	}
	for _, c := range []struct {
		from string
		want error
	}{
		{"other", oplog.ErrClaimed},
		{"elsewhere", nil},
		{"elsewhere", oplog.ErrClaimed}, // owned by this node now
	} {
		if err := m.Claim(ctx, "op_c1", c.from); !errors.Is(err, c.want) {
			t.Errorf("Claim(from %s) = %v, want %v", c.from, err, c.want)
		}
	}
	if op, _ := m.Get(ctx, "op_c1"); op.Owner != m.Node() {
		t.Fatalf("owner after claim %q", op.Owner)
	}
	if err := m.Append(ctx, "op_c1", Rec(1, "started", false)); err != nil {
		t.Fatal(err)
	}
	if err := m.Claim(ctx, "op_c1", m.Node()); !errors.Is(err, oplog.ErrClaimed) {
		t.Fatalf("claim of a started operation: %v", err)
	}
	if err := m.Claim(ctx, "op_nope", "x"); !errors.Is(err, oplog.ErrNotFound) {
		t.Fatalf("claim of an unknown operation: %v", err)
	}
}

// readers appends to many operations at once while readers follow each
// from the start and from the middle.
func readers(t *testing.T, m oplog.Log) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const ops, recs = 20, 12
	var wg sync.WaitGroup
	errc := make(chan error, ops*3)
	for i := range ops {
		id := fmt.Sprintf("op_r%d", i)
		if err := m.Create(ctx, oplog.Op{ID: id, CallID: "CA" + id}); err != nil {
			t.Fatal(err)
		}
		for _, after := range []uint64{0, recs / 2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cur, err := m.Subscribe(ctx, id, after)
				if err != nil {
					errc <- err
					return
				}
				defer cur.Close()
				for want := after + 1; ; want++ {
					r, err := cur.Next(ctx)
					if err == io.EOF && want == recs+1 {
						return
					}
					if err != nil || r.Seq != want || r.Type != fmt.Sprintf("t%d", want) {
						errc <- fmt.Errorf("%s after %d: got %d %q %v, want %d", id, after, r.Seq, r.Type, err, want)
						return
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := uint64(1); s <= recs; s++ {
				if err := m.Append(ctx, id, Rec(s, fmt.Sprintf("t%d", s), s == recs)); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

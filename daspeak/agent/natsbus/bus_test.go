package natsbus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicegate/voicegate/daspeak/agent/natsbus"
	"github.com/voicegate/voicegate/daspeak/agent/natsbus/natsbustest"
	"github.com/voicegate/voicegate/daspeak/agent/oplog"
	"github.com/voicegate/voicegate/daspeak/agent/oplog/oplogtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func connect(t *testing.T, url, prefix, node string, lease time.Duration) *natsbus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := natsbus.Connect(ctx, url, &natsbus.Options{Prefix: prefix, Node: node, Lease: lease})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestConformance runs the oplog suite on a Bus.
func TestConformance(t *testing.T) {
	srv := natsbustest.Start(t)
	n := 0
	oplogtest.Run(t, func(t *testing.T) oplog.Log {
		n++
		return connect(t, srv.URL, fmt.Sprintf("conf%d", n), "n1", 0)
	})
}

// TestAcrossNodes checks that a record appended on one node is read on
// another, and that a reader on a third node started in the middle sees
// the rest once, in order.
func TestAcrossNodes(t *testing.T) {
	srv := natsbustest.Start(t)
	ctx := context.Background()
	a, b, c := connect(t, srv.URL, "x", "a", 0), connect(t, srv.URL, "x", "b", 0), connect(t, srv.URL, "x", "c", 0)
	if err := a.Create(ctx, oplog.Op{ID: "op_1", CallID: "CA1"}); err != nil {
		t.Fatal(err)
	}
	if op, err := b.Get(ctx, "op_1"); err != nil || op.Owner != "a" || op.CallID != "CA1" {
		t.Fatalf("Get on b: %+v %v", op, err)
	}
	curB, err := b.Subscribe(ctx, "op_1", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer curB.Close()
	a.Append(ctx, "op_1", oplogtest.Rec(1, "started", false))
	a.Append(ctx, "op_1", oplogtest.Rec(2, "progress", false))
	curC, err := c.Subscribe(ctx, "op_1", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer curC.Close()
	a.Append(ctx, "op_1", oplogtest.Rec(3, "result-success", true))
	for _, cc := range []struct {
		cur  oplog.Cursor
		want []uint64
	}{{curB, []uint64{1, 2, 3}}, {curC, []uint64{2, 3}}} {
		for _, w := range cc.want {
			r, err := cc.cur.Next(ctx)
			if err != nil || r.Seq != w {
				t.Fatalf("got %+v %v, want %d", r, err, w)
			}
		}
		if _, err := cc.cur.Next(ctx); err != io.EOF {
			t.Fatalf("after terminal: %v", err)
		}
	}
	if op, err := c.Get(ctx, "op_1"); err != nil || !op.Done || op.LastSeq != 3 {
		t.Fatalf("Get on c: %+v %v", op, err)
	}
}

// TestTwoWriters checks that two nodes appending the same number to one
// operation get one success and one ErrSeq, and a reader sees only the
// stored one (the refused message still reaches core subscribers).
func TestTwoWriters(t *testing.T) {
	srv := natsbustest.Start(t)
	ctx := context.Background()
	a, b := connect(t, srv.URL, "y", "a", 0), connect(t, srv.URL, "y", "b", 0)
	a.Create(ctx, oplog.Op{ID: "op_1", CallID: "CA1"})
	if err := a.Append(ctx, "op_1", oplogtest.Rec(1, "started", false)); err != nil {
		t.Fatal(err)
	}
	cur, _ := b.Subscribe(ctx, "op_1", 0)
	defer cur.Close()
	// b learns the last record (seq 1), then a appends 2 first.
	if err := b.Append(ctx, "op_1", oplogtest.Rec(1, "started", false)); !errors.Is(err, oplog.ErrSeq) {
		t.Fatalf("b appending seq 1 again: %v", err)
	}
	if err := a.Append(ctx, "op_1", oplogtest.Rec(2, "from-a", true)); err != nil {
		t.Fatal(err)
	}
	if err := b.Append(ctx, "op_1", oplogtest.Rec(2, "from-b", true)); !errors.Is(err, oplog.ErrSeq) {
		t.Fatalf("b's late terminal: %v", err)
	}
	for _, w := range []string{"started", "from-a"} {
		if r, err := cur.Next(ctx); err != nil || r.Type != w {
			t.Fatalf("got %+v %v, want %s", r, err, w)
		}
	}
	if _, err := cur.Next(ctx); err != io.EOF {
		t.Fatal(err)
	}
}

// TestOrphans checks that the operations of a node whose lease expired
// are returned by Orphans on the others, and not those that ended or
// belong to live nodes.
func TestOrphans(t *testing.T) {
	srv := natsbustest.Start(t)
	ctx := context.Background()
	lease := 600 * time.Millisecond
	dead := connect(t, srv.URL, "z", "dead", lease)
	live := connect(t, srv.URL, "z", "live", lease)
	for _, id := range []string{"op_run", "op_new", "op_done"} {
		dead.Create(ctx, oplog.Op{ID: id, CallID: "CA" + id})
	}
	live.Create(ctx, oplog.Op{ID: "op_mine", CallID: "CAm"})
	dead.Append(ctx, "op_run", oplogtest.Rec(1, "started", false))
	dead.Append(ctx, "op_done", oplogtest.Rec(1, "result-success", true))
	if o, err := live.Orphans(ctx); err != nil || len(o) != 0 {
		t.Fatalf("orphans while every node lives: %v %v", o, err)
	}
	dead.Close() // deletes its lease: as if it had expired
	deadline := time.Now().Add(5 * time.Second)
	var got []oplog.Op
	for time.Now().Before(deadline) {
		var err error
		if got, err = live.Orphans(ctx); err != nil {
			t.Fatal(err)
		}
		if len(got) == 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	seqs := map[string]uint64{}
	for _, o := range got {
		seqs[o.ID] = o.LastSeq
	}
	if len(got) != 2 || seqs["op_run"] != 1 || seqs["op_new"] != 0 {
		t.Fatalf("orphans %+v", got)
	}
	if err := live.Append(ctx, "op_run", oplogtest.Rec(2, "error-cancelled", true)); err != nil {
		t.Fatal(err)
	}
	if err := live.Append(ctx, "op_new", oplogtest.Rec(1, "error-cancelled", true)); err != nil {
		t.Fatal(err)
	}
	if o, _ := live.Orphans(ctx); len(o) != 0 {
		t.Fatalf("orphans after their end: %+v", o)
	}
}

// TestLeaseExpiry checks that a node that stops renewing (its connection
// gone without Close) loses its lease within Lease.
func TestLeaseExpiry(t *testing.T) {
	srv := natsbustest.Start(t)
	ctx := context.Background()
	lease := 600 * time.Millisecond
	dead := connect(t, srv.URL, "w", "dead", lease)
	live := connect(t, srv.URL, "w", "live", lease)
	dead.Create(ctx, oplog.Op{ID: "op_1", CallID: "CA1"})
	dead.Conn().Close() // no goodbye: the lease must age out
	start := time.Now()
	for {
		o, _ := live.Orphans(ctx)
		if len(o) == 1 {
			break
		}
		if time.Since(start) > 10*lease {
			t.Fatalf("lease still held after %v", time.Since(start))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if el := time.Since(start); el < lease/3 {
		t.Fatalf("lease expired after %v, under the lease %v", el, lease)
	}
}

type handler struct {
	calls map[string]bool
	n     atomic.Int32
}

func (h *handler) Holds(ctx context.Context, callID string) bool { return h.calls[callID] }
func (h *handler) Command(ctx context.Context, msg []byte) []byte {
	h.n.Add(1)
	return append([]byte("ok:"), msg...)
}

// TestCommands checks Route (to the node holding the call) and Send.
func TestCommands(t *testing.T) {
	srv := natsbustest.Start(t)
	ctx := context.Background()
	a, b, c := connect(t, srv.URL, "v", "a", 0), connect(t, srv.URL, "v", "b", 0), connect(t, srv.URL, "v", "c", 0)
	ha, hb := &handler{calls: map[string]bool{"CA1": true}}, &handler{calls: map[string]bool{"CA2": true}}
	a.Handle(ha)
	b.Handle(hb)
	c.Handle(&handler{})
	for _, cc := range []struct {
		call string
		want string
		err  error
	}{{"CA1", "ok:x", nil}, {"CA2", "ok:x", nil}, {"CA3", "", oplog.ErrNoRoute}} {
		r, err := c.Route(ctx, cc.call, []byte("x"))
		if string(r) != cc.want || !errors.Is(err, cc.err) {
			t.Errorf("Route(%s) = %q %v", cc.call, r, err)
		}
	}
	// No node holds CA3: every live node says so, and Route does not
	// wait for RouteTimeout.
	start := time.Now()
	if _, err := c.Route(ctx, "CA3", []byte("x")); !errors.Is(err, oplog.ErrNoRoute) || time.Since(start) >= natsbus.DefaultRouteTimeout*4/5 {
		t.Errorf("Route to nobody: %v after %v", err, time.Since(start))
	}
	if ha.n.Load() != 1 || hb.n.Load() != 1 {
		t.Fatalf("commands %d %d", ha.n.Load(), hb.n.Load())
	}
	if r, err := c.Send(ctx, "b", []byte("y")); err != nil || string(r) != "ok:y" {
		t.Fatalf("Send: %q %v", r, err)
	}
	if _, err := c.Send(ctx, "nobody", []byte("y")); !errors.Is(err, oplog.ErrNoRoute) {
		t.Fatalf("Send to nobody: %v", err)
	}
	if err := a.Ready(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestClaimRace runs, for many operations at once, several nodes (each on
// its own connection) claiming the operation while its owner appends its
// first record (what the starting node does when its Open gives up, or
// when the audio reached it after all). Exactly one of them must win each
// operation: a claim that succeeded while the owner's record landed would
// give the operation two writers that both believe they run it (two
// registrations of one caller, or a result published by a node that did
// not hear the audio).
func TestClaimRace(t *testing.T) {
	srv := natsbustest.Start(t)
	ctx := context.Background()
	const nodes, ops = 4, 60
	owner := connect(t, srv.URL, "race", "owner", 0)
	var claimers []*natsbus.Bus
	for i := range nodes {
		claimers = append(claimers, connect(t, srv.URL, "race", fmt.Sprintf("c%d", i), 0))
	}
	for i := range ops {
		if err := owner.Create(ctx, oplog.Op{ID: fmt.Sprintf("op_%d", i), CallID: "CA1"}); err != nil {
			t.Fatal(err)
		}
	}
	type outcome struct {
		who string
		err error
	}
	results := make([][]outcome, ops)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range ops {
		id := fmt.Sprintf("op_%d", i)
		results[i] = make([]outcome, nodes+1)
		wg.Go(func() {
			<-start
			// Give the claims a head start of up to a round trip or two
			// on some operations, so that both sides win some.
			time.Sleep(time.Duration(i%4) * 400 * time.Microsecond)
			results[i][nodes] = outcome{"owner", owner.Append(ctx, id, oplogtest.Rec(1, "started", false))}
		})
		for n, c := range claimers {
			wg.Go(func() {
				<-start
				results[i][n] = outcome{c.Node(), c.Claim(ctx, id, "owner")}
			})
		}
	}
	close(start)
	wg.Wait()
	claimWins := 0
	for i, rs := range results {
		id := fmt.Sprintf("op_%d", i)
		var won []string
		for _, r := range rs {
			switch {
			case r.err == nil:
				won = append(won, r.who)
			case r.who == "owner" && errors.Is(r.err, oplog.ErrSeq):
			case r.who != "owner" && errors.Is(r.err, oplog.ErrClaimed):
			default:
				t.Errorf("%s: %s: unexpected error %v", id, r.who, r.err)
			}
		}
		if len(won) != 1 {
			t.Errorf("%s: %d winners %v, want exactly 1", id, len(won), won)
			continue
		}
		op, err := owner.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if op.Owner != won[0] {
			t.Errorf("%s: Get says owner %s, the winner was %s", id, op.Owner, won[0])
		}
		if won[0] == "owner" {
			continue
		}
		claimWins++
		// The winner writes the records; the old owner cannot.
		var w *natsbus.Bus
		for _, c := range claimers {
			if c.Node() == won[0] {
				w = c
			}
		}
		if err := owner.Append(ctx, id, oplogtest.Rec(1, "late", true)); !errors.Is(err, oplog.ErrSeq) {
			t.Errorf("%s: the old owner appended after the claim: %v", id, err)
		}
		if err := w.Append(ctx, id, oplogtest.Rec(1, "started", false)); err != nil {
			t.Errorf("%s: the claimer could not append: %v", id, err)
		}
	}
	t.Logf("%d of %d operations claimed, the others kept by their owner", claimWins, ops)
}

// TestClaimedOwner checks that once a claimer took an operation over and
// wrote to it, the old owner's Running and Get name the claimer at once,
// every time (the state in the ops bucket, which the old owner's watch
// learns a moment later, must not decide).
func TestClaimedOwner(t *testing.T) {
	srv := natsbustest.Start(t)
	ctx := context.Background()
	owner := connect(t, srv.URL, "co", "owner", 0)
	claimer := connect(t, srv.URL, "co", "claimer", 0)
	for i := range 100 {
		id, call := fmt.Sprintf("op_%d", i), fmt.Sprintf("CA%d", i)
		if err := owner.Create(ctx, oplog.Op{ID: id, CallID: call}); err != nil {
			t.Fatal(err)
		}
		if err := claimer.Claim(ctx, id, "owner"); err != nil {
			t.Fatal(err)
		}
		if err := claimer.Append(ctx, id, oplogtest.Rec(1, "started", false)); err != nil {
			t.Fatal(err)
		}
		ops, err := owner.Running(ctx, call)
		if err != nil || len(ops) != 1 || ops[0].Owner != "claimer" {
			t.Fatalf("run %d: Running on the old owner: %+v %v, want owner claimer", i, ops, err)
		}
		if op, err := owner.Get(ctx, id); err != nil || op.Owner != "claimer" {
			t.Fatalf("run %d: Get on the old owner: %+v %v", i, op, err)
		}
	}
}

// TestClaimedOwnerStateStale checks Running, Get and Orphans when the
// operation's state still names the node it was claimed from (the
// claimer's state update failed): the claim message, then the claimer's
// records, name the owner; and the old owner's death must not make a
// live claimer's operation an orphan.
func TestClaimedOwnerStateStale(t *testing.T) {
	srv := natsbustest.Start(t)
	ctx := context.Background()
	lease := 600 * time.Millisecond
	owner := connect(t, srv.URL, "cs", "owner", lease)
	claimer := connect(t, srv.URL, "cs", "claimer", lease)
	third := connect(t, srv.URL, "cs", "third", lease)
	if err := owner.Create(ctx, oplog.Op{ID: "op_1", CallID: "CA1"}); err != nil {
		t.Fatal(err)
	}
	if err := claimer.Claim(ctx, "op_1", "owner"); err != nil {
		t.Fatal(err)
	}
	for _, b := range []*natsbus.Bus{owner, third} {
		if err := natsbus.SetStateOwner(ctx, b, "op_1", "owner"); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		ops, err := owner.Running(ctx, "CA1")
		if err != nil || len(ops) != 1 || ops[0].Owner != "claimer" {
			t.Fatalf("%s: Running: %+v %v, want owner claimer", when, ops, err)
		}
		if op, err := owner.Get(ctx, "op_1"); err != nil || op.Owner != "claimer" {
			t.Fatalf("%s: Get: %+v %v, want owner claimer", when, op, err)
		}
	}
	check("claimed, not written to")
	if err := claimer.Append(ctx, "op_1", oplogtest.Rec(1, "started", false)); err != nil {
		t.Fatal(err)
	}
	if err := natsbus.SetStateOwner(ctx, owner, "op_1", "owner"); err != nil {
		t.Fatal(err)
	}
	check("after the claimer's first record")
	owner.Close() // the old owner stops: the claimer still runs op_1
	time.Sleep(2 * lease)
	if o, err := third.Orphans(ctx); err != nil || len(o) != 0 {
		t.Fatalf("Orphans after the old owner stopped: %+v %v, want none (the claimer lives)", o, err)
	}
	claimer.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		o, err := third.Orphans(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(o) == 1 && o[0].Owner == "claimer" && o[0].LastSeq == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Orphans after the claimer stopped: %+v", o)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent/natsbus"
	"github.com/voicegate/voicegate/daspeak/agent/natsbus/natsbustest"
	"github.com/voicegate/voicegate/daspeak/agent/oplog"
)

// hookLog runs afterClaim after a successful Claim and afterAppend after
// a successful Append.
type hookLog struct {
	oplog.Log
	afterClaim, afterAppend func()
}

func (h *hookLog) Claim(ctx context.Context, id, from string) error {
	err := h.Log.Claim(ctx, id, from)
	if err == nil && h.afterClaim != nil {
		h.afterClaim()
	}
	return err
}

func (h *hookLog) Append(ctx context.Context, id string, rec oplog.Record) error {
	err := h.Log.Append(ctx, id, rec)
	if err == nil && h.afterAppend != nil {
		h.afterAppend()
	}
	return err
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// connectNodes connects one bus per node name under prefix.
func connectNodes(t *testing.T, ctx context.Context, prefix string, nodes ...string) []*natsbus.Bus {
	nats := natsbustest.Start(t)
	var out []*natsbus.Bus
	for _, node := range nodes {
		b, err := natsbus.Connect(ctx, nats.URL, &natsbus.Options{Prefix: prefix, Node: node})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		out = append(out, b)
	}
	return out
}

// TestTakeRace: two streams of one session reach nodes A and B at once;
// B claims right after A. Whatever node runs the session must be its
// owner (reapOrphans ends sessions by owner), or, when that cannot be,
// the session ends at once and nobody runs it.
func TestTakeRace(t *testing.T) {
	for _, tc := range []struct {
		name    string
		creator int // index into the nodes x, a, b
	}{
		{"created elsewhere", 0},
		{"created by the first taker", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			buses := connectNodes(t, ctx, "ivr_take", "x", "a", "b")
			busA, busB := buses[1], buses[2]
			cfg := &config{SessionTTL: time.Minute}
			creator := &server{cfg: cfg, log: quietLog(), ops: buses[tc.creator], waiting: map[string]time.Time{}}
			sess, _, err := creator.newSession(ctx, "verify", "+34600000310", "CA0123456789abcdef0123456789abcdef", sessionSpec{})
			if err != nil {
				t.Fatal(err)
			}
			id := sess.id

			bClaimed, aAppended := make(chan struct{}), make(chan struct{})
			hb := &hookLog{Log: busB}
			hb.afterClaim = func() { close(bClaimed); <-aAppended } // B claimed; waits for A's seq 1
			sb := &server{cfg: cfg, log: quietLog(), ops: hb, waiting: map[string]time.Time{}}
			bDone := make(chan *session, 1)
			ha := &hookLog{Log: busA}
			ha.afterClaim = func() { // A claimed; B's stream arrives now
				go func() {
					var sess *session
					op, err := busB.Get(ctx, id)
					if err == nil {
						sess, _ = sb.take(ctx, op)
					}
					bDone <- sess
				}()
				select {
				case <-bClaimed:
				case <-time.After(2 * time.Second): // B's claim was refused
				}
			}
			ha.afterAppend = func() {
				select {
				case <-aAppended:
				default:
					close(aAppended)
				}
			}
			sa := &server{cfg: cfg, log: quietLog(), ops: ha, waiting: map[string]time.Time{}}
			op, err := busA.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			sessA, errA := sa.take(ctx, op)
			sessB := <-bDone
			if sessA != nil && sessB != nil {
				t.Fatal("both nodes took the session")
			}
			got, err := buses[0].Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case sessA != nil && got.Owner != "a", sessB != nil && got.Owner != "b":
				t.Fatalf("the node that runs the session is not its owner %q: if %q stops, a live session is ended as an orphan; if the runner stops, nobody ends it", got.Owner, got.Owner)
			case sessA == nil && sessB == nil && !got.Done:
				t.Fatalf("nobody runs the session, which has not ended (A: %v)", errA)
			}
		})
	}
}

// TestWaitingTakenElsewhere: sessions this node created that another
// node took are no longer waiting; they must not keep counting against
// -max-sessions for -session-ttl.
func TestWaitingTakenElsewhere(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	buses := connectNodes(t, ctx, "ivr_waiting", "x", "y")
	busX, busY := buses[0], buses[1]
	cfg := &config{SessionTTL: 10 * time.Minute, MaxSessions: 2}
	sx := &server{cfg: cfg, log: quietLog(), ops: busX, waiting: map[string]time.Time{}}
	sy := &server{cfg: cfg, log: quietLog(), ops: busY, waiting: map[string]time.Time{}}
	calls := []string{"CA0123456789abcdef0123456789abcde0", "CA0123456789abcdef0123456789abcde1", "CA0123456789abcdef0123456789abcde2"}
	for _, call := range calls[:2] {
		sess, _, err := sx.newSession(ctx, "verify", "+34600000310", call, sessionSpec{})
		if err != nil {
			t.Fatal(err)
		}
		op, err := busY.Get(ctx, sess.id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sy.take(ctx, op); err != nil { // its stream reached node y
			t.Fatal(err)
		}
	}
	if _, _, err := sx.newSession(ctx, "verify", "+34600000310", calls[2], sessionSpec{}); err != nil {
		t.Fatalf("no session waits on x, yet: %v", err)
	}
	// Sessions that do wait still count.
	if _, _, err := sx.newSession(ctx, "verify", "+34600000310", calls[2], sessionSpec{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sx.newSession(ctx, "verify", "+34600000310", calls[2], sessionSpec{}); err == nil {
		t.Fatal("a third waiting session was accepted with -max-sessions 2")
	}
}

// flakyLog fails the first fails Appends of seq with a transient error,
// having written the record first when wrote.
type flakyLog struct {
	oplog.Log
	seq   uint64
	fails int
	wrote bool
}

func (f *flakyLog) Append(ctx context.Context, id string, rec oplog.Record) error {
	if rec.Seq == f.seq && f.fails != 0 {
		f.fails--
		if f.wrote {
			if err := f.Log.Append(ctx, id, rec); err != nil {
				return err
			}
		}
		return errors.New("nats: timeout")
	}
	return f.Log.Append(ctx, id, rec)
}

// TestTransientAppendFailure: a record the log did not take (a timeout,
// not another node's record) is written again; when the log never takes
// it, the session ends with an error rather than stay "processing" for
// ever on a live node.
func TestTransientAppendFailure(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fails  int
		wrote  bool
		status string // after a progress event
		ended  bool
	}{
		{"lost once", 1, false, statusProcessing, false},
		{"answer lost", 1, true, statusProcessing, false},
		{"lost for every try", appendTries, false, statusError, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			ops := &flakyLog{Log: oplog.NewMemory(time.Minute, 10), seq: 2, fails: tc.fails, wrote: tc.wrote}
			s := &server{cfg: &config{SessionTTL: time.Minute}, log: quietLog(), ops: ops, waiting: map[string]time.Time{}}
			sess, _, err := s.newSession(ctx, "verify", "+34600000310", "", sessionSpec{})
			if err != nil {
				t.Fatal(err)
			}
			op, _ := s.ops.Get(ctx, sess.id)
			if sess, err = s.take(ctx, op); err != nil {
				t.Fatal(err)
			}
			sess.update(ctx, daspeak.Event{Type: daspeak.EventProgress, Operation: daspeak.OperationVerify})
			if sess.ended != tc.ended {
				t.Fatalf("ended %v, want %v", sess.ended, tc.ended)
			}
			d, err := s.doc(ctx, sess.id)
			if err != nil {
				t.Fatal(err)
			}
			if d.Status != tc.status {
				t.Fatalf("status %q, want %q", d.Status, tc.status)
			}
			if tc.ended {
				return
			}
			sess.update(ctx, daspeak.Event{Type: daspeak.EventResultSuccess, Operation: daspeak.OperationVerify})
			if d, err = s.doc(ctx, sess.id); err != nil || d.Status != statusSuccess {
				t.Fatalf("after the result: %q, %v", d.Status, err)
			}
		})
	}
}

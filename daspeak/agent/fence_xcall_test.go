package agent

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak/agent/oplog"
)

// callGateLog gates a start's claim on call only.
type callGateLog struct {
	oplog.Log
	call    string
	gate    chan struct{}
	entered chan struct{}
}

func (l *callGateLog) ClaimRequest(ctx context.Context, id string, r oplog.Request) (oplog.Request, bool, error) {
	held, won, err := l.Log.ClaimRequest(ctx, id, r)
	if !r.Fenced && r.CallID == l.call {
		l.entered <- struct{}{}
		select {
		case <-l.gate:
		case <-ctx.Done():
		}
	}
	return held, won, err
}

// TestStopOtherCallSameRequestID: claims are per call, so agent-a's start
// on callA and agent-b's start on callB may both carry reqA. agent-b's
// stop of callB/reqA must neither cancel agent-a's operation on callA nor
// answer fenced while agent-b's own start (between claim and reserve) goes
// on to run.
func TestStopOtherCallSameRequestID(t *testing.T) {
	auth := &callAuth{}
	gate := make(chan struct{})
	lg := &callGateLog{Log: oplog.NewMemory(time.Hour, 0), call: callB, gate: gate, entered: make(chan struct{}, 1)}
	defer func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	}()
	e := newEnv(t, func(o *Options, s *fakeSource) { o.Authenticator = auth; o.Log = lg })
	e.src.set(callA, fakeCall{hold: true})
	e.src.set(callB, fakeCall{hold: true})
	code, opA := e.postAs("agent-a", "/register", map[string]any{"call_id": callA, "caller_id": callerA, "request_id": reqA})
	if code != http.StatusAccepted {
		t.Fatalf("agent-a start: %d %v", code, opA)
	}
	e.waitRunning(callA)
	startedB := startAsync(e, "agent-b", "/register", map[string]any{"call_id": callB, "caller_id": callerA, "request_id": reqA})
	select {
	case <-lg.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("agent-b's start did not claim")
	}
	code, m := e.postAs("agent-b", "/stop", map[string]any{"call_id": callB, "request_id": reqA})
	t.Logf("agent-b stop of callB/reqA: %d %v", code, m)
	e.srv.mu.Lock()
	rnA := e.srv.running[callA]
	e.srv.mu.Unlock()
	if rnA == nil || rnA.id != opA["operation_id"] {
		t.Errorf("agent-b's stop on callB ended agent-a's operation on callA (running %v)", rnA)
	}
	close(gate)
	mb := await(t, startedB, "agent-b's start")
	if m["fenced"] == true && mb["_status"] == http.StatusAccepted {
		t.Errorf("stop answered fenced but agent-b's start ran: %v", mb)
	}
}

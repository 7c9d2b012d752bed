package agent

import (
	"net/http"
	"testing"
)

// TestStopFenceOtherCall: a fence is per call. An agent allowed only on
// callB who names another agent's request_id in a stop of callB does not
// fence that agent's start of the same id on callA: the start runs. (A
// stop is authorized for the call it names only, so a global fence would
// let any agent block starts on calls it may not touch.)
func TestStopFenceOtherCall(t *testing.T) {
	auth := &callAuth{}
	e := newEnv(t, func(o *Options, s *fakeSource) { o.Authenticator = auth })
	e.src.set(callA, fakeCall{hold: true})
	code, m := e.postAs("agent-b", "/stop", map[string]any{"call_id": callB, "request_id": reqA})
	if code != http.StatusOK || m["fenced"] != true {
		t.Fatalf("agent-b's stop on callB: %d %v", code, m)
	}
	code, op := e.postAs("agent-a", "/register", map[string]any{"call_id": callA, "caller_id": callerA, "request_id": reqA})
	if code != http.StatusAccepted {
		t.Fatalf("agent-a's start on callA with the id agent-b fenced on callB: %d %v, want 202", code, op)
	}
	e.waitRunning(callA)
	// agent-a's own stop of that id on callA finds the start.
	code, m = e.postAs("agent-a", "/stop", map[string]any{"call_id": callA, "request_id": reqA})
	if code != http.StatusOK || m["fenced"] != false || m["stopped"] != true || m["operation_id"] != op["operation_id"] {
		t.Fatalf("agent-a's stop on callA: %d %v", code, m)
	}
}

package agent

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestStopCall checks POST /stop with call_id (no operation id: the
// answer of the start was lost): it is authorized as a start is (only an
// agent allowed on the call), stops what runs on the call, also an
// operation whose audio is still being opened, and answers stopped false
// when nothing runs.
func TestStopCall(t *testing.T) {
	auth := &callAuth{}
	e := newEnv(t, func(o *Options, s *fakeSource) { o.Authenticator = auth })
	e.src.set(callA, fakeCall{hold: true})
	code, op := e.postAs("agent-a", "/register", map[string]any{"call_id": callA, "caller_id": callerA})
	if code != http.StatusAccepted {
		t.Fatalf("register: %d %v", code, op)
	}
	e.waitRunning(callA)
	if code, m := e.postAs("agent-b", "/stop", map[string]any{"call_id": callA}); code != 403 || m["code"] != CodeForbidden {
		t.Fatalf("agent-b stop of callA: %d %v", code, m)
	}
	if code, m := e.postAs("", "/stop", map[string]any{"call_id": callA}); code != 401 {
		t.Fatalf("stop without a token: %d %v", code, m)
	}
	e.srv.mu.Lock()
	running := e.srv.running[callA] != nil
	e.srv.mu.Unlock()
	if !running {
		t.Fatal("a refused stop ended the operation")
	}
	if code, m := e.postAs("agent-a", "/stop", map[string]any{"call_id": callA}); code != 200 || m["stopped"] != true || m["call_id"] != callA {
		t.Fatalf("agent-a stop of callA: %d %v", code, m)
	}
	_, msgs := e.events(op["events_url"].(string), "")
	if last := checkStream(t, msgs, op); last.Event != "error-cancelled" || !strings.Contains(last.Data["error"].(string), "stopped") {
		t.Fatalf("operation ended with %s", last.Raw)
	}
	if code, m := e.postAs("agent-a", "/stop", map[string]any{"call_id": callA}); code != 200 || m["stopped"] != false {
		t.Fatalf("stop of an idle call: %d %v", code, m)
	}
	for _, body := range []map[string]any{{}, {"call_id": "CA1/../x"}} {
		if code, m := e.postAs("agent-a", "/stop", body); code != 400 || m["code"] != CodeBadRequest {
			t.Fatalf("stop %v: %d %v", body, code, m)
		}
	}

	// A start whose audio is still being opened (its answer not yet
	// given) is stopped too: its start is answered 409 and nothing runs.
	block := make(chan struct{})
	defer close(block)
	e.src.mu.Lock()
	e.src.block = block
	e.src.mu.Unlock()
	started := make(chan int, 1)
	go func() {
		code, _ := e.postAs("agent-a", "/register", map[string]any{"call_id": callA, "caller_id": callerA})
		started <- code
	}()
	for range 500 {
		e.srv.mu.Lock()
		rn := e.srv.running[callA]
		e.srv.mu.Unlock()
		if rn != nil {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	if code, m := e.postAs("agent-a", "/stop", map[string]any{"call_id": callA}); code != 200 || m["stopped"] != true {
		t.Fatalf("stop of a starting register: %d %v", code, m)
	}
	select {
	case code := <-started:
		if code != http.StatusConflict {
			t.Fatalf("the stopped start answered %d, want 409", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stopped start was not answered")
	}
	if _, err := e.mem.Get(t.Context(), callerA); err == nil {
		t.Fatal("a stopped register stored a credential")
	}
}

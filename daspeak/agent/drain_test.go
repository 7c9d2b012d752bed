package agent

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak/agent/oplog"
)

// TestDrain checks a graceful drain: new operations are refused and the
// server is not ready at once; an operation that finishes within the
// deadline ends with its own result; one still running at the deadline
// ends with error-cancelled; no event stream closes without its
// operation's terminal event.
func TestDrain(t *testing.T) {
	e := newEnv(t, nil)
	e.register(callB, callerB, "voices/awb_1.wav", "voices/awb_2.wav")
	// callA: a live call on which nobody speaks (never finishes); callB:
	// a verify whose caller speaks enough to finish during the drain.
	e.src.set(callA, fakeCall{hold: true})
	e.src.set(callB, fakeCall{clips: []string{"voices/awb_3.wav"}, hold: true})
	stuck := e.start("/register", callA, callerA, nil)
	fin := e.start("/verify", callB, callerB, nil)
	e.waitRunning(callA)
	type res struct {
		msgs []sseMsg
		op   map[string]any
	}
	out := make(chan res, 2)
	for _, op := range []map[string]any{stuck, fin} {
		resp, err := http.Get(e.http.URL + op["events_url"].(string))
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer resp.Body.Close()
			out <- res{readSSE(t, resp), op}
		}()
	}
	ready := func() int {
		rec := &recorder{h: http.Header{}}
		e.srv.ReadyHandler().ServeHTTP(rec, httptestRequest())
		return rec.status
	}
	if got := ready(); got != 0 && got != http.StatusOK {
		t.Fatalf("ready before the drain: %d", got)
	}
	// The drain's deadline is the test's own cancel, given only once the
	// verify on callB has delivered its result, so that a slow machine
	// cannot cut callB before it finishes (a fixed 700 ms deadline did).
	drainCtx, cutDrain := context.WithTimeout(context.Background(), 20*time.Second)
	defer cutDrain()
	drained := make(chan error, 1)
	go func() { drained <- e.srv.Drain(drainCtx) }()
	for !e.srv.Draining() {
		time.Sleep(time.Millisecond)
	}
	if got := ready(); got != http.StatusServiceUnavailable {
		t.Fatalf("ready while draining: %d", got)
	}
	if code, m := e.post("/register", map[string]any{"call_id": "CA00000000000000000000000000000003", "caller_id": "+14155550111"}); code != 503 || m["code"] != CodeUnavailable {
		t.Fatalf("register while draining: %d %v", code, m)
	}
	first := <-out
	if first.op["operation_id"] != fin["operation_id"] {
		t.Fatalf("the operation that never finishes ended first, during the drain: %s", checkStream(t, first.msgs, first.op).Raw)
	}
	if last := checkStream(t, first.msgs, first.op); last.Event != "result-success" {
		t.Errorf("the finished operation ended with %s", last.Raw)
	}
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v while an operation still ran", err)
	case <-time.After(50 * time.Millisecond):
	}
	cutDrain()
	if err := <-drained; err == nil {
		t.Fatal("Drain returned nil though an operation had to be cut")
	}
	r := <-out
	if last := checkStream(t, r.msgs, r.op); last.Event != "error-cancelled" || !strings.Contains(last.Data["error"].(string), "shutting down") {
		t.Errorf("the running operation ended with %s", last.Raw)
	}
}

// TestDrainAllFinish checks that Drain returns nil at once when nothing
// runs.
func TestDrainAllFinish(t *testing.T) {
	e := newEnv(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := e.srv.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 2*streamGrace {
		t.Fatalf("Drain of an idle server took %v", el)
	}
}

func httptestRequest() *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "/readyz", nil)
	return r
}

// TestEventsAfterDrain: once the drain is over (the listener serves the
// drain's grace, ResultGrace), an event stream opened for an operation
// that finished gets its events from the log, from the start or after
// Last-Event-ID, as any stream would; only a stream that would wait for
// new events (an operation not ended) is refused 503 unavailable.
func TestEventsAfterDrain(t *testing.T) {
	e := newEnv(t, nil)
	e.register(callB, callerB, "voices/awb_1.wav", "voices/awb_2.wav")
	e.src.set(callB, fakeCall{clips: []string{"voices/awb_3.wav"}, hold: true})
	op := e.start("/verify", callB, callerB, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.srv.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	code, msgs := e.events(op["events_url"].(string), "")
	if code != http.StatusOK {
		t.Fatalf("events of a finished operation after the drain: %d", code)
	}
	last := checkStream(t, msgs, op)
	if last.Event != "result-success" {
		t.Fatalf("ended with %s", last.Raw)
	}
	code, rest := e.events(op["events_url"].(string), "1")
	if code != http.StatusOK || len(rest) != len(msgs)-1 || rest[len(rest)-1].Raw != last.Raw {
		t.Fatalf("events after Last-Event-ID 1 after the drain: %d, %d of %d", code, len(rest), len(msgs))
	}
	// An operation that has not ended (another node's): refused.
	const id = "op_0123456789abcdef0123456789abcdef"
	if err := e.srv.ops.Create(ctx, oplog.Op{ID: id, Kind: "verify", CallID: callA, CallerID: callerA}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(e.http.URL + "/agent/operations/" + id + "/events?token=" + url.QueryEscape(e.srv.eventToken(id, callA)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `{"code":"unavailable","error":"server shutting down"}` + "\n"; resp.StatusCode != http.StatusServiceUnavailable || string(body) != want || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("events of a running operation after the drain: %d %s", resp.StatusCode, body)
	}
}

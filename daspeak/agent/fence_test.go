package agent

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak/agent/oplog"
)

// gateAuth is callAuth whose AuthorizeCall of a start (a path ending in
// /register) waits, once gate is set, until gate is closed: a start held
// in the CallAuthorizer, before it reserved its call.
type gateAuth struct {
	callAuth
	mu      sync.Mutex
	gate    chan struct{}
	entered chan struct{}
}

func (a *gateAuth) hold() (release func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gate, a.entered = make(chan struct{}), make(chan struct{}, 1)
	var once sync.Once
	gate := a.gate
	return func() { once.Do(func() { close(gate) }) }
}

func (a *gateAuth) AuthorizeCall(ctx context.Context, r *http.Request, p Principal, callID string) error {
	a.mu.Lock()
	gate, entered := a.gate, a.entered
	a.mu.Unlock()
	if gate != nil && strings.HasSuffix(r.URL.Path, "/register") {
		entered <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return a.callAuth.AuthorizeCall(ctx, r, p, callID)
}

// startAsync posts a start on e and sends its answer to the returned
// channel.
func startAsync(e *env, token, path string, body map[string]any) <-chan map[string]any {
	ch := make(chan map[string]any, 1)
	go func() {
		code, m := e.postAs(token, path, body)
		if m == nil {
			m = map[string]any{}
		}
		m["_status"] = code
		ch <- m
	}()
	return ch
}

func await(t *testing.T, ch <-chan map[string]any, what string) map[string]any {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("%s was not answered", what)
		return nil
	}
}

const reqA = "3b241101-e2bb-4255-8caf-4136c566a962"

// TestStopFence: a stop naming a start's request_id that comes before the
// start reached its call (here: the start waits in the CallAuthorizer)
// fences it out. The stop answers fenced true, and the start, when it
// goes on, is refused 409 fenced and stores nothing.
func TestStopFence(t *testing.T) {
	auth := &gateAuth{}
	e := newEnv(t, func(o *Options, s *fakeSource) { o.Authenticator = auth })
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}})
	release := auth.hold()
	defer release()
	started := startAsync(e, "agent-a", "/register", map[string]any{"call_id": callA, "caller_id": callerA, "request_id": reqA})
	select {
	case <-auth.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the start did not reach the CallAuthorizer")
	}
	if code, m := e.postAs("agent-b", "/stop", map[string]any{"call_id": callA, "request_id": reqA}); code != 403 {
		t.Fatalf("agent-b stop of callA: %d %v", code, m)
	}
	code, m := e.postAs("agent-a", "/stop", map[string]any{"call_id": callA, "request_id": reqA})
	if code != 200 || m["fenced"] != true || m["request_id"] != reqA || m["call_id"] != callA {
		t.Fatalf("stop of a start not yet reserved: %d %v", code, m)
	}
	release()
	if m := await(t, started, "the fenced start"); m["_status"] != http.StatusConflict || m["code"] != CodeFenced {
		t.Fatalf("fenced start answered %v, want 409 %s", m, CodeFenced)
	}
	if _, err := e.mem.Get(t.Context(), callerA); err == nil {
		t.Fatal("a fenced register stored a credential")
	}
	// The stop is idempotent; the id cannot be used again.
	if code, m := e.postAs("agent-a", "/stop", map[string]any{"call_id": callA, "request_id": reqA}); code != 200 || m["fenced"] != true {
		t.Fatalf("second stop: %d %v", code, m)
	}
	if code, m := e.postAs("agent-a", "/register", map[string]any{"call_id": callA, "caller_id": callerA, "request_id": reqA}); code != 409 || m["code"] != CodeFenced {
		t.Fatalf("start of a fenced id: %d %v", code, m)
	}
	for _, id := range []string{"short", strings.Repeat("a", 65), "3b241101/e2bb", "3b241101 e2bb 4255"} {
		if code, m := e.postAs("agent-a", "/stop", map[string]any{"call_id": callA, "request_id": id}); code != 400 || m["code"] != CodeBadRequest {
			t.Fatalf("stop with request_id %q: %d %v", id, code, m)
		}
		if code, m := e.postAs("agent-a", "/register", map[string]any{"call_id": callA, "caller_id": callerA, "request_id": id}); code != 400 || m["code"] != CodeBadRequest {
			t.Fatalf("start with request_id %q: %d %v", id, code, m)
		}
	}
}

// TestStopFenceStartWon: a stop naming a start that claimed its
// request_id first stops that start's operation, running or still
// opening its audio, and says so (operation id, stopped, the terminal
// event type).
func TestStopFenceStartWon(t *testing.T) {
	auth := &callAuth{}
	e := newEnv(t, func(o *Options, s *fakeSource) { o.Authenticator = auth })
	e.src.set(callA, fakeCall{hold: true})
	code, op := e.postAs("agent-a", "/register", map[string]any{"call_id": callA, "caller_id": callerA, "request_id": reqA})
	if code != http.StatusAccepted {
		t.Fatalf("register: %d %v", code, op)
	}
	e.waitRunning(callA)
	code, m := e.postAs("agent-a", "/stop", map[string]any{"call_id": callA, "request_id": reqA})
	if code != 200 || m["fenced"] != false || m["stopped"] != true || m["operation_id"] != op["operation_id"] || m["result"] != "error-cancelled" {
		t.Fatalf("stop of a running start: %d %v", code, m)
	}
	_, msgs := e.events(op["events_url"].(string), "")
	if last := checkStream(t, msgs, op); last.Event != "error-cancelled" {
		t.Fatalf("operation ended with %s", last.Raw)
	}
	if code, m := e.postAs("agent-a", "/stop", map[string]any{"call_id": callA, "request_id": reqA}); code != 200 || m["stopped"] != false || m["result"] != "error-cancelled" {
		t.Fatalf("second stop: %d %v", code, m)
	}
	if code, m := e.postAs("agent-a", "/register", map[string]any{"call_id": callA, "caller_id": callerA, "request_id": reqA}); code != 409 || m["code"] != CodeRequestUsed {
		t.Fatalf("start reusing a request id: %d %v", code, m)
	}
	// Claims are per call: agent-b's stop of the id on callB is a fence
	// of callB's own, and says nothing of callA's use of it.
	if code, m := e.postAs("agent-b", "/stop", map[string]any{"call_id": callB, "request_id": reqA}); code != 200 || m["fenced"] != true {
		t.Fatalf("stop naming another call's request id: %d %v", code, m)
	}

	// A start still opening its audio: stopped, answered 409, nothing
	// stored.
	block := make(chan struct{})
	defer close(block)
	e.src.mu.Lock()
	e.src.block = block
	e.src.mu.Unlock()
	const reqB = "0f8fad5b-d9cb-469f-a165-70867728950e"
	started := startAsync(e, "agent-a", "/register", map[string]any{"call_id": callA, "caller_id": callerA, "request_id": reqB})
	for i := 0; ; i++ { // created (so its request id is claimed), opening its audio
		if ops, _ := e.srv.ops.Running(t.Context(), callA); len(ops) > 0 {
			break
		}
		if i == 2500 {
			t.Fatal("the start did not create its operation")
		}
		time.Sleep(2 * time.Millisecond)
	}
	code, m = e.postAs("agent-a", "/stop", map[string]any{"call_id": callA, "request_id": reqB})
	if code != 200 || m["fenced"] != false || m["stopped"] != true || m["result"] != "error-cancelled" {
		t.Fatalf("stop of a starting register: %d %v", code, m)
	}
	if m := await(t, started, "the stopped start"); m["_status"] != http.StatusConflict {
		t.Fatalf("the stopped start answered %v, want 409", m)
	}
	if _, err := e.mem.Get(t.Context(), callerA); err == nil {
		t.Fatal("a stopped register stored a credential")
	}
}

// TestClusterStopFence: the fence holds across nodes. A stop through node
// b fences a start that waits in node a's CallAuthorizer: a refuses it
// when it goes on. A start that won on a is stopped through b, which
// asks a.
func TestClusterStopFence(t *testing.T) {
	auths := []*gateAuth{{}, {}}
	nodes := clusterWith(t, 2, func(i int, o *Options, fs *fakeSource) { o.Authenticator = auths[i] })
	a, b := nodes[0], nodes[1]
	a.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}})
	release := auths[0].hold()
	defer release()
	started := startAsync(a.env, "agent-a", "/register", map[string]any{"call_id": callA, "caller_id": callerA, "request_id": reqA})
	select {
	case <-auths[0].entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the start did not reach the CallAuthorizer")
	}
	code, m := b.postAs("agent-a", "/stop", map[string]any{"call_id": callA, "request_id": reqA})
	if code != 200 || m["fenced"] != true {
		t.Fatalf("stop through b of a start waiting on a: %d %v", code, m)
	}
	release()
	if m := await(t, started, "the fenced start"); m["_status"] != http.StatusConflict || m["code"] != CodeFenced {
		t.Fatalf("fenced start answered %v, want 409 %s", m, CodeFenced)
	}
	if _, err := a.mem.Get(t.Context(), callerA); err == nil {
		t.Fatal("a fenced register stored a credential")
	}
	// The same id started on b later: refused there too.
	b.src.set(callA, fakeCall{hold: true})
	if code, m := b.postAs("agent-a", "/register", map[string]any{"call_id": callA, "caller_id": callerA, "request_id": reqA}); code != 409 || m["code"] != CodeFenced {
		t.Fatalf("fenced id started on b: %d %v", code, m)
	}

	// A start that won on a, stopped through b.
	a.src.set(callA, fakeCall{hold: true})
	const reqB = "0f8fad5b-d9cb-469f-a165-70867728950e"
	code, op := a.postAs("agent-a", "/register", map[string]any{"call_id": callA, "caller_id": callerA, "request_id": reqB})
	if code != http.StatusAccepted {
		t.Fatalf("register on a: %d %v", code, op)
	}
	code, m = b.postAs("agent-a", "/stop", map[string]any{"call_id": callA, "request_id": reqB})
	if code != 200 || m["fenced"] != false || m["stopped"] != true || m["operation_id"] != op["operation_id"] || m["result"] != "error-cancelled" {
		t.Fatalf("stop through b of a start running on a: %d %v", code, m)
	}
	if last := checkStream(t, b.watch(op), op); last.Event != "error-cancelled" {
		t.Fatalf("operation ended with %s", last.Raw)
	}
}

// TestFencedReverifyKeepsRunning: a re-verify fenced out by a stop of its
// request_id does nothing, and in particular does not end the operation
// running on the call (the widget's stop fenced R2 after its answer was
// lost, the agent pressed Authenticate again, and then R2 arrived).
func TestFencedReverifyKeepsRunning(t *testing.T) {
	auth := &callAuth{}
	e := newEnv(t, func(o *Options, s *fakeSource) { o.Authenticator = auth })
	if code, m := e.postAs("agent-a", "/stop", map[string]any{"call_id": callA, "request_id": reqA}); code != 200 || m["fenced"] != true {
		t.Fatalf("stop before the start: %d %v", code, m)
	}
	ver := runningVerify(t, e)
	if code, m := e.postAs("agent-a", "/reverify", map[string]any{"call_id": callA, "caller_id": callerA, "request_id": reqA}); code != 409 || m["code"] != CodeFenced {
		t.Fatalf("fenced reverify: %d %v", code, m)
	}
	checkStillRunning(t, e, ver)
}

// runningVerify registers callerA and starts a verify on callA that runs
// until stopped; it returns the verify's answer.
func runningVerify(t *testing.T, e *env) map[string]any {
	t.Helper()
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}})
	code, reg := e.postAs("agent-a", "/register", map[string]any{"call_id": callA, "caller_id": callerA})
	if code != http.StatusAccepted {
		t.Fatalf("register: %d %v", code, reg)
	}
	if _, msgs := e.events(reg["events_url"].(string), ""); checkStream(t, msgs, reg).Event != "result-success" {
		t.Fatal("register did not succeed")
	}
	e.src.set(callA, fakeCall{hold: true})
	code, ver := e.postAs("agent-a", "/verify", map[string]any{"call_id": callA, "caller_id": callerA})
	if code != http.StatusAccepted {
		t.Fatalf("verify: %d %v", code, ver)
	}
	e.waitRunning(callA)
	return ver
}

// checkStillRunning fails unless ver runs on callA, not cancelled; it then
// stops it and checks that it ended by that stop.
func checkStillRunning(t *testing.T, e *env, ver map[string]any) {
	t.Helper()
	e.srv.mu.Lock()
	rn := e.srv.running[callA]
	e.srv.mu.Unlock()
	if rn == nil || rn.id != ver["operation_id"] {
		t.Fatalf("the verify no longer runs on the call (%v)", rn)
	}
	if code, m := e.postAs("agent-a", "/stop", map[string]any{"operation_id": ver["operation_id"]}); code != 200 || m["stopped"] != true {
		t.Fatalf("stop of the verify: %d %v", code, m)
	}
	_, msgs := e.events(ver["events_url"].(string), "")
	if last := checkStream(t, msgs, ver); last.Event != "error-cancelled" || !strings.Contains(last.Data["error"].(string), "stopped") {
		t.Fatalf("the verify ended with %s, want stopped by its own stop", last.Raw)
	}
	e.srv.mu.Lock()
	n := len(e.srv.pending)
	e.srv.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d starts left in pending", n)
	}
}

// gateLog is an oplog.Log whose ClaimRequest of a start (not a stop's
// fence) waits, once gate is set, after the claim was made until gate is
// closed: a start held between its claim and its reserve.
type gateLog struct {
	oplog.Log
	gate    chan struct{}
	entered chan struct{}
}

func (l *gateLog) ClaimRequest(ctx context.Context, id string, r oplog.Request) (oplog.Request, bool, error) {
	held, won, err := l.Log.ClaimRequest(ctx, id, r)
	if !r.Fenced && l.gate != nil {
		l.entered <- struct{}{}
		select {
		case <-l.gate:
		case <-ctx.Done():
		}
	}
	return held, won, err
}

// TestStopBetweenClaimAndReserve: a stop of a start that claimed its
// request_id but has not reserved its call yet answers fenced (it never
// runs), and the start, when it goes on, is refused 409 fenced without
// touching the call: the re-verify here leaves the running verify alone.
func TestStopBetweenClaimAndReserve(t *testing.T) {
	auth := &callAuth{}
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	defer release()
	// Only the re-verify below claims a request id for a start.
	lg := &gateLog{Log: oplog.NewMemory(time.Hour, 0), gate: gate, entered: make(chan struct{}, 1)}
	e := newEnv(t, func(o *Options, s *fakeSource) { o.Authenticator = auth; o.Log = lg })
	ver := runningVerify(t, e)
	started := startAsync(e, "agent-a", "/reverify", map[string]any{"call_id": callA, "caller_id": callerA, "request_id": reqA})
	select {
	case <-lg.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the reverify did not claim its request id")
	}
	stop := startAsync(e, "agent-a", "/stop", map[string]any{"call_id": callA, "request_id": reqA})
	if m := await(t, stop, "the stop"); m["_status"] != http.StatusOK || m["fenced"] != true || m["operation_id"] != nil {
		t.Fatalf("stop of a start between its claim and its reserve: %v", m)
	}
	release()
	if m := await(t, started, "the stopped reverify"); m["_status"] != http.StatusConflict || m["code"] != CodeFenced {
		t.Fatalf("stopped reverify answered %v, want 409 %s", m, CodeFenced)
	}
	if ops, _ := e.srv.ops.Running(t.Context(), callA); len(ops) != 1 || ops[0].ID != ver["operation_id"] {
		t.Fatalf("operations running on the call: %v", ops)
	}
	checkStillRunning(t, e, ver)
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestCallBinding: with a CallInfo Source, every request is tied to the
// call: register, verify, reverify and delete need a live call whose
// caller is the request's, and status only says registered for the
// call's own caller. Nothing is started or deleted when refused.
func TestCallBinding(t *testing.T) {
	const (
		callEnded   = "CA00000000000000000000000000000003"
		callNoANI   = "CA00000000000000000000000000000004"
		callUnknown = "CA00000000000000000000000000000404"
	)
	e := newEnv(t, func(o *Options, s *fakeSource) { o.Source = infoSource{s} })
	// callerA registers on its own live call.
	e.src.set(callA, fakeCall{ani: callerA, live: true, clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}})
	op := e.start("/register", callA, callerA, nil)
	if _, msgs := e.events(op["events_url"].(string), ""); checkStream(t, msgs, op).Event != "result-success" {
		t.Fatal("register on the caller's own call failed")
	}
	e.src.set(callB, fakeCall{ani: callerB, live: true, hold: true})
	e.src.set(callEnded, fakeCall{ani: callerA, live: false, hold: true})
	e.src.set(callNoANI, fakeCall{ani: "anonymous", live: true, hold: true})

	for _, c := range []struct {
		name, path, call, caller string
		code                     int
		errCode                  string
	}{
		{"register under another number", "/register", callB, callerA, 400, "bad_caller_id"},
		{"verify against another number", "/verify", callB, callerA, 400, "bad_caller_id"},
		{"reverify against another number", "/reverify", callB, callerA, 400, "bad_caller_id"},
		{"delete another number", "/delete", callB, callerA, 400, "bad_caller_id"},
		{"register on an unknown call", "/register", callUnknown, callerB, 409, "no_call"},
		{"verify on an unknown call", "/verify", callUnknown, callerA, 409, "no_call"},
		{"delete on an unknown call", "/delete", callUnknown, callerA, 409, "no_call"},
		{"verify on an ended call", "/verify", callEnded, callerA, 409, "no_call"},
		{"reverify on an ended call", "/reverify", callEnded, callerA, 409, "no_call"},
		{"delete on an ended call", "/delete", callEnded, callerA, 409, "no_call"},
		{"register on a call without caller number", "/register", callNoANI, callerB, 400, "bad_caller_id"},
		{"delete on a call without caller number", "/delete", callNoANI, callerA, 400, "bad_caller_id"},
	} {
		code, m := e.post(c.path, map[string]any{"call_id": c.call, "caller_id": c.caller})
		if code != c.code || m["code"] != c.errCode {
			t.Errorf("%s: %d %v, want %d %s", c.name, code, m, c.code, c.errCode)
		}
	}
	// Nothing was deleted, nothing was opened but the register.
	if _, err := e.mem.Get(context.Background(), callerA); err != nil {
		t.Fatalf("callerA's credential: %v", err)
	}
	e.src.mu.Lock()
	opened := len(e.src.reqs)
	e.src.mu.Unlock()
	if opened != 1 {
		t.Fatalf("%d audio sources opened, want 1", opened)
	}

	// status: registered only for the call's own caller.
	for _, c := range []struct {
		name, call, caller   string
		registered, progress bool
	}{
		{"own live call", callA, callerA, true, true},
		{"own ended call", callEnded, callerA, true, false},
		{"unknown call", callUnknown, callerA, false, false},
		{"call without caller number", callNoANI, callerA, false, true},
	} {
		code, m := e.post("/status", map[string]any{"call_id": c.call, "caller_id": c.caller})
		if code != 200 || m["registered"] != c.registered || m["call_in_progress"] != c.progress || m["caller_id"] != c.caller {
			t.Errorf("status, %s: %d %v", c.name, code, m)
		}
	}
	if code, m := e.post("/status", map[string]any{"call_id": callB, "caller_id": callerA}); code != 400 || m["code"] != "bad_caller_id" {
		t.Errorf("status of another caller on a call: %d %v", code, m)
	}

	// The caller's own live call may delete.
	if code, m := e.post("/delete", map[string]any{"call_id": callA, "caller_id": callerA}); code != 200 || m["deleted"] != true {
		t.Fatalf("delete on the caller's call: %d %v", code, m)
	}
}

// TestStatusAfterHangUp: when the caller hangs up during a register (a
// Genesys AudioHook session ends: the call and its caller are forgotten),
// the register ends with error-audio, reason speech, nothing stored, and
// status asked without a caller id, as the widget asks it, answers that
// the call is not in progress, not 400 bad_caller_id.
func TestStatusAfterHangUp(t *testing.T) {
	e := newEnv(t, func(o *Options, s *fakeSource) { o.Source = infoSource{s} })
	e.src.set(callA, fakeCall{ani: "tel:+34911234567", live: true, hold: true})
	if code, m := e.post("/status", map[string]any{"call_id": callA, "caller_id": ""}); code != 200 || m["caller_id"] != callerA || m["call_in_progress"] != true {
		t.Fatalf("status of the live call: %d %v", code, m)
	}
	op := e.start("/register", callA, "", nil)
	e.waitRunning(callA)
	e.src.hangUp(callA)
	_, msgs := e.events(op["events_url"].(string), "")
	last := checkStream(t, msgs, op)
	if last.Event != "error-audio" || last.Data["reason"] != "speech" {
		t.Fatalf("register ended with %s", last.Raw)
	}
	code, m := e.post("/status", map[string]any{"call_id": callA, "caller_id": ""})
	if code != 200 || m["call_in_progress"] != false || m["registered"] != false || m["caller_id"] != "" || m["call_id"] != callA {
		t.Fatalf("status after the hang-up: %d %v", code, m)
	}
	if _, err := e.mem.Get(context.Background(), callerA); err == nil {
		t.Fatal("a credential was stored")
	}
	// The caller's number, when the widget has it, is looked up as before.
	if code, m := e.post("/status", map[string]any{"call_id": callA, "caller_id": callerA}); code != 200 || m["call_in_progress"] != false || m["caller_id"] != callerA {
		t.Fatalf("status after the hang-up with the caller id: %d %v", code, m)
	}
	// A number that is not usable is still refused.
	if code, m := e.post("/status", map[string]any{"call_id": callA, "caller_id": "anonymous"}); code != 400 || m["code"] != "bad_caller_id" {
		t.Fatalf("status after the hang-up with a bad caller id: %d %v", code, m)
	}
}

// TestRefusedReverifyKeepsOperation: a re-verify refused for any reason
// (not registered, bad caller, bad parameters) leaves the call's running
// operation alone; only an accepted one replaces it.
func TestRefusedReverifyKeepsOperation(t *testing.T) {
	e := newEnv(t, func(o *Options, s *fakeSource) { o.Source = infoSource{s} })
	e.src.set(callA, fakeCall{ani: callerA, live: true, hold: true})
	reg := e.start("/register", callA, callerA, nil)
	e.waitRunning(callA)
	for _, c := range []struct {
		body    map[string]any
		code    int
		errCode string
	}{
		{map[string]any{"call_id": callA, "caller_id": callerA}, 404, "not_registered"},
		{map[string]any{"call_id": callA, "caller_id": callerB}, 400, "bad_caller_id"},
		{map[string]any{"call_id": callA, "caller_id": callerA, "score_threshold": 2}, 400, "bad_request"},
	} {
		if code, m := e.post("/reverify", c.body); code != c.code || m["code"] != c.errCode {
			t.Fatalf("reverify %v: %d %v", c.body, code, m)
		}
	}
	e.srv.mu.Lock()
	rn := e.srv.running[callA]
	e.srv.mu.Unlock()
	if rn == nil || rn.id != reg["operation_id"] {
		t.Fatalf("the register no longer runs: %+v", rn)
	}
	if code, m := e.post("/stop", map[string]any{"operation_id": reg["operation_id"]}); code != 200 || m["stopped"] != true {
		t.Fatalf("stop: %d %v", code, m)
	}
	_, msgs := e.events(reg["events_url"].(string), "")
	if last := checkStream(t, msgs, reg); last.Event != "error-cancelled" || !strings.Contains(last.Data["error"].(string), "stopped") {
		t.Fatalf("register ended with %s", last.Raw)
	}
}

// callAuth is an Authenticator and CallAuthorizer: token "agent-a" may act
// on callA only, "agent-b" on callB only; err, when set, is the
// authorizer's answer.
type callAuth struct {
	err   atomic.Pointer[error]
	calls atomic.Int32
}

func (a *callAuth) Authenticate(ctx context.Context, r *http.Request) (Principal, error) {
	tok, _ := BearerToken(r)
	if tok != "agent-a" && tok != "agent-b" {
		return Principal{}, ErrUnauthenticated
	}
	return Principal{Subject: tok}, nil
}

func (a *callAuth) AuthorizeCall(ctx context.Context, r *http.Request, p Principal, callID string) error {
	a.calls.Add(1)
	if err := a.err.Load(); err != nil {
		return *err
	}
	if (p.Subject == "agent-a" && callID == callA) || (p.Subject == "agent-b" && callID == callB) {
		return nil
	}
	return fmt.Errorf("%w: %s is not on %s", ErrForbidden, p.Subject, callID)
}

// TestCallAuthorizer: an Authenticator that is a CallAuthorizer is asked
// for every call-scoped request, stop included; its refusal is 403
// forbidden and nothing happens; its server fault is 503, its 401 a 401,
// both after the failure delay.
func TestCallAuthorizer(t *testing.T) {
	auth := &callAuth{}
	e := newEnv(t, func(o *Options, s *fakeSource) { o.Authenticator = auth })
	e.src.set(callA, fakeCall{hold: true})
	e.src.set(callB, fakeCall{hold: true})
	for _, p := range []string{"/status", "/register", "/verify", "/reverify", "/delete"} {
		code, m := e.postAs("agent-b", p, map[string]any{"call_id": callA, "caller_id": callerA})
		if code != 403 || m["code"] != "forbidden" {
			t.Fatalf("agent-b %s on callA: %d %v", p, code, m)
		}
	}
	op := func() map[string]any {
		code, m := e.postAs("agent-a", "/register", map[string]any{"call_id": callA, "caller_id": callerA})
		if code != 202 {
			t.Fatalf("agent-a register on callA: %d %v", code, m)
		}
		return m
	}()
	e.waitRunning(callA)
	if code, m := e.postAs("agent-b", "/stop", map[string]any{"operation_id": op["operation_id"]}); code != 403 || m["code"] != "forbidden" {
		t.Fatalf("agent-b stop of callA's operation: %d %v", code, m)
	}
	e.srv.mu.Lock()
	running := e.srv.running[callA] != nil
	e.srv.mu.Unlock()
	if !running {
		t.Fatal("a refused stop ended the operation")
	}
	if code, m := e.postAs("agent-a", "/stop", map[string]any{"operation_id": op["operation_id"]}); code != 200 || m["stopped"] != true {
		t.Fatalf("agent-a stop: %d %v", code, m)
	}
	if code, m := e.postAs("agent-b", "/status", map[string]any{"call_id": callB, "caller_id": callerB}); code != 200 {
		t.Fatalf("agent-b status on callB: %d %v", code, m)
	}
	for _, c := range []struct {
		err     error
		code    int
		errCode string
	}{
		{fmt.Errorf("%w: genesys down", ErrAuthUnavailable), 503, "auth_unavailable"},
		{fmt.Errorf("%w: token revoked", ErrUnauthenticated), 401, "unauthenticated"},
		{fmt.Errorf("%w: the agent's call has ended", ErrNoCall), 409, "no_call"},
		{errors.New("anything else"), 403, "forbidden"},
	} {
		auth.err.Store(&c.err)
		start := time.Now()
		code, m := e.postAs("agent-a", "/status", map[string]any{"call_id": callA, "caller_id": callerA})
		if code != c.code || m["code"] != c.errCode {
			t.Fatalf("authorizer error %v: %d %v", c.err, code, m)
		}
		if c.code == 409 && m["error"] != msgPartEnded {
			t.Fatalf("authorizer error %v: message %q, want %q", c.err, m["error"], msgPartEnded)
		}
		if (c.code == 401 || c.code == 503) && time.Since(start) < 20*time.Millisecond {
			t.Fatalf("authorizer error %v answered without the failure delay", c.err)
		}
	}
	if n := auth.calls.Load(); n < 9 {
		t.Fatalf("authorizer asked %d times", n)
	}
}

package agent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak/agent/oplog"
)

// postRaw sends body, byte for byte, to the API as token and returns the
// answer's status, headers and body.
func (e *env) postRaw(token, path, body string) (int, http.Header, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/agent"+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(raw)
}

// shareAuth is an Authenticator and CallAuthorizer: tokens "agent-x" and
// "agent-y" may act on callA, "agent-b" on callB.
type shareAuth struct{}

func (shareAuth) Authenticate(ctx context.Context, r *http.Request) (Principal, error) {
	tok, _ := BearerToken(r)
	switch tok {
	case "agent-x", "agent-y", "agent-b":
		return Principal{Subject: tok}, nil
	}
	return Principal{}, ErrUnauthenticated
}

func (shareAuth) AuthorizeCall(ctx context.Context, r *http.Request, p Principal, callID string) error {
	if (p.Subject == "agent-b") == (callID == callB) {
		return nil
	}
	return fmt.Errorf("%w: %s is not on %s", ErrForbidden, p.Subject, callID)
}

// TestStopFloodKeepsOtherFences: an agent X allowed on call A who floods
// stops with fresh request ids fills their own claims on A
// (oplog.MaxSubjectRequests) and is then refused 429 too_many_requests
// with Retry-After, in the API's error shape; X's starts with a new id
// are refused 429 too, starting nothing. Agent Y on the same call is not
// limited by X: Y's start runs and Y's own fence holds. Call B's fence,
// set before the flood, is not evicted: B's start still queued somewhere
// is refused 409 fenced when it arrives and stores nothing.
func TestStopFloodKeepsOtherFences(t *testing.T) {
	e := newEnv(t, func(o *Options, s *fakeSource) {
		o.Source, o.Authenticator = infoSource{s}, shareAuth{}
		// A log that keeps 100 claims: a flood of more than that must
		// not push B's out.
		o.Log = oplog.NewMemory(0, 100)
	})
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}, ani: callerA, live: true})
	e.src.set(callB, fakeCall{clips: []string{"voices/awb_1.wav", "voices/awb_2.wav"}, ani: callerB, live: true})
	const fenceB = "6a1f0a52-9c43-4b0e-8f51-2f3c7d1e0b99"
	code, _, body := e.postRaw("agent-b", "/stop", `{"call_id":"CA00000000000000000000000000000002","request_id":"6a1f0a52-9c43-4b0e-8f51-2f3c7d1e0b99"}`)
	if want := `{"call_id":"CA00000000000000000000000000000002","request_id":"6a1f0a52-9c43-4b0e-8f51-2f3c7d1e0b99","fenced":true,"stopped":false}` + "\n"; code != 200 || body != want {
		t.Fatalf("stop on B: %d %s", code, body)
	}
	const wantLimit = `{"code":"too_many_requests","error":"too many request_ids on this call; nothing was started or stopped: retry later"}` + "\n"
	for i := range oplog.MaxSubjectRequests + 100 {
		code, h, body := e.postRaw("agent-x", "/stop", fmt.Sprintf(`{"call_id":"CA00000000000000000000000000000001","request_id":"flood-%04d-0000-4000-8000-000000000000"}`, i))
		if i < oplog.MaxSubjectRequests {
			if want := fmt.Sprintf(`{"call_id":"CA00000000000000000000000000000001","request_id":"flood-%04d-0000-4000-8000-000000000000","fenced":true,"stopped":false}`+"\n", i); code != 200 || body != want {
				t.Fatalf("stop %d on A: %d %s", i, code, body)
			}
			continue
		}
		ra, err := strconv.Atoi(h.Get("Retry-After"))
		if code != http.StatusTooManyRequests || body != wantLimit || err != nil || ra < 1 || ra > int(max(DefaultRetain, oplog.MinRequestRetain)/time.Second) {
			t.Fatalf("stop %d on A beyond the limit: %d Retry-After %q %s", i, code, h.Get("Retry-After"), body)
		}
	}
	// B's fence holds: the start it fenced is refused when it arrives.
	code, _, body = e.postRaw("agent-b", "/register", `{"call_id":"CA00000000000000000000000000000002","caller_id":"+14155550100","request_id":"6a1f0a52-9c43-4b0e-8f51-2f3c7d1e0b99"}`)
	if want := `{"code":"fenced","error":"stopped before it started: a stop named this request_id"}` + "\n"; code != http.StatusConflict || body != want {
		t.Fatalf("B's fenced start after X's flood: %d %s", code, body)
	}
	if code, m := e.postAs("agent-b", "/stop", map[string]any{"call_id": callB, "request_id": fenceB}); code != 200 || m["fenced"] != true {
		t.Fatalf("B's stop again: %d %v", code, m)
	}
	// X's fenced ids stay fenced; a new one is refused, nothing starts.
	code, _, body = e.postRaw("agent-x", "/register", `{"call_id":"CA00000000000000000000000000000001","caller_id":"+34911234567","request_id":"flood-0000-0000-4000-8000-000000000000"}`)
	if code != http.StatusConflict || !strings.Contains(body, `"code":"fenced"`) {
		t.Fatalf("X's start of a fenced id: %d %s", code, body)
	}
	code, h, body := e.postRaw("agent-x", "/register", `{"call_id":"CA00000000000000000000000000000001","caller_id":"+34911234567","request_id":"x-new-one-0000-4000-8000-000000000000"}`)
	if code != http.StatusTooManyRequests || body != wantLimit || h.Get("Retry-After") == "" {
		t.Fatalf("X's start of a new id: %d %s", code, body)
	}
	if ops, _ := e.srv.ops.Running(t.Context(), callA); len(ops) != 0 {
		t.Fatalf("a refused start runs: %+v", ops)
	}
	for _, caller := range []string{callerA, callerB} {
		if _, err := e.mem.Get(t.Context(), caller); err == nil {
			t.Fatalf("%s was registered", caller)
		}
	}
	// Y, on the same call, is not limited by X: Y's fence holds...
	code, _, body = e.postRaw("agent-y", "/stop", `{"call_id":"CA00000000000000000000000000000001","request_id":"y-fence-0000-4000-8000-000000000000"}`)
	if want := `{"call_id":"CA00000000000000000000000000000001","request_id":"y-fence-0000-4000-8000-000000000000","fenced":true,"stopped":false}` + "\n"; code != 200 || body != want {
		t.Fatalf("Y's stop on A after X's flood: %d %s", code, body)
	}
	code, _, body = e.postRaw("agent-y", "/register", `{"call_id":"CA00000000000000000000000000000001","caller_id":"+34911234567","request_id":"y-fence-0000-4000-8000-000000000000"}`)
	if want := `{"code":"fenced","error":"stopped before it started: a stop named this request_id"}` + "\n"; code != http.StatusConflict || body != want {
		t.Fatalf("Y's fenced start: %d %s", code, body)
	}
	// ...and Y's start with a new id runs to its end: the caller is
	// registered.
	code, _, body = e.postRaw("agent-y", "/register", `{"call_id":"CA00000000000000000000000000000001","caller_id":"+34911234567","request_id":"y-start-0000-4000-8000-000000000000"}`)
	if code != http.StatusAccepted || !strings.Contains(body, `"operation_id":"`) {
		t.Fatalf("Y's start on A after X's flood: %d %s", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := e.mem.Get(t.Context(), callerA); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Y's register did not store the caller")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUnknownCallClaimsNothing: with a Source that knows its calls
// (CallInfo) and no CallAuthorizer (any agent may name any call), a stop
// or a start with a request_id naming a call the Source does not know is
// answered 409 no_call and claims nothing: a flood of made-up call ids
// does not fill the log's claims (here 100), so a start on a real call
// still runs, and the id the unknown call's stop named is free on that
// call (no fence was written).
func TestUnknownCallClaimsNothing(t *testing.T) {
	mem := oplog.NewMemory(0, 100)
	e := newEnv(t, func(o *Options, s *fakeSource) {
		o.Source, o.Log = infoSource{s}, mem
	})
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}, ani: callerA, live: true})
	const noCall = `{"code":"no_call","error":"no such call"}` + "\n"
	for i := range 150 {
		code, _, body := e.postRaw(testToken, "/stop", fmt.Sprintf(`{"call_id":"CA%032d","request_id":"3f2b1c0d-0000-4000-8000-000000000001"}`, 1000+i))
		if code != http.StatusConflict || body != noCall {
			t.Fatalf("stop %d of an unknown call: %d %s", i, code, body)
		}
	}
	code, _, body := e.postRaw(testToken, "/verify", `{"call_id":"CA00000000000000000000000000000009","caller_id":"+34911234567","request_id":"3f2b1c0d-0000-4000-8000-000000000002"}`)
	if code != http.StatusConflict || body != noCall {
		t.Fatalf("start on an unknown call: %d %s", code, body)
	}
	// Nothing was claimed: the stop's id is free on the call it named.
	held, won, err := mem.ClaimRequest(t.Context(), "3f2b1c0d-0000-4000-8000-000000000001", oplog.Request{CallID: fmt.Sprintf("CA%032d", 1000), OpID: "op_t"})
	if err != nil || !won || held.Fenced {
		t.Fatalf("the unknown call's stop left a claim: %+v %v %v", held, won, err)
	}
	code, _, body = e.postRaw(testToken, "/register", `{"call_id":"CA00000000000000000000000000000001","caller_id":"+34911234567","request_id":"3f2b1c0d-0000-4000-8000-000000000003"}`)
	if code != http.StatusAccepted || !strings.Contains(body, `"operation_id":"`) {
		t.Fatalf("start on a real call after the flood: %d %s", code, body)
	}
}

// TestFencedBeforeStoreChecks: a start whose request_id a stop fenced is
// answered 409 fenced whatever else would refuse it: a register of a
// caller registered meanwhile is not answered already_registered, a
// verify of an unregistered caller not not_registered. The fence is
// checked right after the agent is authorized on the call.
func TestFencedBeforeStoreChecks(t *testing.T) {
	e := newEnv(t, nil)
	e.register(callA, callerA, "voices/slt_1.wav", "voices/slt_2.wav")
	const fenced = `{"code":"fenced","error":"stopped before it started: a stop named this request_id"}` + "\n"
	for _, c := range []struct{ path, stop, start string }{
		{
			"/register",
			`{"call_id":"CA00000000000000000000000000000001","request_id":"0d9c3c1e-7f1a-4c55-9d0e-6b1b2a3c4d5e"}`,
			`{"call_id":"CA00000000000000000000000000000001","caller_id":"+34911234567","request_id":"0d9c3c1e-7f1a-4c55-9d0e-6b1b2a3c4d5e"}`,
		},
		{
			"/verify",
			`{"call_id":"CA00000000000000000000000000000002","request_id":"1e0d4d2f-802b-4d66-ae1f-7c2c3b4d5e6f"}`,
			`{"call_id":"CA00000000000000000000000000000002","caller_id":"+14155550100","request_id":"1e0d4d2f-802b-4d66-ae1f-7c2c3b4d5e6f"}`,
		},
	} {
		if code, _, body := e.postRaw(testToken, "/stop", c.stop); code != 200 || !strings.Contains(body, `"fenced":true`) {
			t.Fatalf("stop: %d %s", code, body)
		}
		if code, _, body := e.postRaw(testToken, c.path, c.start); code != http.StatusConflict || body != fenced {
			t.Fatalf("%s of a fenced request id: %d %s", c.path, code, body)
		}
	}
	// Without a fence the same starts are refused by the store's state.
	if code, _, body := e.postRaw(testToken, "/register", `{"call_id":"CA00000000000000000000000000000001","caller_id":"+34911234567","request_id":"2f1e5e30-913c-4e77-bf20-8d3d4c5e6f70"}`); code != http.StatusConflict || !strings.Contains(body, `"code":"already_registered"`) {
		t.Fatalf("register of a registered caller: %d %s", code, body)
	}
}

// formAuth is callAuth whose AuthorizeCall refuses, with ErrBadCallID and
// before anything else, a call id that is not a Twilio call SID's form.
type formAuth struct{ callAuth }

func (a *formAuth) AuthorizeCall(ctx context.Context, r *http.Request, p Principal, callID string) error {
	if len(callID) != 34 || !strings.HasPrefix(callID, "CA") {
		return fmt.Errorf("%w: %q is not a call SID", ErrBadCallID, callID)
	}
	return a.callAuth.AuthorizeCall(ctx, r, p, callID)
}

// TestMalformedCallID: a call_id the CallAuthorizer finds malformed
// (ErrBadCallID) is a 400 bad_request on every endpoint, stop included,
// never the 403 of an agent refused on a real call; the answer is the
// same for every malformed id, whatever the agent, and comes without the
// failure delay.
func TestMalformedCallID(t *testing.T) {
	auth := &formAuth{}
	e := newEnv(t, func(o *Options, s *fakeSource) {
		o.Authenticator = auth
		o.AuthFailureDelay = 2 * time.Second
	})
	const want = `{"code":"bad_request","error":"call_id is not a call id of this platform"}` + "\n"
	for _, c := range []struct{ token, path, body string }{
		{"agent-a", "/stop", `{"call_id":"not-a-call","request_id":"3b241101-e2bb-4255-8caf-4136c566a962"}`},
		{"agent-b", "/stop", `{"call_id":"CA0000000000000000000000000000000","request_id":"3b241101-e2bb-4255-8caf-4136c566a962"}`},
		{"agent-a", "/stop", `{"call_id":"not-a-call"}`},
		{"agent-a", "/register", `{"call_id":"not-a-call","caller_id":"+34911234567","request_id":"3b241101-e2bb-4255-8caf-4136c566a962"}`},
		{"agent-a", "/status", `{"call_id":"not-a-call","caller_id":"+34911234567"}`},
		{"agent-a", "/delete", `{"call_id":"not-a-call","caller_id":"+34911234567"}`},
	} {
		start := time.Now()
		code, _, body := e.postRaw(c.token, c.path, c.body)
		if code != http.StatusBadRequest || body != want {
			t.Errorf("%s %s: %d %s", c.path, c.body, code, body)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s %s: answered after %v", c.path, c.body, d)
		}
	}
	// A well-formed call the agent is not on is still a 403.
	if code, _, body := e.postRaw("agent-a", "/stop", `{"call_id":"CA00000000000000000000000000000002","request_id":"3b241101-e2bb-4255-8caf-4136c566a962"}`); code != http.StatusForbidden || !strings.Contains(body, `"code":"forbidden"`) {
		t.Errorf("stop on another agent's call: %d %s", code, body)
	}
}

// TestLateClaimRefused: a start that has not claimed its request id
// within the claim delay of reaching the server (here it waits in the
// CallAuthorizer) is refused 503 and runs nothing; a stop of its id then
// answers fenced.
func TestLateClaimRefused(t *testing.T) {
	auth := &gateAuth{}
	e := newEnv(t, func(o *Options, s *fakeSource) { o.Authenticator = auth })
	e.srv.maxClaimDelay = 100 * time.Millisecond
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}})
	release := auth.hold()
	started := startAsync(e, "agent-a", "/register", map[string]any{"call_id": callA, "caller_id": callerA, "request_id": reqA})
	select {
	case <-auth.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the start did not reach the CallAuthorizer")
	}
	time.Sleep(150 * time.Millisecond)
	release()
	if m := await(t, started, "the late start"); m["_status"] != http.StatusServiceUnavailable || m["code"] != CodeInternal {
		t.Fatalf("late start answered %v", m)
	}
	if code, m := e.postAs("agent-a", "/stop", map[string]any{"call_id": callA, "request_id": reqA}); code != 200 || m["fenced"] != true {
		t.Fatalf("stop of the late start: %d %v", code, m)
	}
	if _, err := e.mem.Get(t.Context(), callerA); err == nil {
		t.Fatal("a late start stored a credential")
	}
}

// TestForwardedRetryAfter: an answer another node gives (a forwarded
// request) keeps its Retry-After, so a 429 too_many_requests or a 503
// reaches the agent with it.
func TestForwardedRetryAfter(t *testing.T) {
	rec := &recorder{h: http.Header{}}
	(&Error{Status: http.StatusTooManyRequests, Code: CodeTooManyRequests, Message: "too many", RetryAfter: 1500 * time.Millisecond}).write(rec)
	w := httptest.NewRecorder()
	if err := writeReply(w, rec.reply()); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" || w.Body.String() != `{"code":"too_many_requests","error":"too many"}`+"\n" {
		t.Fatalf("forwarded answer: %d Retry-After %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	// A reply without one (or with a malformed one) sets none.
	w = httptest.NewRecorder()
	if err := writeReply(w, []byte(`{"status":409,"body":{"code":"busy"},"retry_after":"soon"}`)); err != nil || w.Header().Get("Retry-After") != "" {
		t.Fatalf("reply with a malformed Retry-After: %v %q", err, w.Header().Get("Retry-After"))
	}
}

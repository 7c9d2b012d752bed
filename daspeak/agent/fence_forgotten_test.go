package agent

import (
	"net/http"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/daspeak/agent/oplog"
)

// TestStopForgottenCall: a stop by call_id and request_id on a call the
// Source no longer knows (a Genesys call after its AudioHook session
// closed) is answered from its start's claim: the register that ran
// answers with its operation and result, a start a stop fenced answers
// fenced. Only a request id nobody claimed on the call answers 409
// no_call, and claims nothing.
func TestStopForgottenCall(t *testing.T) {
	mem := oplog.NewMemory(0, 0)
	e := newEnv(t, func(o *Options, s *fakeSource) { o.Source, o.Log = infoSource{s}, mem })
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}, ani: callerA, live: true})
	op := e.start("/register", callA, callerA, map[string]any{"request_id": reqA})
	_, msgs := e.events(op["events_url"].(string), "")
	if last := checkStream(t, msgs, op); last.Event != "result-success" {
		t.Fatalf("register: %s", last.Raw)
	}
	const fencedID = "9a0e4d1c-0000-4000-8000-00000000f00d"
	if code, _, body := e.postRaw(testToken, "/stop", `{"call_id":"`+callA+`","request_id":"`+fencedID+`"}`); code != http.StatusOK || !strings.Contains(body, `"fenced":true`) {
		t.Fatalf("fence on the live call: %d %s", code, body)
	}
	e.src.hangUp(callA)

	code, _, body := e.postRaw(testToken, "/stop", `{"call_id":"`+callA+`","request_id":"`+reqA+`"}`)
	want := `{"call_id":"` + callA + `","request_id":"` + reqA + `","fenced":false,"operation_id":"` + op["operation_id"].(string) + `","stopped":false,"result":"result-success"}` + "\n"
	if code != http.StatusOK || body != want {
		t.Fatalf("stop of the register on the forgotten call: %d %s, want 200 %s", code, body, want)
	}
	code, _, body = e.postRaw(testToken, "/stop", `{"call_id":"`+callA+`","request_id":"`+fencedID+`"}`)
	want = `{"call_id":"` + callA + `","request_id":"` + fencedID + `","fenced":true,"stopped":false}` + "\n"
	if code != http.StatusOK || body != want {
		t.Fatalf("stop of the fenced id on the forgotten call: %d %s, want 200 %s", code, body, want)
	}
	const unclaimed = "9a0e4d1c-0000-4000-8000-00000000beef"
	code, _, body = e.postRaw(testToken, "/stop", `{"call_id":"`+callA+`","request_id":"`+unclaimed+`"}`)
	if code != http.StatusConflict || body != `{"code":"no_call","error":"no such call"}`+"\n" {
		t.Fatalf("stop of an unclaimed id on the forgotten call: %d %s", code, body)
	}
	if held, ok, err := mem.HeldRequest(t.Context(), callA, unclaimed); err != nil || ok {
		t.Fatalf("the stop of an unclaimed id on a forgotten call left a claim: %+v %v %v", held, ok, err)
	}
}

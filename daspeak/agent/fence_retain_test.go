package agent

import (
	"net/http"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak/agent/oplog"
)

// TestStopAfterRetain: a register that ran to success under a request id
// is answered as such by a stop of that id for as long as the claim is
// kept, even when Options.Retain (here 50 ms) is far under the claim's
// oplog.MinRequestRetain and the log has pruned since: never fenced
// (never ran). On a known call and on one the Source has forgotten.
func TestStopAfterRetain(t *testing.T) {
	for _, forgotten := range []bool{false, true} {
		t.Run(map[bool]string{false: "known call", true: "forgotten call"}[forgotten], func(t *testing.T) {
			e := newEnv(t, func(o *Options, s *fakeSource) { o.Source, o.Retain = infoSource{s}, 50*time.Millisecond })
			e.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}, ani: callerA, live: true})
			op := e.start("/register", callA, callerA, map[string]any{"request_id": reqA})
			_, msgs := e.events(op["events_url"].(string), "")
			if last := checkStream(t, msgs, op); last.Event != "result-success" {
				t.Fatalf("register: %s", last.Raw)
			}
			if forgotten {
				e.src.hangUp(callA)
			}
			time.Sleep(100 * time.Millisecond)
			// Creating an operation prunes the log.
			if err := e.srv.ops.Create(t.Context(), oplog.Op{ID: "prune-trigger", CallID: "other-call"}); err != nil {
				t.Fatal(err)
			}
			code, _, body := e.postRaw(testToken, "/stop", `{"call_id":"`+callA+`","request_id":"`+reqA+`"}`)
			want := `{"call_id":"` + callA + `","request_id":"` + reqA + `","fenced":false,"operation_id":"` + op["operation_id"].(string) + `","stopped":false,"result":"result-success"}` + "\n"
			if code != http.StatusOK || body != want {
				t.Fatalf("stop of a register that succeeded, after Retain: %d %s, want 200 %s", code, body, want)
			}
		})
	}
}

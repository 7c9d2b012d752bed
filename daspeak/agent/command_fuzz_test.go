package agent

import (
	"context"
	"encoding/json"
	"testing"
)

// FuzzCommand checks that any command another node sends gets a
// well-formed answer ({"status","body"} with an HTTP status), never a
// panic.
func FuzzCommand(f *testing.F) {
	f.Add([]byte(`{"op":"status","body":{"call_id":"CA00000000000000000000000000000001","caller_id":"+34911234567"}}`))
	f.Add([]byte(`{"op":"stop","body":{"operation_id":"op_x"}}`))
	f.Add([]byte(`{"op":"register","body":{"call_id":"CA1"},"agent":"a"}`))
	f.Add([]byte(`{"op":"nope"}`))
	f.Add([]byte(`not json`))
	f.Add([]byte(`{"op":"delete","body":"x"}`))
	e := newEnv(f, nil)
	f.Fuzz(func(t *testing.T, msg []byte) {
		var rep commandReply
		if err := json.Unmarshal(e.srv.Command(context.Background(), msg), &rep); err != nil || rep.Status < 200 || rep.Status > 599 {
			t.Fatalf("reply to %q: %+v %v", msg, rep, err)
		}
	})
}

package agent

import (
	"strings"
	"testing"
)

// TestBadJSONMessage: a malformed body is answered in the API's terms,
// never with the server's Go types.
func TestBadJSONMessage(t *testing.T) {
	e := newEnv(t, nil)
	for _, c := range []struct {
		body any
		want string
	}{
		{[]any{1}, "body is not the expected JSON object: a JSON object is required, not a JSON array"},
		{map[string]any{"call_id": 5, "caller_id": callerA}, `body is not the expected JSON object: field "call_id" cannot be a JSON number`},
	} {
		code, m := e.post("/status", c.body)
		msg, _ := m["error"].(string)
		if code != 400 || m["code"] != "bad_request" || msg != c.want || strings.Contains(msg, "Go ") {
			t.Errorf("%v: %d %v, want 400 %q", c.body, code, m, c.want)
		}
	}
}

package agent

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestErrorAnswers: an unknown path, a wrong method, a body over 64 KiB
// and a preflight from a disallowed origin are answered with the API's
// JSON error shape and a fitting status and code.
func TestErrorAnswers(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *fakeSource) { o.AllowedOrigins = []string{"https://flex.twilio.com"} })
	big := `{"call_id":"` + strings.Repeat("x", 3<<20) + `"}`
	for _, tc := range []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		code, allow              string
	}{
		{"unknown path", http.MethodPost, "/agent/nonexistent", "{}", nil, http.StatusNotFound, CodeNotFound, ""},
		{"unknown path get", http.MethodGet, "/agent/nonexistent", "", nil, http.StatusNotFound, CodeNotFound, ""},
		{"outside the API", http.MethodGet, "/elsewhere", "", nil, http.StatusNotFound, CodeNotFound, ""},
		{"wrong method", http.MethodGet, "/agent/register", "", nil, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "POST, OPTIONS"},
		{"wrong method on events", http.MethodPost, "/agent/operations/op_1/events", "", nil, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "GET, HEAD, OPTIONS"},
		{"body too large", http.MethodPost, "/agent/status", big, map[string]string{"Authorization": "Bearer " + testToken}, http.StatusRequestEntityTooLarge, CodeTooLarge, ""},
		{"preflight from another origin", http.MethodOptions, "/agent/register", "", map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}, http.StatusForbidden, CodeOriginNotAllowed, ""},
	} {
		req, _ := http.NewRequest(tc.method, e.http.URL+tc.path, bytes.NewReader([]byte(tc.body)))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var got Error
		derr := json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode != tc.status || derr != nil || got.Code != tc.code || got.Message == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: %d %q %+v (%v), want %d %s", tc.name, resp.StatusCode, resp.Header.Get("Content-Type"), got, derr, tc.status, tc.code)
		}
		if a := resp.Header.Get("Allow"); a != tc.allow {
			t.Errorf("%s: Allow %q, want %q", tc.name, a, tc.allow)
		}
	}
	// The routes themselves still answer.
	if code, m := e.post("/status", map[string]any{"call_id": "CA00000000000000000000000000000009", "caller_id": "+14155550199"}); code == http.StatusNotFound && m["code"] == CodeNotFound && strings.Contains(m["error"].(string), "endpoint") {
		t.Errorf("status routed to the catch-all: %d %v", code, m)
	}
}

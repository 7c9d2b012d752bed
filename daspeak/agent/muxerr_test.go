package agent

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestJSONErrors sends the requests a ServeMux answers itself: no such
// path, a wrong method, and non-canonical paths it would redirect (with
// the query string, a token in it) to another path.
func TestJSONErrors(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /agent/operations/{id}/events", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "events") })
	mux.HandleFunc("POST /desk/calls/{sid}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "call") })
	mux.HandleFunc("/tree/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "tree") })
	mux.HandleFunc("GET /teapot", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "short and stout", http.StatusTeapot) })
	h := JSONErrors(mux)
	for _, tc := range []struct {
		method, target string
		status         int
		body           string
		allow          string
	}{
		{"GET", "/agent/operations/op1/events?token=t", 200, "events", ""},
		{"POST", "/desk/calls/CA01", 200, "call", ""},
		{"GET", "/tree/x", 200, "tree", ""},
		{"GET", "/agent/operations/a%2F%2Fb/events", 200, "events", ""},
		// The handler's own answers stay as they are.
		{"GET", "/teapot", http.StatusTeapot, "short and stout\n", ""},
		{"GET", "/agent/operations//events?token=", 404, `{"code":"not_found","error":"no such path: /agent/operations//events is not in canonical form"}` + "\n", ""},
		{"GET", "/agent/operations/op1/../op2/events?token=t", 404, `{"code":"not_found","error":"no such path: /agent/operations/op1/../op2/events is not in canonical form"}` + "\n", ""},
		{"GET", "/tree?token=t", 404, `{"code":"not_found","error":"no such path: /tree"}` + "\n", ""},
		{"POST", "/desk/calls/CA01/hangup", 404, `{"code":"not_found","error":"no such path"}` + "\n", ""},
		{"GET", "/desk/calls/CA01", 405, `{"code":"method_not_allowed","error":"method not allowed on this path"}` + "\n", "POST"},
	} {
		r := httptest.NewRequest(tc.method, tc.target, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.status || w.Body.String() != tc.body || w.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d %q Allow %q, want %d %q Allow %q", tc.method, tc.target, w.Code, w.Body, w.Header().Get("Allow"), tc.status, tc.body, tc.allow)
		}
		if w.Code >= 400 && w.Code != http.StatusTeapot {
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s %s: Content-Type %q, want application/json", tc.method, tc.target, ct)
			}
			if w.Header().Get("Location") != "" {
				t.Errorf("%s %s: Location %q", tc.method, tc.target, w.Header().Get("Location"))
			}
		}
	}
}

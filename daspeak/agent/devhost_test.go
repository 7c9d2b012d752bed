package agent

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestLoopbackHostOnly(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "token") })
	h := LoopbackHostOnly(next)
	const refused = `{"code":"misdirected_request","error":"this development server answers requests to localhost, 127.0.0.1 or [::1] only"}` + "\n"
	for _, tc := range []struct {
		host   string
		status int
		body   string
	}{
		{"127.0.0.1:18080", 200, "token"},
		{"127.0.0.1", 200, "token"},
		{"127.1.2.3:80", 200, "token"},
		{"localhost:18080", 200, "token"},
		{"LocalHost", 200, "token"},
		{"[::1]:18080", 200, "token"},
		{"[::1]", 200, "token"},
		// DNS rebinding: the attacker's name, resolved to 127.0.0.1.
		{"evil.example:18080", http.StatusMisdirectedRequest, refused},
		{"attacker.example", http.StatusMisdirectedRequest, refused},
		{"localhost.evil.example:18080", http.StatusMisdirectedRequest, refused},
		{"127.0.0.1.nip.io:18080", http.StatusMisdirectedRequest, refused},
		{"localhost.:18080", http.StatusMisdirectedRequest, refused},
		{"10.0.0.5:18080", http.StatusMisdirectedRequest, refused},
		{"[::]:18080", http.StatusMisdirectedRequest, refused},
		{"0.0.0.0:18080", http.StatusMisdirectedRequest, refused},
		{"", http.StatusMisdirectedRequest, refused},
	} {
		t.Run(tc.host, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/desk/state", nil)
			r.Host = tc.host
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status || w.Body.String() != tc.body || tc.status != 200 && w.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("Host %q: %d %q, want %d %q", tc.host, w.Code, w.Body.String(), tc.status, tc.body)
			}
		})
	}
}

// TestLoopbackHostOnlyOverTCP sends the exact request a rebinding page
// sends, through a real listener: the Host header is the attacker's.
func TestLoopbackHostOnlyOverTCP(t *testing.T) {
	srv := httptest.NewServer(LoopbackHostOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secret")
	})))
	defer srv.Close()
	for _, tc := range []struct {
		host   string
		status int
	}{
		{"", 200}, // the listener's own 127.0.0.1:port
		{"evil.example:18080", http.StatusMisdirectedRequest},
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/", nil)
		if tc.host != "" {
			req.Host = tc.host
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("Host %q: status %d, want %d", tc.host, resp.StatusCode, tc.status)
		}
		if tc.status != 200 && string(b) == "secret" {
			t.Errorf("Host %q: the wrapped handler answered", tc.host)
		}
	}
}

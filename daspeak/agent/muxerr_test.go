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
		{"GET", "/tree?a=1&access_Token=t", 404, `{"code":"not_found","error":"no such path: /tree"}` + "\n", ""},
		{"GET", "/tree?a=%zz", 404, `{"code":"not_found","error":"no such path: /tree"}` + "\n", ""},
		{"POST", "/tree", 404, `{"code":"not_found","error":"no such path: /tree"}` + "\n", ""},
		{"GET", "/agent/operations//events", 404, `{"code":"not_found","error":"no such path: /agent/operations//events is not in canonical form"}` + "\n", ""},
		{"GET", "/./tree", 404, `{"code":"not_found","error":"no such path: /./tree is not in canonical form"}` + "\n", ""},
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

// TestJSONErrorsSubtreeRedirect: GET or HEAD of a subtree pattern's root
// without its slash (/desk with "/desk/" registered) is still the mux's
// redirect to the root with the slash; nothing else changes in the path.
// A root whose path has an escape is the same case. A request with a
// query is not redirected at all: any parameter may be a credential.
func TestJSONErrorsSubtreeRedirect(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/desk/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "desk") })
	mux.HandleFunc("/a/b%20c/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "space") })
	mux.HandleFunc("GET /page/{$}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "page") })
	mux.HandleFunc("GET /x/{id}/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "x") })
	h := JSONErrors(mux)
	for _, tc := range []struct {
		method, target, location string
	}{
		{"GET", "/desk", "/desk/"},
		{"HEAD", "/desk", "/desk/"},
		{"GET", "/a/b%20c", "/a/b%20c/"},
		{"GET", "/page", "/page/"},
		{"GET", "/x/abc", "/x/abc/"},
	} {
		r := httptest.NewRequest(tc.method, tc.target, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		// The mux's own redirect (its status depends on the Go release).
		bare := httptest.NewRecorder()
		mux.ServeHTTP(bare, httptest.NewRequest(tc.method, tc.target, nil))
		if w.Code != bare.Code || w.Code/100 != 3 || w.Header().Get("Location") != tc.location {
			t.Errorf("%s %s: %d Location %q, want the mux's %d %q", tc.method, tc.target, w.Code, w.Header().Get("Location"), bare.Code, tc.location)
		}
	}
	for _, target := range []string{"/a/b%20c?token=t", "/desk?token=t", "/page?token=t", "/x/abc?token=t", "/desk?code=secret", "/desk?session=s", "/page?a=1", "/desk?"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
		if w.Code != http.StatusNotFound || w.Header().Get("Location") != "" {
			t.Errorf("GET %s: %d Location %q, want 404", target, w.Code, w.Header().Get("Location"))
		}
	}
}

// TestJSONErrorsSubtreeBeneath: a subtree pattern serves the paths beneath
// it as they are, without a redirect.
func TestJSONErrorsSubtreeBeneath(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/desk/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "desk") })
	mux.HandleFunc("GET /x/{id}/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "x") })
	h := JSONErrors(mux)
	for _, target := range []string{"/desk/state?token=t", "/desk/a/b", "/x/abc/def?token=t"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
		if w.Code != http.StatusOK || w.Header().Get("Location") != "" {
			t.Errorf("GET %s: %d Location %q, want 200", target, w.Code, w.Header().Get("Location"))
		}
	}
}

package agent

import (
	"net/http"
	"strings"
)

// catchAll is the pattern of the mux route that answers the requests no
// other route takes (handleUnrouted).
const catchAll = "/"

// handleUnrouted answers a request no route takes with the API's error
// shape: 405 method_not_allowed with Allow when the path has routes for
// other methods, else 404 not_found. (http.ServeMux would answer plain
// text, and 405 for any path under the base path because of the
// preflight route.)
func (s *Server) handleUnrouted(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != catchAll {
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
	}
	if len(allow) == 0 {
		WriteError(w, http.StatusNotFound, CodeNotFound, "no such endpoint: "+r.URL.Path)
		return
	}
	if strings.HasPrefix(r.URL.Path, s.opts.BasePath+"/") {
		allow = append(allow, http.MethodOptions) // CORS preflight
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	WriteError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+strings.Join(allow, ", "))
}

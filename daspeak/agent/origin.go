package agent

import (
	"net/http"

	"github.com/voicegate/voicegate/internal/ownorigin"
)

// refusedOrigin reports whether r comes from a page of an origin the API
// does not answer: its Origin header is present, not in
// Options.AllowedOrigins, and not the server's own. A browser sends Origin
// with every POST, with or without a preflight, so a "simple" request (a
// text/plain or form POST) from another site is refused here before it
// reaches authentication. Requests without Origin (curl, servers, a
// same-origin GET) are not affected.
//
// The server's own origin is recognised by the browser's Sec-Fetch-Site:
// same-origin (a header no page can set), or by an Origin whose host and
// port are the request's Host, so a widget page served by this server keeps
// working behind a TLS proxy that keeps the Host header. On a connection
// this server took over TLS, only an https Origin is its own: a page of
// its host over plain http is another origin. Without TLS on the
// connection (a TLS-terminating proxy in front) http and https are both
// taken as own, as the scheme the browser used cannot be told.
func (s *Server) refusedOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || s.allowed(o) {
		return false
	}
	if r.Header.Get("Sec-Fetch-Site") == "same-origin" {
		return false
	}
	return !ownorigin.Is(r, o)
}

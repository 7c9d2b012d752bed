package agent

import (
	"net"
	"net/http"
	"net/url"
	"strings"
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
// working behind a TLS proxy that keeps the Host header.
func (s *Server) refusedOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || s.allowed(o) {
		return false
	}
	if r.Header.Get("Sec-Fetch-Site") == "same-origin" {
		return false
	}
	return !sameHost(o, r.Host)
}

// sameHost reports whether origin (scheme://host[:port]) names host, an
// HTTP Host value, with the scheme's default port made explicit on both.
func sameHost(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.Path != "" {
		return false
	}
	withPort := func(h, scheme string) string {
		if _, _, err := net.SplitHostPort(h); err == nil {
			return strings.ToLower(h)
		}
		port := "80"
		if scheme == "https" {
			port = "443"
		}
		return strings.ToLower(net.JoinHostPort(strings.Trim(h, "[]"), port))
	}
	return withPort(u.Host, u.Scheme) == withPort(host, u.Scheme)
}

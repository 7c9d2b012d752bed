package agent

import (
	"net"
	"net/http"
)

// LoopbackHostOnly wraps a development server's handler (one that serves a
// development token, a fake platform or caller numbers without
// authentication) so that it answers only requests addressed to a
// loopback name: the request's Host, without its port, must be
// "localhost" (any case) or a loopback IP address (127.0.0.0/8, ::1,
// bracketed or not). Any other Host, or none, gets 421 Misdirected Request
// with the JSON error misdirected_request naming the accepted hosts, and h
// is not called.
//
// A listener on 127.0.0.1 alone does not protect such a server: a web page
// on a domain its attacker re-points at 127.0.0.1 (DNS rebinding) talks to
// it as its own origin, so the browser lets it read the answers. The Host
// header still carries the attacker's domain, which this check refuses.
// Use it together with [RequireLoopback] on the listen address.
func LoopbackHostOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !IsLoopbackRequestHost(r.Host) {
			WriteError(w, http.StatusMisdirectedRequest, CodeMisdirectedRequest, "this development server answers requests to localhost, 127.0.0.1 or [::1] only")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// IsLoopbackRequestHost reports whether host, an HTTP Host value
// ("name", "name:port", "[v6]:port", "[v6]"), names a loopback interface:
// "localhost" (any case) or a loopback IP address. It is false for "".
func IsLoopbackRequestHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return host != "" && isLoopbackHost(host)
}

// Package ownorigin tells whether a browser's Origin header names the
// server a request reached, for the origin checks of the agent API and
// its Flex helpers.
package ownorigin

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Is reports whether origin, a browser's Origin header value
// (scheme://host[:port]), is the origin of the server r reached: its host
// and port are r.Host's, with the scheme's default port made explicit on
// both, and its scheme is r's.
//
// r's scheme is known only when this server terminates TLS: with r.TLS
// set, only an https origin is own (an http page of the same host is
// another origin, which a network attacker may serve). With r.TLS nil the
// request may have come through a TLS-terminating proxy that keeps the
// Host header, which cannot be told from a plain HTTP server without
// trusting a forwarded header: both http and https are accepted there.
// Anything other than http or https, or an origin with a path, is not
// own.
func Is(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return false
	}
	switch u.Scheme {
	case "https":
	case "http":
		if r.TLS != nil {
			return false
		}
	default:
		return false
	}
	withPort := func(h string) string {
		if _, _, err := net.SplitHostPort(h); err == nil {
			return strings.ToLower(h)
		}
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		return strings.ToLower(net.JoinHostPort(strings.Trim(h, "[]"), port))
	}
	return withPort(u.Host) == withPort(r.Host)
}

// Package pagetest checks the response headers every HTML page of the
// starter servers must carry: no framing by other sites, no MIME sniffing,
// no referrer.
package pagetest

import (
	"net/http"
	"strings"
	"testing"
)

// CheckHeaders fails t unless h is the header of an HTML page that only
// frameAncestors may frame: Content-Security-Policy with the directive
// "frame-ancestors <frameAncestors>", X-Content-Type-Options nosniff and
// Referrer-Policy no-referrer; and, when frameAncestors is "'none'",
// X-Frame-Options DENY (for browsers without CSP level 2).
func CheckHeaders(t testing.TB, h http.Header, frameAncestors string) {
	t.Helper()
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type = %q, want text/html", ct)
	}
	csp := h.Get("Content-Security-Policy")
	found := false
	for _, d := range strings.Split(csp, ";") {
		if f := strings.Fields(d); len(f) > 0 && f[0] == "frame-ancestors" {
			found = strings.Join(f[1:], " ") == frameAncestors
		}
	}
	if !found {
		t.Errorf("Content-Security-Policy = %q, want frame-ancestors %s", csp, frameAncestors)
	}
	if frameAncestors == "'none'" {
		if got := h.Get("X-Frame-Options"); got != "DENY" {
			t.Errorf("X-Frame-Options = %q, want DENY", got)
		}
	}
	if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
	}
	if got := h.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy = %q, want no-referrer", got)
	}
}

package main

import (
	_ "embed"
	"net/http"
)

//go:embed console.html
var consoleHTML []byte

// serveConsole serves the agent console: one self-contained page that
// follows the calls' events over Server-Sent Events (/events).
func serveConsole(w http.ResponseWriter, r *http.Request) {
	setPageHeaders(w.Header(), "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'")
	w.Write(consoleHTML)
}

// setPageHeaders sets the headers of every HTML page the demo serves:
// csp plus frame-ancestors 'none' and X-Frame-Options DENY (no other
// site may frame a page and click its buttons), no MIME sniffing, no
// Referer, no caching.
func setPageHeaders(h http.Header, csp string) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", csp+"; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

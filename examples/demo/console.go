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
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'")
	w.Write(consoleHTML)
}

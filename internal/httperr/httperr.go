// Package httperr writes the error answers of the SDK's HTTP endpoints
// in the agent API's shape (daspeak/agent.Error), for packages that
// cannot import the agent API: {"error": message, "code": code}.
package httperr

import (
	"encoding/json"
	"net/http"
)

// Write answers status with the JSON body {"error": msg, "code": code}
// (Content-Type application/json, Cache-Control no-store,
// X-Content-Type-Options nosniff). A 503 without a Retry-After gets
// Retry-After: 1, as the agent API's.
func Write(w http.ResponseWriter, status int, code, msg string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Code    string `json:"code"`
		Message string `json:"error"`
	}{code, msg})
}

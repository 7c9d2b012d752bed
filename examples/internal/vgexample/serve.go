package vgexample

import (
	"context"
	"encoding/json"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/voicegate/voicegate/daspeak/agent"
)

// DefaultShutdownTimeout bounds a graceful shutdown.
const DefaultShutdownTimeout = agent.DefaultShutdownTimeout

// Serve runs an HTTP server for h on ln until ctx ends, then shuts it down
// gracefully; see [agent.Serve].
func Serve(ctx context.Context, log *slog.Logger, ln net.Listener, h http.Handler, timeout time.Duration, shutdown func(context.Context) error) error {
	return agent.Serve(ctx, log, ln, h, timeout, shutdown)
}

// Tracker keeps the long-lived sessions of a server; it is
// [agent.Tracker].
type Tracker = agent.Tracker

// Params reads the parameters of a request the way Twilio Functions do:
// a JSON object body (string values), or form fields and query
// parameters. Bodies are limited to 64 KiB.
func Params(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			return nil, err
		}
		v := r.URL.Query()
		for k, x := range m {
			if s, ok := x.(string); ok {
				v.Set(k, s)
			}
		}
		return v, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	return r.Form, nil
}

// WriteJSON writes v as a JSON response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) { agent.WriteJSON(w, status, v) }

// WriteError writes {"error": msg} with the given status.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, map[string]string{"error": msg})
}

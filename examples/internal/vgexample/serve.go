package vgexample

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// DefaultShutdownTimeout bounds a graceful shutdown.
const DefaultShutdownTimeout = 10 * time.Second

// Serve runs an HTTP server for h on ln until ctx ends (typically on
// SIGINT or SIGTERM, see signal.NotifyContext), then shuts it down: it
// stops accepting and, within timeout, waits for requests in flight while
// shutdown (if not nil) ends the long-lived sessions (WebSockets, event
// streams) that http.Server.Shutdown does not end itself. It returns nil
// after a shutdown caused by ctx.
func Serve(ctx context.Context, log *slog.Logger, ln net.Listener, h http.Handler, timeout time.Duration, shutdown func(context.Context) error) error {
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", timeout)
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	serr := make(chan error, 1)
	go func() {
		if shutdown == nil {
			serr <- nil
			return
		}
		serr <- shutdown(sctx)
	}()
	err := errors.Join(srv.Shutdown(sctx), <-serr)
	<-errc
	return err
}

// Tracker keeps the long-lived sessions of a server (WebSocket streams),
// each with its own context, which must be used instead of r.Context()
// after a WebSocket upgrade. Shutdown cancels them all and waits for them.
// The zero value is ready to use.
type Tracker struct {
	mu      sync.Mutex
	wg      sync.WaitGroup
	cancels map[*int]context.CancelFunc
	closed  bool
}

// Start registers a session. It returns the session's context and a done
// function that the session must call when it ends, or ok false when the
// server is shutting down.
func (t *Tracker) Start() (ctx context.Context, done func(), ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, nil, false
	}
	if t.cancels == nil {
		t.cancels = map[*int]context.CancelFunc{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	key := new(int)
	t.cancels[key] = cancel
	t.wg.Add(1)
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			t.mu.Lock()
			delete(t.cancels, key)
			t.mu.Unlock()
			cancel()
			t.wg.Done()
		})
	}, true
}

// Shutdown refuses new sessions, cancels the running ones and waits until
// they ended or ctx ends.
func (t *Tracker) Shutdown(ctx context.Context) error {
	t.mu.Lock()
	t.closed = true
	for _, c := range t.cancels {
		c()
	}
	t.mu.Unlock()
	ch := make(chan struct{})
	go func() { t.wg.Wait(); close(ch) }()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

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
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// WriteError writes {"error": msg} with the given status.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, map[string]string{"error": msg})
}

package agent

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
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

// Tracker keeps the long-lived sessions of a server (WebSocket streams,
// event streams, operations), each with its own context, which must be
// used instead of r.Context() after a WebSocket upgrade. Shutdown cancels
// them all and waits for them. The zero value is ready to use; a Tracker
// is safe for concurrent use.
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

// Wait waits until no session runs or ctx ends, without cancelling
// any; sessions may still start meanwhile.
func (t *Tracker) Wait(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		t.mu.Lock()
		n := len(t.cancels)
		t.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
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

// WriteJSON writes v as a JSON response with the given status, not
// cacheable. An encoding error is logged by nobody: v must be encodable.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// WriteError writes the API's error answer {"error":msg,"code":code}
// with the given status. msg is for humans and must hold no secret; code
// is one of the Code constants or the server's own.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	WriteJSON(w, status, &Error{Status: status, Code: code, Message: msg})
}

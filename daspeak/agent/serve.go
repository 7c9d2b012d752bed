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

// ResultGrace is how long [Serve] keeps the listener open after the drain
// ended, so that a client polling the result of a session that finished
// during the drain still gets it, and then how long it waits for the
// requests in flight before it closes their connections.
const ResultGrace = 2 * time.Second

// Serve runs an HTTP server for h on ln until ctx ends (typically on
// SIGINT or SIGTERM, see signal.NotifyContext), then shuts it down in
// this order:
//
//  1. drain: shutdown (if not nil) runs with a context bounded by
//     timeout while the listener keeps serving, so that the handler can
//     answer what a draining node answers (/readyz 503, new work 503 with
//     Retry-After, result reads, streams and event-stream reconnects of
//     work already running); shutdown must also end the long-lived
//     sessions (WebSockets, event streams) that http.Server.Shutdown does
//     not end itself;
//  2. grace: once shutdown returned, the listener serves for ResultGrace
//     more, for the results of the work that ended during the drain;
//  3. close: it stops accepting, waits up to ResultGrace for the requests
//     in flight, and closes the connections left.
//
// With shutdown nil, steps 1 and 2 are skipped. It returns nil after a
// shutdown caused by ctx, or shutdown's error.
func Serve(ctx context.Context, log *slog.Logger, ln net.Listener, h http.Handler, timeout time.Duration, shutdown func(context.Context) error) error {
	return serve(ctx, log, ln, h, timeout, ResultGrace, shutdown)
}

// serve is Serve with the grace as a parameter (tests shorten it).
func serve(ctx context.Context, log *slog.Logger, ln net.Listener, h http.Handler, timeout, grace time.Duration, shutdown func(context.Context) error) error {
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
	var derr error
	if shutdown != nil {
		log.Info("draining: the listener keeps serving until the drain ends", "timeout", timeout)
		sctx, cancel := context.WithTimeout(context.Background(), timeout)
		derr = shutdown(sctx)
		cancel()
		log.Info("drained: serving result reads a little longer", "grace", grace)
		select {
		case <-time.After(grace):
		case err := <-errc: // the listener failed meanwhile
			return errors.Join(derr, err)
		}
	}
	log.Info("shutting down: the listener closes")
	cctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(cctx)
	if err != nil {
		// Requests still in flight after the grace: close them.
		srv.Close()
	}
	<-errc
	return errors.Join(derr, err)
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
// is one of the Code constants or the server's own. A 503 (the server
// drains, or a dependency is unreachable) carries Retry-After: 1 unless
// the handler set its own (RFC 9110 section 10.2.3).
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	WriteJSON(w, status, &Error{Status: status, Code: code, Message: msg})
}

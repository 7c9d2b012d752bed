package agent

import (
	"context"
	"io"
	"net/http"
	"time"
)

// streamGrace is how long Shutdown lets the event streams of ended
// operations send their terminal event before closing them.
const streamGrace = 2 * time.Second

// readyTimeout bounds the Log's readiness check.
const readyTimeout = time.Second

// Drain stops the server gracefully, for a SIGTERM: it refuses new
// operations at once (503, and ReadyHandler answers 503 so the load
// balancer sends new work elsewhere), lets the running operations finish
// until ctx ends, then ends the rest with error-cancelled and closes the
// event streams, as Shutdown does. Every operation ends with a terminal
// event. It returns ctx's error when operations had to be cut, nil when
// all finished.
func (s *Server) Drain(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	s.log.Info("agent: draining: no new operations; waiting for the running ones")
	err := s.opsTrack.Wait(ctx)
	if err != nil {
		s.log.Warn("agent: drain deadline: ending the running operations")
	}
	// Shutdown needs a little time to publish the cut operations'
	// terminal events even when ctx has ended.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), streamGrace+notifyTimeout)
	defer cancel()
	if serr := s.Shutdown(sctx); serr != nil {
		return serr
	}
	return err
}

// Draining reports whether Drain or Shutdown was called.
func (s *Server) Draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining || s.closed
}

// HealthHandler answers liveness probes (/healthz): 200 "ok" while the
// process serves HTTP.
func (s *Server) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, "ok\n")
	})
}

// ReadyHandler answers readiness probes (/readyz): 200 "ready", or 503
// with the reason while the server drains or shuts down, or while its Log
// is not ready (a NATS server unreachable).
func (s *Server) ReadyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if s.Draining() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.ops.Ready(ctx); err != nil {
			s.log.Warn("agent: not ready", "err", err)
			http.Error(w, "operation log unreachable", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
}

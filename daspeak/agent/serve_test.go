package agent

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestServeKeepsListeningWhileDraining: once ctx ends, Serve runs the
// drain with the listener still serving (a draining handler answers 503,
// reads are served), keeps serving for the grace after the drain, and
// only then closes the listener.
func TestServeKeepsListeningWhileDraining(t *testing.T) {
	var draining atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	mux.HandleFunc("GET /result", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "done\n") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	get := func(path string) (int, error) {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
		resp, err := c.Get(base + path)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	inDrain, release, drained := make(chan struct{}), make(chan struct{}), make(chan struct{})
	errc := make(chan error, 1)
	const grace = 300 * time.Millisecond
	go func() {
		errc <- serve(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), ln, mux, 10*time.Second, grace, func(context.Context) error {
			draining.Store(true)
			close(inDrain)
			<-release
			close(drained)
			return nil
		})
	}()
	if code, err := get("/readyz"); err != nil || code != http.StatusOK {
		t.Fatalf("/readyz before: %d %v", code, err)
	}
	cancel()
	<-inDrain
	if code, err := get("/readyz"); err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while draining: %d %v (want 503 from a listener still open)", code, err)
	}
	if code, err := get("/result"); err != nil || code != http.StatusOK {
		t.Fatalf("result read while draining: %d %v", code, err)
	}
	close(release)
	<-drained
	if code, err := get("/result"); err != nil || code != http.StatusOK {
		t.Fatalf("result read in the grace after the drain: %d %v", code, err)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the drain and the grace")
	}
	if _, err := get("/readyz"); err == nil {
		t.Fatal("the listener still serves after Serve returned")
	}
}

// TestWriteErrorRetryAfter: a 503 error carries Retry-After unless the
// handler set its own.
func TestWriteErrorRetryAfter(t *testing.T) {
	rec := &recorder{h: http.Header{}}
	WriteError(rec, http.StatusServiceUnavailable, CodeInternal, "server shutting down")
	if rec.h.Get("Retry-After") != "1" {
		t.Errorf("503 without Retry-After: %v", rec.h)
	}
	rec = &recorder{h: http.Header{}}
	rec.h.Set("Retry-After", "30")
	WriteError(rec, http.StatusServiceUnavailable, CodeInternal, "x")
	if rec.h.Get("Retry-After") != "30" {
		t.Errorf("Retry-After overwritten: %v", rec.h)
	}
	rec = &recorder{h: http.Header{}}
	WriteError(rec, http.StatusBadRequest, CodeBadRequest, "x")
	if rec.h.Get("Retry-After") != "" {
		t.Errorf("400 with Retry-After: %v", rec.h)
	}
}

package agent

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak/offline"
)

func TestEngineConfig(t *testing.T) {
	e, desc, err := EngineConfig{Offline: true}.New()
	if err != nil || desc != "offline" {
		t.Fatal(desc, err)
	}
	if _, ok := e.(*offline.Engine); !ok {
		t.Fatalf("offline engine is %T", e)
	}
	if _, _, err := (EngineConfig{Environment: "sandbox-eu"}).New(); err == nil {
		t.Fatal("cloud environment without API key accepted")
	}
	if _, _, err := (EngineConfig{Environment: "mars", APIKey: "k"}).New(); err == nil {
		t.Fatal("unknown environment accepted")
	}
	_, desc, err = EngineConfig{Environment: "production-us", APIKey: "secret-key"}.New()
	if err != nil || !strings.Contains(desc, "https://") || strings.Contains(desc, "secret-key") {
		t.Fatalf("desc %q, %v", desc, err)
	}
	_, desc, err = EngineConfig{URL: "http://127.0.0.1:1/daspeak/v1"}.New()
	if err != nil || desc != "das-Peak http://127.0.0.1:1/daspeak/v1" {
		t.Fatalf("desc %q, %v", desc, err)
	}
}

func TestFlags(t *testing.T) {
	t.Setenv("DASPEAK_OFFLINE", "true")
	t.Setenv("DASPEAK_APIKEY", "k")
	t.Setenv("DASPEAK_MODEL", "m")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var ec EngineConfig
	var sf SessionFlags
	ec.Flags(fs)
	sf.Flags(fs)
	if err := fs.Parse([]string{"-daspeak-env", "production-eu", "-score-threshold", "0.7", "-audio-total-duration", "6s"}); err != nil {
		t.Fatal(err)
	}
	if !ec.Offline || ec.APIKey != "k" || ec.Environment != "production-eu" {
		t.Fatalf("engine %+v", ec)
	}
	if fs.Lookup("daspeak-apikey") != nil {
		t.Fatal("the API key must not be a flag")
	}
	cfg := sf.Config()
	if cfg.ScoreThreshold != 0.7 || cfg.AudioTotalDuration != 6*time.Second || cfg.ModelHash != "m" {
		t.Fatalf("session %+v", cfg)
	}
	t.Setenv("X_B", "nonsense")
	t.Setenv("X_S", "v")
	if Env("X_S", "d") != "v" || Env("X_UNSET_", "d") != "d" || EnvBool("X_B", true) != true || EnvBool("DASPEAK_OFFLINE", false) != true {
		t.Fatal("Env, EnvBool")
	}
}

func TestBinder(t *testing.T) {
	b := NewBinder(nil)
	tok := b.Sign(time.Minute, "CA1", "+34", "verify")
	if err := b.Verify(tok, "CA1", "+34", "verify"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		tok    string
		fields []string
	}{
		{"other call", tok, []string{"CA2", "+34", "verify"}},
		{"shifted fields", tok, []string{"CA1+", "34", "verify"}},
		{"other op", tok, []string{"CA1", "+34", "register"}},
		{"fewer fields", tok, []string{"CA1", "+34"}},
		{"no dot", "abc", []string{"CA1", "+34", "verify"}},
		{"bad exp", "x." + strings.Split(tok, ".")[1], []string{"CA1", "+34", "verify"}},
		{"other key", NewBinder(nil).Sign(time.Minute, "CA1", "+34", "verify"), []string{"CA1", "+34", "verify"}},
		{"expired", b.Sign(-time.Minute, "CA1", "+34", "verify"), []string{"CA1", "+34", "verify"}},
		{"bad base64", strings.Split(tok, ".")[0] + ".!!", []string{"CA1", "+34", "verify"}},
		{"later expiry", "9" + tok, []string{"CA1", "+34", "verify"}},
	} {
		if err := b.Verify(c.tok, c.fields...); !errors.Is(err, ErrBinding) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	k := []byte("0123456789abcdef0123456789abcdef")
	if err := NewBinder(k).Verify(NewBinder(k).Sign(time.Minute, "a"), "a"); err != nil {
		t.Fatalf("same key, two binders: %v", err)
	}
}

func TestWriteError(t *testing.T) {
	w := httptest.NewRecorder()
	WriteError(w, 409, CodeBusy, "an operation is already running")
	if w.Code != 409 || w.Body.String() != `{"code":"busy","error":"an operation is already running"}`+"\n" ||
		w.Header().Get("Content-Type") != "application/json" || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %q %v", w.Code, w.Body.String(), w.Header())
	}
	e := &Error{Status: 404, Code: CodeNotFound, Message: "m"}
	if e.Error() != "agent: 404 not_found: m" {
		t.Fatal(e.Error())
	}
}

func TestServeAndTracker(t *testing.T) {
	var tr Tracker
	started := make(chan struct{})
	ended := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/long", func(w http.ResponseWriter, r *http.Request) {
		ctx, done, ok := tr.Start()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		defer done()
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		close(started)
		<-ctx.Done() // a session that only ends on shutdown
		close(ended)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- Serve(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), ln, mux, 5*time.Second, tr.Shutdown)
	}()
	resp, err := http.Get("http://" + ln.Addr().String() + "/long")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-started
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	<-ended
	if _, _, ok := tr.Start(); ok {
		t.Fatal("session started after shutdown")
	}
	io.Copy(io.Discard, bufio.NewReader(resp.Body))
}

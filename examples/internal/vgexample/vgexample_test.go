package vgexample

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/offline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCredentialStore(t *testing.T) {
	ctx := context.Background()
	for _, spec := range []string{"memory", "sqlite:" + filepath.Join(t.TempDir(), "c.db")} {
		for _, key := range []string{"", base64.StdEncoding.EncodeToString(make([]byte, 32))} {
			t.Run(strings.SplitN(spec, ":", 2)[0]+"/encrypted="+boolStr(key != ""), func(t *testing.T) {
				store, closeFn, err := OpenStore(ctx, spec, key)
				if err != nil {
					t.Fatal(err)
				}
				defer closeFn()
				dir := t.TempDir()
				var cs daspeak.CredentialStore = CredentialStore{Store: store, AudioDir: dir}
				if err := cs.StoreCredential(ctx, "+34600000000", "cred-1", "model-1", []byte("RIFF-audio")); err != nil {
					t.Fatal(err)
				}
				// Upsert: a retry after a failure overwrites.
				if err := cs.StoreCredential(ctx, "+34600000000", "cred-2", "model-1", []byte("RIFF-audio-2")); err != nil {
					t.Fatal(err)
				}
				rec, err := store.Get(ctx, "+34600000000")
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256([]byte("+34600000000"))
				want := hex.EncodeToString(sum[:16]) + ".wav"
				if rec.Credential != "cred-2" || rec.ModelHash != "model-1" || rec.AudioRef != want {
					t.Fatalf("record %+v", rec)
				}
				b, err := os.ReadFile(filepath.Join(dir, want))
				if err != nil || string(b) != "RIFF-audio-2" {
					t.Fatalf("audio file: %q %v", b, err)
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 1 {
					t.Fatalf("temporary files left: %v", ents)
				}
				if err := cs.StoreCredential(ctx, "", "c", "m", nil); !errors.Is(err, credstore.ErrInvalidID) {
					t.Fatalf("empty id: %v", err)
				}
			})
		}
	}
	for _, c := range []struct{ spec, key string }{{"postgres:x", ""}, {"sqlite:", ""}, {"memory", "not base64!"}, {"memory", "AAAA"}} {
		if _, _, err := OpenStore(ctx, c.spec, c.key); err == nil {
			t.Errorf("OpenStore(%q, %q) succeeded", c.spec, c.key)
		}
	}
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

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
		{"no dot", "abc", []string{"CA1", "+34", "verify"}},
		{"bad exp", "x." + strings.Split(tok, ".")[1], []string{"CA1", "+34", "verify"}},
		{"other key", NewBinder(nil).Sign(time.Minute, "CA1", "+34", "verify"), []string{"CA1", "+34", "verify"}},
		{"expired", b.Sign(-time.Minute, "CA1", "+34", "verify"), []string{"CA1", "+34", "verify"}},
		{"bad base64", strings.Split(tok, ".")[0] + ".!!", []string{"CA1", "+34", "verify"}},
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

func TestHub(t *testing.T) {
	h := NewHub(2, 2)
	h.Publish(Message{Event: "old", Data: []byte("0")}, "a")
	s := h.Subscribe("a", "b")
	if m := <-s.C(); m.Event != "old" {
		t.Fatalf("replay: %+v", m)
	}
	// One message published on two topics of one subscriber arrives once.
	h.Publish(Message{Event: "x", Data: []byte("1")}, "a", "b")
	if m := <-s.C(); m.Event != "x" || len(s.C()) != 0 {
		t.Fatalf("fan-out: %+v, %d queued", m, len(s.C()))
	}
	// Overflow drops the oldest.
	for i := range 5 {
		h.Publish(Message{Event: "e", Data: []byte{'0' + byte(i)}}, "b")
	}
	if s.Dropped() != 3 {
		t.Fatalf("dropped %d, want 3", s.Dropped())
	}
	if m := <-s.C(); string(m.Data) != "3" {
		t.Fatalf("oldest kept: %s", m.Data)
	}
	<-s.C()
	s.Close()
	s.Close()
	h.Publish(Message{Event: "after"}, "a")
	if len(s.C()) != 0 {
		t.Fatal("message after Close")
	}
	// Only the last message of the 2 most recent topics is remembered.
	h.Publish(Message{Event: "c"}, "c")
	if s := h.Subscribe("a"); len(s.C()) != 0 {
		t.Fatal("topic a still remembered")
	} else {
		s.Close()
	}
	if len(h.subs) != 0 {
		t.Fatalf("subscriptions left: %v", h.subs)
	}
	if !IsResult("result-success") || !IsResult("error-audio") || IsResult("progress") || IsResult("stream-requested") {
		t.Fatal("IsResult")
	}
}

func TestEventMessage(t *testing.T) {
	m := EventMessage(daspeak.Event{Type: daspeak.EventResultSuccess, Operation: daspeak.OperationRegister, Credential: "secret-cred", Audio: []byte("RIFF")})
	if m.Event != "result-success" || strings.Contains(string(m.Data), "secret-cred") || !strings.Contains(string(m.Data), `"operation":"register"`) {
		t.Fatalf("%s %s", m.Event, m.Data)
	}
}

func TestServeSSE(t *testing.T) {
	h := NewHub(0, 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ServeSSE(r.Context(), w, r, h.Subscribe("t"), 10*time.Millisecond, func(m Message) bool { return IsResult(m.Event) })
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h.Publish(Message{Event: "progress", Data: []byte("{\"a\":\n1}")}, "t")
	h.Publish(Message{Event: "result-success", Data: []byte("{}")}, "t")
	b, err := io.ReadAll(resp.Body) // the handler returns after the result
	if err != nil {
		t.Fatal(err)
	}
	body := strings.ReplaceAll(string(b), ": keep-alive\n\n", "")
	want := "event: progress\ndata: {\"a\":\ndata: 1}\n\nevent: result-success\ndata: {}\n\n"
	if body != want {
		t.Fatalf("body %q, want %q", body, want)
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

func TestParams(t *testing.T) {
	for _, c := range []struct {
		ct, body string
	}{
		{"application/json", `{"Token":"t","CallSid":"CA1","n":1}`},
		{"application/x-www-form-urlencoded", "Token=t&CallSid=CA1"},
	} {
		r := httptest.NewRequest(http.MethodPost, "/x?q=1", strings.NewReader(c.body))
		r.Header.Set("Content-Type", c.ct)
		p, err := Params(httptest.NewRecorder(), r)
		if err != nil || p.Get("Token") != "t" || p.Get("CallSid") != "CA1" || p.Get("q") != "1" {
			t.Errorf("%s: %v %v", c.ct, p, err)
		}
	}
	r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(`{"Token":`))
	r.Header.Set("Content-Type", "application/json")
	if _, err := Params(httptest.NewRecorder(), r); err == nil {
		t.Error("truncated JSON accepted")
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/audiohook/audiohooktest"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak/offline"
)

const genesysToken = "genesys-agent-token"

// fakeUsersMe is Genesys Cloud's GET /api/v2/users/me for one token, and
// GET /api/v2/conversations/{id}: that agent sees every conversation.
func fakeUsersMe(t *testing.T) *httptest.Server {
	f := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conv, isConv := strings.CutPrefix(r.URL.Path, "/api/v2/conversations/")
		if (r.URL.Path != "/api/v2/users/me" && !isConv) || r.Header.Get("Authorization") != "Bearer "+genesysToken {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"status":401,"code":"bad.credentials"}`)
			return
		}
		if isConv {
			io.WriteString(w, `{"id":"`+conv+`"}`)
			return
		}
		io.WriteString(w, `{"id":"6f3a1c2e-1111-4222-8333-444455556666","name":"Ana Agent"}`)
	}))
	t.Cleanup(f.Close)
	return f
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAgentMode runs the Genesys agent flow: the conversation's session
// stays open; the agent, logged in to Genesys, loads the widget page and
// registers the caller from the moment of the click; the result reaches
// the widget's event stream and Genesys as an AudioHook event, and the
// session is not disconnected.
func TestAgentMode(t *testing.T) {
	t.Setenv("TEST_AUDIOHOOK_KEYS", `{"`+apiKey+`":"`+secretB64+`"}`)
	g := fakeUsersMe(t)
	// A buffer for the whole recording: the client sends it at once.
	cfg := &config{KeysEnv: "TEST_AUDIOHOOK_KEYS", Progress: true, Buffer: 30 * time.Second, Agent: agentConfig{
		Enabled: true, Region: "mypurecloud.ie", ClientID: "client-1", APIURL: g.URL,
	}}
	cfg.Session.AudioTotalDuration = 3 * time.Second
	var logs lockedBuf
	store := credstore.NewMemory()
	srv, err := newServer(cfg, slog.New(slog.NewTextHandler(&logs, nil)), offline.New(nil), store, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.handler())
	hc := &http.Client{Timeout: 30 * time.Second}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
		hc.CloseIdleConnections()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The interaction widget page.
	resp, err := hc.Get(hs.URL + "/genesys/widget?conversationId=x&gcHostOrigin=https://apps.mypurecloud.ie")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(page, []byte("voicegate-agent")) || !bytes.Contains(page, []byte(`"clientId":"client-1"`)) {
		t.Fatalf("widget page: %d %s", resp.StatusCode, page)
	}
	if resp, err := hc.Get(hs.URL + "/agent/voicegate-agent.js"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("widget script: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	conv := audiohooktest.NewUUID()
	c, err := audiohooktest.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+wsPath, &audiohooktest.DialOptions{
		APIKey: apiKey, Secret: secret, ConversationID: conv, PingInterval: -1,
		Participant: &wire.Participant{ID: audiohooktest.NewUUID(), ANI: "tel:+34600000000", ANIName: "Caller", DNIS: "+18005550100"},
	})
	if err != nil {
		t.Fatal(err)
	}
	post := func(token, path string, body any) (int, map[string]any) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/agent"+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if code, m := post("forged", "/status", map[string]any{"call_id": conv}); code != 401 {
		t.Fatalf("forged token: %d %v", code, m)
	}
	var status map[string]any
	for deadline := time.Now().Add(5 * time.Second); ; {
		var code int
		if code, status = post(genesysToken, "/status", map[string]any{"call_id": conv}); code == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if status["caller_id"] != "+34600000000" || status["registered"] != false {
		t.Fatalf("status %v", status)
	}
	code, op := post(genesysToken, "/register", map[string]any{"call_id": conv})
	if code != 202 {
		t.Fatalf("register: %d %v", code, op)
	}
	wav, err := audiohooktest.WAVSource(testdata("voices/slt_1.wav"))
	if err != nil {
		t.Fatal(err)
	}
	streamed := make(chan error, 1)
	go func() { streamed <- c.Stream(ctx, wav, &audiohooktest.StreamOptions{Fast: true}) }()
	resp, err = hc.Get(hs.URL + op["events_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var last map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			last = nil
			json.Unmarshal([]byte(d), &last)
		}
	}
	resp.Body.Close()
	if last["type"] != "result-success" {
		t.Fatalf("register ended with %v", last)
	}
	msg, err := c.Next(ctx)
	if err != nil || msg.Type != wire.TypeEvent || !bytes.Contains(msg.Parameters, []byte(`"voicegate.result"`)) {
		t.Fatalf("Genesys got %+v %v", msg, err)
	}
	if err := <-streamed; err != nil {
		t.Fatalf("the session did not stay open: %v", err)
	}
	if rec, err := store.Get(ctx, "+34600000000"); err != nil || rec.Credential == "" {
		t.Fatalf("stored %+v %v", rec, err)
	}
	if err := c.Close(ctx, wire.CloseEnd); err != nil {
		t.Fatal(err)
	}
}

// TestAgentModeGenesysDown: when Genesys Cloud cannot judge the agent's
// token (its API answers 503), the agent API answers 503 auth_unavailable
// and the log blames Genesys, not the agent's token.
func TestAgentModeGenesysDown(t *testing.T) {
	t.Setenv("TEST_AUDIOHOOK_KEYS", `{"`+apiKey+`":"`+secretB64+`"}`)
	g := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer g.Close()
	cfg := &config{KeysEnv: "TEST_AUDIOHOOK_KEYS", Agent: agentConfig{
		Enabled: true, Region: "mypurecloud.ie", ClientID: "client-1", APIURL: g.URL,
	}}
	var logs lockedBuf
	srv, err := newServer(cfg, slog.New(slog.NewTextHandler(&logs, nil)), offline.New(nil), credstore.NewMemory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.shutdown(context.Background())
	req := httptest.NewRequest(http.MethodPost, "/agent/status", strings.NewReader(`{"call_id":"`+audiohooktest.NewUUID()+`"}`))
	req.Header.Set("Authorization", "Bearer "+genesysToken)
	w := httptest.NewRecorder()
	srv.handler().ServeHTTP(w, req)
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"code":"auth_unavailable"`) {
		t.Fatalf("answer %d %s", w.Code, w.Body)
	}
	if l := logs.String(); !strings.Contains(l, "Genesys Cloud API unavailable") || strings.Contains(l, "token refused") || strings.Contains(l, genesysToken) {
		t.Fatalf("log %s", l)
	}
}

func TestStartupChecks(t *testing.T) {
	t.Setenv("STATIC_API_KEY_MAP", `{"`+apiKey+`":"`+secretB64+`"}`)
	missing := filepath.Join(t.TempDir(), "no-such-folder", "creds.db")
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"insecure auth beyond loopback", []string{"-insecure-skip-auth", "-listen", "0.0.0.0:0"}, []string{"-insecure-skip-auth", "loopback"}},
		{"sqlite in a missing folder", []string{"-store", "sqlite:" + missing}, []string{"does not exist", "mkdir -p " + filepath.Dir(missing)}},
		{"agent without region", []string{"-agent"}, []string{"-genesys-region", "-genesys-client-id"}},
		{"agent with a clear-text api beyond loopback", []string{"-agent", "-genesys-region", "mypurecloud.ie", "-genesys-client-id", "c", "-genesys-api-url", "http://10.0.0.1", "-listen", "0.0.0.0:0"}, []string{"not TLS"}},
		{"agent with an unknown region", []string{"-agent", "-genesys-region", "attacker.example", "-genesys-client-id", "c"}, []string{"unknown Genesys Cloud region"}},
		{"audio dir without key", []string{"-audio-dir", t.TempDir()}, []string{"ENROLMENT_AUDIO_KEY"}},
		{"fake genesys without agent", []string{"-fake-genesys"}, []string{"-fake-genesys", "give -agent"}},
		{"fake genesys beyond loopback", []string{"-agent", "-fake-genesys", "-listen", "0.0.0.0:0"}, []string{"local trials only", "loopback"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := run(context.Background(), append([]string{"-offline", "-listen", "127.0.0.1:0"}, c.args...), io.Discard, func(net.Addr) { t.Error("started") })
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	// The offline engine is announced as no security control.
	ctx, cancel := context.WithCancel(context.Background())
	var logs lockedBuf
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-offline", "-listen", "127.0.0.1:0"}, &logs, func(net.Addr) { cancel() })
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "not a security control") {
		t.Fatalf("log %s", logs.String())
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// server is a running twilio-flex.
type server struct {
	t    *testing.T
	base string
	logs *syncBuffer
	hc   *http.Client
}

// start runs the command with args until the test ends.
func start(t *testing.T, args ...string) *server {
	t.Helper()
	s := &server{t: t, logs: &syncBuffer{}, hc: &http.Client{Timeout: 30 * time.Second}}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, append([]string{"-listen", "127.0.0.1:0"}, args...), s.logs, func(a net.Addr) { addr <- a })
	}()
	select {
	case a := <-addr:
		s.base = "http://" + a.String()
	case err := <-errc:
		cancel()
		t.Fatalf("run: %v\n%s", err, s.logs)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
		s.hc.CloseIdleConnections()
		if testing.Verbose() {
			t.Log(s.logs)
		}
	})
	return s
}

func (s *server) post(token, path string, body any) (int, map[string]any) {
	s.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, s.base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// events reads an operation's event stream to its end and returns the
// events' data.
func (s *server) events(path string) []map[string]any {
	s.t.Helper()
	resp, err := s.hc.Get(s.base + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var m map[string]any
			if err := json.Unmarshal([]byte(d), &m); err != nil {
				s.t.Fatal(err)
			}
			out = append(out, m)
		}
	}
	return out
}

func voicesDir(t *testing.T) string {
	d, err := filepath.Abs("../../testdata/voices")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestFakeTwilioFlow tries the whole Flex flow as a user would with
// -fake-twilio: the local page gives the widget a Flex token and a call;
// register and verify start Media Streams over the fake's REST API, the
// fake plays recordings of one speaker into them, and the offline engine
// registers and verifies.
func TestFakeTwilioFlow(t *testing.T) {
	s := start(t, "-fake-twilio", "-fake-fast", "-offline", "-voices-dir", voicesDir(t), "-fake-voice", "slt", "-audio-total-duration", "3s")
	if !strings.Contains(s.logs.String(), "not a security control") {
		t.Errorf("no warning about the offline engine: %s", s.logs)
	}
	resp, err := s.hc.Get(s.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`<voicegate-agent security-token="([^"]+)" call-sid="(CA[0-9a-f]{32})" caller-id="([^"]+)"`).FindSubmatch(page)
	if m == nil || !bytes.Contains(page, []byte(`<script src="/agent/voicegate-agent.js">`)) {
		t.Fatalf("page %s", page)
	}
	token, call, caller := string(m[1]), string(m[2]), strings.ReplaceAll(string(m[3]), "&#43;", "+")
	if resp, err := s.hc.Get(s.base + "/agent/voicegate-agent.js"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("widget: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if code, m := s.post("forged", "/agent/status", map[string]any{"call_id": call, "caller_id": caller}); code != 401 {
		t.Fatalf("forged token: %d %v", code, m)
	}
	if code, m := s.post(token, "/agent/status", map[string]any{"call_id": call, "caller_id": caller}); code != 200 || m["registered"] != false {
		t.Fatalf("status: %d %v", code, m)
	}
	for _, path := range []string{"/agent/register", "/agent/verify"} {
		code, op := s.post(token, path, map[string]any{"call_id": call, "caller_id": caller})
		if code != 202 {
			t.Fatalf("%s: %d %v", path, code, op)
		}
		evs := s.events(op["events_url"].(string))
		if len(evs) < 2 || evs[0]["type"] != "started" || evs[len(evs)-1]["type"] != "result-success" {
			t.Fatalf("%s events %v", path, evs)
		}
	}
	// The extension's voice token carries the prefixed identity.
	code, vt := s.post(token, "/flex/voice-token", nil)
	if code != 200 || vt["identity"] != "ext_agent_40example_2Dcom" || vt["token"] == "" {
		t.Fatalf("voice token: %d %v", code, vt)
	}
	if code, _ := s.post("forged", "/flex/voice-token", nil); code != 401 {
		t.Fatalf("voice token, forged Flex token: %d", code)
	}
	code, wc := s.post("", "/flex/webchat", map[string]any{"FriendlyName": "Ana"})
	if code != 201 || !strings.HasPrefix(wc["conversation_sid"].(string), "CH") || wc["token"] == "" {
		t.Fatalf("web chat: %d %v", code, wc)
	}
	if strings.Contains(s.logs.String(), token) {
		t.Fatal("the Flex token reached the log")
	}
}

// TestWrongServerCredentials: with an auth token Twilio refuses, the log
// blames the server's configuration, not the agent's token, and the voice
// token endpoint answers 503 auth_unavailable rather than 401.
func TestWrongServerCredentials(t *testing.T) {
	const apiKey = "SK00000000000000000000000000000001"
	fake := twiliotest.NewServer(&twiliotest.ServerOptions{APIKeys: map[string]string{apiKey: "api-secret"}})
	defer fake.Close()
	fake.AddFlexToken("good-token", twilio.FlexIdentity{Identity: "alice", Expiration: time.Now().Add(time.Hour)})
	for _, c := range []struct {
		name, authToken, apiSecret string
		wantStatus                 int
		wantVoice                  int // 0: no API key, no voice token endpoint
		wantLog, notLog            string
	}{
		{"right credentials", fake.AuthToken(), "api-secret", 200, 200, "flex token refused", "server misconfigured"},
		{"wrong auth token", "a-stale-auth-token", "", 503, 0, "server misconfigured", "flex token refused"},
		{"wrong api key secret", fake.AuthToken(), "a-stale-secret", 503, 503, "server misconfigured", "flex token refused"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("TWILIO_ACCOUNT_SID", fake.AccountSID())
			t.Setenv("TWILIO_AUTH_TOKEN", c.authToken)
			if c.apiSecret != "" {
				t.Setenv("TWILIO_API_KEY", apiKey)
			} else {
				t.Setenv("TWILIO_API_KEY", "")
			}
			t.Setenv("TWILIO_API_SECRET", c.apiSecret)
			s := start(t, "-offline", "-twilio-base-url", fake.URL)
			code, m := s.post("good-token", "/agent/status", map[string]any{"call_id": "CA00000000000000000000000000000001", "caller_id": "+34600000000"})
			if code != c.wantStatus || (code == 503 && m["code"] != "auth_unavailable") {
				t.Fatalf("status: %d %v", code, m)
			}
			// An invalid token is still the agent's: 401.
			if code, m := s.post("forged-token", "/agent/status", map[string]any{"call_id": "CA00000000000000000000000000000001", "caller_id": "+34600000000"}); c.wantStatus == 200 && code != 401 {
				t.Fatalf("forged token: %d %v", code, m)
			}
			if c.wantVoice != 0 {
				code, m = s.post("good-token", "/flex/voice-token", nil)
				if code != c.wantVoice || (code == 503 && m["code"] != "auth_unavailable") {
					t.Fatalf("voice token: %d %v", code, m)
				}
			}
			logs := s.logs.String()
			if !strings.Contains(logs, c.wantLog) || strings.Contains(logs, c.notLog) {
				t.Fatalf("log %s", logs)
			}
		})
	}
}

func TestStartupErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-folder", "creds.db")
	for _, c := range []struct {
		name    string
		env     map[string]string
		args    []string
		want    []string
		notWant string
	}{
		{"no credentials", nil, nil, []string{"TWILIO_AUTH_TOKEN", "an API key cannot replace it", "-fake-twilio"}, "(or TWILIO_API_KEY"},
		{"api key instead of auth token", map[string]string{"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_API_KEY": "SK1", "TWILIO_API_SECRET": "s"}, nil,
			[]string{"TWILIO_AUTH_TOKEN", "an API key cannot replace it"}, "(or TWILIO_API_KEY"},
		{"sqlite in a missing folder", map[string]string{"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"}, []string{"-store", "sqlite:" + missing},
			[]string{"does not exist", "mkdir -p " + filepath.Dir(missing)}, "out of memory"},
		{"fake twilio beyond loopback", nil, []string{"-fake-twilio", "-listen", "0.0.0.0:0"}, []string{"loopback"}, ""},
		{"audio dir without key", map[string]string{"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"}, []string{"-audio-dir", t.TempDir()}, []string{"ENROLMENT_AUDIO_KEY"}, ""},
		{"fake twilio without voices", nil, []string{"-fake-twilio", "-listen", "127.0.0.1:0", "-voices-dir", t.TempDir()}, []string{"-fake-wav"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, k := range []string{"TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY", "TWILIO_API_SECRET", "LISTEN"} {
				t.Setenv(k, c.env[k])
			}
			var logs syncBuffer
			err := run(context.Background(), append([]string{"-offline", "-listen", "127.0.0.1:0"}, c.args...), &logs, func(net.Addr) {
				t.Error("the server started")
			})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if c.notWant != "" && strings.Contains(err.Error(), c.notWant) {
				t.Errorf("error %q suggests %q", err, c.notWant)
			}
		})
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the missing folder was created")
	}
}

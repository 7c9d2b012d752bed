package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

	"github.com/voicegate/voicegate/internal/pagetest"
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
	// Another site must not frame the page and click the widget's buttons.
	pagetest.CheckHeaders(t, resp.Header, "'none'")
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
	// The page's call is the fake caller's: no other number on it; a call
	// that is not one of the agent's accepted TaskRouter tasks is refused
	// before it is looked up.
	if !strings.Contains(s.logs.String(), "agents act only on the calls of their accepted TaskRouter tasks") {
		t.Errorf("-fake-twilio does not keep agents to their calls: %s", s.logs)
	}
	for _, c := range []struct {
		path string
		body map[string]any
		code int
		want map[string]any
	}{
		{"/agent/register", map[string]any{"call_id": call, "caller_id": "+34911111111"}, 400, map[string]any{"code": "bad_caller_id"}},
		{"/agent/delete", map[string]any{"call_id": "CA00000000000000000000000000000000", "caller_id": "+34911111111"}, 403, map[string]any{"code": "forbidden"}},
		// A call id that is not a call SID is malformed, not forbidden:
		// 400, whoever asks, the stop too.
		{"/agent/status", map[string]any{"call_id": "CAnotacall", "caller_id": "+34911111111"}, 400, map[string]any{"code": "bad_request"}},
		{"/agent/stop", map[string]any{"call_id": "CAnotacall", "request_id": "3b241101-e2bb-4255-8caf-4136c566a962"}, 400, map[string]any{"code": "bad_request", "error": "call_id is not a call id of this platform"}},
		{"/agent/stop", map[string]any{"call_id": "CAnotacall"}, 400, map[string]any{"code": "bad_request"}},
		{"/agent/stop", map[string]any{"call_id": "CA00000000000000000000000000000000", "request_id": "3b241101-e2bb-4255-8caf-4136c566a962"}, 403, map[string]any{"code": "forbidden"}},
		{"/agent/status", map[string]any{"call_id": call, "caller_id": ""}, 200, map[string]any{"call_in_progress": true, "caller_id": caller}},
	} {
		code, m := s.post(token, c.path, c.body)
		ok := code == c.code
		for k, v := range c.want {
			ok = ok && m[k] == v
		}
		if !ok {
			t.Fatalf("%s %v: %d %v", c.path, c.body, code, m)
		}
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
			s := start(t, "-offline", "-twilio-base-url", fake.URL, "-any-agent-any-call")
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
		{"no workspace", map[string]string{"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"}, nil, []string{"TWILIO_WORKSPACE_SID", "-any-agent-any-call"}, ""},
		{"no credentials", nil, nil, []string{"TWILIO_AUTH_TOKEN", "an API key cannot replace it", "-fake-twilio"}, "(or TWILIO_API_KEY"},
		{"api key instead of auth token", map[string]string{"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_API_KEY": "SK1", "TWILIO_API_SECRET": "s"}, nil,
			[]string{"TWILIO_AUTH_TOKEN", "an API key cannot replace it"}, "(or TWILIO_API_KEY"},
		{"sqlite in a missing folder", map[string]string{"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"}, []string{"-store", "sqlite:" + missing},
			[]string{"does not exist", "mkdir -p " + filepath.Dir(missing)}, "out of memory"},
		{"fake twilio beyond loopback", nil, []string{"-fake-twilio", "-listen", "0.0.0.0:0"}, []string{"loopback"}, ""},
		{"audio dir without key", map[string]string{"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"}, []string{"-audio-dir", t.TempDir()}, []string{"ENROLMENT_AUDIO_KEY"}, ""},
		{"any agent any call on a cluster", map[string]string{"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"}, []string{"-any-agent-any-call", "-nats", "nats://127.0.0.1:1"},
			[]string{"-any-agent-any-call cannot run with -nats", "-workspace"}, "EVENT_KEY"},
		{"fake twilio without voices", nil, []string{"-fake-twilio", "-listen", "127.0.0.1:0", "-voices-dir", t.TempDir()}, []string{"-fake-wav"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, k := range []string{"TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY", "TWILIO_API_SECRET", "TWILIO_WORKSPACE_SID", "LISTEN"} {
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

// fakePage loads the -fake-twilio page and returns its Flex token, call
// SID and caller.
func (s *server) fakePage() (token, call, caller string) {
	s.t.Helper()
	resp, err := s.hc.Get(s.base + "/")
	if err != nil {
		s.t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`<voicegate-agent security-token="([^"]+)" call-sid="(CA[0-9a-f]{32})" caller-id="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		s.t.Fatalf("page %s", page)
	}
	return string(m[1]), string(m[2]), strings.ReplaceAll(string(m[3]), "&#43;", "+")
}

// TestFakeTwilioHostCheck: -fake-twilio answers only requests addressed to
// a loopback name, so a page on a domain re-pointed at 127.0.0.1 (DNS
// rebinding) can neither read the fake's Flex token nor use it.
func TestFakeTwilioHostCheck(t *testing.T) {
	s := start(t, "-fake-twilio", "-offline", "-voices-dir", voicesDir(t))
	token, call, caller := s.fakePage()
	// The page has no icon: its request answers 204, not a 404 that the
	// browser's console shows.
	if resp, err := s.hc.Get(s.base + "/favicon.ico"); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Errorf("GET /favicon.ico: %v %v, want 204", resp, err)
	} else {
		resp.Body.Close()
	}
	status := `{"call_id":"` + call + `","caller_id":"` + caller + `"}`
	for _, tc := range []struct {
		name, method, path, host, body string
		auth                           bool
		want                           int
	}{
		{"page, rebound", "GET", "/", "attacker.example", "", false, 421},
		{"page, rebound with port", "GET", "/", "attacker.example:18081", "", false, 421},
		{"widget, rebound", "GET", "/agent/voicegate-agent.js", "attacker.example", "", false, 421},
		{"status, rebound", "POST", "/agent/status", "attacker.example", status, true, 421},
		{"delete, rebound", "POST", "/agent/delete", "attacker.example", status, true, 421},
		{"page, localhost", "GET", "/", "localhost", "", false, 200},
		{"status, 127.0.0.1", "POST", "/agent/status", "", status, true, 200},
		{"page, PUT", "PUT", "/", "", "", false, 405},
		{"page, DELETE", "DELETE", "/", "", "", false, 405},
	} {
		req, _ := http.NewRequest(tc.method, s.base+tc.path, strings.NewReader(tc.body))
		if tc.host != "" {
			req.Host = tc.host
		}
		if tc.auth {
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := s.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d %.200q, want %d", tc.name, resp.StatusCode, b, tc.want)
		}
		if tc.want == 421 && bytes.Contains(b, []byte("fake-flex-")) {
			t.Errorf("%s: the Flex token in the refusal", tc.name)
		}
	}
}

// TestFakeFastHearsEveryFrame: -fake-fast with the default session (5 s of
// net speech from one recording of about 7 s) registers and verifies. An
// unpaced burst overran the stream's bounded queue (drop-oldest) and the
// operation ended with "not enough usable audio"; a queue of 15 frames
// (300 ms) makes the overrun certain, and paced at 4x it still holds.
func TestFakeFastHearsEveryFrame(t *testing.T) {
	s := start(t, "-fake-twilio", "-fake-fast", "-offline", "-voices-dir", voicesDir(t), "-fake-voice", "slt", "-queue-frames", "15")
	token, call, caller := s.fakePage()
	for _, path := range []string{"/agent/register", "/agent/verify"} {
		code, op := s.post(token, path, map[string]any{"call_id": call, "caller_id": caller})
		if code != 202 {
			t.Fatalf("%s: %d %v", path, code, op)
		}
		evs := s.events(op["events_url"].(string))
		last := evs[len(evs)-1]
		if last["type"] != "result-success" {
			t.Fatalf("%s: ended with %v", path, last)
		}
	}
}

// TestWorkspace: with -workspace an agent may act only on the calls of
// their accepted TaskRouter tasks (403 forbidden elsewhere), TaskRouter
// failing answers 503 auth_unavailable, and a workspace TaskRouter does
// not know stops the server at start-up.
func TestWorkspace(t *testing.T) {
	const (
		ws     = "WS00000000000000000000000000000001"
		worker = "WK00000000000000000000000000000001"
		mine   = "CA00000000000000000000000000000001"
		theirs = "CA00000000000000000000000000000002"
		caller = "+34600000000"
	)
	fake := twiliotest.NewServer(nil)
	defer fake.Close()
	fake.AddFlexToken("agent-token", twilio.FlexIdentity{Identity: "alice", WorkerSID: worker, Expiration: time.Now().Add(time.Hour)})
	fake.AddWorkspace(ws)
	for i, call := range []string{mine, theirs} {
		fake.AddCall(twilio.CallResource{SID: call, From: caller, To: "+15005550006"})
		task := fmt.Sprintf("WT%032x", i+1)
		fake.AddTask(ws, task, `{"call_sid":"`+call+`"}`, "")
		w := worker
		if call == theirs {
			w = "WK00000000000000000000000000000002"
		}
		fake.SetReservation(ws, w, task, twilio.ReservationAccepted)
	}
	t.Setenv("TWILIO_ACCOUNT_SID", fake.AccountSID())
	t.Setenv("TWILIO_AUTH_TOKEN", fake.AuthToken())
	t.Setenv("TWILIO_API_KEY", "")
	t.Setenv("TWILIO_WORKSPACE_SID", ws)
	s := start(t, "-offline", "-twilio-base-url", fake.URL)
	if code, m := s.post("agent-token", "/agent/status", map[string]any{"call_id": mine, "caller_id": caller}); code != 200 || m["call_in_progress"] != true {
		t.Fatalf("own call: %d %v", code, m)
	}
	if code, m := s.post("agent-token", "/agent/register", map[string]any{"call_id": theirs, "caller_id": caller}); code != 403 || m["code"] != "forbidden" {
		t.Fatalf("another agent's call: %d %v, want 403 forbidden", code, m)
	}
	// (An allowed call is remembered a few seconds; a refused one is not.)
	fake.SetFaults(twiliotest.Fault{PathPrefix: "/v1/Workspaces/", Status: 503, Code: 20503, Message: "unavailable"})
	if code, m := s.post("agent-token", "/agent/status", map[string]any{"call_id": theirs, "caller_id": caller}); code != 503 || m["code"] != "auth_unavailable" {
		t.Fatalf("TaskRouter down: %d %v, want 503 auth_unavailable", code, m)
	}
	fake.SetFaults()

	t.Setenv("TWILIO_WORKSPACE_SID", "WS000000000000000000000000000000ff")
	var logs syncBuffer
	err := run(context.Background(), []string{"-offline", "-listen", "127.0.0.1:0", "-twilio-base-url", fake.URL}, &logs, func(net.Addr) {})
	if err == nil || !strings.Contains(err.Error(), "-workspace WS000000000000000000000000000000ff") {
		t.Fatalf("unknown workspace: err %v", err)
	}
}

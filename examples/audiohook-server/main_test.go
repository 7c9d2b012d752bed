package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/audiohooktest"
	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak/offline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	apiKey    = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh"
	secretB64 = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="
)

var secret, _ = base64.StdEncoding.DecodeString(secretB64)

type env struct {
	t     *testing.T
	srv   *server
	http  *httptest.Server
	url   string
	store credstore.Store
	logs  *syncBuffer
	waits *waits
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waits records the authentication failure delays the server asks for,
// without waiting.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(_ context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
	return nil
}

func (w *waits) get() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

func newEnv(t *testing.T, recordDir string) *env {
	return newEnvWith(t, func(c *config) { c.RecordDir = recordDir })
}

// newEnvWith runs the server with the flag defaults changed by mod.
func newEnvWith(t *testing.T, mod func(*config)) *env {
	t.Helper()
	t.Setenv("TEST_AUDIOHOOK_KEYS", `{"`+apiKey+`":"`+secretB64+`"}`)
	cfg, err := parseFlags([]string{"-keys-env", "TEST_AUDIOHOOK_KEYS", "-buffer", "30s"})
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(cfg)
	}
	logs := &syncBuffer{}
	var out io.Writer = logs
	if testing.Verbose() {
		out = io.MultiWriter(logs, os.Stderr)
	}
	log := slog.New(slog.NewTextHandler(out, nil))
	store := credstore.NewMemory()
	srv, err := newServer(cfg, log, offline.New(nil), store)
	if err != nil {
		t.Fatal(err)
	}
	w := &waits{}
	srv.opts.Sleep = w.sleep
	e := &env{t: t, srv: srv, http: httptest.NewServer(srv.handler()), store: store, logs: logs, waits: w}
	e.url = "ws" + strings.TrimPrefix(e.http.URL, "http") + wsPath
	t.Cleanup(func() {
		e.http.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.sessions.Shutdown(ctx); err != nil {
			t.Errorf("sessions still running: %v", err)
		}
	})
	return e
}

// outcome is what a client saw of one session.
type outcome struct {
	progress   int
	result     map[string]any
	disconnect *audiohook.DisconnectError
	outputVars map[string]string
}

// call plays a fixture as the customer of a Genesys call and collects the
// server's events.
func (e *env) call(ani, customConfig, fixture string) outcome {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := &audiohooktest.DialOptions{
		APIKey: apiKey, Secret: secret,
		Participant: &audiohook.Participant{ID: audiohooktest.NewUUID(), ANI: ani, ANIName: "Test Caller", DNIS: "+18005550100"},
	}
	if customConfig != "" {
		opts.CustomConfig = json.RawMessage(customConfig)
	}
	c, err := audiohooktest.Dial(ctx, e.url, opts)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	src, err := audiohooktest.WAVSource(testdata(fixture))
	if err != nil {
		e.t.Fatal(err)
	}
	var de *audiohook.DisconnectError
	if err := c.Stream(ctx, src, &audiohooktest.StreamOptions{Fast: true}); err != nil && !errors.As(err, &de) {
		e.t.Fatalf("stream: %v", err)
	}
	var out outcome
	for {
		m, err := c.Next(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				e.t.Fatalf("next: %v", err)
			}
			break
		}
		switch m.Type {
		case audiohook.TypeEvent:
			var p audiohook.EventParameters
			if err := json.Unmarshal(m.Parameters, &p); err != nil || len(p.Entities) != 1 {
				e.t.Fatalf("event %s: %v", m.Parameters, err)
			}
			if strings.Contains(string(p.Entities[0].Data), `"credential"`) {
				e.t.Errorf("event leaks the credential: %s", p.Entities[0].Data)
			}
			switch p.Entities[0].Type {
			case entityProgress:
				out.progress++
			case entityResult:
				json.Unmarshal(p.Entities[0].Data, &out.result)
			default:
				e.t.Errorf("entity type %q", p.Entities[0].Type)
			}
		case audiohook.TypeDisconnect:
			var p audiohook.DisconnectParameters
			json.Unmarshal(m.Parameters, &p)
			out.disconnect = &audiohook.DisconnectError{Reason: p.Reason, Info: p.Info}
			out.outputVars = p.OutputVariables
		}
		if out.disconnect != nil {
			break
		}
	}
	if err := c.Close(ctx, ""); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	return out
}

func TestRegisterVerify(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, dir)
	const caller = "+34600000020"

	// register, with the caller id from the ANI.
	o := e.call("tel:"+caller, `{"operation":"register"}`, utterance("kal", 0))
	if o.result["type"] != "result-success" || o.result["operation"] != "register" || o.progress == 0 {
		t.Fatalf("register: %+v", o)
	}
	if o.disconnect == nil || o.disconnect.Reason != audiohook.ReasonCompleted || o.disconnect.Info != "result-success" {
		t.Fatalf("register disconnect: %+v", o.disconnect)
	}
	if o.outputVars["voicegateResult"] != "result-success" {
		t.Fatalf("register output variables: %v", o.outputVars)
	}
	if rec, err := e.store.Get(context.Background(), caller); err != nil || rec.ModelHash != offline.ModelHash {
		t.Fatalf("stored: %+v %v", rec, err)
	}

	// Without an operation, a registered caller is verified.
	o = e.call("tel:"+caller, "", utterance("kal", 1))
	if o.result["type"] != "result-success" || o.result["operation"] != "verify" {
		t.Fatalf("verify: %+v", o)
	}
	// customConfig names the caller, whatever the ANI.
	o = e.call("tel:+10000000000", `{"operation":"verify","callerId":"`+caller+`"}`, utterance("slt", 1))
	if o.result["type"] != "result-fail-score" || o.disconnect == nil || o.disconnect.Info != "result-fail-score" ||
		o.outputVars["voicegateResult"] != "result-fail-score" || o.outputVars["voicegateScore"] == "" {
		t.Fatalf("verify impostor: %+v", o)
	}
	// Verify of an unknown caller ends at once.
	o = e.call("tel:+34600000099", `{"operation":"verify"}`, utterance("slt", 1))
	if o.result["type"] != "error-parameters" || o.disconnect == nil || o.disconnect.Reason != audiohook.ReasonCompleted {
		t.Fatalf("verify unknown caller: %+v", o)
	}

	// Every session was recorded.
	wavs, _ := filepath.Glob(filepath.Join(dir, "*.wav"))
	sidecars, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(wavs) != 4 || len(sidecars) != 4 {
		t.Fatalf("recordings: %v %v", wavs, sidecars)
	}
}

// TestEnrolmentIsExplicit: a caller id is spoofable, so an unknown caller
// is never enrolled unless the open message asks for register; operation
// auto needs -auto-enrol, which logs a warning.
func TestEnrolmentIsExplicit(t *testing.T) {
	const caller = "+34600000030"
	e := newEnv(t, "")
	if strings.Contains(e.logs.String(), "auto enrolment") {
		t.Fatalf("warning without -auto-enrol: %s", e.logs)
	}
	// No operation: an impostor calling first from the victim's number is
	// verified against nothing, not enrolled.
	o := e.call("tel:"+caller, "", utterance("slt", 0))
	if o.result["type"] != "error-parameters" || o.result["operation"] != "verify" ||
		o.disconnect == nil || o.disconnect.Reason != audiohook.ReasonCompleted {
		t.Fatalf("unknown caller without operation: %+v", o)
	}
	if _, err := e.store.Get(context.Background(), caller); !errors.Is(err, credstore.ErrNotFound) {
		t.Fatalf("unknown caller was enrolled: %v", err)
	}
	// Operation auto is refused before opened.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := audiohooktest.Dial(ctx, e.url, &audiohooktest.DialOptions{
		APIKey: apiKey, Secret: secret, CustomConfig: json.RawMessage(`{"operation":"auto"}`),
		Participant: &audiohook.Participant{ID: audiohooktest.NewUUID(), ANI: "tel:" + caller},
	})
	var de *audiohook.DisconnectError
	if !errors.As(err, &de) || de.Reason != audiohook.ReasonError || !strings.Contains(de.Info, "-auto-enrol") {
		t.Fatalf("operation auto: %v", err)
	}

	// Opted in: a warning at start and per enrolment; auto enrols.
	e = newEnvWith(t, func(c *config) { c.AutoEnrol = true })
	if !strings.Contains(e.logs.String(), "level=WARN msg=\"auto enrolment enabled") {
		t.Fatalf("no warning for -auto-enrol: %s", e.logs)
	}
	o = e.call("tel:"+caller, "", utterance("kal", 0))
	if o.result["type"] != "result-success" || o.result["operation"] != "register" {
		t.Fatalf("auto on a new caller: %+v", o)
	}
	if !strings.Contains(e.logs.String(), "level=WARN msg=\"auto enrolment of an unregistered caller id") {
		t.Fatalf("no warning for the enrolment: %s", e.logs)
	}
	o = e.call("tel:"+caller, `{"operation":"auto"}`, utterance("kal", 1))
	if o.result["type"] != "result-success" || o.result["operation"] != "verify" {
		t.Fatalf("auto on a registered caller: %+v", o)
	}
}

func TestRefused(t *testing.T) {
	e := newEnv(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Wrong secret: accepted, then disconnect "unauthorized" as the
	// reference server does, after the failure delay.
	_, err := audiohooktest.Dial(ctx, e.url, &audiohooktest.DialOptions{APIKey: apiKey, Secret: []byte("wrong secret")})
	var de *audiohook.DisconnectError
	if !errors.As(err, &de) || de.Reason != audiohook.ReasonUnauthorized {
		t.Fatalf("wrong secret: %v", err)
	}
	if w := e.waits.get(); len(w) != 1 || w[0] <= 0 || w[0] > audiohook.DefaultAuthFailureDelay {
		t.Fatalf("failure delays %v, want one of at most %v", w, audiohook.DefaultAuthFailureDelay)
	}
	// Unknown key, unsigned.
	if _, err := audiohooktest.Dial(ctx, e.url, &audiohooktest.DialOptions{APIKey: "unknown"}); !errors.Is(err, audiohook.ErrUnauthorized) {
		t.Fatalf("unknown key: %v", err)
	}
	// -auth-failure reject: HTTP 401.
	r := newEnvWith(t, func(c *config) { c.AuthFailure = authReject })
	_, err = audiohooktest.Dial(ctx, r.url, &audiohooktest.DialOptions{APIKey: apiKey, Secret: []byte("wrong secret")})
	var ae *audiohook.AuthError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("reject mode, wrong secret: %v", err)
	}
	// Bad customConfig: disconnect "error" before opened.
	for _, cc := range []string{`{"operation":"erase"}`, `[1,2]`} {
		_, err = audiohooktest.Dial(ctx, e.url, &audiohooktest.DialOptions{APIKey: apiKey, Secret: secret, CustomConfig: json.RawMessage(cc)})
		var de *audiohook.DisconnectError
		if !errors.As(err, &de) || de.Reason != audiohook.ReasonError {
			t.Fatalf("customConfig %s: %v", cc, err)
		}
	}
	// No caller id at all.
	_, err = audiohooktest.Dial(ctx, e.url, &audiohooktest.DialOptions{APIKey: apiKey, Secret: secret, Participant: &audiohook.Participant{ID: audiohooktest.NewUUID()}})
	if !errors.As(err, &de) || de.Reason != audiohook.ReasonError {
		t.Fatalf("no caller id: %v", err)
	}
	// A connection probe is opened and closed without a session.
	c, err := audiohooktest.Dial(ctx, e.url, &audiohooktest.DialOptions{APIKey: apiKey, Secret: secret, Probe: true})
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	if err := c.Close(ctx, ""); err != nil {
		t.Fatalf("probe close: %v", err)
	}
}

func TestParseOpen(t *testing.T) {
	for _, c := range []struct {
		cc, ani   string
		autoEnrol bool
		op        string
		caller    string
		ok        bool
	}{
		{"", "tel:+34600", false, opVerify, "+34600", true},
		{"null", "+34600", false, opVerify, "+34600", true},
		{"", "tel:+34600", true, opAuto, "+34600", true},
		{"null", "+34600", true, opAuto, "+34600", true},
		{`{"operation":"auto"}`, "tel:+1", false, "", "", false},
		{`{"operation":"auto"}`, "tel:+1", true, opAuto, "+1", true},
		{`{"operation":"register"}`, "tel:+1", false, opRegister, "+1", true},
		{`{"operation":"verify","callerId":"acct-7"}`, "tel:+1", true, opVerify, "acct-7", true},
		{`{"operation":"delete"}`, "tel:+1", false, "", "", false},
		{`{}`, "", false, "", "", false},
		{`"x"`, "tel:+1", false, "", "", false},
	} {
		p := &audiohook.OpenParameters{CustomConfig: json.RawMessage(c.cc), Participant: audiohook.Participant{ANI: c.ani}}
		op, caller, err := parseOpen(p, c.autoEnrol)
		if (err == nil) != c.ok || op != c.op || caller != c.caller {
			t.Errorf("%s/%s/auto=%v: %q %q %v", c.cc, c.ani, c.autoEnrol, op, caller, err)
		}
	}
}

func TestFlagDefaults(t *testing.T) {
	t.Setenv("AUTH_FAILURE", "")
	t.Setenv("AUTO_ENROL", "")
	c, err := parseFlags(nil)
	if err != nil || c.AuthFailure != authDisconnect || c.AutoEnrol {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	t.Setenv("AUTH_FAILURE", authReject)
	t.Setenv("AUTO_ENROL", "true")
	if c, err = parseFlags(nil); err != nil || c.AuthFailure != authReject || !c.AutoEnrol {
		t.Fatalf("from the environment: %+v %v", c, err)
	}
	if _, err := parseFlags([]string{"-auth-failure", "drop"}); err == nil {
		t.Fatal("-auth-failure drop accepted")
	}
}

func TestRun(t *testing.T) {
	t.Setenv("STATIC_API_KEY_MAP", "")
	if err := run(context.Background(), []string{"-listen", "127.0.0.1:0", "-offline"}, io.Discard, nil); err == nil || !strings.Contains(err.Error(), "no API keys") {
		t.Fatalf("run without keys: %v", err)
	}
	t.Setenv("STATIC_API_KEY_MAP", `{"`+apiKey+`":"`+secretB64+`"}`)
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	var logs strings.Builder
	go func() {
		errc <- run(ctx, []string{"-listen", "127.0.0.1:0", "-offline"}, &logs, func(a net.Addr) { addrc <- a })
	}()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-errc:
		t.Fatalf("run: %v", err)
	}
	resp, err := http.Get("http://" + addr.String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run: %v", err)
	}
	if strings.Contains(logs.String(), secretB64) {
		t.Fatal("the client secret was logged")
	}
}

// testdata returns the path of a file in the repository's testdata folder
// ("voices/slt_1.wav").
func testdata(name string) string {
	return filepath.Join("..", "..", "testdata", filepath.FromSlash(name))
}

// utterance returns the i-th (from 0) recording of a test voice.
func utterance(voice string, i int) string {
	return "voices/" + voice + "_" + strconv.Itoa(i+1) + ".wav"
}

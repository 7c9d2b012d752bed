package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/audiohooktest"
	"github.com/voicegate/voicegate/audiohook/wire"
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
	srv, err := newServer(cfg, log, offline.New(nil), store, nil)
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
	out, err := e.try(ani, customConfig, fixture)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// try is call for any goroutine: it returns what went wrong instead of
// failing the test.
func (e *env) try(ani, customConfig, fixture string) (outcome, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := &audiohooktest.DialOptions{
		APIKey: apiKey, Secret: secret,
		Participant: &wire.Participant{ID: audiohooktest.NewUUID(), ANI: ani, ANIName: "Test Caller", DNIS: "+18005550100"},
	}
	if customConfig != "" {
		opts.CustomConfig = json.RawMessage(customConfig)
	}
	c, err := audiohooktest.Dial(ctx, e.url, opts)
	if err != nil {
		return outcome{}, fmt.Errorf("dial: %w", err)
	}
	src, err := audiohooktest.WAVSource(testdata(fixture))
	if err != nil {
		return outcome{}, err
	}
	var de *audiohook.DisconnectError
	if err := c.Stream(ctx, src, &audiohooktest.StreamOptions{Fast: true}); err != nil && !errors.As(err, &de) {
		return outcome{}, fmt.Errorf("stream: %w", err)
	}
	var out outcome
	for {
		m, err := c.Next(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return outcome{}, fmt.Errorf("next: %w", err)
			}
			break
		}
		switch m.Type {
		case wire.TypeEvent:
			var p wire.EventParameters
			if err := json.Unmarshal(m.Parameters, &p); err != nil || len(p.Entities) != 1 {
				return outcome{}, fmt.Errorf("event %s: %v", m.Parameters, err)
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
		case wire.TypeDisconnect:
			var p wire.DisconnectParameters
			json.Unmarshal(m.Parameters, &p)
			out.disconnect = &audiohook.DisconnectError{Reason: p.Reason, Info: p.Info}
			out.outputVars = p.OutputVariables
		}
		if out.disconnect != nil {
			break
		}
	}
	if err := c.Close(ctx, ""); err != nil {
		return outcome{}, fmt.Errorf("close: %w", err)
	}
	return out, nil
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
	if o.disconnect == nil || o.disconnect.Reason != wire.ReasonCompleted || o.disconnect.Info != "result-success" {
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
	if o.result["type"] != "error-parameters" || o.disconnect == nil || o.disconnect.Reason != wire.ReasonCompleted {
		t.Fatalf("verify unknown caller: %+v", o)
	}

	// Every session was recorded.
	wavs, _ := filepath.Glob(filepath.Join(dir, "*.wav"))
	sidecars, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(wavs) != 4 || len(sidecars) != 4 {
		t.Fatalf("recordings: %v %v", wavs, sidecars)
	}
}

// TestRegisterRefusedOverStored: register never replaces a stored
// voiceprint, whatever the spelling of the caller id: the flow gets
// error-parameters with the reason in its output variables, and the first
// voice stays the caller's.
func TestRegisterRefusedOverStored(t *testing.T) {
	e := newEnv(t, "")
	const caller = "+34600000021"
	o := e.call("tel:"+caller, `{"operation":"register"}`, utterance("kal", 0))
	if o.result["type"] != "result-success" {
		t.Fatalf("first register: %+v", o)
	}
	first, err := e.store.Get(context.Background(), caller)
	if err != nil {
		t.Fatal(err)
	}
	for _, cc := range []string{
		`{"operation":"register"}`,
		`{"operation":"register","callerId":"+34 600 000 021"}`,
		`{"operation":"register","callerId":"0034600000021"}`,
	} {
		o = e.call("tel:"+caller, cc, utterance("slt", 0))
		if o.result["type"] != "error-parameters" || o.result["operation"] != "register" ||
			!strings.Contains(o.result["error"].(string), "already registered") {
			t.Fatalf("%s over a stored credential: %+v", cc, o.result)
		}
		if v, ok := o.result["net_speech_needed"]; ok {
			t.Errorf("%s: the already-registered refusal, made before any session, says net_speech_needed %v", cc, v)
		}
		if o.disconnect == nil || o.disconnect.Reason != wire.ReasonCompleted || o.disconnect.Info != "error-parameters" {
			t.Fatalf("%s: disconnect %+v", cc, o.disconnect)
		}
		want := map[string]string{"voicegateResult": "error-parameters", "voicegateError": errAlreadyRegistered.Error()}
		if !reflect.DeepEqual(o.outputVars, want) {
			t.Fatalf("%s: output variables %q, want %q", cc, o.outputVars, want)
		}
	}
	// The first voice is still the caller's, under one key.
	if o = e.call("tel:"+caller, "", utterance("kal", 1)); o.result["type"] != "result-success" {
		t.Fatalf("owner's verify: %+v", o.result)
	}
	if o = e.call("tel:"+caller, `{"callerId":"+34 600 000 021"}`, utterance("slt", 1)); o.result["type"] != "result-fail-score" {
		t.Fatalf("second voice's verify: %+v", o.result)
	}
	if rec, err := e.store.Get(context.Background(), caller); err != nil || rec.Credential != first.Credential {
		t.Fatalf("the stored credential changed: %v", err)
	}
}

// TestRegisterConcurrent: of registrations of one caller running at once,
// exactly one is stored; the others are told the caller is registered.
func TestRegisterConcurrent(t *testing.T) {
	e := newEnv(t, "")
	const caller = "+34600000022"
	voices := []string{utterance("kal", 0), utterance("slt", 0), utterance("awb", 0)}
	outs := make([]outcome, len(voices))
	errs := make([]error, len(voices))
	var wg sync.WaitGroup
	for i, v := range voices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = e.try("tel:"+caller, `{"operation":"register"}`, v)
		}()
	}
	wg.Wait()
	success := -1
	for i, o := range outs {
		if errs[i] != nil {
			t.Fatalf("register %d: %v", i, errs[i])
		}
		switch o.result["type"] {
		case "result-success":
			if success >= 0 {
				t.Fatalf("registers %d and %d both succeeded", success, i)
			}
			success = i
		case "error-parameters":
			if o.outputVars["voicegateError"] != errAlreadyRegistered.Error() {
				t.Fatalf("register %d refused with %q", i, o.outputVars)
			}
		default:
			t.Fatalf("register %d: %+v", i, o.result)
		}
	}
	if success < 0 {
		t.Fatal("no register succeeded")
	}
	// The stored voice is the winner's.
	ctx := context.Background()
	if _, err := e.store.Get(ctx, caller); err != nil {
		t.Fatal(err)
	}
	winner := strings.TrimSuffix(strings.TrimPrefix(voices[success], "voices/"), "_1.wav")
	if o := e.call("tel:"+caller, "", utterance(winner, 1)); o.result["type"] != "result-success" {
		t.Fatalf("winner %s verify: %+v", winner, o.result)
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
		o.disconnect == nil || o.disconnect.Reason != wire.ReasonCompleted {
		t.Fatalf("unknown caller without operation: %+v", o)
	}
	if v, ok := o.result["net_speech_needed"]; ok {
		t.Errorf("the not-registered refusal, made before any session, says net_speech_needed %v", v)
	}
	if _, err := e.store.Get(context.Background(), caller); !errors.Is(err, credstore.ErrNotFound) {
		t.Fatalf("unknown caller was enrolled: %v", err)
	}
	// Operation auto is refused before opened.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := audiohooktest.Dial(ctx, e.url, &audiohooktest.DialOptions{
		APIKey: apiKey, Secret: secret, CustomConfig: json.RawMessage(`{"operation":"auto"}`),
		Participant: &wire.Participant{ID: audiohooktest.NewUUID(), ANI: "tel:" + caller},
	})
	var de *audiohook.DisconnectError
	if !errors.As(err, &de) || de.Reason != wire.ReasonError || !strings.Contains(de.Info, "-auto-enrol") {
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
	if !errors.As(err, &de) || de.Reason != wire.ReasonUnauthorized {
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
		if !errors.As(err, &de) || de.Reason != wire.ReasonError {
			t.Fatalf("customConfig %s: %v", cc, err)
		}
	}
	// A caller id that is not a telephone number: refused, saying so.
	for _, c := range []struct{ cc, ani string }{
		{`{"operation":"register","callerId":"anything at all"}`, "tel:+34600000000"},
		{`{"operation":"verify"}`, "anonymous"},
	} {
		_, err = audiohooktest.Dial(ctx, e.url, &audiohooktest.DialOptions{APIKey: apiKey, Secret: secret, CustomConfig: json.RawMessage(c.cc),
			Participant: &wire.Participant{ID: audiohooktest.NewUUID(), ANI: c.ani}})
		if !errors.As(err, &de) || de.Reason != wire.ReasonError || !strings.Contains(de.Info, "is not an E.164 telephone number") {
			t.Fatalf("caller id of %s / %s: %v", c.cc, c.ani, err)
		}
	}
	// No caller id at all.
	_, err = audiohooktest.Dial(ctx, e.url, &audiohooktest.DialOptions{APIKey: apiKey, Secret: secret, Participant: &wire.Participant{ID: audiohooktest.NewUUID()}})
	if !errors.As(err, &de) || de.Reason != wire.ReasonError {
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
		{`{"operation":"auto"}`, "tel:+12", false, "", "", false},
		{`{"operation":"auto"}`, "tel:+12", true, opAuto, "+12", true},
		{`{"operation":"register"}`, "tel:+12", false, opRegister, "+12", true},
		{`{"operation":"delete"}`, "tel:+12", false, "", "", false},
		{`{}`, "", false, "", "", false},
		{`"x"`, "tel:+12", false, "", "", false},
		// One caller, one identity: every spelling of a number is its
		// E.164 form, from customConfig and from the ani alike.
		{`{"operation":"verify","callerId":"+34 600 000 000"}`, "tel:+12", false, opVerify, "+34600000000", true},
		{`{"operation":"register","callerId":"0034-600-000-000"}`, "", false, opRegister, "+34600000000", true},
		{`{"operation":"verify","callerId":"tel:+34600000000"}`, "", false, opVerify, "+34600000000", true},
		{`{"operation":"register"}`, "tel:+34 (600) 000.000", false, opRegister, "+34600000000", true},
		{`{"operation":"register"}`, "sip:+34600000000@pbx.example.com", false, opRegister, "+34600000000", true},
		// Anything that is not a telephone number keys no voiceprint.
		{`{"operation":"register","callerId":"anything at all"}`, "tel:+34600000000", false, "", "", false},
		{`{"operation":"verify","callerId":"acct-7"}`, "tel:+12", true, "", "", false},
		{`{"operation":"verify","callerId":"600000000"}`, "", false, "", "", false},
		{`{"operation":"register"}`, "anonymous", false, "", "", false},
		{`{"operation":"register"}`, "tel:+1", false, "", "", false},
	} {
		p := &wire.OpenParameters{CustomConfig: json.RawMessage(c.cc), Participant: wire.Participant{ANI: c.ani}}
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

// TestRunRefusals: each refusal to start names its own cause and fix, and
// none borrows another mode's advice.
func TestRunRefusals(t *testing.T) {
	strong := `{"` + apiKey + `":"` + secretB64 + `"}`
	for _, c := range []struct {
		name, keys string
		args       []string
		want       []string
	}{
		{"insecure beyond loopback", strong, []string{"-insecure-skip-auth", "-listen", "0.0.0.0:0"},
			[]string{"-insecure-skip-auth lets any client connect without a signature", `to listen on "0.0.0.0:0", drop -insecure-skip-auth and set STATIC_API_KEY_MAP`}},
		{"fake Genesys beyond loopback", "", []string{"-agent", "-fake-genesys", "-listen", "0.0.0.0:0"},
			[]string{"-fake-genesys is for local trials only", "drop -fake-genesys and give -genesys-region and -genesys-client-id"}},
		{"clear-text Genesys API beyond loopback", strong, []string{"-agent", "-genesys-region", "mypurecloud.ie", "-genesys-client-id", "c", "-genesys-api-url", "http://api.example", "-listen", "0.0.0.0:0"},
			[]string{"-genesys-api-url http://api.example is not TLS", "give an https:// URL"}},
		{"one-character key without a secret", `{"k1":""}`, []string{"-listen", "0.0.0.0:0"},
			[]string{`STATIC_API_KEY_MAP: API key 1 of 1 is 2 characters, fewer than 16 and has no client secret`, "refusing to listen on \"0.0.0.0:0\" beyond loopback", "openssl rand -base64 32"}},
		{"long key without a secret", `{"` + apiKey + `":""}`, []string{"-listen", "0.0.0.0:0"},
			[]string{`API key 1 of 1 has no client secret`}},
		{"short secret", `{"` + apiKey + `":"c2hvcnQtc2VjcmV0"}`, []string{"-listen", "[::]:0"},
			[]string{`API key 1 of 1 has a client secret of 12 bytes, fewer than 16`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("STATIC_API_KEY_MAP", c.keys)
			var logs strings.Builder
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := run(ctx, append([]string{"-offline"}, c.args...), &logs, func(net.Addr) { t.Error("listening"); cancel() })
			if err == nil {
				t.Fatal("started")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant %q", err, w)
				}
			}
			for _, bad := range []string{"development token", "platform authenticator", secretB64, `"k1"`, apiKey[:4]} {
				if strings.Contains(err.Error(), bad) || strings.Contains(logs.String(), bad) {
					t.Errorf("error %q mentions %q", err, bad)
				}
			}
		})
	}
}

// TestWeakKeysOnLoopback: a weak key pair starts on loopback, with a
// warning that says how to fix it.
func TestWeakKeysOnLoopback(t *testing.T) {
	t.Setenv("STATIC_API_KEY_MAP", `{"k1":""}`)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	addrc := make(chan net.Addr, 1)
	logs := &syncBuffer{}
	go func() {
		errc <- run(ctx, []string{"-listen", "127.0.0.1:0", "-offline"}, logs, func(a net.Addr) { addrc <- a })
	}()
	select {
	case <-addrc:
	case err := <-errc:
		t.Fatalf("run: %v", err)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run: %v", err)
	}
	want := `level=WARN msg="STATIC_API_KEY_MAP: API key 1 of 1 is 2 characters, fewer than 16 and has no client secret (anyone who knows the key connects unsigned): accepted because -listen is loopback; use API keys of at least 16 characters`
	if !strings.Contains(logs.String(), want) {
		t.Fatalf("logs:\n%s\nwant %s", logs, want)
	} // The drain says the -drain-timeout given (default 30s) and the grace
	// the server's timeout adds to it.
	if l := logs.String(); !strings.Contains(l, "drain_timeout=30s close_grace=5s") {
		t.Fatalf("drain log:\n%s", l)
	}
}

// TestAudioStatsLogged: every session with audio logs what its queue
// received and dropped; drops are a warning.
func TestAudioStatsLogged(t *testing.T) {
	for _, c := range []struct {
		st   audiohook.Stats
		want string
	}{
		{audiohook.Stats{}, ""},
		{audiohook.Stats{FramesReceived: 29, MaxQueueDepth: 3, Position: 5800 * time.Millisecond},
			"level=INFO msg=\"session audio\" frames_received=29 frames_dropped=0 max_queue_depth=3 audio_position=5.8s\n"},
		{audiohook.Stats{FramesReceived: 75, FramesDropped: 66, MaxQueueDepth: 11, Position: 14900 * time.Millisecond},
			"level=WARN msg=\"session audio dropped: the queue was full (the engine fell behind, or the client sent faster than real time; raise -buffer)\" frames_received=75 frames_dropped=66 max_queue_depth=11 audio_position=14.9s\n"},
	} {
		var b strings.Builder
		log := slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
		logAudioStats(log, c.st)
		if b.String() != c.want {
			t.Errorf("%+v:\n%q\nwant\n%q", c.st, b.String(), c.want)
		}
	}
	// End to end: one line per session, with its counts.
	e := newEnv(t, "")
	if o := e.call("tel:+34600000023", `{"operation":"register"}`, utterance("kal", 0)); o.result["type"] != "result-success" {
		t.Fatalf("register: %+v", o.result)
	}
	// The line is written when the handler returns, which may be just
	// after the client saw closed.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(e.logs.String(), `msg="session audio" `) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(e.logs.String(), `msg="session audio" `); n != 1 || !strings.Contains(e.logs.String(), " frames_dropped=0 ") {
		t.Fatalf("%d audio lines in\n%s", n, e.logs)
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

// An open whose media offer the server cannot take is opened without
// media (AudioHook), then disconnected with a reason rather than left
// silent: no audio can come.
func TestNoSupportedMedia(t *testing.T) {
	e := newEnv(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := audiohooktest.Dial(ctx, e.url, &audiohooktest.DialOptions{
		APIKey: apiKey, Secret: secret,
		Media:       []wire.MediaParameter{}, // "media": []
		Participant: &wire.Participant{ID: audiohooktest.NewUUID(), ANI: "tel:+34600000031"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if m := c.Media(); m != nil {
		t.Fatalf("selected %+v", m)
	}
	for {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("no disconnect: %v", err)
		}
		if m.Type == wire.TypeDisconnect {
			var p wire.DisconnectParameters
			if err := json.Unmarshal(m.Parameters, &p); err != nil || p.Reason != wire.ReasonError || p.Info != "no supported media format offered" {
				t.Fatalf("disconnect %s: %v", m.Parameters, err)
			}
			break
		}
	}
	if err := c.Close(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.logs.String(), "no supported media format offered") {
		t.Errorf("not logged: %s", e.logs)
	}
}

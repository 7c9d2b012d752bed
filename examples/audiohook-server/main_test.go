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
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicegate/voicegate/audiohook"
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
}

func newEnv(t *testing.T, recordDir string) *env {
	t.Helper()
	t.Setenv("TEST_AUDIOHOOK_KEYS", `{"`+apiKey+`":"`+secretB64+`"}`)
	cfg := &config{KeysEnv: "TEST_AUDIOHOOK_KEYS", RecordDir: recordDir, Progress: true, Buffer: 30 * time.Second}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	store := credstore.NewMemory()
	srv, err := newServer(cfg, log, offline.New(nil), store, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, http: httptest.NewServer(srv.handler()), store: store}
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
	opts := &audiohook.DialOptions{
		APIKey: apiKey, Secret: secret,
		Participant: &audiohook.Participant{ID: audiohook.NewUUID(), ANI: ani, ANIName: "Test Caller", DNIS: "+18005550100"},
	}
	if customConfig != "" {
		opts.CustomConfig = json.RawMessage(customConfig)
	}
	c, err := audiohook.Dial(ctx, e.url, opts)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	src, err := audiohook.WAVSource(testdata(fixture))
	if err != nil {
		e.t.Fatal(err)
	}
	var de *audiohook.DisconnectError
	if err := c.Stream(ctx, src, &audiohook.StreamOptions{Fast: true}); err != nil && !errors.As(err, &de) {
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

	// auto on a new caller registers, with the caller id from the ANI.
	o := e.call("tel:"+caller, "", utterance("kal", 0))
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

	// auto on a registered caller verifies.
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

func TestRefused(t *testing.T) {
	e := newEnv(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Wrong secret: HTTP 401.
	_, err := audiohook.Dial(ctx, e.url, &audiohook.DialOptions{APIKey: apiKey, Secret: []byte("wrong secret")})
	var ae *audiohook.AuthError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %v", err)
	}
	// Unknown key, unsigned.
	if _, err := audiohook.Dial(ctx, e.url, &audiohook.DialOptions{APIKey: "unknown"}); !errors.Is(err, audiohook.ErrUnauthorized) {
		t.Fatalf("unknown key: %v", err)
	}
	// Bad customConfig: disconnect "error" before opened.
	for _, cc := range []string{`{"operation":"erase"}`, `[1,2]`} {
		_, err = audiohook.Dial(ctx, e.url, &audiohook.DialOptions{APIKey: apiKey, Secret: secret, CustomConfig: json.RawMessage(cc)})
		var de *audiohook.DisconnectError
		if !errors.As(err, &de) || de.Reason != audiohook.ReasonError {
			t.Fatalf("customConfig %s: %v", cc, err)
		}
	}
	// No caller id at all.
	_, err = audiohook.Dial(ctx, e.url, &audiohook.DialOptions{APIKey: apiKey, Secret: secret, Participant: &audiohook.Participant{ID: audiohook.NewUUID()}})
	var de *audiohook.DisconnectError
	if !errors.As(err, &de) || de.Reason != audiohook.ReasonError {
		t.Fatalf("no caller id: %v", err)
	}
	// A connection probe is opened and closed without a session.
	c, err := audiohook.Dial(ctx, e.url, &audiohook.DialOptions{APIKey: apiKey, Secret: secret, Probe: true})
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	if err := c.Close(ctx, ""); err != nil {
		t.Fatalf("probe close: %v", err)
	}
}

func TestParseOpen(t *testing.T) {
	for _, c := range []struct {
		cc, ani, op, caller string
		ok                  bool
	}{
		{"", "tel:+34600", opAuto, "+34600", true},
		{"null", "+34600", opAuto, "+34600", true},
		{`{"operation":"register"}`, "tel:+1", opRegister, "+1", true},
		{`{"operation":"verify","callerId":"acct-7"}`, "tel:+1", opVerify, "acct-7", true},
		{`{"operation":"delete"}`, "tel:+1", "", "", false},
		{`{}`, "", "", "", false},
		{`"x"`, "tel:+1", "", "", false},
	} {
		p := &audiohook.OpenParameters{CustomConfig: json.RawMessage(c.cc), Participant: audiohook.Participant{ANI: c.ani}}
		op, caller, err := parseOpen(p)
		if (err == nil) != c.ok || op != c.op || caller != c.caller {
			t.Errorf("%s/%s: %q %q %v", c.cc, c.ani, op, caller, err)
		}
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

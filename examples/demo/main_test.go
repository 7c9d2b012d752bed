package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicegate/voicegate/audiohook/audiohooktest"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak/daspeaktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDemo runs the whole product in process, as `go run ./examples/demo`
// does in fast mode: every call must end as expected, every event must be
// printed and reach the console, the credentials must be in SQLite with
// their enrolment audio, and unsigned upgrades must be refused.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "creds.db")
	var out bytes.Buffer
	var logs syncBuffer

	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: transport, Timeout: 30 * time.Second}

	var (
		sseWG     sync.WaitGroup
		sseEvents []callEvent
		sseErr    error
		page      string
		refused   = map[string]int{}
		engine    daspeaktest.Stats
	)
	ready := func(base string) {
		// The console page.
		resp, err := hc.Get(base + "/")
		if err != nil {
			t.Errorf("console: %v", err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page = string(b)

		// Unsigned upgrades.
		refused["twilio"] = upgradeStatus(t, hc, base+pathTwilio, nil)
		refused["audiohook"] = upgradeStatus(t, hc, base+pathAudioHook, http.Header{
			wire.HeaderOrganizationID: {audiohooktest.NewUUID()},
			wire.HeaderSessionID:      {audiohooktest.NewUUID()},
			wire.HeaderCorrelationID:  {audiohooktest.NewUUID()},
			wire.HeaderAPIKey:         {"not-a-key"},
		})

		// The console's event stream, read until the demo shuts down.
		resp, err = hc.Get(base + pathEvents)
		if err != nil {
			t.Errorf("events: %v", err)
			return
		}
		sseWG.Add(1)
		go func() {
			defer sseWG.Done()
			defer resp.Body.Close()
			sseEvents, sseErr = readSSE(resp.Body)
		}()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	outcomes, err := run(ctx, options{
		Fast:        true,
		Addr:        "127.0.0.1:0",
		DB:          db,
		Out:         &out,
		Log:         slog.New(slog.NewTextHandler(&logs, nil)),
		ready:       ready,
		engineStats: func(s daspeaktest.Stats) { engine = s },
	})
	sseWG.Wait()
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("run: %v\nlogs:\n%s", err, logs.String())
	}

	// Outcomes.
	if len(outcomes) != len(scenario()) {
		t.Fatalf("%d outcomes, want %d", len(outcomes), len(scenario()))
	}
	protocols := map[string]int{}
	for _, o := range outcomes {
		if !o.ok() {
			t.Errorf("%s (%s %s by %s): got %q, err %v; want %q", o.Label, o.Protocol, o.Operation, o.Speaker, o.Got, o.Err, o.Expected)
		}
		protocols[o.Protocol]++
	}
	if protocols["twilio"] != 3 || protocols["audiohook"] != 3 {
		t.Errorf("calls per protocol %v, want 3 each", protocols)
	}

	// Every engine call went over HTTP to the emulator, with the API key:
	// one credential per register, one comparison per verify.
	if n := engine.Endpoints["/models/{hash}/credential/wav"]; n != 2 {
		t.Errorf("das-Peak credential requests: %d, want 2 (%v)", n, engine.Endpoints)
	}
	if n := engine.Endpoints["/similarity/credential2wav"]; n != 4 {
		t.Errorf("das-Peak comparison requests: %d, want 4 (%v)", n, engine.Endpoints)
	}
	if engine.Unauthorized != 0 || engine.Errors != 0 {
		t.Errorf("das-Peak emulator saw %d unauthorized requests and %d errors", engine.Unauthorized, engine.Errors)
	}

	// Printed events: per call, progress lines and one terminal line.
	text := out.String()
	for _, o := range outcomes {
		var progress, terminal int
		for _, line := range strings.Split(text, "\n") {
			f := strings.Fields(line)
			if len(f) < 7 || f[1]+" "+f[2] != o.Label {
				continue
			}
			switch f[6] {
			case "progress":
				progress++
			case o.Expected:
				terminal++
			}
		}
		if progress < 3 || terminal != 1 {
			t.Errorf("%s: printed %d progress and %d %s lines", o.Label, progress, terminal, o.Expected)
		}
	}
	if !strings.Contains(text, "6 of 6 calls as expected") {
		t.Errorf("summary missing")
	}

	// The console.
	if !strings.Contains(page, "EventSource") || strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Errorf("console page does not look self-contained")
	}
	if sseErr != nil {
		t.Errorf("event stream: %v", sseErr)
	}
	terminals := map[string]string{}
	var lastSeq int64
	for _, ev := range sseEvents {
		if ev.Seq <= lastSeq {
			t.Errorf("event stream out of order: %d after %d", ev.Seq, lastSeq)
		}
		lastSeq = ev.Seq
		if ev.Terminal {
			terminals[ev.Call] = ev.Type
		}
		if bytes.Contains(ev.Event, []byte(`"credential"`)) {
			t.Errorf("credential sent to the console: %s", ev.Event)
		}
	}
	for _, o := range outcomes {
		if terminals[o.Label] != o.Expected {
			t.Errorf("console saw %s end with %q, want %q", o.Label, terminals[o.Label], o.Expected)
		}
	}

	// Refused upgrades.
	if refused["twilio"] != http.StatusForbidden {
		t.Errorf("unsigned Twilio upgrade: HTTP %d, want 403", refused["twilio"])
	}
	if refused["audiohook"] != http.StatusUnauthorized {
		t.Errorf("AudioHook upgrade with an unknown key: HTTP %d, want 401", refused["audiohook"])
	}

	// The credential store survives the run, with the enrolment audio.
	st, closeStore, err := openStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	for _, caller := range []string{twilioCaller, audiohookCaller} {
		rec, err := st.Get(context.Background(), caller)
		if err != nil {
			t.Errorf("%s: %v", caller, err)
			continue
		}
		if rec.Credential == "" || rec.ModelHash == "" {
			t.Errorf("%s: record %+v", caller, rec)
		}
		b, err := os.ReadFile(filepath.Join(dir, "enrolment-audio", rec.AudioRef))
		if err != nil {
			t.Errorf("%s: enrolment audio: %v", caller, err)
			continue
		}
		w, err := codec.ParseWAV(b)
		if err != nil || w.Duration() < registerSpeech {
			t.Errorf("%s: enrolment audio %v long, err %v", caller, w.Duration(), err)
		}
	}
	if _, err := st.Get(context.Background(), "+10000000000"); !errors.Is(err, credstore.ErrNotFound) {
		t.Errorf("unknown caller: %v", err)
	}
}

// upgradeStatus sends a WebSocket upgrade request without a valid
// signature and returns the HTTP status.
func upgradeStatus(t *testing.T, hc *http.Client, url string, h http.Header) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := hc.Do(req)
	if err != nil {
		t.Errorf("%s: %v", url, err)
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// readSSE reads "call" events from a Server-Sent Events stream until it
// ends.
func readSSE(r io.Reader) ([]callEvent, error) {
	var evs []callEvent
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev callEvent
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
	return evs, sc.Err()
}

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

// TestCallRules plays calls outside the scenario: the server's answers to
// a verify of an unknown caller, an unknown operation and a missing caller
// id, and the default operation, verify: a call without an operation from a
// caller id nobody registered ends with error-not-registered and stores
// nothing (a caller id can be spoofed, so calling first must not enrol),
// while an explicit register does; a caller registered over AudioHook is
// then verified over Twilio without an operation.
func TestCallRules(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := start(ctx, options{Fast: true, Addr: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "c.db"), Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()

	const caller = "+14155550123"
	calls := []callSpec{
		{Label: "unknown", Protocol: "twilio", Operation: "verify", Caller: caller, Speaker: "rms", Clips: []string{"rms_3.wav"}, Expected: "error-not-registered"},
		{Label: "badop", Protocol: "audiohook", Operation: "enrol", Caller: caller, Speaker: "rms", Clips: []string{"rms_3.wav"}, Expected: "error-operation"},
		{Label: "nocaller", Protocol: "twilio", Operation: "verify", Caller: "", Speaker: "rms", Clips: []string{"rms_3.wav"}, Expected: "error-no-caller"},
		// Someone claiming the caller id before its owner registered.
		{Label: "auto-first", Protocol: "audiohook", Operation: "", Caller: caller, Speaker: "armelle", Clips: []string{"armelle_1.wav", "armelle_2.wav"}, Expected: "error-not-registered"},
		{Label: "auto-first-twilio", Protocol: "twilio", Operation: "", Caller: caller, Speaker: "armelle", Clips: []string{"armelle_1.wav", "armelle_2.wav"}, Expected: "error-not-registered"},
	}
	for _, o := range d.playAll(ctx, calls) {
		if !o.ok() {
			t.Errorf("%s: got %q, err %v; want %q", o.Label, o.Got, o.Err, o.Expected)
		}
	}
	if rec, err := d.srv.store.Get(ctx, caller); !errors.Is(err, credstore.ErrNotFound) {
		t.Fatalf("after calls without an operation, the store holds a record (model %q, created %v), err %v; want credstore.ErrNotFound", rec.ModelHash, rec.CreatedAt, err)
	}
	if want := "no credential stored for this caller; registering needs operation=register"; !strings.Contains(out.String(), want) {
		t.Errorf("no line says %q:\n%s", want, out.String())
	}

	calls = []callSpec{
		{Label: "register", Protocol: "audiohook", Operation: "register", Caller: caller, Speaker: "rms", Clips: []string{"rms_1.wav", "rms_2.wav"}, Expected: "result-success"},
		{Label: "auto-ver", Protocol: "twilio", Operation: "", Caller: caller, Speaker: "rms", Clips: []string{"rms_3.wav"}, Expected: "result-success"},
		{Label: "impostor", Protocol: "twilio", Operation: "", Caller: caller, Speaker: "armelle", Clips: []string{"armelle_3.wav"}, Expected: "result-fail-score"},
	}
	for _, o := range d.playAll(ctx, calls) {
		if !o.ok() {
			t.Errorf("%s: got %q, err %v; want %q", o.Label, o.Got, o.Err, o.Expected)
		}
	}
	// The default operation is printed from the connected line on.
	ops := map[string]map[string]bool{}
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) >= 6 && strings.HasPrefix(f[1], "auto-") {
			if ops[f[1]] == nil {
				ops[f[1]] = map[string]bool{}
			}
			ops[f[1]][f[3]+" "+f[5]] = true
		}
	}
	if !ops["auto-first"]["verify connected"] || !ops["auto-first"]["verify error-not-registered"] || ops["auto-first"]["register connected"] ||
		!ops["auto-ver"]["verify connected"] || !ops["auto-ver"]["verify result-success"] {
		t.Errorf("default operations printed as %v:\n%s", ops, out.String())
	}
}

// TestRegisterAlreadyRegistered pins that an explicit operation=register of a
// caller who already has a credential is refused, over either protocol, with
// error-already-registered before any session runs, and that the credential
// stored first stays as it was: a second register must not replace the
// voiceprint of the account's owner.
func TestRegisterAlreadyRegistered(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := start(ctx, options{Fast: true, Addr: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "r.db"), Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()

	const caller = "+14155550124"
	first := []callSpec{
		{Label: "owner", Protocol: "twilio", Operation: "register", Caller: caller, Speaker: "rms", Clips: []string{"rms_1.wav", "rms_2.wav"}, Expected: "result-success"},
	}
	for _, o := range d.playAll(ctx, first) {
		if !o.ok() {
			t.Fatalf("%s: got %q, err %v; want %q", o.Label, o.Got, o.Err, o.Expected)
		}
	}
	before, err := d.srv.store.Get(ctx, caller)
	if err != nil {
		t.Fatal(err)
	}
	again := []callSpec{
		{Label: "again-twilio", Protocol: "twilio", Operation: "register", Caller: caller, Speaker: "armelle", Clips: []string{"armelle_1.wav", "armelle_2.wav"}, Expected: "error-already-registered"},
		{Label: "again-audiohook", Protocol: "audiohook", Operation: "register", Caller: caller, Speaker: "armelle", Clips: []string{"armelle_1.wav", "armelle_2.wav"}, Expected: "error-already-registered"},
	}
	for _, o := range d.playAll(ctx, again) {
		if !o.ok() {
			t.Errorf("%s: got %q, err %v; want %q", o.Label, o.Got, o.Err, o.Expected)
		}
	}
	after, err := d.srv.store.Get(ctx, caller)
	if err != nil {
		t.Fatal(err)
	}
	if after.Credential != before.Credential || after.ModelHash != before.ModelHash || !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("the stored credential changed after refused registers: updated %v -> %v", before.UpdatedAt, after.UpdatedAt)
	}
	if want := errAlreadyRegistered.Error(); !strings.Contains(out.String(), want) {
		t.Errorf("no line says %q:\n%s", want, out.String())
	}
	// The impostor who tried to register is not verified as the caller.
	check := []callSpec{
		{Label: "impostor", Protocol: "twilio", Operation: "verify", Caller: caller, Speaker: "armelle", Clips: []string{"armelle_3.wav"}, Expected: "result-fail-score"},
	}
	for _, o := range d.playAll(ctx, check) {
		if !o.ok() {
			t.Errorf("%s: got %q, err %v; want %q", o.Label, o.Got, o.Err, o.Expected)
		}
	}
}

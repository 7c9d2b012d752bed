package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/offline"
)

const (
	callA   = "CA00000000000000000000000000000001"
	callB   = "CA00000000000000000000000000000002"
	callerA = "+34911234567"
	callerB = "+14155550100"
)

// TestLifecycle registers a caller, verifies them, re-verifies an
// impostor on the same call and deletes the caller: every operation's
// stream shows its own events only. On the old code the stream opened for
// the re-verify replayed the previous result-success.
func TestLifecycle(t *testing.T) {
	e := newEnv(t, nil)
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}})

	if code, m := e.post("/status", map[string]any{"call_id": callA, "caller_id": "tel:+34 911 23 45 67"}); code != 200 ||
		m["registered"] != false || m["caller_id"] != callerA || m["call_id"] != callA || m["call_in_progress"] != true {
		t.Fatalf("status: %d %v", code, m)
	}

	reg := e.start("/register", callA, callerA, nil)
	if reg["kind"] != "register" || !strings.HasPrefix(reg["operation_id"].(string), "op_") || len(reg["operation_id"].(string)) != 35 {
		t.Fatalf("register answer %v", reg)
	}
	_, msgs := e.events(reg["events_url"].(string), "")
	last := checkStream(t, msgs, reg)
	if last.Event != "result-success" || last.Data["reason"] != "success" {
		t.Fatalf("register ended with %s", last.Raw)
	}
	progress := 0
	for _, m := range msgs {
		if m.Event == "progress" {
			progress++
			if m.Data["net_speech_needed"] != 8.0 {
				t.Fatalf("progress %s", m.Raw)
			}
		}
	}
	if progress == 0 {
		t.Fatal("no progress events")
	}
	rec, err := e.mem.Get(context.Background(), callerA)
	if err != nil || rec.Credential == "" || rec.AudioRef == "" {
		t.Fatalf("stored record %+v, %v", rec, err)
	}
	audioPath := filepath.Join(e.store.AudioDir, rec.AudioRef)
	if _, err := os.Stat(audioPath); err != nil {
		t.Fatalf("enrolment audio: %v", err)
	}
	if code, m := e.post("/status", map[string]any{"call_id": callA, "caller_id": callerA}); code != 200 || m["registered"] != true {
		t.Fatalf("status after register: %d %v", code, m)
	}
	if code, m := e.post("/register", map[string]any{"call_id": callA, "caller_id": callerA}); code != 409 || m["code"] != "already_registered" {
		t.Fatalf("second register: %d %v", code, m)
	}

	// The genuine caller verifies.
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_3.wav"}})
	ver := e.start("/verify", callA, callerA, nil)
	_, msgs = e.events(ver["events_url"].(string), "")
	if last := checkStream(t, msgs, ver); last.Event != "result-success" || last.Data["score"] == nil || last.Data["score_threshold"] != 0.5 {
		t.Fatalf("genuine verify ended with %s", last.Raw)
	}

	// An impostor on the same call: the new operation's stream must show
	// its own failure and nothing of the previous success.
	e.src.set(callA, fakeCall{clips: []string{"voices/kal_3.wav"}})
	re := e.start("/reverify", callA, callerA, nil)
	if re["operation_id"] == ver["operation_id"] || re["kind"] != "verify" {
		t.Fatalf("reverify answer %v", re)
	}
	_, msgs = e.events(re["events_url"].(string), "")
	last = checkStream(t, msgs, re)
	if last.Event != "result-fail-score" || last.Data["reason"] != "authentication" {
		t.Fatalf("impostor verify ended with %s", last.Raw)
	}
	for _, m := range msgs {
		if m.Event == "result-success" {
			t.Fatalf("the impostor's stream shows a success: %s", m.Raw)
		}
	}

	// The old operation's stream still shows its own result, once.
	_, old := e.events(ver["events_url"].(string), "")
	if last := checkStream(t, old, ver); last.Event != "result-success" {
		t.Fatalf("old stream ends with %s", last.Raw)
	}

	// Delete removes the credential and the enrolment audio.
	if code, m := e.post("/delete", map[string]any{"call_id": callA, "caller_id": callerA}); code != 200 || m["deleted"] != true || m["audio_deleted"] != true || m["caller_id"] != callerA {
		t.Fatalf("delete: %d %v", code, m)
	}
	if _, err := e.mem.Get(context.Background(), callerA); !errors.Is(err, credstore.ErrNotFound) {
		t.Fatalf("record after delete: %v", err)
	}
	if _, err := os.Stat(audioPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("enrolment audio after delete: %v", err)
	}
	if ents, _ := os.ReadDir(e.store.AudioDir); len(ents) != 0 {
		t.Fatalf("files left in the audio directory: %v", ents)
	}
	// A second delete finds nothing and says so: no deletion is reported
	// that did not happen.
	if code, m := e.post("/delete", map[string]any{"call_id": callA, "caller_id": callerA}); code != 200 || m["deleted"] != false || m["audio_deleted"] != false || m["caller_id"] != callerA {
		t.Fatalf("second delete: %d %v", code, m)
	}
	if code, m := e.post("/verify", map[string]any{"call_id": callA, "caller_id": callerA}); code != 404 || m["code"] != "not_registered" {
		t.Fatalf("verify after delete: %d %v", code, m)
	}
	if code, m := e.post("/status", map[string]any{"call_id": callA, "caller_id": callerA}); code != 200 || m["registered"] != false {
		t.Fatalf("status after delete: %d %v", code, m)
	}
	// Deleting again is not an error.
	if code, _ := e.post("/delete", map[string]any{"call_id": callA, "caller_id": callerA}); code != 200 {
		t.Fatalf("second delete: %d", code)
	}
}

// register registers caller on call with the given clips, through the API.
func (e *env) register(callID, callerID string, clips ...string) {
	e.t.Helper()
	e.src.set(callID, fakeCall{clips: clips})
	op := e.start("/register", callID, callerID, nil)
	_, msgs := e.events(op["events_url"].(string), "")
	if last := checkStream(e.t, msgs, op); last.Event != "result-success" {
		e.t.Fatalf("register %s: %s", callerID, last.Raw)
	}
}

// TestEventTokens checks that an event-stream token opens its own
// operation only: not another operation of the same call, not another
// call's, not with a forged or missing token.
func TestEventTokens(t *testing.T) {
	e := newEnv(t, nil)
	e.register(callA, callerA, "voices/slt_1.wav", "voices/slt_2.wav")
	e.register(callB, callerB, "voices/awb_1.wav", "voices/awb_2.wav")
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_3.wav"}})
	e.src.set(callB, fakeCall{clips: []string{"voices/awb_3.wav"}})
	a1 := e.start("/verify", callA, callerA, nil)
	_, _ = e.events(a1["events_url"].(string), "")
	a2 := e.start("/verify", callA, callerA, nil)
	b1 := e.start("/verify", callB, callerB, nil)

	tokenOf := func(op map[string]any) string {
		u := op["events_url"].(string)
		return u[strings.Index(u, "token=")+len("token="):]
	}
	path := func(op map[string]any) string { return "/agent/operations/" + op["operation_id"].(string) + "/events" }
	for _, c := range []struct {
		name string
		url  string
		want int
	}{
		{"call A token on call B", path(b1) + "?token=" + tokenOf(a1), 401},
		{"call B token on call A", path(a2) + "?token=" + tokenOf(b1), 401},
		{"earlier operation's token on the next operation of the same call", path(a2) + "?token=" + tokenOf(a1), 401},
		{"no token", path(a2), 401},
		{"forged token", path(a2) + "?token=9999999999.AAAA", 401},
		// Not 404: an unknown id is answered as a bad token, after the
		// same delay, so that its answer tells nothing.
		{"unknown operation", "/agent/operations/op_00000000000000000000000000000000/events?token=" + tokenOf(a1), 401},
		{"unknown operation, no token", "/agent/operations/op_00000000000000000000000000000000/events", 401},
	} {
		start := time.Now()
		if code, msgs := e.events(c.url, ""); code != c.want || msgs != nil {
			t.Errorf("%s: %d, %d events", c.name, code, len(msgs))
		}
		if c.want == 401 && time.Since(start) < 20*time.Millisecond {
			t.Errorf("%s: answered before the failure delay", c.name)
		}
	}
	// Each token opens its own operation, whose events are its own.
	for _, op := range []map[string]any{a2, b1} {
		code, msgs := e.events(op["events_url"].(string), "")
		if code != 200 {
			t.Fatalf("own token: %d", code)
		}
		checkStream(t, msgs, op)
	}
}

// TestResume checks Last-Event-ID: the stream resumes after it, and a
// finished operation read to its end answers 204 (EventSource stops).
func TestResume(t *testing.T) {
	e := newEnv(t, nil)
	e.register(callA, callerA, "voices/slt_1.wav", "voices/slt_2.wav")
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_3.wav"}})
	op := e.start("/verify", callA, callerA, nil)
	_, all := e.events(op["events_url"].(string), "")
	checkStream(t, all, op)
	_, rest := e.events(op["events_url"].(string), "2")
	if len(rest) != len(all)-2 || rest[0].ID != "3" || rest[len(rest)-1].Raw != all[len(all)-1].Raw {
		t.Fatalf("resume after 2: %d events of %d", len(rest), len(all))
	}
	if code, _ := e.events(op["events_url"].(string), all[len(all)-1].ID); code != http.StatusNoContent {
		t.Fatalf("resume after the terminal event: %d", code)
	}
	if code, _ := e.events(op["events_url"].(string), "x"); code != http.StatusBadRequest {
		t.Fatalf("bad Last-Event-ID: %d", code)
	}
}

// waitRunning waits until the call has a running operation.
func (e *env) waitRunning(callID string) {
	e.t.Helper()
	for range 500 {
		e.srv.mu.Lock()
		rn := e.srv.running[callID]
		e.srv.mu.Unlock()
		if rn != nil && rn.id != "" {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	e.t.Fatalf("no operation running on %s", callID)
}

// TestReverifyStopBusy checks that register and verify on a busy call are
// refused, that re-verify ends the running operation with error-cancelled
// before it starts a new one, and stop.
func TestReverifyStopBusy(t *testing.T) {
	e := newEnv(t, nil)
	e.register(callA, callerA, "voices/slt_1.wav", "voices/slt_2.wav")
	// A live call whose customer says nothing: the operation runs until
	// it is cancelled.
	e.src.set(callA, fakeCall{hold: true})
	first := e.start("/verify", callA, callerA, nil)
	if code, m := e.post("/verify", map[string]any{"call_id": callA, "caller_id": callerA}); code != 409 || m["code"] != "busy" {
		t.Fatalf("verify on a busy call: %d %v", code, m)
	}
	// The agent's page has the first operation's stream open when the
	// re-verify is pressed.
	e.waitRunning(callA)
	resp, err := http.Get(e.http.URL + first["events_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	second := e.start("/reverify", callA, callerA, nil)
	msgs := readSSE(t, resp)
	last := checkStream(t, msgs, first)
	if last.Event != "error-cancelled" || last.Data["reason"] != "cancelled" || !strings.Contains(last.Data["error"].(string), "replaced") || last.Data["cause"] != "replaced" {
		t.Fatalf("replaced operation ended with %s", last.Raw)
	}
	e.waitRunning(callA)
	if code, m := e.post("/stop", map[string]any{"operation_id": second["operation_id"]}); code != 200 || m["stopped"] != true {
		t.Fatalf("stop: %d %v", code, m)
	}
	_, msgs = e.events(second["events_url"].(string), "")
	if last := checkStream(t, msgs, second); last.Event != "error-cancelled" || !strings.Contains(last.Data["error"].(string), "stopped") || last.Data["cause"] != "stopped" {
		t.Fatalf("stopped operation ended with %s", last.Raw)
	}
	if code, m := e.post("/stop", map[string]any{"operation_id": second["operation_id"]}); code != 200 || m["stopped"] != false {
		t.Fatalf("second stop: %d %v", code, m)
	}
	if code, m := e.post("/stop", map[string]any{"operation_id": "op_nope"}); code != 404 || m["code"] != "not_found" {
		t.Fatalf("stop of an unknown operation: %d %v", code, m)
	}
	// The call is free again.
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_3.wav"}})
	third := e.start("/verify", callA, callerA, nil)
	_, msgs = e.events(third["events_url"].(string), "")
	if last := checkStream(t, msgs, third); last.Event != "result-success" {
		t.Fatalf("verify after stop: %s", last.Raw)
	}
}

// TestDeleteCancelsRegister checks that a delete ends a register in flight
// for the caller, so it cannot store after the delete.
func TestDeleteCancelsRegister(t *testing.T) {
	e := newEnv(t, nil)
	e.src.set(callA, fakeCall{hold: true})
	op := e.start("/register", callA, callerA, nil)
	e.waitRunning(callA)
	if code, _ := e.post("/delete", map[string]any{"call_id": callB, "caller_id": callerA}); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	_, msgs := e.events(op["events_url"].(string), "")
	if last := checkStream(t, msgs, op); last.Event != "error-cancelled" || !strings.Contains(last.Data["error"].(string), "deleted") || last.Data["cause"] != "deleted" {
		t.Fatalf("register ended with %s", last.Raw)
	}
}

// failingStore is a credstore.Store whose Put fails.
type failingStore struct{ *credstore.Memory }

func (failingStore) Put(ctx context.Context, id string, rec credstore.Record) error {
	return errors.New("disk full")
}

// TestRegisterStoreFailure checks that a register whose credential did not
// reach the store ends with error-store, never result-success: a failing
// record store, and a failing audio write.
func TestRegisterStoreFailure(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Options, *fakeSource)
	}{
		{"record store fails", func(o *Options, _ *fakeSource) {
			o.Store = &CredentialStore{Store: failingStore{credstore.NewMemory()}}
			o.Register.StoreRetries = -1
		}},
		{"audio write fails", func(o *Options, _ *fakeSource) {
			o.Store.AudioDir = filepath.Join(o.Store.AudioDir, "missing")
			o.Register.StoreRetries = -1
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.edit)
			e.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}})
			op := e.start("/register", callA, callerA, nil)
			_, msgs := e.events(op["events_url"].(string), "")
			last := checkStream(t, msgs, op)
			if last.Event != "error-store" || last.Data["reason"] != "store" || last.Data["error"] == nil {
				t.Fatalf("ended with %s", last.Raw)
			}
			for _, m := range msgs {
				if m.Event == "result-success" {
					t.Fatalf("success reported: %s", m.Raw)
				}
			}
			if code, m := e.post("/status", map[string]any{"call_id": callA, "caller_id": callerA}); code != 200 || m["registered"] != false {
				t.Fatalf("status: %d %v", code, m)
			}
			if _, err := e.mem.Get(context.Background(), callerA); !errors.Is(err, credstore.ErrNotFound) {
				t.Fatalf("record: %v", err)
			}
		})
	}
}

// TestNoSecrets checks that neither the credential nor the audio appears
// in any event or log line.
func TestNoSecrets(t *testing.T) {
	e := newEnv(t, nil)
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}})
	op := e.start("/register", callA, callerA, nil)
	_, msgs := e.events(op["events_url"].(string), "")
	checkStream(t, msgs, op)
	rec, err := e.mem.Get(context.Background(), callerA)
	if err != nil {
		t.Fatal(err)
	}
	audio, err := os.ReadFile(filepath.Join(e.store.AudioDir, rec.AudioRef))
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(audio[44:100])
	var all strings.Builder
	for _, m := range msgs {
		all.WriteString(m.Raw)
		for _, k := range []string{"credential", "audio", "stored", "store_error"} {
			if _, ok := m.Data[k]; ok {
				t.Errorf("event %s has %q", m.Event, k)
			}
		}
	}
	logs := e.logs.String()
	for where, text := range map[string]string{"events": all.String(), "logs": logs} {
		if strings.Contains(text, rec.Credential) || strings.Contains(text, b64[:40]) || strings.Contains(text, testToken) {
			t.Errorf("%s hold a secret", where)
		}
	}
	if !strings.Contains(logs, op["operation_id"].(string)) {
		t.Errorf("logs do not name the operation: %s", logs)
	}
}

// TestAuthentication checks that every API call needs the bearer token and
// that failures wait the same minimum delay.
func TestAuthentication(t *testing.T) {
	e := newEnv(t, nil)
	for _, tok := range []string{"", "wrong", testToken + "x"} {
		for _, p := range []string{"/status", "/register", "/verify", "/reverify", "/delete", "/stop"} {
			start := time.Now()
			code, m := e.postAs(tok, p, map[string]any{"call_id": callA, "caller_id": callerA})
			if code != 401 || m["code"] != "unauthenticated" {
				t.Fatalf("%s with %q: %d %v", p, tok, code, m)
			}
			if d := time.Since(start); d < 20*time.Millisecond {
				t.Fatalf("%s with %q answered in %v", p, tok, d)
			}
		}
	}
}

// TestAuthUnavailable: an Authenticator error wrapping ErrAuthUnavailable
// (the server's side of the check failed) answers 503 auth_unavailable,
// after the same minimum delay, and is logged at Error with its cause and
// not as a refused token; any other error stays a 401 logged at Warn.
func TestAuthUnavailable(t *testing.T) {
	serverFault := fmt.Errorf("%w: twilio: server credentials refused (HTTP 401, error 20003)", ErrAuthUnavailable)
	agentFault := errors.New("flex token expired")
	var fail atomic.Pointer[error]
	e := newEnv(t, func(o *Options, _ *fakeSource) {
		o.Authenticator = AuthenticatorFunc(func(ctx context.Context, r *http.Request) (Principal, error) {
			return Principal{}, *fail.Load()
		})
	})
	for _, c := range []struct {
		name    string
		err     error
		code    int
		body    string
		level   string
		message string
	}{
		{"server fault", serverFault, 503, `{"code":"auth_unavailable","error":"authentication service unavailable or misconfigured"}`,
			"ERROR", "agent: token not checked: authentication service unavailable or misconfigured"},
		{"agent fault", agentFault, 401, `{"code":"unauthenticated","error":"authentication failed"}`,
			"WARN", "agent: token refused"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fail.Store(&c.err)
			before := len(e.logs.String())
			start := time.Now()
			req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/agent/status", strings.NewReader(`{"call_id":"`+callA+`","caller_id":"`+callerA+`"}`))
			req.Header.Set("Authorization", "Bearer a-token-that-must-not-be-logged")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.code || strings.TrimSpace(string(body)) != c.body {
				t.Fatalf("answer %d %s, want %d %s", resp.StatusCode, body, c.code, c.body)
			}
			if d := time.Since(start); d < 20*time.Millisecond {
				t.Fatalf("answered in %v, before the failure delay", d)
			}
			logs := e.logs.String()[before:]
			var line map[string]any
			if err := json.Unmarshal([]byte(strings.TrimSpace(logs)), &line); err != nil {
				t.Fatalf("want one log line: %q", logs)
			}
			if line["level"] != c.level || line["msg"] != c.message || line["err"] != c.err.Error() {
				t.Fatalf("log %v", line)
			}
			if strings.Contains(logs, "a-token-that-must-not-be-logged") {
				t.Fatal("token logged")
			}
		})
	}
}

func TestDevAuthenticator(t *testing.T) {
	a, err := NewDevAuthenticator("tok")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewDevAuthenticator(""); err == nil {
		t.Fatal("empty token accepted")
	}
	for _, c := range []struct {
		remote, header string
		ok             bool
	}{
		{"127.0.0.1:5000", "Bearer tok", true},
		{"[::1]:5000", "bearer tok", true},
		{"127.0.0.1:5000", "Bearer tok2", false},
		{"127.0.0.1:5000", "Basic tok", false},
		{"127.0.0.1:5000", "", false},
		{"192.0.2.1:5000", "Bearer tok", false},
		{"[2001:db8::1]:5000", "Bearer tok", false},
		{"garbage", "Bearer tok", false},
	} {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		r.RemoteAddr = c.remote
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		_, err := a.Authenticate(context.Background(), r)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrUnauthenticated)) {
			t.Errorf("%s %q: %v", c.remote, c.header, err)
		}
	}
	for _, c := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8080", true}, {"localhost:8080", true}, {"[::1]:8080", true}, {"127.1.2.3:1", true},
		{":8080", false}, {"0.0.0.0:8080", false}, {"[::]:8080", false}, {"192.0.2.1:80", false}, {"example.com:80", false}, {"nonsense", false},
	} {
		if err := RequireLoopback(c.addr); (err == nil) != c.ok {
			t.Errorf("RequireLoopback(%q) = %v", c.addr, err)
		}
	}
}

// TestBadRequests checks the answers to malformed bodies, call ids, caller
// ids and thresholds.
func TestBadRequests(t *testing.T) {
	e := newEnv(t, nil)
	e.src.set(callA, fakeCall{})
	for _, c := range []struct {
		path string
		body any
		code int
		err  string
	}{
		{"/status", "not an object", 400, "bad_request"},
		{"/status", map[string]any{"caller_id": callerA}, 400, "bad_request"},
		{"/status", map[string]any{"call_id": "CA1/../x", "caller_id": callerA}, 400, "bad_request"},
		{"/status", map[string]any{"call_id": callA, "caller_id": "anonymous"}, 400, "bad_caller_id"},
		{"/register", map[string]any{"call_id": callA, "caller_id": ""}, 400, "bad_caller_id"},
		{"/register", map[string]any{"call_id": callA, "caller_id": callerA, "audio_total_duration": 31}, 400, "bad_request"},
		{"/register", map[string]any{"call_id": callA, "caller_id": callerA, "authenticity_threshold": 1.5}, 400, "bad_request"},
		{"/register", map[string]any{"call_id": callA, "caller_id": callerA, "authenticity_threshold": "abc"}, 400, "bad_request"},
		{"/verify", map[string]any{"call_id": callA, "caller_id": callerA, "score_threshold": -0.1}, 400, "bad_request"},
		{"/verify", map[string]any{"call_id": callA, "caller_id": callerA}, 404, "not_registered"},
		{"/register", map[string]any{"call_id": callB, "caller_id": callerA}, 409, "no_call"},
		{"/delete", map[string]any{"call_id": callA}, 400, "bad_caller_id"},
		{"/stop", map[string]any{}, 400, "bad_request"},
		{"/stop", map[string]any{"operation_id": "op_nope"}, 404, "not_found"},
	} {
		code, m := e.post(c.path, c.body)
		if code != c.code || m["code"] != c.err || m["error"] == "" {
			t.Errorf("%s %v: %d %v; want %d %s", c.path, c.body, code, m, c.code, c.err)
		}
	}
	// A refused Open leaves the call free.
	e.src.set(callB, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}})
	op := e.start("/register", callB, callerA, nil)
	e.events(op["events_url"].(string), "")
}

// TestFloors checks that a browser's thresholds and durations only make
// the check stricter.
func TestFloors(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *fakeSource) {
		o.Verify = &daspeak.Config{AudioTotalDuration: 4 * time.Second, ScoreThreshold: 0.6}
		o.Register = &daspeak.Config{ModelHash: offline.ModelHash}
	})
	n := func(v float64) number { return number{v: v, set: true} }
	for _, c := range []struct {
		name string
		k    kind
		req  apiRequest
		dur  time.Duration
		auth float64
		sc   float64
		bad  bool
	}{
		{"defaults", kindVerify, apiRequest{}, 4 * time.Second, 0.8, 0.6, false},
		{"lower raised", kindVerify, apiRequest{AudioTotalDuration: n(1), AuthenticityThreshold: n(0.1), ScoreThreshold: n(0.2)}, 4 * time.Second, 0.8, 0.6, false},
		{"higher kept", kindVerify, apiRequest{AudioTotalDuration: n(7.5), AuthenticityThreshold: n(0.95), ScoreThreshold: n(0.9)}, 7500 * time.Millisecond, 0.95, 0.9, false},
		{"register default duration", kindRegister, apiRequest{AudioTotalDuration: n(0)}, 5 * time.Second, 0.8, 0.5, false},
		{"duration over 30 s", kindVerify, apiRequest{AudioTotalDuration: n(30.5)}, 0, 0, 0, true},
		{"NaN", kindVerify, apiRequest{ScoreThreshold: n(nan())}, 0, 0, 0, true},
		{"model differs", kindRegister, apiRequest{ModelHash: "m2"}, 0, 0, 0, true},
		{"model same", kindRegister, apiRequest{ModelHash: offline.ModelHash}, 5 * time.Second, 0.8, 0.5, false},
	} {
		cfg, errA := e.srv.config(c.k, c.req)
		if (errA != nil) != c.bad {
			t.Errorf("%s: %v", c.name, errA)
			continue
		}
		if c.bad {
			if errA.Status != 400 || errA.Code != CodeBadRequest {
				t.Errorf("%s: %+v", c.name, errA)
			}
			continue
		}
		if cfg.AudioTotalDuration != c.dur || cfg.AuthenticityThreshold != c.auth || cfg.ScoreThreshold != c.sc {
			t.Errorf("%s: %v %v %v", c.name, cfg.AudioTotalDuration, cfg.AuthenticityThreshold, cfg.ScoreThreshold)
		}
		if c.k == kindRegister && (cfg.Store == nil || cfg.ModelHash != offline.ModelHash) {
			t.Errorf("%s: register config %+v", c.name, cfg)
		}
	}
	// Numbers as strings, as the vendor's config.js spells them, and the
	// stricter threshold reaches the result.
	e.register(callA, callerA, "voices/slt_1.wav", "voices/slt_2.wav")
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_3.wav"}})
	op := e.start("/verify", callA, callerA, map[string]any{"score_threshold": "1", "audio_total_duration": "5"})
	_, msgs := e.events(op["events_url"].(string), "")
	last := checkStream(t, msgs, op)
	if last.Data["score_threshold"] != 1.0 || last.Data["net_speech_needed"] != 5.0 || last.Event != "result-fail-score" {
		t.Fatalf("verify with a strict threshold: %s", last.Raw)
	}
}

func nan() float64 { var z float64; return z / z }

// TestCallInfo checks a Source that knows its calls' callers.
func TestCallInfo(t *testing.T) {
	e := newEnv(t, func(o *Options, s *fakeSource) { o.Source = infoSource{s} })
	e.src.set(callA, fakeCall{ani: "tel:+34911234567", live: true, clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}})
	e.src.set(callB, fakeCall{ani: "", live: false})
	if code, m := e.post("/status", map[string]any{"call_id": callA}); code != 200 || m["caller_id"] != callerA || m["call_in_progress"] != true {
		t.Fatalf("status without caller id: %d %v", code, m)
	}
	if code, m := e.post("/status", map[string]any{"call_id": callB, "caller_id": callerB}); code != 200 || m["call_in_progress"] != false {
		t.Fatalf("status of an ended call: %d %v", code, m)
	}
	if code, m := e.post("/register", map[string]any{"call_id": callA, "caller_id": callerB}); code != 400 || m["code"] != "bad_caller_id" {
		t.Fatalf("register of another caller: %d %v", code, m)
	}
	// An unknown call: start calls answer no_call; status and delete
	// work from the request's caller id.
	if code, m := e.post("/verify", map[string]any{"call_id": "CA404", "caller_id": callerA}); code != 409 || m["code"] != "no_call" {
		t.Fatalf("verify on an unknown call: %d %v", code, m)
	}
	if code, m := e.post("/status", map[string]any{"call_id": "CA404"}); code != 200 || m["call_in_progress"] != false || m["registered"] != false || m["caller_id"] != "" {
		t.Fatalf("status of an unknown call without caller id: %d %v", code, m)
	}
	if code, m := e.post("/status", map[string]any{"call_id": "CA404", "caller_id": callerA}); code != 200 || m["call_in_progress"] != false || m["registered"] != false {
		t.Fatalf("status of an unknown call: %d %v", code, m)
	}
	op := e.start("/register", callA, "", nil)
	if op["caller_id"] != callerA {
		t.Fatalf("register answer %v", op)
	}
	_, msgs := e.events(op["events_url"].(string), "")
	checkStream(t, msgs, op)
	// The Audio was told the result before it was closed.
	e.src.mu.Lock()
	a := e.src.audios[0]
	e.src.mu.Unlock()
	<-a.closed
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.notified) != 1 || a.notified[0].Type != daspeak.EventResultSuccess || a.notified[0].Session.Credential != "" || a.notified[0].OperationID != op["operation_id"] {
		t.Fatalf("notified %+v", a.notified)
	}
}

// TestCORS checks preflight and response headers for allowed origins only.
func TestCORS(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *fakeSource) { o.AllowedOrigins = []string{"https://flex.twilio.com"} })
	for _, c := range []struct {
		origin string
		code   int
		allow  string
	}{
		{"https://flex.twilio.com", 204, "https://flex.twilio.com"},
		{"https://evil.example", 403, ""},
		{"", 403, ""},
	} {
		req, _ := http.NewRequest(http.MethodOptions, e.http.URL+"/agent/verify", nil)
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code || resp.Header.Get("Access-Control-Allow-Origin") != c.allow {
			t.Errorf("preflight from %q: %d %q", c.origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		if c.code == 204 && !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("preflight headers %v", resp.Header)
		}
	}
	// The widget script is served without authentication.
	resp, err := http.Get(e.http.URL + "/agent/voicegate-agent.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("widget: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestShutdown checks that Shutdown ends running operations with
// error-cancelled and closes their event streams.
func TestShutdown(t *testing.T) {
	e := newEnv(t, nil)
	e.src.set(callA, fakeCall{hold: true})
	op := e.start("/register", callA, callerA, nil)
	e.waitRunning(callA)
	resp, err := http.Get(e.http.URL + op["events_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	msgs := readSSE(t, resp)
	if last := checkStream(t, msgs, op); last.Event != "error-cancelled" || !strings.Contains(last.Data["error"].(string), "shutting down") || last.Data["cause"] != "shutdown" {
		t.Fatalf("ended with %s", last.Raw)
	}
	if code, m := e.post("/register", map[string]any{"call_id": callB, "caller_id": callerB}); code != 503 {
		t.Fatalf("register after shutdown: %d %v", code, m)
	}
}

func TestNewServerOptions(t *testing.T) {
	auth, _ := NewDevAuthenticator("x")
	src := newFakeSource(t)
	store := &CredentialStore{Store: credstore.NewMemory()}
	for _, c := range []struct {
		name string
		o    *Options
	}{
		{"nil", nil},
		{"no engine", &Options{Store: store, Source: src, Authenticator: auth}},
		{"no store", &Options{Engine: stubEngine{}, Source: src, Authenticator: auth}},
		{"no source", &Options{Engine: stubEngine{}, Store: store, Authenticator: auth}},
		{"no authenticator", &Options{Engine: stubEngine{}, Store: store, Source: src}},
		{"audio without key", &Options{Engine: stubEngine{}, Store: &CredentialStore{Store: credstore.NewMemory(), AudioDir: t.TempDir()}, Source: src, Authenticator: auth}},
		{"store in config", &Options{Engine: stubEngine{}, Store: store, Source: src, Authenticator: auth, Register: &daspeak.Config{Store: store}}},
	} {
		if _, err := NewServer(c.o); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

type stubEngine struct{ daspeak.Engine }

// TestOpenAbandoned checks that a start whose client went away while the
// audio was being opened starts nothing, and that OpenTimeout bounds Open.
func TestOpenAbandoned(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *fakeSource) { o.OpenTimeout = 300 * time.Millisecond })
	e.src.set(callA, fakeCall{hold: true})
	e.src.block = make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.http.URL+"/agent/register", strings.NewReader(`{"call_id":"`+callA+`","caller_id":"`+callerA+`"}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	start := time.Now()
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("answered %d", resp.StatusCode)
	}
	for range 500 {
		e.src.mu.Lock()
		n := len(e.src.openCtx)
		e.src.mu.Unlock()
		e.srv.mu.Lock()
		busy := len(e.srv.running)
		e.srv.mu.Unlock()
		if n == 1 && busy == 0 {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Fatalf("Open abandoned after %v", d)
	}
	e.srv.mu.Lock()
	busy := len(e.srv.running)
	e.srv.mu.Unlock()
	if busy != 0 || len(e.src.audios) != 0 {
		t.Fatalf("running %d, audios %d", busy, len(e.src.audios))
	}
	// A source that never gives audio: OpenTimeout, then no_call.
	start = time.Now()
	if code, m := e.post("/register", map[string]any{"call_id": callA, "caller_id": callerA}); code != 409 || m["code"] != "no_call" {
		t.Fatalf("open timeout: %d %v", code, m)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("answered after %v", d)
	}
}

// TestOperationTimeout checks that a caller who stays silent on a live
// call does not keep the operation, and the call, busy for ever.
func TestOperationTimeout(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *fakeSource) { o.OperationTimeout = 100 * time.Millisecond })
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav"}, hold: true})
	op := e.start("/register", callA, callerA, nil)
	_, msgs := e.events(op["events_url"].(string), "")
	last := checkStream(t, msgs, op)
	if last.Event != "error-audio" || last.Data["reason"] != "speech" || !strings.Contains(last.Data["error"].(string), "100ms") {
		t.Fatalf("ended with %s", last.Raw)
	}
}

// racingStore is a credstore.Store in which another operation's register
// of the caller lands just before the Get after the first startGets (the
// start's reads): the register whose store step makes that Get lost the
// race.
type racingStore struct {
	credstore.Store
	mu   sync.Mutex
	gets int
}

const startGets = 2 // a start reads the store before and after reserving the call

func (r *racingStore) Get(ctx context.Context, id string) (credstore.Record, error) {
	r.mu.Lock()
	r.gets++
	if r.gets == startGets+1 {
		r.Store.Put(ctx, id, credstore.Record{Credential: "cred-of-the-other-call"})
	}
	r.mu.Unlock()
	return r.Store.Get(ctx, id)
}

// TestRegisterLostRace: a register that another operation beat to the
// store ends with error-store, reason already_registered (not store: the
// caller is registered, with another call's voice), after one store
// attempt (the refusal is permanent, never retried), and leaves the other
// voiceprint as it is.
func TestRegisterLostRace(t *testing.T) {
	var rs *racingStore
	e := newEnv(t, func(o *Options, _ *fakeSource) {
		rs = &racingStore{Store: o.Store.Store}
		o.Store.Store = rs
	})
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}, hold: true})
	op := e.start("/register", callA, callerA, nil)
	_, msgs := e.events(op["events_url"].(string), "")
	last := checkStream(t, msgs, op)
	if last.Event != "error-store" || last.Data["reason"] != string(ReasonAlreadyRegistered) ||
		last.Data["error"] != "another operation registered the caller meanwhile: this voice was not stored" {
		t.Fatalf("ended with %s", last.Raw)
	}
	rs.mu.Lock()
	gets := rs.gets - startGets
	rs.mu.Unlock()
	if gets != 1 {
		t.Fatalf("the store was asked %d times, want 1: a caller already registered is not retried", gets)
	}
	if rec, _ := e.mem.Get(context.Background(), callerA); rec.Credential != "cred-of-the-other-call" {
		t.Fatalf("the other call's voiceprint was replaced: %q", rec.Credential)
	}
	// An expected outcome, not a fault: WARN, never ERROR.
	logs := e.logs.String()
	if strings.Contains(logs, `"level":"ERROR"`) || !strings.Contains(logs, `"level":"WARN","msg":"agent: credential not stored: another operation registered the caller first"`) {
		t.Errorf("logs of a lost registration race:\n%s", logs)
	}
}

// TestStoreOnce: of registers of one caller that all reach the store (two
// calls, both started before either stored), exactly one stores; the others
// fail with ErrAlreadyRegistered and leave the first voiceprint as it is.
func TestStoreOnce(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	const n = 8
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- e.srv.storeOnce(ctx, callerA, fmt.Sprintf("cred-%d", i), "hash", nil)
		}()
	}
	wg.Wait()
	close(errs)
	stored := 0
	for err := range errs {
		switch {
		case err == nil:
			stored++
		case !errors.Is(err, ErrAlreadyRegistered):
			t.Fatalf("storeOnce: %v", err)
		}
	}
	if stored != 1 {
		t.Fatalf("%d registers stored, want exactly 1", stored)
	}
	rec, err := e.mem.Get(ctx, callerA)
	if err != nil || !strings.HasPrefix(rec.Credential, "cred-") {
		t.Fatalf("record %+v, %v", rec, err)
	}
	if err := e.srv.storeOnce(ctx, callerA, "cred-late", "hash", nil); !errors.Is(err, ErrAlreadyRegistered) {
		t.Fatalf("a later register: %v", err)
	}
	if again, _ := e.mem.Get(ctx, callerA); again.Credential != rec.Credential {
		t.Fatalf("voiceprint overwritten: %q, was %q", again.Credential, rec.Credential)
	}
}

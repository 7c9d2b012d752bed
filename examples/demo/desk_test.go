package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/offline"
)

// TestDeskRefusesNonLoopback: the desk hands its development token to any
// page that loads it, so it never listens beyond loopback.
func TestDeskRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8080", "[::]:8080", "192.0.2.1:8080"} {
		if _, err := newDesk(deskOptions{BaseURL: "http://127.0.0.1:8080", Listen: addr}); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("listen %s: err %v, want a loopback refusal", addr, err)
		}
	}
	// The refusal names the address given, not the listener's "[::]:8090".
	_, err := start(t.Context(), options{
		Fast: true, desk: true, Addr: "0.0.0.0:0",
		DB: filepath.Join(t.TempDir(), "creds.db"), Shutdown: 5 * time.Second,
	})
	if err == nil || !strings.Contains(err.Error(), `-addr "0.0.0.0:0" is not a loopback address`) {
		t.Errorf("start on 0.0.0.0:0: %v", err)
	}
}

// TestDeskControls checks the desk's own endpoints: state, placing a call,
// changing its voice, hanging up and the engine modes, with their
// refusals.
func TestDeskControls(t *testing.T) {
	d, err := start(t.Context(), options{
		Fast: true, desk: true, Addr: "127.0.0.1:0",
		DB: filepath.Join(t.TempDir(), "creds.db"), Shutdown: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	h := d.desk.handler()
	do := func(method, path, body string) (int, map[string]any) {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.RemoteAddr = "127.0.0.1:5555"
		if method == "POST" {
			r.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var m map[string]any
		json.Unmarshal(w.Body.Bytes(), &m)
		return w.Code, m
	}
	sid := d.desk.state().Calls[0].CallSID

	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"page", "GET", "/desk/", "", 200, ""},
		{"widget", "GET", "/agent/voicegate-agent.js", "", 200, ""},
		{"state", "GET", "/desk/state", "", 200, ""},
		{"new call", "POST", "/desk/calls", `{"caller_id":"+1 415 555 0111","voice":"awb"}`, 201, ""},
		{"new call, bad number", "POST", "/desk/calls", `{"caller_id":"call me","voice":"awb"}`, 400, "bad_caller_id"},
		{"new call, unknown voice", "POST", "/desk/calls", `{"caller_id":"+14155550111","voice":"hal"}`, 400, "bad_request"},
		{"new call, not JSON", "POST", "/desk/calls", `{`, 400, "bad_request"},
		{"voice", "POST", "/desk/calls/" + sid, `{"voice":"kal"}`, 200, ""},
		{"voice, unknown", "POST", "/desk/calls/" + sid, `{"voice":"hal"}`, 400, "bad_request"},
		{"unknown call", "POST", "/desk/calls/CAnope", `{"voice":"kal"}`, 404, "not_found"},
		{"engine", "POST", "/desk/engine", `{"mode":"spoof"}`, 200, ""},
		{"engine, unknown mode", "POST", "/desk/engine", `{"mode":"broken"}`, 400, "bad_request"},
		{"hang up", "POST", "/desk/calls/" + sid, `{"live":false}`, 200, ""},
		{"agent API needs the token", "POST", "/agent/status", `{"call_id":"` + sid + `","caller_id":"+14155550101"}`, 401, "unauthenticated"},
	}
	for _, tc := range tests {
		status, m := do(tc.method, tc.path, tc.body)
		if status != tc.status || (tc.code != "" && m["code"] != tc.code) {
			t.Errorf("%s: %d %v, want %d %q", tc.name, status, m, tc.status, tc.code)
		}
	}
	// The desk without its slash is sent to it, as a ServeMux does; the
	// agent API's token-bearing paths are never redirected.
	for _, tc := range []struct{ path, location string }{
		{"/desk", "/desk/"},
		{"/desk?token=x", ""},
		{"/agent/operations//events?token=x", ""},
	} {
		r := httptest.NewRequest("GET", tc.path, nil)
		r.RemoteAddr = "127.0.0.1:5555"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if loc := w.Header().Get("Location"); loc != tc.location || (tc.location != "" && w.Code/100 != 3) || (tc.location == "" && w.Code != http.StatusNotFound) {
			t.Errorf("GET %s: %d Location %q, want Location %q", tc.path, w.Code, loc, tc.location)
		}
	}
	st := d.desk.state()
	if len(st.Calls) != 3 || st.Calls[2].CallerID != "+14155550111" || st.Calls[0].Voice != "kal" || st.Calls[0].Live || st.Mode != modeSpoof {
		t.Errorf("state after the changes: %+v", st)
	}
	// The fake Twilio knows the desk's calls: the agent API ties them to
	// their callers and sees the hang-up.
	for _, tc := range []struct {
		call         deskCall
		callerID     string
		status       int
		code         string
		callProgress any
	}{
		{st.Calls[0], st.Calls[0].CallerID, 200, "", false},
		{st.Calls[1], st.Calls[1].CallerID, 200, "", true},
		{st.Calls[2], "", 200, "", true},
		{st.Calls[1], st.Calls[2].CallerID, 400, "bad_caller_id", nil},
	} {
		r := httptest.NewRequest("POST", "/agent/status", strings.NewReader(`{"call_id":"`+tc.call.CallSID+`","caller_id":"`+tc.callerID+`"}`))
		r.RemoteAddr = "127.0.0.1:5555"
		r.Header.Set("Authorization", "Bearer "+st.Token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var m map[string]any
		json.Unmarshal(w.Body.Bytes(), &m)
		if w.Code != tc.status || (tc.code != "" && m["code"] != tc.code) || (tc.code == "" && (m["call_in_progress"] != tc.callProgress || m["caller_id"] != tc.call.CallerID)) {
			t.Errorf("agent status of %+v as %q: %d %v", tc.call, tc.callerID, w.Code, m)
		}
	}
}

// TestDeskEngineModes: the modes change the authenticity the engine
// reports, and nothing else.
func TestDeskEngineModes(t *testing.T) {
	e := &deskEngine{Engine: offline.New(nil)}
	wav, err := loadCall(mustTestdata(t), []string{"slt_1.wav"})
	if err != nil {
		t.Fatal(err)
	}
	models, _ := e.Models(context.Background())
	for _, tc := range []struct {
		mode string
		want float64
	}{
		{modeNormal, daspeak.AuthenticityNotPerformed}, {modeSpoof, spoofAuthenticity}, {modeNormal, daspeak.AuthenticityNotPerformed},
	} {
		e.setMode(tc.mode)
		cr, err := e.GenerateCredential(context.Background(), models[0], wav, nil)
		if err != nil {
			t.Fatal(err)
		}
		vr, err := e.CompareCredentialToAudio(context.Background(), cr.Credential, wav, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cr.Authenticity != tc.want || vr.Authenticity != tc.want || vr.Score < 0.9 {
			t.Errorf("%s: authenticity %v / %v, score %v; want %v and the engine's score", tc.mode, cr.Authenticity, vr.Authenticity, vr.Score, tc.want)
		}
	}
}

func mustTestdata(t *testing.T) string {
	t.Helper()
	td, err := findTestdata("")
	if err != nil {
		t.Fatal(err)
	}
	return td
}

// startDesk starts the demo with its desk, without playing calls.
func startDesk(t *testing.T) (*demo, string) {
	t.Helper()
	dir := t.TempDir()
	d, err := start(t.Context(), options{
		Fast: true, desk: true, Addr: "127.0.0.1:0",
		DB: filepath.Join(dir, "creds.db"), Shutdown: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	return d, filepath.Join(dir, "enrolment-audio")
}

// send makes one exact request to the running demo: Host and the other
// headers as given, over TCP.
func send(t *testing.T, method, url, host string, h map[string]string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := (&http.Client{Transport: tr}).Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := make([]byte, 4096)
	n, _ := io.ReadFull(resp.Body, b)
	return resp.StatusCode, string(b[:n])
}

// TestDeskDeleteRemovesScriptedAudio: a caller registered by a scripted
// call and deleted through the agent API leaves no enrolment audio behind
// (the desk said "its audio were removed" while the scripted calls' files
// stayed).
func TestDeskDeleteRemovesScriptedAudio(t *testing.T) {
	d, audioDir := startDesk(t)
	sc := scenario()
	regs := []callSpec{sc[0], sc[3]} // twilio register, audiohook register
	for _, o := range d.playAll(t.Context(), regs) {
		if !o.ok() {
			t.Fatalf("%s: got %q, err %v", o.Label, o.Got, o.Err)
		}
	}
	files, _ := os.ReadDir(audioDir)
	if len(files) != 2 {
		t.Fatalf("enrolment audio after two registers: %d files, want 2", len(files))
	}
	// A delete is bound to a live call of the caller: the AudioHook
	// caller calls the desk (a Twilio call) to be deleted.
	jsonHdr := map[string]string{"Content-Type": "application/json"}
	if status, resp := send(t, "POST", d.base+"/desk/calls", "", jsonHdr, `{"caller_id":"`+audiohookCaller+`","voice":"awb"}`); status != http.StatusCreated {
		t.Fatalf("new desk call for %s: %d %s", audiohookCaller, status, resp)
	}
	st := d.desk.state()
	auth := map[string]string{"Authorization": "Bearer " + st.Token, "Content-Type": "application/json"}
	callOf := map[string]string{}
	for _, c := range st.Calls {
		if c.Live {
			callOf[c.CallerID] = c.CallSID
		}
	}
	for _, caller := range []string{twilioCaller, audiohookCaller} {
		body := `{"call_id":"` + callOf[caller] + `","caller_id":"` + caller + `"}`
		status, resp := send(t, "POST", d.base+"/agent/delete", "", auth, body)
		if status != 200 || !strings.Contains(resp, `"deleted":true`) {
			t.Fatalf("delete %s: %d %s", caller, status, resp)
		}
		if _, err := d.desk.store.Get(t.Context(), caller); !errors.Is(err, credstore.ErrNotFound) {
			t.Errorf("%s: record after delete: %v", caller, err)
		}
	}
	files, _ = os.ReadDir(audioDir)
	for _, f := range files {
		t.Errorf("left after delete: %s", f.Name())
	}
	// The console keeps each register's result-success and says after it
	// that the caller was deleted.
	hist, ch := d.hub.subscribe()
	d.hub.unsubscribe(ch)
	for _, reg := range regs {
		var seq []string
		for _, ev := range hist {
			if ev.Call == reg.Label {
				seq = append(seq, ev.Type)
				if ev.Type == "deleted" {
					if want := "caller " + reg.Caller + " deleted from the desk: credential and enrolment audio removed"; ev.Text != want || ev.Terminal {
						t.Errorf("%s: deleted line %q terminal %v, want %q", reg.Label, ev.Text, ev.Terminal, want)
					}
				}
			}
		}
		if len(seq) < 2 || seq[len(seq)-2] != "result-success" || seq[len(seq)-1] != "deleted" {
			t.Errorf("%s: console lines %v, want result-success then deleted", reg.Label, seq)
		}
	}
}

// TestDemoHostCheck: the console, the desk and the agent API answer only
// requests addressed to a loopback name; a page on a rebound domain gets
// 421 and neither the token nor caller numbers.
func TestDemoHostCheck(t *testing.T) {
	d, _ := startDesk(t)
	token := d.desk.state().Token
	port := d.base[strings.LastIndex(d.base, ":")+1:]
	auth := map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"}
	del := `{"call_id":"` + d.desk.state().Calls[1].CallSID + `","caller_id":"+14155550142"}`
	for _, tc := range []struct {
		name, method, path, host string
		h                        map[string]string
		body                     string
		status                   int
	}{
		{"state, rebound", "GET", "/desk/state", "evil.example:18080", nil, "", 421},
		{"console, rebound", "GET", "/", "evil.example:" + port, nil, "", 421},
		{"events, rebound", "GET", "/events", "evil.example", nil, "", 421},
		{"desk page, rebound", "GET", "/desk/", "attacker.example", nil, "", 421},
		{"delete, rebound", "POST", "/agent/delete", "evil.example:18080", auth, del, 421},
		{"engine, rebound", "POST", "/desk/engine", "evil.example:18080", map[string]string{"Content-Type": "application/json"}, `{"mode":"spoof"}`, 421},
		{"state, localhost", "GET", "/desk/state", "localhost:" + port, nil, "", 200},
		{"state, 127.0.0.1", "GET", "/desk/state", "", nil, "", 200},
		{"delete, 127.0.0.1", "POST", "/agent/delete", "", auth, del, 200},
	} {
		status, body := send(t, tc.method, d.base+tc.path, tc.host, tc.h, tc.body)
		if status != tc.status {
			t.Errorf("%s: %d %q, want %d", tc.name, status, body, tc.status)
		}
		if status == 421 && strings.Contains(body, token) {
			t.Errorf("%s: token in the refusal", tc.name)
		}
	}
	if d.desk.state().Mode != modeNormal {
		t.Errorf("a refused request changed the engine mode to %q", d.desk.state().Mode)
	}
}

// TestDeskRefusesCrossSite: the desk's controls refuse what a page on
// another origin can send without a preflight (a text/plain form-like
// body), and any request whose Origin is not the desk's own.
func TestDeskRefusesCrossSite(t *testing.T) {
	d, _ := startDesk(t)
	for _, tc := range []struct {
		name   string
		h      map[string]string
		body   string
		status int
		mode   string
	}{
		{"text/plain from evil", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}, `{"mode":"spoof"}`, 403, modeNormal},
		{"text/plain marked cross-site, no Origin", map[string]string{"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}, `{"mode":"spoof"}`, 403, modeNormal},
		{"text/plain, no Origin", map[string]string{"Content-Type": "text/plain;charset=UTF-8"}, `{"mode":"spoof"}`, 415, modeNormal},
		{"form, no Origin", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, `{"mode":"spoof"}`, 415, modeNormal},
		{"no Content-Type", nil, `{"mode":"spoof"}`, 415, modeNormal},
		{"JSON from evil", map[string]string{"Origin": "https://evil.example", "Content-Type": "application/json"}, `{"mode":"spoof"}`, 403, modeNormal},
		{"JSON from null", map[string]string{"Origin": "null", "Content-Type": "application/json"}, `{"mode":"spoof"}`, 403, modeNormal},
		{"JSON from the desk's port on https", map[string]string{"Origin": "https" + strings.TrimPrefix(d.base, "http"), "Content-Type": "application/json"}, `{"mode":"spoof"}`, 403, modeNormal},
		{"JSON from the desk", map[string]string{"Origin": d.base, "Content-Type": "application/json; charset=utf-8"}, `{"mode":"spoof"}`, 200, modeSpoof},
		{"JSON, no Origin (curl)", map[string]string{"Content-Type": "application/json"}, `{"mode":"unreachable"}`, 200, modeUnreachable},
	} {
		status, body := send(t, "POST", d.base+"/desk/engine", "", tc.h, tc.body)
		code := map[int]string{403: `"code":"origin_not_allowed"`, 415: `"code":"unsupported_media_type"`}[tc.status]
		if status != tc.status || d.desk.state().Mode != tc.mode || !strings.Contains(body, code) {
			t.Errorf("%s: %d %q, mode %q; want %d, mode %q", tc.name, status, body, d.desk.state().Mode, tc.status, tc.mode)
		}
	}
	// The other controls are guarded the same way.
	sid := d.desk.state().Calls[0].CallSID
	evil := map[string]string{"Origin": "https://evil.example", "Content-Type": "text/plain"}
	for _, p := range []string{"/desk/calls", "/desk/calls/" + sid} {
		if status, body := send(t, "POST", d.base+p, "", evil, `{"caller_id":"+14155550199","voice":"kal","live":false}`); status != 403 || !strings.Contains(body, "origin_not_allowed") {
			t.Errorf("%s cross-site: %d %q, want 403 origin_not_allowed", p, status, body)
		}
	}
	if st := d.desk.state(); len(st.Calls) != 2 || !st.Calls[0].Live {
		t.Errorf("a refused request changed the calls: %+v", st.Calls)
	}
}

// TestDescribe: result lines give the authenticity only when the engine
// checked for spoofing; otherwise they say it was not performed (the
// offline engine's -1 sentinel once showed as "authenticity -1.00").
func TestDescribe(t *testing.T) {
	base := daspeak.Event{
		NetSpeech: 5 * time.Second, NetSpeechNeeded: 5 * time.Second,
		AudioDuration: 6200 * time.Millisecond, ModelHash: "offline-mfcc-v2",
	}
	with := func(f func(*daspeak.Event)) daspeak.Event { e := base; f(&e); return e }
	for _, tc := range []struct {
		name string
		ev   daspeak.Event
		want string
	}{
		{"verify, not performed", with(func(e *daspeak.Event) {
			e.Type, e.Operation, e.Score, e.ScoreThreshold = daspeak.EventResultSuccess, daspeak.OperationVerify, 0.9871, 0.5
			e.AntiSpoofing, e.Authenticity, e.AuthenticityThreshold = daspeak.AntiSpoofingNotPerformed, daspeak.AuthenticityNotPerformed, 0
		}), "score 0.987 >= 0.50, anti-spoofing not performed, net speech 5.0/5.0 s in 6.2 s of audio, model offline-mfcc-v2"},
		{"register, not performed, stored", with(func(e *daspeak.Event) {
			e.Type, e.Operation, e.Stored, e.Credential = daspeak.EventResultSuccess, daspeak.OperationRegister, true, "abcd"
			e.AntiSpoofing, e.Authenticity = daspeak.AntiSpoofingNotPerformed, daspeak.AuthenticityNotPerformed
		}), "anti-spoofing not performed, net speech 5.0/5.0 s in 6.2 s of audio, model offline-mfcc-v2, credential stored (4 bytes)"},
		{"verify, performed, low score", with(func(e *daspeak.Event) {
			e.Type, e.Operation, e.Score, e.ScoreThreshold = daspeak.EventResultFailScore, daspeak.OperationVerify, 0.2, 0.5
			e.AntiSpoofing, e.Authenticity, e.AuthenticityThreshold = daspeak.AntiSpoofingPerformed, 0.97, 0.8
		}), "score 0.200 < 0.50, authenticity 0.97 (min 0.80), net speech 5.0/5.0 s in 6.2 s of audio, model offline-mfcc-v2"},
		{"spoof", with(func(e *daspeak.Event) {
			e.Type, e.Operation = daspeak.EventResultFailSpoof, daspeak.OperationVerify
			e.AntiSpoofing, e.Authenticity, e.AuthenticityThreshold = daspeak.AntiSpoofingPerformed, 0.05, 0.8
		}), "authenticity 0.05 (min 0.80), net speech 5.0/5.0 s in 6.2 s of audio, model offline-mfcc-v2"},
	} {
		if got := describe(tc.ev); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// TestDemoErrorsAreJSON: the answers the demo gives before any handler
// runs (a rebound Host, no such route, a path the mux would redirect to
// its canonical form) are the API's JSON errors, not text/plain or an
// HTML redirect.
func TestDemoErrorsAreJSON(t *testing.T) {
	d, _ := startDesk(t)
	sid := d.desk.state().Calls[0].CallSID
	for _, tc := range []struct {
		name, method, path, host string
		status                   int
		body                     string
	}{
		{"rebound", "GET", "/desk/state", "evil.example:18080", 421, `{"code":"misdirected_request","error":"this development server answers requests to localhost, 127.0.0.1 or [::1] only"}` + "\n"},
		{"hangup path", "POST", "/desk/calls/" + sid + "/hangup", "", 404, `{"code":"not_found","error":"no such path"}` + "\n"},
		{"events, empty id", "GET", "/agent/operations//events?token=", "", 404, `{"code":"not_found","error":"no such path: /agent/operations//events is not in canonical form"}` + "\n"},
		{"console, no route", "GET", "/nope", "", 404, `{"code":"not_found","error":"no such path"}` + "\n"},
		{"desk state, wrong method", "DELETE", "/desk/state", "", 405, `{"code":"method_not_allowed","error":"method not allowed on this path"}` + "\n"},
	} {
		status, body := send(t, tc.method, d.base+tc.path, tc.host, nil, "")
		if status != tc.status || body != tc.body {
			t.Errorf("%s: %d %q, want %d %q", tc.name, status, body, tc.status, tc.body)
		}
	}
}

package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	st := d.desk.state()
	if len(st.Calls) != 3 || st.Calls[2].CallerID != "+14155550111" || st.Calls[0].Voice != "kal" || st.Calls[0].Live || st.Mode != modeSpoof {
		t.Errorf("state after the changes: %+v", st)
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

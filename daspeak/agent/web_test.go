package agent_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/internal/browsertest"
)

func TestWidgetHandler(t *testing.T) {
	h := agent.WidgetHandler()
	js := agent.WidgetJS()
	if !bytes.Contains(js, []byte("customElements.define('voicegate-agent'")) {
		t.Fatal("WidgetJS does not define <voicegate-agent>")
	}
	get := httptest.NewRecorder()
	h.ServeHTTP(get, httptest.NewRequest(http.MethodGet, "/agent/voicegate-agent.js", nil))
	etag := get.Header().Get("ETag")

	tests := []struct {
		name, method string
		header       http.Header
		status       int
		body         []byte
		want         map[string]string
	}{
		{"get", http.MethodGet, nil, http.StatusOK, js, map[string]string{
			"Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "no-cache",
			"X-Content-Type-Options": "nosniff", "ETag": etag,
		}},
		{"head", http.MethodHead, nil, http.StatusOK, nil, map[string]string{"Content-Type": "text/javascript; charset=utf-8"}},
		{"revalidate", http.MethodGet, http.Header{"If-None-Match": {etag}}, http.StatusNotModified, nil, map[string]string{"ETag": etag}},
		{"changed", http.MethodGet, http.Header{"If-None-Match": {`"other"`}}, http.StatusOK, js, nil},
		{"post", http.MethodPost, nil, http.StatusMethodNotAllowed, nil, map[string]string{"Allow": "GET, HEAD"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/agent/voicegate-agent.js", nil)
			for k, v := range tc.header {
				r.Header[k] = v
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if tc.body != nil && !bytes.Equal(w.Body.Bytes(), tc.body) {
				t.Errorf("body differs from WidgetJS (%d bytes, want %d)", w.Body.Len(), len(tc.body))
			}
			if tc.method == http.MethodHead && w.Body.Len() != 0 {
				t.Errorf("HEAD body of %d bytes", w.Body.Len())
			}
			for k, v := range tc.want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
	if len(etag) != 34 || etag[0] != '"' {
		t.Errorf("ETag %q: want 32 hex digits, quoted", etag)
	}
	js[0] ^= 0xff
	if bytes.Equal(js, agent.WidgetJS()) {
		t.Error("WidgetJS returns the embedded slice itself")
	}
}

// fakeAPI is a scripted agent API for the widget's edge cases that a real
// engine does not produce on demand: events of another operation on the
// stream, a stream that drops mid-operation, a stopped operation.
type fakeAPI struct {
	t *testing.T

	mu       sync.Mutex
	auth     []string                    // Authorization of every API request
	authOf   map[string]string           // the last Authorization by request call_id
	bodies   map[string][]map[string]any // request bodies by path
	resumed  []string                    // Last-Event-ID of each events request
	stopped  chan struct{}               // closed by the first /stop
	left     chan struct{}               // closed by the /stop of a CAswitch operation
	leftOnce sync.Once
	regdone  chan struct{} // closed by the /stop of a CAregdone operation, which has already succeeded
	doneOnce sync.Once
	gone     chan struct{} // closed by the /stop of a CAgone operation
	goneOnce sync.Once
	ended    chan struct{} // closed by the test: CAended's operation ends
	stop     sync.Once
	n        int
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/agent"+agent.WidgetPath:
		agent.WidgetHandler().ServeHTTP(w, r)
		return
	case strings.HasPrefix(r.URL.Path, "/agent/operations/"):
		f.events(w, r)
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		agent.WriteError(w, http.StatusBadRequest, agent.CodeBadRequest, err.Error())
		return
	}
	f.mu.Lock()
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	if f.authOf == nil {
		f.authOf = map[string]string{}
	}
	f.authOf[fmt.Sprint(body["call_id"])] = r.Header.Get("Authorization")
	f.bodies[r.URL.Path] = append(f.bodies[r.URL.Path], body)
	f.n++
	n := f.n
	f.mu.Unlock()
	callID, _ := body["call_id"].(string)
	switch r.URL.Path {
	case "/agent/status":
		registered := !strings.HasPrefix(callID, "CAreg")
		agent.WriteJSON(w, http.StatusOK, map[string]any{"call_id": callID, "caller_id": body["caller_id"], "registered": registered, "call_in_progress": true})
	case "/agent/verify", "/agent/reverify", "/agent/register":
		id := fmt.Sprintf("op_%s_%d", callID, n)
		agent.WriteJSON(w, http.StatusAccepted, map[string]any{
			"operation_id": id, "kind": kindOf(r.URL.Path), "call_id": callID, "caller_id": body["caller_id"],
			"events_url": "/agent/operations/" + id + "/events?token=tok",
		})
	case "/agent/stop":
		if strings.HasPrefix(fmt.Sprint(body["operation_id"]), "op_CAregdone_") {
			f.doneOnce.Do(func() { close(f.regdone) })
			agent.WriteJSON(w, http.StatusOK, map[string]any{"operation_id": body["operation_id"], "stopped": false})
			return
		}
		if strings.HasPrefix(fmt.Sprint(body["operation_id"]), "op_CAgone_") {
			f.goneOnce.Do(func() { close(f.gone) })
			agent.WriteJSON(w, http.StatusOK, map[string]any{"operation_id": body["operation_id"], "stopped": true})
			return
		}
		if strings.HasPrefix(fmt.Sprint(body["operation_id"]), "op_CAswitch_") {
			f.leftOnce.Do(func() { close(f.left) })
			agent.WriteJSON(w, http.StatusOK, map[string]any{"operation_id": body["operation_id"], "stopped": true})
			return
		}
		f.stop.Do(func() { close(f.stopped) })
		agent.WriteJSON(w, http.StatusOK, map[string]any{"operation_id": body["operation_id"], "stopped": true})
	default:
		agent.WriteError(w, http.StatusNotFound, agent.CodeNotFound, "no such path")
	}
}

// kindOf is the operation kind of a start path: a re-verify is a verify.
func kindOf(path string) string {
	if path == "/agent/register" {
		return "register"
	}
	return "verify"
}

// events plays the stream of an operation; the call id in the operation
// id picks the script.
func (f *fakeAPI) events(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/agent/operations/"), "/events")
	last := r.Header.Get("Last-Event-ID")
	f.mu.Lock()
	f.resumed = append(f.resumed, last)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	send := func(seq int, typ string, fields string) {
		if seq > 0 {
			fmt.Fprintf(w, "id: %d\n", seq)
		}
		kind := "verify"
		if strings.HasPrefix(id, "op_CAreg") {
			kind = "register"
		}
		fmt.Fprintf(w, "event: %s\ndata: {\"operation_id\":%q,\"call_id\":\"%s\",\"caller_id\":\"+34600111222\",\"kind\":%q,\"seq\":%d,\"type\":%q%s}\n\n",
			typ, id, strings.Split(id, "_")[1], kind, seq, typ, fields)
		rc.Flush()
	}
	foreign := func(typ, fields string) {
		fmt.Fprintf(w, "event: %s\ndata: {\"operation_id\":\"op_someone_else\",\"kind\":\"verify\",\"seq\":9,\"type\":%q%s}\n\n", typ, typ, fields)
		rc.Flush()
	}
	switch {
	case strings.HasPrefix(id, "op_CAfilter_") && last == "":
		io.WriteString(w, "retry: 100\n\n")
		send(1, "started", "")
		send(2, "progress", `,"net_speech":1.2,"net_speech_needed":3`)
		// Another operation's result must never show.
		foreign("result-success", `,"reason":"success","score":0.99,"score_threshold":0.5`)
		time.Sleep(300 * time.Millisecond)
		// Drop the connection: EventSource resumes with Last-Event-ID.
	case strings.HasPrefix(id, "op_CAfilter_"):
		send(3, "progress", `,"net_speech":2.4,"net_speech_needed":3`)
		time.Sleep(300 * time.Millisecond)
		send(4, "result-fail-score", `,"reason":"authentication","score":0.04,"score_threshold":0.5,"authenticity":0.97,"authenticity_threshold":0.8,"net_speech":3`)
	case strings.HasPrefix(id, "op_CAstop_"):
		send(1, "started", "")
		send(2, "progress", `,"net_speech":0.6,"net_speech_needed":5`)
		select {
		case <-f.stopped:
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Second):
			return
		}
		send(3, "error-cancelled", `,"reason":"cancelled","error":"stopped"`)
	case strings.HasPrefix(id, "op_CAnospoof_"):
		send(1, "started", "")
		send(2, "result-success", `,"reason":"success","score":0.91,"score_threshold":0.5,"anti_spoofing":"not-performed","net_speech":3`)
	case strings.HasPrefix(id, "op_CAspeech_"):
		send(1, "started", "")
		send(2, "error-consumer-not-ready", `,"reason":"speech","error":"no audio"`)
	case strings.HasPrefix(id, "op_CAswitch_"):
		// Runs until the widget stops it (the agent switched task).
		send(1, "started", "")
		send(2, "progress", `,"net_speech":0.8,"net_speech_needed":3`)
		select {
		case <-f.left:
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Second):
			return
		}
		send(3, "error-cancelled", `,"reason":"cancelled","error":"cancelled: stopped"`)
	case strings.HasPrefix(id, "op_CAregdone_"):
		// A register that stores its credential as the widget leaves it:
		// the stop comes too late.
		send(1, "started", "")
		send(2, "progress", `,"net_speech":4,"net_speech_needed":5`)
		select {
		case <-f.regdone:
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Second):
			return
		}
		send(3, "result-success", `,"reason":"success","authenticity":0.99,"authenticity_threshold":0.8,"net_speech":5`)
	case strings.HasPrefix(id, "op_CAgone_"):
		send(1, "started", "")
		send(2, "progress", `,"net_speech":0.8,"net_speech_needed":3`)
		select {
		case <-f.gone:
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Second):
			return
		}
		send(3, "error-cancelled", `,"reason":"cancelled","error":"cancelled: stopped"`)
	case strings.HasPrefix(id, "op_CAended_"):
		// The call ends mid-operation: its audio ends, and the operation
		// with error-audio once the server notices.
		send(1, "started", "")
		send(2, "progress", `,"net_speech":0.8,"net_speech_needed":3`)
		select {
		case <-f.ended:
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Second):
			return
		}
		send(3, "error-audio", `,"reason":"speech","net_speech":0.8,"net_speech_needed":3`)
	case strings.HasPrefix(id, "op_CAregstore_"):
		send(1, "started", "")
		send(2, "progress", `,"net_speech":5,"net_speech_needed":5`)
		send(3, "error-store", `,"reason":"store","error":"store unavailable","authenticity":0.99,"authenticity_threshold":0.8`)
	default:
		http.NotFound(w, r)
	}
}

// widgetPage holds one widget per case. window.vg records what each one
// showed and reported.
const widgetPage = `<!doctype html><html lang="en"><meta charset="utf-8"><title>widget</title>
<script src="/agent/voicegate-agent.js"></script>
<voicegate-agent id="filter" call-sid="CAfilter" caller-id="+34600111222" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="stop" call-sid="CAstop" caller-id="+34600111222" security-token="attr-token" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="nospoof" call-sid="CAnospoof" caller-id="+34600111222" security-token="attr-token" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="speech" call-sid="CAspeech" caller-id="+34600111222" security-token="attr-token" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="store" call-sid="CAregstore" caller-id="+34600111222" security-token="attr-token" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="switch" call-sid="CAswitch" caller-id="+34600111222" security-token="attr-token" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="regdone" call-sid="CAregdone" caller-id="+34600111222" security-token="attr-token" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="gone" call-sid="CAgone" caller-id="+34600111222" security-token="attr-token" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="ended" call-sid="CAended" caller-id="+34600111222" security-token="attr-token" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="alias" callSid="CAalias" callerId="+34600111222" securityToken="attr-token" callInProgress="true"></voicegate-agent>
<voicegate-agent id="idle" call-sid="CAidle" caller-id="+34600111222" security-token="attr-token" call-in-progress="false"></voicegate-agent>
<voicegate-agent id="badconfig" call-sid="CAbad" caller-id="+34600111222" security-token="attr-token" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="down" call-sid="CAdown" caller-id="+34600111222" security-token="attr-token" call-in-progress="true" backend-url="http://127.0.0.1:DOWNPORT/agent"></voicegate-agent>
<script>
window.vg = {titles: {}, results: {}};
for (const el of document.querySelectorAll('voicegate-agent')) {
  const id = el.id;
  vg.titles[id] = [];
  vg.results[id] = [];
  const t = el.shadowRoot.getElementById('otitle');
  new MutationObserver(() => vg.titles[id].push(t.textContent)).observe(t, {childList: true, characterData: true, subtree: true});
  el.utils = {onResponse: (result, audio) => vg.results[id].push({type: result.type, operation_id: result.operation_id, audio: audio === undefined ? 'undefined' : typeof audio})};
  el.config = {verify: {audioTotalDuration: '3', scoreThreshold: '0.7', authenticityThreshold: 0.9}};
}
document.getElementById('filter').utils = Object.assign(document.getElementById('filter').utils, {getTemporaryToken: async () => 'Bearer temp-token'});
document.getElementById('badconfig').config = {verify: {scoreThreshold: 'high'}};
</script>`

// TestWidgetBrowser checks the widget's handling of the event stream and
// of failures against a scripted API, in headless Chromium: events of
// another operation are ignored, a dropped stream resumes with
// Last-Event-ID, onResponse runs once per terminal event, Stop ends the
// operation, "anti-spoofing not performed" is shown, a widget without a
// live call is disabled, a bad config is refused before any request and
// an unreachable service shows the connection row.
func TestWidgetBrowser(t *testing.T) {
	b := browsertest.Start(t)

	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	f := &fakeAPI{t: t, bodies: map[string][]map[string]any{}, stopped: make(chan struct{}), left: make(chan struct{}), regdone: make(chan struct{}), gone: make(chan struct{}), ended: make(chan struct{})}
	page := strings.ReplaceAll(widgetPage, "DOWNPORT", fmt.Sprint(downPort))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/page" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, page)
			return
		}
		if r.URL.Path == "/late" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, latePage)
			return
		}
		f.ServeHTTP(w, r)
	}))
	defer srv.Close()

	p := b.NewPage(320, 2400)
	p.Goto(srv.URL + "/page")
	sel := func(w, id string) string { return "voicegate-agent#" + w + " >> #" + id }
	nsel := func(w, class string) string { return "voicegate-agent#" + w + " >> .notice ." + class }

	// Foreign events and a dropped stream.
	p.WaitText(sel("filter", "main"), "^Authenticate User$", 10*time.Second)
	p.Click(sel("filter", "main"))
	p.WaitText(sel("filter", "otitle"), "^Not verified$", 15*time.Second)
	var titles map[string][]string
	p.Eval(`vg.titles`, &titles)
	for _, tt := range titles["filter"] {
		if tt == "Caller verified" {
			t.Errorf("the widget showed another operation's success: titles %q", titles["filter"])
		}
	}
	type result struct{ Type, Operation_ID, Audio string }
	var results map[string][]result
	p.Eval(`vg.results`, &results)
	if r := results["filter"]; len(r) != 1 || r[0].Type != "result-fail-score" || !strings.HasPrefix(r[0].Operation_ID, "op_CAfilter_") || r[0].Audio != "undefined" {
		t.Errorf("onResponse calls %+v, want one result-fail-score of op_CAfilter_… with audio undefined", r)
	}
	f.mu.Lock()
	resumed := append([]string(nil), f.resumed...)
	auth := append([]string(nil), f.auth...)
	verify := f.bodies["/agent/verify"]
	f.mu.Unlock()
	if len(resumed) != 2 || resumed[0] != "" || resumed[1] != "2" {
		t.Errorf("Last-Event-ID of the event requests: %q, want \"\" then \"2\"", resumed)
	}
	if len(verify) != 1 || verify[0]["audio_total_duration"] != 3.0 || verify[0]["score_threshold"] != 0.7 || verify[0]["authenticity_threshold"] != 0.9 {
		t.Errorf("verify bodies %v: want the config's numbers as JSON numbers", verify)
	}
	tempSeen := false
	for _, a := range auth {
		tempSeen = tempSeen || a == "Bearer temp-token"
		if a != "Bearer temp-token" && a != "Bearer attr-token" {
			t.Errorf("Authorization %q", a)
		}
	}
	if !tempSeen {
		t.Error("getTemporaryToken's token was never sent")
	}
	// Results reach screen readers: failures through the assertive
	// region, successes through the polite one, and neither keeps an
	// earlier message: the polite region no longer says the voice is
	// being checked.
	p.WaitText(sel("filter", "alert"), "^Not verified. The audio can.t be verified", 2*time.Second)
	if txt := p.Text(sel("filter", "live")); txt != "" {
		t.Errorf("after a result-fail-score the polite live region still says %q", txt)
	}
	p.Screenshot("widget-filter", "voicegate-agent#filter")
	// Windows high-contrast mode (forced colors): the row keeps its
	// border and the text its system colour.
	p.Media("forced-colors", "active")
	var border string
	p.Eval(`getComputedStyle(document.getElementById('filter').shadowRoot.getElementById('outcome')).borderTopStyle`, &border)
	if border == "none" {
		t.Error("the outcome row has no border in forced colors")
	}
	var badge [2]string
	p.Eval(`(() => { const s = getComputedStyle(document.getElementById('filter').shadowRoot.getElementById('badge')); return [s.color, s.backgroundColor]; })()`, &badge)
	if badge[0] == badge[1] {
		t.Errorf("the result icon is invisible in forced colors: colour %s on %s", badge[0], badge[1])
	}
	p.Screenshot("widget-filter-forced-colors", "voicegate-agent#filter")
	p.Media("forced-colors", "none")

	// Stop ends the operation with error-cancelled. By keyboard: focus
	// follows the main button's place, to Stop while the operation runs.
	p.WaitText(sel("stop", "main"), "^Authenticate User$", 10*time.Second)
	p.Focus(sel("stop", "main"))
	p.Press("Enter")
	p.WaitText(sel("stop", "ptext"), `Voice collected: 0\.6 s of 5\.0 s`, 10*time.Second)
	if f := p.Focused(); !strings.HasPrefix(f, "button#stop") {
		t.Errorf("focus while the operation runs: %q, want the Stop button", f)
	}
	// Moved in the page (as a framework may do): it follows the same
	// operation again.
	p.Eval(`document.body.prepend(document.getElementById('stop'))`, nil)
	p.WaitText(sel("stop", "ptext"), `Voice collected: 0\.6 s of 5\.0 s`, 10*time.Second)
	p.Focus(sel("stop", "stop"))
	p.Press("Enter")
	p.WaitText(sel("stop", "otitle"), "^Stopped$", 10*time.Second)
	p.WaitText(sel("stop", "main"), "^Re-Authenticate User$", 5*time.Second)
	if f := p.Focused(); !strings.HasPrefix(f, "button#main") {
		t.Errorf("focus after Stop: %q, want the main button back", f)
	}
	p.Eval(`vg.results`, &results)
	if r := results["stop"]; len(r) != 1 || r[0].Type != "error-cancelled" {
		t.Errorf("onResponse after stop: %+v", r)
	}
	f.mu.Lock()
	stops := f.bodies["/agent/stop"]
	f.mu.Unlock()
	if len(stops) != 1 || !strings.HasPrefix(fmt.Sprint(stops[0]["operation_id"]), "op_CAstop_") {
		t.Errorf("stop requests %v", stops)
	}

	// A success from an engine without anti-spoofing says so.
	p.Click(sel("nospoof", "main"))
	p.WaitText(sel("nospoof", "otitle"), "^Caller verified$", 10*time.Second)
	p.WaitText(sel("nospoof", "nospoof"), "^Anti-spoofing not performed", time.Second)
	if d := p.Text(sel("nospoof", "odetail")); strings.Contains(d, "authenticity") {
		t.Errorf("detail %q shows an authenticity", d)
	}
	p.WaitText(sel("nospoof", "live"), "^Caller verified.*Anti-spoofing not performed", 2*time.Second)
	// What the row shows is said, score included.
	if d, live := p.Text(sel("nospoof", "odetail")), p.Text(sel("nospoof", "live")); d == "" || !strings.Contains(live, strings.ReplaceAll(d, " \u00b7 ", ", ")) {
		t.Errorf("the live region %q does not say the row's detail %q", live, d)
	}
	p.Screenshot("widget-nospoof", "voicegate-agent#nospoof")
	// The agent switches task: the widget shows another caller, and
	// nothing said about the previous one stays.
	p.Eval(`(() => { const el = document.getElementById('nospoof'); el.setAttribute('call-sid', 'CAnospoof2'); el.setAttribute('caller-id', '+34600333444'); })()`, nil)
	p.WaitText(sel("nospoof", "caller"), `^\+34600333444$`, 5*time.Second)
	p.WaitText(sel("nospoof", "main"), "^Authenticate User$", 5*time.Second)
	for _, region := range []string{"live", "alert"} {
		if txt := p.Text(sel("nospoof", region)); txt != "" {
			t.Errorf("after the caller changed, the %s region still says %q", region, txt)
		}
	}
	// The same mid-operation: the operation is stopped, its "checking"
	// message goes with it, and the widget says the previous caller's
	// check was stopped; its events never show on the new call.
	p.Click(sel("switch", "main"))
	p.WaitText(sel("switch", "ptext"), `Voice collected: 0\.8 s of 3\.0 s`, 10*time.Second)
	p.WaitText(sel("switch", "live"), "^Checking the caller.s voice", 2*time.Second)
	p.Eval(`(() => { const el = document.getElementById('switch'); el.setAttribute('call-sid', 'CAswitch2'); el.setAttribute('caller-id', '+34600555666'); })()`, nil)
	p.WaitText(sel("switch", "main"), "^Authenticate User$", 10*time.Second)
	p.WaitText(nsel("switch", "title"), "^Voice check stopped: you switched calls$", 5*time.Second)
	p.WaitText(nsel("switch", "cause"), `^The voice check of \+34600111222 \(call\s…\u2060[^,]{6}, left at \d{1,2}:\d\d( [AP]M)?\) was stopped\.$`, time.Second)
	p.WaitText(sel("switch", "nlive"), `^Voice check stopped: you switched calls\. The voice check of \+34600111222 \(call\s…\u2060[^,]{6}, left at \d{1,2}:\d\d( [AP]M)?\) was stopped\. That caller was not verified\.$`, 2*time.Second)
	if txt := p.Text(sel("switch", "alert")) + p.Text(sel("switch", "nalert")); txt != "" {
		t.Errorf("after the caller changed mid-operation, the alert region says %q", txt)
	}
	p.WaitText(sel("switch", "caller"), `^\+34600555666$`, time.Second)
	f.mu.Lock()
	var switchStops int
	for _, b := range f.bodies["/agent/stop"] {
		if strings.HasPrefix(fmt.Sprint(b["operation_id"]), "op_CAswitch_") {
			switchStops++
		}
	}
	f.mu.Unlock()
	if switchStops != 1 {
		t.Errorf("%d stop requests for the operation left, want 1", switchStops)
	}
	p.Eval(`vg.results`, &results)
	if r := results["switch"]; len(r) != 0 {
		t.Errorf("onResponse called for the operation left: %+v", r)
	}
	p.Eval(`vg.titles`, &titles)
	for _, tt := range titles["switch"] {
		if tt == "Stopped" || tt == "Caller verified" || tt == "Not verified" {
			t.Errorf("the operation left showed its result on the new call: titles %q", titles["switch"])
		}
	}
	p.Screenshot("widget-switched", "voicegate-agent#switch")
	// A register the stop came too late for: the widget says that the
	// previous caller was registered, assertively.
	p.WaitText(sel("regdone", "main"), "^Register User$", 10*time.Second)
	p.Click(sel("regdone", "main"))
	p.WaitText(sel("regdone", "ptext"), `Voice collected: 4\.0 s of 5\.0 s`, 10*time.Second)
	p.Eval(`document.getElementById('regdone').setAttribute('call-sid', 'CAregdone2')`, nil)
	p.WaitText(nsel("regdone", "title"), "^Previous call.s registration was stored: it could not be stopped in time$", 10*time.Second)
	p.WaitText(nsel("regdone", "cause"), `^The voice of \+34600111222 \(call\s…\u2060[^,]{6}, left at \d{1,2}:\d\d( [AP]M)?\) was registered before the registration could be stopped\.$`, time.Second)
	p.WaitText(sel("regdone", "nalert"), `^Previous call.s registration was stored: it could not be stopped in time\. The voice of \+34600111222 \(call\s…\u2060[^,]{6}, left at \d{1,2}:\d\d( [AP]M)?\) was registered`, 2*time.Second)
	p.WaitText(sel("regdone", "main"), "^Register User$", 5*time.Second)
	p.Eval(`vg.titles`, &titles)
	for _, tt := range titles["regdone"] {
		if tt == "Voice registered" {
			t.Errorf("the register left showed its success as the new call's: titles %q", titles["regdone"])
		}
	}
	p.Screenshot("widget-switched-too-late", "voicegate-agent#regdone")
	// An element removed from the page (not moved) stops its operation.
	p.Click(sel("gone", "main"))
	p.WaitText(sel("gone", "ptext"), `Voice collected: 0\.8 s of 3\.0 s`, 10*time.Second)
	p.Eval(`document.getElementById('gone').remove()`, nil)
	stoppedGone := false
	for deadline := time.Now().Add(5 * time.Second); !stoppedGone && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		f.mu.Lock()
		for _, b := range f.bodies["/agent/stop"] {
			stoppedGone = stoppedGone || strings.HasPrefix(fmt.Sprint(b["operation_id"]), "op_CAgone_")
		}
		f.mu.Unlock()
	}
	if !stoppedGone {
		t.Error("the operation of a widget removed from the page was not stopped")
	}

	// The call ends while an operation runs: the widget shows the
	// operation's state and that the call ended, never "no call in
	// progress" next to a running check; then the result says the call
	// ended.
	p.Click(sel("ended", "main"))
	p.WaitText(sel("ended", "ptext"), `Voice collected: 0\.8 s of 3\.0 s`, 10*time.Second)
	p.Eval(`document.getElementById('ended').setAttribute('call-in-progress', 'false')`, nil)
	p.WaitText(sel("ended", "state"), "^Call ended: finishing the voice check", 5*time.Second)
	if !p.Visible(sel("ended", "progress")) {
		t.Error("the running check's progress is hidden once the call ended")
	}
	p.Screenshot("widget-call-ended-running", "voicegate-agent#ended")
	close(f.ended)
	p.WaitText(sel("ended", "otitle"), "^Call ended$", 10*time.Second)
	p.WaitText(sel("ended", "state"), "^Call ended: voice checks are off$", 5*time.Second)
	p.WaitText(sel("ended", "alert"), "^Call ended. The call ended before enough.*The caller was not verified", 2*time.Second)
	if txt := p.Text(sel("ended", "live")); txt != "" {
		t.Errorf("after the call ended, the polite live region still says %q", txt)
	}
	p.Screenshot("widget-call-ended", "voicegate-agent#ended")

	// Not enough speech; a register whose credential was not stored.
	p.Click(sel("speech", "main"))
	p.WaitText(sel("speech", "otitle"), "^Not enough speech$", 10*time.Second)
	p.WaitText(sel("speech", "otodo"), "Keep the caller talking", time.Second)
	p.WaitText(sel("store", "main"), "^Register User$", 10*time.Second)
	p.Click(sel("store", "main"))
	p.WaitText(sel("store", "otitle"), "^Registration not saved$", 10*time.Second)
	p.WaitText(sel("store", "main"), "^Register User$", 10*time.Second)
	if c := p.Text(sel("store", "outcome")); strings.Contains(c, "authenticity") {
		t.Errorf("an error row shows scores: %q", c)
	}
	var cls []string
	p.Eval(`['speech','store'].map(id => document.getElementById(id).shadowRoot.getElementById('outcome').className)`, &cls)
	if len(cls) != 2 || cls[0] != "outcome error" || cls[1] != "outcome error" {
		t.Errorf("speech and store rows: classes %q, want the error style", cls)
	}
	p.Screenshot("widget-store", "voicegate-agent#store")
	// The news of the hang-up comes after the result: "not enough speech"
	// becomes the call's end.
	p.Eval(`document.getElementById('speech').setAttribute('call-in-progress', 'false')`, nil)
	p.WaitText(sel("speech", "otitle"), "^Call ended$", 5*time.Second)
	p.WaitText(sel("speech", "alert"), "^Call ended. The call ended before enough", 2*time.Second)
	p.WaitText(sel("speech", "state"), "^Call ended: voice checks are off$", time.Second)

	// The vendor's camelCase attribute names work too.
	p.WaitText(sel("alias", "main"), "^Authenticate User$", 10*time.Second)
	f.mu.Lock()
	aliased := false
	for _, body := range f.bodies["/agent/status"] {
		aliased = aliased || (body["call_id"] == "CAalias" && body["caller_id"] == "+34600111222")
	}
	f.mu.Unlock()
	if !aliased {
		t.Error("no status request for callSid=\"CAalias\"")
	}

	// No call in progress: nothing can start.
	p.WaitText(sel("idle", "state"), "No call in progress", 5*time.Second)
	var disabled bool
	p.Eval(`document.getElementById('idle').shadowRoot.getElementById('main').disabled`, &disabled)
	if !disabled {
		t.Error("main button enabled without a call in progress")
	}

	// A bad config is refused in the browser, before any request.
	p.Click(sel("badconfig", "main"))
	p.WaitText(sel("badconfig", "otitle"), "^Wrong configuration$", 5*time.Second)
	p.WaitText(sel("badconfig", "otodo"), "browser console", time.Second)
	f.mu.Lock()
	for _, body := range f.bodies["/agent/verify"] {
		if body["call_id"] == "CAbad" {
			t.Errorf("verify sent with a bad config: %v", body)
		}
	}
	f.mu.Unlock()

	// The service cannot be reached: the connection row, retrying.
	p.WaitText(sel("down", "otitle"), "^Cannot reach the voice service$", 10*time.Second)
	p.WaitText(sel("down", "otodo"), "^Retrying", time.Second)
	p.Screenshot("widget-down", "voicegate-agent#down")

	// Created and given utils before the script defines the element (as
	// the Genesys interaction widget page does): the token still comes
	// from getTemporaryToken, and the caller id from the server.
	p2 := b.NewPage(320, 600)
	p2.Goto(srv.URL + "/late")
	p2.WaitText("voicegate-agent >> #main", "^Authenticate User$", 10*time.Second)
	// The first page's widgets may read their status again meanwhile
	// (focus, visibility, periodic reads): the late element's own
	// request is the one looked at.
	f.mu.Lock()
	lateAuth := f.authOf["conv-1234"]
	var lateBody map[string]any
	for _, b := range f.bodies["/agent/status"] {
		if b["call_id"] == "conv-1234" {
			lateBody = b
		}
	}
	f.mu.Unlock()
	if lateAuth != "Bearer late-token" || lateBody == nil || lateBody["caller_id"] != "" {
		t.Errorf("late element: Authorization %q, status body %v", lateAuth, lateBody)
	}

	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

// latePage creates the element before its script is loaded.
const latePage = `<!doctype html><html lang="en"><meta charset="utf-8"><title>late</title>
<div id="mount"></div>
<script>
const el = document.createElement('voicegate-agent');
el.setAttribute('conversation-id', 'conv-1234');
el.setAttribute('call-in-progress', 'true');
el.utils = {getTemporaryToken: () => Promise.resolve('late-token')};
document.getElementById('mount').appendChild(el);
const s = document.createElement('script');
s.src = '/agent/voicegate-agent.js';
document.head.appendChild(s);
</script>`

package agent_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/internal/browsertest"
)

// recoverPage holds widgets whose token comes from getTemporaryToken
// (window.tok; while window.hang is set it never answers).
const recoverPage = `<!doctype html><html lang="en"><meta charset="utf-8"><title>recover</title>
<script src="/agent/voicegate-agent.js"></script>
<voicegate-agent id="forb" call-sid="CAforb2" caller-id="+34600000010" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="slow" call-sid="CAslow1" caller-id="+34600000011" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="store" call-sid="CAstore2" caller-id="+34600000012" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="multi" call-sid="CAmulti1" caller-id="+34600000013" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="conflict" call-sid="CAconflict1" caller-id="+34600000014" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="ended" call-sid="CAended1" caller-id="+34600000015" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="nocall" call-sid="CAnocall1" caller-id="+34600000016" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="odd" call-sid="CAodd1" caller-id="+34600000017" call-in-progress="true"></voicegate-agent>
<script>
window.tok = {forb: 'old', slow: 't', store: 't', multi: 't', conflict: 't', ended: 't', nocall: 't', odd: 't'};
window.hang = false;
window.asked = {};
for (const el of document.querySelectorAll('voicegate-agent')) {
  const id = el.id;
  el.utils = {getTemporaryToken: () => {
    window.asked[id] = (window.asked[id] || 0) + 1;
    if (id === 'slow' && window.hang) return new Promise(() => {});
    return Promise.resolve(window.tok[id]);
  }};
}
</script>`

// recoverAPI scripts the agent API for recoverPage. CAforb2: the agent's
// token "old" may read the call's status but its register is refused
// (403: the task moved); "refused" is refused everywhere; "new" is
// allowed. Registers of CAslow* and CAmulti* run until stopped; the
// register of CAstore2 ends with error-store although its credential was
// written (its status then says registered); the register of CAconflict1
// ends with error-store, reason already_registered (another call's
// register stored first: its status says registered). CAended1 and
// CAnocall1 have a registered caller; CAended1 hangs up during its verify
// (not enough speech, then not in progress), CAnocall1 before its verify
// (409 no_call, then not in progress), as a Genesys call whose AudioHook
// session ended while the page still says call-in-progress="true". The
// register of CAodd1 ends with error-store carrying reason "success" (and
// a score): not the operation's success.
type recoverAPI struct {
	mu      sync.Mutex
	ended   map[string]bool // calls hung up
	asked   map[string]int  // status requests by call id and token
	stopped opSignals
	quit    chan struct{}
}

func (f *recoverAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/agent"+agent.WidgetPath {
		agent.WidgetHandler().ServeHTTP(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/agent/operations/") {
		op := strings.Split(strings.TrimPrefix(r.URL.Path, "/agent/operations/"), "/")[0]
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: started\ndata: {\"operation_id\":%q,\"kind\":\"register\",\"seq\":1,\"type\":\"started\"}\n\n", op)
		switch op {
		case "op_CAstore2":
			fmt.Fprintf(w, "event: error-store\ndata: {\"operation_id\":%q,\"kind\":\"register\",\"seq\":2,\"type\":\"error-store\",\"reason\":\"store\",\"error\":\"store write timed out\"}\n\n", op)
			return
		case "op_CAconflict1":
			fmt.Fprintf(w, "event: error-store\ndata: {\"operation_id\":%q,\"kind\":\"register\",\"seq\":2,\"type\":\"error-store\",\"reason\":\"already_registered\",\"error\":\"another operation registered the caller meanwhile: this voice was not stored\"}\n\n", op)
			return
		case "op_CAodd1":
			fmt.Fprintf(w, "event: error-store\ndata: {\"operation_id\":%q,\"kind\":\"register\",\"seq\":2,\"type\":\"error-store\",\"reason\":\"success\",\"score\":0.99,\"score_threshold\":0.5}\n\n", op)
			return
		case "op_CAended1":
			fmt.Fprintf(w, "event: error-audio\ndata: {\"operation_id\":%q,\"kind\":\"verify\",\"seq\":2,\"type\":\"error-audio\",\"reason\":\"speech\",\"net_speech\":0.6,\"net_speech_needed\":3}\n\n", op)
			return
		}
		w.(http.Flusher).Flush()
		select {
		case <-f.stopped.ch(op):
		case <-r.Context().Done():
			return
		case <-f.quit:
			return
		}
		fmt.Fprintf(w, "event: error-cancelled\ndata: {\"operation_id\":%q,\"kind\":\"register\",\"seq\":2,\"type\":\"error-cancelled\",\"reason\":\"cancelled\"}\n\n", op)
		return
	}
	tok, _ := agent.BearerToken(r)
	var body map[string]any
	json.NewDecoder(r.Body).Decode(&body)
	callID, _ := body["call_id"].(string)
	if callID == "CAforb2" && (tok == "refused" || (tok == "old" && r.URL.Path != "/agent/status")) {
		agent.WriteError(w, http.StatusForbidden, agent.CodeForbidden, "not allowed on this call")
		if r.URL.Path == "/agent/status" {
			f.mu.Lock()
			f.asked[callID+" "+tok]++
			f.mu.Unlock()
		}
		return
	}
	switch r.URL.Path {
	case "/agent/status":
		f.mu.Lock()
		f.asked[callID+" "+tok]++
		f.mu.Unlock()
		f.mu.Lock()
		ended := f.ended[callID]
		f.mu.Unlock()
		f.mu.Lock()
		conflict := f.asked["conflict tried"] > 0
		f.mu.Unlock()
		registered := callID == "CAstore2" && f.storeTried() || callID == "CAconflict1" && conflict || callID == "CAended1" || callID == "CAnocall1"
		agent.WriteJSON(w, http.StatusOK, map[string]any{"call_id": callID, "caller_id": body["caller_id"], "registered": registered, "call_in_progress": !ended})
	case "/agent/verify":
		f.mu.Lock()
		f.ended[callID] = true
		f.mu.Unlock()
		if callID == "CAnocall1" {
			agent.WriteError(w, http.StatusConflict, agent.CodeNoCall, "no audio source for the call")
			return
		}
		id := "op_" + callID
		agent.WriteJSON(w, http.StatusAccepted, map[string]any{
			"operation_id": id, "kind": "verify", "call_id": callID, "caller_id": body["caller_id"],
			"events_url": "/agent/operations/" + id + "/events?token=tok",
		})
	case "/agent/register":
		id := "op_" + callID
		f.mu.Lock()
		switch callID {
		case "CAstore2":
			f.asked["store tried"]++
		case "CAconflict1":
			f.asked["conflict tried"]++
		}
		f.mu.Unlock()
		agent.WriteJSON(w, http.StatusAccepted, map[string]any{
			"operation_id": id, "kind": "register", "call_id": callID, "caller_id": body["caller_id"],
			"events_url": "/agent/operations/" + id + "/events?token=tok",
		})
	case "/agent/stop":
		op, _ := body["operation_id"].(string)
		close(f.stopped.ch(op))
		agent.WriteJSON(w, http.StatusOK, map[string]any{"operation_id": op, "stopped": true})
	default:
		agent.WriteError(w, http.StatusNotFound, agent.CodeNotFound, "no such path")
	}
}

func (f *recoverAPI) storeTried() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked["store tried"] > 0
}

// TestWidgetRecoverBrowser checks, in headless Chromium: that after a 403
// a new token from getTemporaryToken lets the agent try again once the
// service accepts it, and a refused one does not; that a
// getTemporaryToken that never answers is given up and said, also when
// it holds the stop of a call left; that a register ending in error-store
// whose credential was written is said registered; and that notices about
// several calls left name each call.
func TestWidgetRecoverBrowser(t *testing.T) {
	b := browsertest.Start(t)
	f := &recoverAPI{asked: map[string]int{}, ended: map[string]bool{}, quit: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/page" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, recoverPage)
			return
		}
		f.ServeHTTP(w, r)
	}))
	defer srv.Close()
	defer close(f.quit)
	p := b.NewPage(320, 2400)
	p.Goto(srv.URL + "/page")
	sel := func(w, id string) string { return "voicegate-agent#" + w + " >> #" + id }
	disabled := func(w string) bool {
		var d bool
		p.Eval(`document.getElementById('`+w+`').shadowRoot.getElementById('main').disabled`, &d)
		return d
	}
	for _, w := range []string{"forb", "slow", "store", "multi"} {
		p.WaitText(sel(w, "main"), "^Register User$", 10*time.Second)
	}
	outcomeKind := func(w string) string {
		var c string
		p.Eval(`document.getElementById('`+w+`').shadowRoot.getElementById('outcome').className`, &c)
		return c
	}

	// A token that never comes: the start is given up and said.
	p.Eval(`window.hang = true`, nil)
	p.Click(sel("slow", "main"))
	p.WaitText(sel("slow", "otitle"), "^No sign-in token from the desk$", 12*time.Second)
	p.WaitText(sel("slow", "main"), "^Register User$", time.Second)
	p.Eval(`window.hang = false`, nil)

	// 403 on start; a token the service still refuses keeps the buttons
	// off; a new one it accepts brings them back.
	p.Click(sel("forb", "main"))
	p.WaitText(sel("forb", "otitle"), "^You are not assigned to this call$", 5*time.Second)
	p.WaitText(sel("forb", "main"), "^Not assigned$", time.Second)
	p.Eval(`window.tok.forb = 'refused'`, nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		n := f.asked["CAforb2 refused"]
		f.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a new token after a 403 was never tried")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if got := p.Text(sel("forb", "main")); got != "Not assigned" || !disabled("forb") {
		t.Errorf("after a token the service refuses: main button %q (disabled %v), want Not assigned, disabled", got, disabled("forb"))
	}
	p.Eval(`window.tok.forb = 'new'`, nil)
	p.WaitText(sel("forb", "main"), "^Register User$", 10*time.Second)
	if disabled("forb") {
		t.Error("the main button is disabled after the service accepted the new token")
	}
	if p.Visible(sel("forb", "outcome")) {
		t.Errorf("the refusal is still shown after the new token was accepted: %q", p.Text(sel("forb", "otitle")))
	}

	// error-store, and the caller is registered: not confirmed (amber),
	// never a green success: the voice stored may be another call's.
	p.Click(sel("store", "main"))
	p.WaitText(sel("store", "main"), "^Authenticate User$", 10*time.Second)
	p.WaitText(sel("store", "otitle"), "^Registration not confirmed$", time.Second)
	p.WaitText(sel("store", "ocause"), "A voice is registered for this caller, but the service could not confirm it is this call.s\\.$", time.Second)
	p.WaitText(sel("store", "otodo"), "^Press Authenticate User to check", time.Second)
	if k := outcomeKind("store"); strings.Contains(k, "success") || !strings.Contains(k, "error") {
		t.Errorf("error-store with the caller registered shown as %q, want error (amber), not success", k)
	}
	p.Screenshot("widget-store-saved", "voicegate-agent#store")

	// error-store, reason already_registered: another call registered the
	// caller meanwhile. A failure, though the status says registered.
	p.WaitText(sel("conflict", "main"), "^Register User$", 10*time.Second)
	p.Click(sel("conflict", "main"))
	p.WaitText(sel("conflict", "otitle"), "^Voice not registered$", 10*time.Second)
	p.WaitText(sel("conflict", "ocause"), "^Another call registered this caller meanwhile; this voice was not stored\\.$", time.Second)
	p.WaitText(sel("conflict", "main"), "^Authenticate User$", 5*time.Second)
	time.Sleep(300 * time.Millisecond) // the status read after the result must not replace it
	if got := p.Text(sel("conflict", "otitle")); got != "Voice not registered" || !strings.Contains(outcomeKind("conflict"), "fail") {
		t.Errorf("after the status read: %q (%s), want the failure Voice not registered", got, outcomeKind("conflict"))
	}
	p.Screenshot("widget-store-conflict", "voicegate-agent#conflict")

	// A terminal event other than result-success that carries reason
	// "success" is never shown as a success.
	p.WaitText(sel("odd", "main"), "^Register User$", 10*time.Second)
	p.Click(sel("odd", "main"))
	p.WaitText(sel("odd", "otitle"), "^The voice service failed$", 10*time.Second)
	time.Sleep(300 * time.Millisecond) // the status read after the result
	if k := outcomeKind("odd"); strings.Contains(k, "success") || !strings.Contains(k, "error") {
		t.Errorf("error-store with reason success shown as %q (%q), want error, not success", k, p.Text(sel("odd", "otitle")))
	}
	if got := p.Text(sel("odd", "main")); got != "Register User" {
		t.Errorf("after error-store with reason success the main button says %q, want Register User", got)
	}

	// A hang-up during a verify ("not enough speech", then the server says
	// the call is not in progress) and before one (409 no_call): both are
	// said as the call's end, with the buttons off.
	for _, w := range []string{"ended", "nocall"} {
		p.WaitText(sel(w, "main"), "^Authenticate User$", 10*time.Second)
		p.Click(sel(w, "main"))
		p.WaitText(sel(w, "otitle"), "^Call ended$", 10*time.Second)
		p.WaitText(sel(w, "main"), "^Call ended$", 5*time.Second)
		if !disabled(w) {
			t.Errorf("%s: the main button is enabled after the call ended", w)
		}
	}

	// Two calls left with a register running: each notice names its call.
	for _, next := range []string{"CAmulti2", "CAmulti3"} {
		p.Click(sel("multi", "main"))
		p.WaitText(sel("multi", "state"), "^Registering voice", 5*time.Second)
		p.Eval(`document.getElementById('multi').setAttribute('call-sid', '`+next+`')`, nil)
		p.WaitText(sel("multi", "main"), "^Register User$", 10*time.Second)
	}
	var causes, labels []string
	p.Eval(`[...document.getElementById('multi').shadowRoot.querySelectorAll('.notice .cause')].map(e => e.textContent)`, &causes)
	p.Eval(`[...document.getElementById('multi').shadowRoot.querySelectorAll('.notice .dismiss')].map(e => e.getAttribute('aria-label'))`, &labels)
	if len(causes) != 2 || !strings.Contains(causes[0], "multi2") || !strings.Contains(causes[1], "multi1") {
		t.Errorf("notices %q: want the newest naming call …multi2, then …multi1", causes)
	}
	if len(labels) != 2 || labels[0] == labels[1] {
		t.Errorf("Dismiss buttons named %q: want one name per call", labels)
	}
	p.Screenshot("widget-notices-two-calls", "voicegate-agent#multi")
	p.Viewport(1280, 2400)
	p.Screenshot("widget-notices-two-calls-desktop", "voicegate-agent#multi")
	p.Viewport(320, 2400)

	// A token that never comes holds the stop of a call left: the notice
	// says, within the stop's time, that it is not confirmed and why.
	p.Click(sel("slow", "main"))
	p.WaitText(sel("slow", "state"), "^Registering voice", 5*time.Second)
	p.Eval(`window.hang = true`, nil)
	p.Eval(`document.getElementById('slow').setAttribute('call-sid', 'CAslow2')`, nil)
	nsel := "voicegate-agent#slow >> .notice ."
	p.WaitText(nsel+"title", "^Previous call.s registration not confirmed$", 25*time.Second)
	p.WaitText(nsel+"why", "^The agent desk did not give the widget a sign-in token in time\\.$", time.Second)
	p.WaitText(sel("slow", "nalert"), "sign-in token in time", 2*time.Second)
	p.Screenshot("widget-notice-token-timeout", "voicegate-agent#slow")

	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

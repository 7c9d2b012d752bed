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

// noticePage holds widgets for the notices about a call left, and for the
// refusals a widget must name rightly.
const noticePage = `<!doctype html><html lang="en"><meta charset="utf-8"><title>notices</title>
<script src="/agent/voicegate-agent.js"></script>
<voicegate-agent id="flaky" call-sid="CAflaky1" caller-id="+34600000001" security-token="t" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="lost" call-sid="CAlost1" caller-id="+34600000002" security-token="t" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="forb" call-sid="CAforb" caller-id="+34600000003" security-token="t" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="mism" call-sid="CAmism" caller-id="+34600000004" security-token="t" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="badnum" call-sid="CAbadnum" caller-id="12" security-token="t" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="nocall" call-sid="CAnocall" caller-id="+34600000005" security-token="t" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="hang" conversation-id="CAhang" security-token="t" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="hangold" conversation-id="CAhangold" security-token="t" call-in-progress="true"></voicegate-agent>`

// noticeAPI scripts the agent API: the register of CAflaky1 runs until
// stopped, and its stop fails twice for want of the network; the stop of
// CAlost1's register never gets through; the first status of CAflaky2
// fails for want of the network; CAforb is refused to this agent; CAmism
// is another caller's call; CAbadnum's caller number is not a number.
// CAhang and CAhangold are Genesys calls (the caller comes from the
// server, call-in-progress stays "true") whose caller hangs up during the
// register: it ends with error-audio, reason speech, and status then
// answers the call ended without its caller (CAhang) or, as a server that
// forgot the caller did, 400 bad_caller_id (CAhangold).
type noticeAPI struct {
	mu      sync.Mutex
	stops   map[string]int
	status  map[string]int
	hung    map[string]bool // CAhang* calls whose register started: the caller hung up
	stopped opSignals
	quit    chan struct{} // closed when the test ends: streams end
}

// drop ends the request without an answer, as a lost network does.
func drop(w http.ResponseWriter) {
	c, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		c.Close()
	}
}

// opSignals hands out one channel per operation id, made on first use: a
// fake service's "this operation was stopped".
type opSignals struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

func (s *opSignals) ch(op string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.m[op]
	if !ok {
		if s.m == nil {
			s.m = map[string]chan struct{}{}
		}
		ch = make(chan struct{})
		s.m[op] = ch
	}
	return ch
}

func (f *noticeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/agent"+agent.WidgetPath {
		agent.WidgetHandler().ServeHTTP(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/agent/operations/") {
		op := strings.Split(strings.TrimPrefix(r.URL.Path, "/agent/operations/"), "/")[0]
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: started\ndata: {\"operation_id\":%q,\"kind\":\"register\",\"seq\":1,\"type\":\"started\"}\n\n", op)
		if strings.HasPrefix(op, "op_CAhang") {
			fmt.Fprintf(w, "event: error-audio\ndata: {\"operation_id\":%q,\"kind\":\"register\",\"seq\":2,\"type\":\"error-audio\",\"reason\":\"speech\",\"net_speech\":1.2}\n\n", op)
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
	var body map[string]any
	json.NewDecoder(r.Body).Decode(&body)
	callID, _ := body["call_id"].(string)
	switch r.URL.Path {
	case "/agent/status":
		f.mu.Lock()
		f.status[callID]++
		n := f.status[callID]
		hung := f.hung[callID]
		f.mu.Unlock()
		switch {
		case callID == "CAflaky2" && n == 1:
			drop(w)
		case callID == "CAforb":
			agent.WriteError(w, http.StatusForbidden, agent.CodeForbidden, "not allowed on this call")
		case callID == "CAmism":
			agent.WriteError(w, http.StatusBadRequest, agent.CodeBadCallerID, "caller_id is not the caller of this call")
		case callID == "CAbadnum":
			agent.WriteError(w, http.StatusBadRequest, agent.CodeBadCallerID, "caller_id: not a phone number")
		case strings.HasPrefix(callID, "CAhang") && !hung:
			// Live until its register (the widget reads the status
			// again while idle).
			agent.WriteJSON(w, http.StatusOK, map[string]any{"call_id": callID, "caller_id": "+34600000006", "registered": false, "call_in_progress": true})
		case callID == "CAhang":
			agent.WriteJSON(w, http.StatusOK, map[string]any{"call_id": callID, "caller_id": "", "registered": false, "call_in_progress": false})
		case callID == "CAhangold":
			agent.WriteError(w, http.StatusBadRequest, agent.CodeBadCallerID, `caller id is not an E.164 telephone number: ""`)
		default:
			// The register of CAflaky1 was stored before its stop got
			// through: its caller is registered after the first look.
			registered := (callID == "CAflaky1" && n > 1) || callID == "CAnocall"
			agent.WriteJSON(w, http.StatusOK, map[string]any{"call_id": callID, "caller_id": body["caller_id"], "registered": registered, "call_in_progress": true})
		}
	case "/agent/register":
		id := "op_" + callID
		if strings.HasPrefix(callID, "CAhang") {
			f.mu.Lock()
			f.hung[callID] = true
			f.mu.Unlock()
		}
		agent.WriteJSON(w, http.StatusAccepted, map[string]any{
			"operation_id": id, "kind": "register", "call_id": callID, "caller_id": body["caller_id"],
			"events_url": "/agent/operations/" + id + "/events?token=tok",
		})
	case "/agent/stop":
		op, _ := body["operation_id"].(string)
		f.mu.Lock()
		f.stops[op]++
		n := f.stops[op]
		f.mu.Unlock()
		if op == "op_CAlost1" || (op == "op_CAflaky1" && n <= 2) {
			drop(w)
			return
		}
		close(f.stopped.ch(op))
		agent.WriteJSON(w, http.StatusOK, map[string]any{"operation_id": op, "stopped": true})
	default:
		agent.WriteError(w, http.StatusNotFound, agent.CodeNotFound, "no such path")
	}
}

// TestWidgetNoticeBrowser checks, in headless Chromium, that what became
// of an operation of a call left is said in a notice of its own that the
// new call's rows never replace, after retrying a stop that failed for
// want of the network, or saying it could not be confirmed; that
// "Retrying…" leaves the alert region on recovery; and that refusals are
// named for what they are.
func TestWidgetNoticeBrowser(t *testing.T) {
	b := browsertest.Start(t)
	f := &noticeAPI{stops: map[string]int{}, status: map[string]int{}, hung: map[string]bool{}, quit: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/page" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, noticePage)
			return
		}
		f.ServeHTTP(w, r)
	}))
	defer srv.Close()
	defer close(f.quit)
	p := b.NewPage(320, 2400)
	p.Goto(srv.URL + "/page")
	sel := func(w, id string) string { return "voicegate-agent#" + w + " >> #" + id }
	notice := func(w, class string) string { return "voicegate-agent#" + w + " >> .notice ." + class }

	// Registers run on two calls; the agent switches both to other calls
	// (the first caller again on the first).
	for _, w := range []string{"flaky", "lost"} {
		p.WaitText(sel(w, "main"), "^Register User$", 10*time.Second)
	}
	p.Click(sel("lost", "main"))
	p.WaitText(sel("lost", "state"), "^Registering voice", 10*time.Second)
	p.Eval(`(() => { const el = document.getElementById('lost'); el.setAttribute('call-sid', 'CAlost2'); })()`, nil)
	p.WaitText(notice("lost", "title"), "^Stopping the previous call.s check$", 5*time.Second)
	// It cannot be dismissed while it stops: it would come back.
	if n := p.Count("voicegate-agent#lost >> .notice .dismiss"); n != 0 {
		t.Errorf("%d Dismiss buttons on a notice still stopping, want 0", n)
	}

	p.Click(sel("flaky", "main"))
	p.WaitText(sel("flaky", "state"), "^Registering voice", 10*time.Second)
	p.Eval(`(() => { const el = document.getElementById('flaky'); el.setAttribute('call-sid', 'CAflaky2'); })()`, nil)
	// The stop is retried until it gets through; the new call's status,
	// which failed once, is read after; the notice says what became of
	// the register, and stays.
	p.WaitText(notice("flaky", "title"), "^Previous call.s registration was stored: it could not be stopped in time$", 15*time.Second)
	p.WaitText(notice("flaky", "cause"), `^The voice of \+34600000001 \(call\s…\u2060flaky1, left at \d{1,2}:\d\d( [AP]M)?\) was registered before the registration could be stopped\.$`, time.Second)
	p.WaitText(sel("flaky", "nalert"), `^Previous call.s registration was stored: it could not be stopped in time\. The voice of \+34600000001 \(call\s…\u2060[^,]{6}, left at \d{1,2}:\d\d( [AP]M)?\) was registered`, 2*time.Second)
	p.WaitText(sel("flaky", "main"), "^Register User$", 10*time.Second)
	if got := p.Text(sel("flaky", "alert")); strings.Contains(got, "Retrying") {
		t.Errorf("after the service answered again, the alert region still says %q", got)
	}
	f.mu.Lock()
	stops, status := f.stops["op_CAflaky1"], f.status["CAflaky2"]
	f.mu.Unlock()
	if stops != 3 {
		t.Errorf("%d stop requests for the register left, want 3 (two lost, one answered)", stops)
	}
	if status < 2 {
		t.Errorf("%d status requests for the new call, want 2 (one lost, one answered)", status)
	}
	p.Screenshot("widget-notice-registered", "voicegate-agent#flaky")
	// A later error on the new call does not replace the notice.
	p.Eval(`document.getElementById('flaky')._showAPIError({code: 'network', message: 'offline'})`, nil)
	p.WaitText(sel("flaky", "otitle"), "^Cannot reach the voice service$", time.Second)
	p.WaitText(notice("flaky", "title"), "^Previous call.s registration was stored: it could not be stopped in time$", time.Second)
	// Until the agent dismisses it.
	p.Click("voicegate-agent#flaky >> .notice .dismiss")
	if n := p.Count("voicegate-agent#flaky >> .notice"); n != 0 {
		t.Errorf("%d notices after Dismiss, want 0", n)
	}
	if f := p.Focused(); !strings.HasPrefix(f, "button#main") {
		t.Errorf("focus after Dismiss on %q, want the main button", f)
	}

	// A stop that never gets through: the notice says the register is not
	// confirmed stopped (after the widget gives up, 20 s).
	p.WaitText(notice("lost", "title"), "^Previous call.s registration not confirmed$", 30*time.Second)
	p.WaitText(notice("lost", "todo"), "^Go back to that call and check whether the caller is registered\\.$", time.Second)
	if n := p.Count("voicegate-agent#lost >> .notice .dismiss"); n != 1 {
		t.Errorf("%d Dismiss buttons on a notice with its outcome, want 1", n)
	}
	p.WaitText(sel("lost", "nalert"), "^Previous call.s registration not confirmed", 2*time.Second)
	p.Screenshot("widget-notice-unconfirmed", "voicegate-agent#lost")

	// Refusals.
	p.WaitText(sel("forb", "otitle"), "^You are not assigned to this call$", 5*time.Second)
	p.WaitText(sel("forb", "otodo"), "task", time.Second)
	p.WaitText(sel("forb", "main"), "^Not assigned$", time.Second)
	var disabled bool
	p.Eval(`document.getElementById('forb').shadowRoot.getElementById('main').disabled`, &disabled)
	if !disabled {
		t.Error("the main button is enabled for a call the agent is not assigned")
	}
	p.Screenshot("widget-forbidden", "voicegate-agent#forb")
	p.WaitText(sel("mism", "otitle"), "^Not this call.s caller$", 5*time.Second)
	p.WaitText(sel("mism", "ocause"), `^This number is not the caller of this call\.$`, time.Second)
	p.WaitText(sel("badnum", "otitle"), "^Caller number not usable$", 5*time.Second)
	// Neither is fixed by trying again: no "Try again".
	for w, label := range map[string]string{"mism": "^Wrong caller number$", "badnum": "^No usable caller number$"} {
		p.WaitText(sel(w, "main"), label, time.Second)
		var off bool
		p.Eval(`document.getElementById('`+w+`').shadowRoot.getElementById('main').disabled`, &off)
		if !off {
			t.Errorf("%s: the main button is enabled after a caller number refusal", w)
		}
	}

	// The caller hangs up during a register: its outcome stays, said as
	// the call's end when the server says the call ended; a status
	// refused after the result never replaces it.
	for _, w := range []string{"hang", "hangold"} {
		p.WaitText(sel(w, "main"), "^Register User$", 5*time.Second)
		p.Click(sel(w, "main"))
	}
	p.WaitText(sel("hang", "otitle"), "^Call ended$", 5*time.Second)
	p.WaitText(sel("hang", "otodo"), `^Nothing was registered\.$`, time.Second)
	p.WaitText(sel("hang", "caller"), `^\+34600000006$`, time.Second)
	// The server said the call ended while call-in-progress stays "true":
	// Register says so and is off.
	p.WaitText(sel("hang", "main"), "^Call ended$", 5*time.Second)
	p.WaitText(sel("hang", "state"), "^Call ended: voice checks are off$", time.Second)
	var hangOff bool
	p.Eval(`document.getElementById('hang').shadowRoot.getElementById('main').disabled`, &hangOff)
	if !hangOff {
		t.Error("the main button is enabled on a call the server says ended")
	}
	p.Screenshot("widget-hung-up", "voicegate-agent#hang")
	// The refused status is read (registered is then unknown) and the
	// result stays.
	p.WaitText(sel("hangold", "main"), "^Try again$", 5*time.Second)
	p.WaitText(sel("hangold", "otitle"), "^Not enough speech$", time.Second)
	for _, w := range []string{"hang", "hangold"} {
		if got := p.Text(sel(w, "otitle")); got == "Caller number not usable" {
			t.Errorf("%s: the register's outcome was replaced by %q", w, got)
		}
	}

	// No call, no caller: nothing of the last caller stays.
	p.WaitText(sel("nocall", "main"), "^Authenticate User$", 5*time.Second)
	p.Eval(`document.getElementById('nocall').removeAttribute('call-sid')`, nil)
	p.WaitText(sel("nocall", "main"), "^No call$", 5*time.Second)
	p.WaitText(sel("nocall", "caller"), "^\u2014$", time.Second)
	p.WaitText(sel("nocall", "state"), "^Waiting for a call$", time.Second)

	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

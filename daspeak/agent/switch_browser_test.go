package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/internal/browsertest"
)

// switchPage holds two widgets, each on a live call; window.vg records
// the titles each showed and the results each reported.
const switchPage = `<!doctype html><html lang="en"><meta charset="utf-8"><title>switch</title>
<script src="/agent/voicegate-agent.js"></script>
<voicegate-agent id="running" call-sid="CA00000000000000000000000000000011" caller-id="+34911234567" security-token="` + testToken + `" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="starting" call-sid="CA00000000000000000000000000000013" caller-id="+34911234568" security-token="` + testToken + `" call-in-progress="true"></voicegate-agent>
<script>
window.vg = {titles: {}, results: {}};
for (const el of document.querySelectorAll('voicegate-agent')) {
  const id = el.id;
  vg.titles[id] = [];
  vg.results[id] = [];
  const t = el.shadowRoot.getElementById('otitle');
  new MutationObserver(() => vg.titles[id].push(t.textContent)).observe(t, {childList: true, characterData: true, subtree: true});
  el.utils = {onResponse: (result) => vg.results[id].push(result.type + ' ' + result.call_id)};
}
</script>`

// startingPage is switchPage with the widget "running" hidden: the test
// drives the widget "starting" alone.
var startingPage = strings.Replace(switchPage, `<voicegate-agent id="running"`, `<voicegate-agent hidden id="running"`, 1)

// TestWidgetSwitchCallBrowser switches the widget to another call while
// a register runs, and while its start request is still out, against a
// real server in headless Chromium: the register is stopped (it ends with
// error-cancelled), nothing is stored, the widget says so on the new
// call naming the previous caller, and no event of the old operation
// shows as the new call's.
func TestWidgetSwitchCallBrowser(t *testing.T) {
	b := browsertest.Start(t)
	const (
		callRun, callRun2           = "CA00000000000000000000000000000011", "CA00000000000000000000000000000012"
		callStart, callStart2       = "CA00000000000000000000000000000013", "CA00000000000000000000000000000014"
		callerRun, callerRun2       = "+34911234567", "+14155550101"
		callerStart, callerStart2   = "+34911234568", "+14155550102"
		shortClip                   = "voices/slt_1.wav"
		stoppedTitle, nothingStored = "^Registration stopped: you switched calls$", `^Nothing was registered\.$`
	)
	e := newEnv(t, func(o *Options, src *fakeSource) { o.Source = infoSource{src} })
	// Live calls whose audio holds after a clip too short to register
	// (newEnv's register needs 8 s of speech).
	for _, c := range []struct{ id, ani string }{{callRun, callerRun}, {callRun2, callerRun2}, {callStart, callerStart}, {callStart2, callerStart2}} {
		e.src.set(c.id, fakeCall{clips: []string{shortClip}, hold: true, ani: c.ani, live: true})
	}
	site := newSite(t, e, switchPage, nil)

	p := b.NewPage(320, 1200)
	p.Goto(site.URL + "/page")
	sel := func(w, id string) string { return "voicegate-agent#" + w + " >> #" + id }
	nsel := func(w, class string) string { return "voicegate-agent#" + w + " >> .notice ." + class }
	switchTo := func(w, callID, callerID string) {
		p.Eval(`(() => { const el = document.getElementById('`+w+`'); el.setAttribute('call-sid', '`+callID+`'); el.setAttribute('caller-id', '`+callerID+`'); })()`, nil)
	}
	notStored := func(callerID string) {
		t.Helper()
		if _, err := e.mem.Get(context.Background(), callerID); !errors.Is(err, credstore.ErrNotFound) {
			t.Errorf("credential of %s after the switch: err %v, want not found", callerID, err)
		}
	}
	cancelled := func(callID string) {
		t.Helper()
		for _, l := range strings.Split(e.logs.String(), "\n") {
			if strings.Contains(l, `"msg":"agent: operation ended"`) && strings.Contains(l, `"call_id":"`+callID+`"`) {
				if !strings.Contains(l, `"type":"error-cancelled"`) || !strings.Contains(l, `"reason":"cancelled"`) {
					t.Errorf("the operation of the call left ended otherwise than cancelled: %s", l)
				}
				return
			}
		}
		t.Errorf("the operation of %s has not ended: it runs on unseen", callID)
	}

	// A register running on the call: the agent switches calls.
	p.WaitText(sel("running", "main"), "^Register User$", 10*time.Second)
	p.Click(sel("running", "main"))
	p.WaitText(sel("running", "state"), "^Registering voice", 10*time.Second)
	p.WaitText(sel("running", "ptext"), `^Voice collected: .* of 8\.0 s$`, 10*time.Second)
	switchTo("running", callRun2, callerRun2)
	p.WaitText(nsel("running", "title"), stoppedTitle, 10*time.Second)
	p.WaitText(nsel("running", "cause"), `^The registration of \+34911234567 \(call\s…\u2060[^,]{6}, left at \d{1,2}:\d\d( [AP]M)?\) was stopped\.$`, time.Second)
	p.WaitText(nsel("running", "todo"), nothingStored, time.Second)
	p.WaitText(sel("running", "nlive"), `^Registration stopped: you switched calls\. The registration of \+34911234567 \(call\s…\u2060[^,]{6}, left at \d{1,2}:\d\d( [AP]M)?\) was stopped\. Nothing was registered\.$`, 2*time.Second)
	// The new call is the one shown, and can be used.
	p.WaitText(sel("running", "caller"), `^\+14155550101$`, 5*time.Second)
	p.WaitText(sel("running", "main"), "^Register User$", 5*time.Second)
	p.Screenshot("widget-switched-register", "voicegate-agent#running")
	cancelled(callRun)
	notStored(callerRun)

	// The agent switches while the start request is still out (the
	// server is opening the call's audio): once it is answered, the
	// operation is stopped, not followed.
	block := make(chan struct{})
	e.src.mu.Lock()
	e.src.block = block
	e.src.mu.Unlock()
	p.WaitText(sel("starting", "main"), "^Register User$", 10*time.Second)
	p.Click(sel("starting", "main"))
	p.WaitText(sel("starting", "ptext"), `^Starting`, 5*time.Second)
	switchTo("starting", callStart2, callerStart2)
	p.WaitText(nsel("starting", "title"), "^Stopping the previous call.s check$", 5*time.Second)
	p.WaitText(nsel("starting", "cause"), `\+34911234568`, time.Second)
	// The new call waits for the stop to be confirmed.
	if got := p.Text(sel("starting", "main")); got != "Loading\u2026" {
		t.Errorf("main button %q while the call left is being stopped, want Loading…", got)
	}
	e.src.mu.Lock()
	e.src.block = nil
	e.src.mu.Unlock()
	close(block)
	p.WaitText(nsel("starting", "title"), stoppedTitle, 10*time.Second)
	p.WaitText(nsel("starting", "cause"), `^The registration of \+34911234568 \(call\s…\u2060[^,]{6}, left at \d{1,2}:\d\d( [AP]M)?\) was stopped\.$`, time.Second)
	p.WaitText(nsel("starting", "todo"), nothingStored, time.Second)
	p.WaitText(sel("starting", "main"), "^Register User$", 5*time.Second)
	p.WaitText(sel("starting", "caller"), `^\+14155550102$`, time.Second)
	cancelled(callStart)
	notStored(callerStart)

	// No event of an old operation showed, nor was reported, as a result.
	var vg struct{ Titles, Results map[string][]string }
	p.Eval(`vg`, &vg)
	for w, titles := range vg.Titles {
		for _, tt := range titles {
			if tt == "Voice registered" || tt == "Stopped" || tt == "Registration not saved" {
				t.Errorf("%s: the operation left showed its result on the new call: titles %q", w, titles)
			}
		}
	}
	for w, r := range vg.Results {
		if len(r) != 0 {
			t.Errorf("%s: onResponse called for the operation left: %q", w, r)
		}
	}
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

// lostSite serves page and the agent API of e, except that the answer of
// each register is lost (a proxy answers 504, not the server's JSON)
// after the server started the operation. started gets each register's
// operation id; the answer goes out when release is closed.
func lostSite(t *testing.T, e *env, page string, started chan<- string, release <-chan struct{}) *httptest.Server {
	return newSite(t, e, startingPage, map[string]http.HandlerFunc{
		"/agent/register": func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			e.srv.ServeHTTP(rec, r) // the operation starts
			if rec.Code != http.StatusAccepted {
				t.Errorf("register: %d %s", rec.Code, rec.Body)
			}
			var ans struct {
				OperationID string `json:"operation_id"`
			}
			json.Unmarshal(rec.Body.Bytes(), &ans)
			started <- ans.OperationID
			<-release
			http.Error(w, "Gateway Timeout", http.StatusGatewayTimeout) // its answer is lost
		},
	})
}

// endedCancelled checks that operation id ended with error-cancelled
// (stopped) and that callerID has no credential.
func endedCancelled(t *testing.T, e *env, id, callerID string) {
	t.Helper()
	op, err := e.srv.ops.Get(context.Background(), id)
	if err != nil || !op.Done {
		t.Errorf("operation %s: %+v %v: it runs on unseen", id, op, err)
	}
	for _, l := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(l, `"msg":"agent: operation ended"`) && strings.Contains(l, `"operation_id":"`+id+`"`) &&
			!strings.Contains(l, `"type":"error-cancelled"`) {
			t.Errorf("the operation whose answer was lost ended otherwise than cancelled: %s", l)
		}
	}
	if _, err := e.mem.Get(context.Background(), callerID); !errors.Is(err, credstore.ErrNotFound) {
		t.Errorf("credential of %s: err %v, want not found", callerID, err)
	}
}

// TestWidgetSwitchStartAnswerLost: a register's start reaches the server
// (the operation starts) but its answer is lost on the way back (a proxy
// answers 504, not the server's JSON), and the agent switched calls
// meanwhile. The widget has no operation id: it stops what runs on the
// call (POST /stop with call_id), looks the caller up, and says the
// registration was stopped with nothing stored.
func TestWidgetSwitchStartAnswerLost(t *testing.T) {
	b := browsertest.Start(t)
	const (
		callStart, callStart2     = "CA00000000000000000000000000000013", "CA00000000000000000000000000000014"
		callerStart, callerStart2 = "+34911234568", "+14155550102"
	)
	e := newEnv(t, func(o *Options, src *fakeSource) { o.Source = infoSource{src} })
	for _, c := range []struct{ id, ani string }{{callStart, callerStart}, {callStart2, callerStart2}} {
		e.src.set(c.id, fakeCall{clips: []string{"voices/slt_1.wav"}, hold: true, ani: c.ani, live: true})
	}
	started, release := make(chan string, 1), make(chan struct{})
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	site := lostSite(t, e, startingPage, started, release)
	defer letGo() // a failed wait must not leave the handler blocked (closing the site waits for it)

	p := b.NewPage(320, 1200)
	p.Goto(site.URL + "/page")
	sel := func(id string) string { return "voicegate-agent#starting >> #" + id }
	nsel := func(class string) string { return "voicegate-agent#starting >> .notice ." + class }
	p.WaitText(sel("main"), "^Register User$", 10*time.Second)
	p.Click(sel("main"))
	id := <-started
	p.Eval(`(() => { const el = document.getElementById('starting'); el.setAttribute('call-sid', '`+callStart2+`'); el.setAttribute('caller-id', '`+callerStart2+`'); })()`, nil)
	p.WaitText(nsel("title"), "^Stopping the previous call.s check$", 5*time.Second)
	letGo()
	p.WaitText(nsel("title"), "^Registration stopped: you switched calls$", 10*time.Second)
	p.WaitText(nsel("cause"), `^The registration of \+34911234568 \(call\s…\u2060000013, left at \d{1,2}:\d\d( [AP]M)?\) was stopped\.$`, time.Second)
	p.WaitText(nsel("todo"), `^Nothing was registered\.$`, time.Second)
	p.WaitText(sel("main"), "^Register User$", 10*time.Second)
	endedCancelled(t, e, id, callerStart)
}

// TestWidgetStartAnswerLost: the answer of a register started on the call
// shown is lost (504 from a proxy) while the operation runs on the
// server. The widget stops it by its call, looks the caller up and says
// the registration was stopped and nothing registered; Register is usable
// again.
func TestWidgetStartAnswerLost(t *testing.T) {
	b := browsertest.Start(t)
	const callID, callerID = "CA00000000000000000000000000000013", "+34911234568"
	e := newEnv(t, func(o *Options, src *fakeSource) { o.Source = infoSource{src} })
	e.src.set(callID, fakeCall{clips: []string{"voices/slt_1.wav"}, hold: true, ani: callerID, live: true})
	started, release := make(chan string, 1), make(chan struct{})
	close(release)
	site := lostSite(t, e, startingPage, started, release)

	p := b.NewPage(320, 1200)
	p.Goto(site.URL + "/page")
	sel := func(id string) string { return "voicegate-agent#starting >> #" + id }
	p.WaitText(sel("main"), "^Register User$", 10*time.Second)
	p.Click(sel("main"))
	id := <-started
	p.WaitText(sel("otitle"), "^Registration stopped: the voice service.s answer was lost$", 10*time.Second)
	p.WaitText(sel("otodo"), `^Nothing was registered\. Try again\.$`, time.Second)
	p.WaitText(sel("alert"), `^Registration stopped: the voice service.s answer was lost\. The widget did not get the answer to Register, so it stopped the registration\. Nothing was registered\. Try again\.$`, 2*time.Second)
	p.WaitText(sel("main"), "^Register User$", 5*time.Second)
	endedCancelled(t, e, id, callerID)
	p.Screenshot("widget-lost-answer-stopped", "voicegate-agent#starting")
	p.Viewport(1280, 800)
	p.Screenshot("widget-lost-answer-stopped-desktop", "voicegate-agent#starting")
}

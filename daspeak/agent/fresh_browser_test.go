package agent

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/browsertest"
)

// sameCallerPage holds two widgets on two calls of one caller.
const sameCallerPage = `<!doctype html><html lang="en"><meta charset="utf-8"><title>same caller</title>
<script src="/agent/voicegate-agent.js"></script>
<voicegate-agent id="one" call-sid="CA00000000000000000000000000000021" caller-id="+34911234567" security-token="` + testToken + `" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="two" call-sid="CA00000000000000000000000000000022" caller-id="+34911234567" security-token="` + testToken + `" call-in-progress="true"></voicegate-agent>`

const (
	sameCallA, sameCallB = "CA00000000000000000000000000000021", "CA00000000000000000000000000000022"
	sameCaller           = "+34911234567"
)

// greenIn returns, for the widget with id w, what of its visible shadow
// content is drawn in the success greens (text, background or border).
const greenIn = `(w) => {
  const greens = ['rgb(20, 108, 46)', 'rgb(230, 244, 234)', 'rgb(13, 59, 30)'];
  const out = [];
  for (const el of document.getElementById(w).shadowRoot.querySelectorAll('*')) {
    if (!el.getClientRects().length) continue;
    const cs = getComputedStyle(el);
    for (const p of ['color', 'backgroundColor', 'borderTopColor']) {
      if (greens.includes(cs[p]) && !(p === 'borderTopColor' && cs.borderTopWidth === '0px')) out.push(el.id + '.' + el.className + ' ' + p);
    }
  }
  return out;
}`

// TestWidgetSameCallerRaceBrowser: two calls of one caller register at
// the same time against a real server; one stores, the other ends with
// error-store, reason already_registered. The losing page says, in its
// status line as in its card, that the caller is registered by another
// call and that this call's voice was not stored, and shows no green;
// a status read on focus keeps it so.
func TestWidgetSameCallerRaceBrowser(t *testing.T) {
	b := browsertest.Start(t)
	e := newEnv(t, func(o *Options, src *fakeSource) { o.Source = infoSource{src} })
	clips := []string{"voices/slt_1.wav", "voices/slt_2.wav", "voices/slt_3.wav"}
	e.src.set(sameCallA, fakeCall{clips: clips, hold: true, ani: sameCaller, live: true})
	e.src.set(sameCallB, fakeCall{clips: clips, hold: true, ani: sameCaller, live: true})
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/page" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, sameCallerPage)
			return
		}
		e.srv.ServeHTTP(w, r)
	}))
	defer site.Close()

	p := b.NewPage(320, 1400)
	p.Goto(site.URL + "/page")
	sel := func(w, id string) string { return "voicegate-agent#" + w + " >> #" + id }
	for _, w := range []string{"one", "two"} {
		p.WaitText(sel(w, "main"), "^Register User$", 10*time.Second)
	}
	// Both starts wait while the calls' audio opens: both registers run
	// before either stores.
	block := make(chan struct{})
	e.src.mu.Lock()
	e.src.block = block
	e.src.mu.Unlock()
	p.Click(sel("one", "main"))
	p.Click(sel("two", "main"))
	for _, w := range []string{"one", "two"} {
		p.WaitText(sel(w, "ptext"), "^Starting", 5*time.Second)
	}
	e.src.mu.Lock()
	e.src.block = nil
	e.src.mu.Unlock()
	close(block)
	for _, w := range []string{"one", "two"} {
		p.WaitText(sel(w, "otitle"), "^Voice (not )?registered$", 30*time.Second)
	}
	winner, loser := "one", "two"
	if p.Text(sel("one", "otitle")) == "Voice not registered" {
		winner, loser = "two", "one"
	}
	if got := p.Text(sel(winner, "otitle")); got != "Voice registered" {
		t.Fatalf("no page registered: %q and %q", p.Text(sel("one", "otitle")), p.Text(sel("two", "otitle")))
	}
	lost := "^Registered by another call: this call.s voice was not stored$"
	p.WaitText(sel(loser, "main"), "^Authenticate User$", 5*time.Second)
	p.WaitText(sel(loser, "state"), lost, 5*time.Second)
	p.WaitText(sel(winner, "state"), "^Voice registered$", time.Second)
	checkNoGreen := func(when string) {
		t.Helper()
		var greens []string
		p.Eval(`(`+greenIn+`)('`+loser+`')`, &greens)
		if len(greens) > 0 {
			t.Errorf("%s: the losing page shows green: %q", when, greens)
		}
		var said string
		p.Eval(`document.getElementById('`+loser+`').shadowRoot.getElementById('live').textContent + '|' + document.getElementById('`+loser+`').shadowRoot.getElementById('alert').textContent`, &said)
		if strings.Contains(said, "Voice registered") || strings.Contains(said, "is registered") {
			t.Errorf("%s: the losing page says %q", when, said)
		}
	}
	checkNoGreen("after the result")
	p.Screenshot("widget-race-loser", "voicegate-agent#"+loser)
	p.Screenshot("widget-race-winner", "voicegate-agent#"+winner)

	// A status read (the page gets the focus) keeps the losing page's
	// account: the caller is registered, with the other call's voice.
	time.Sleep(2200 * time.Millisecond)
	p.Eval(`window.dispatchEvent(new Event('focus'))`, nil)
	time.Sleep(500 * time.Millisecond)
	p.WaitText(sel(loser, "state"), lost, time.Second)
	p.WaitText(sel(loser, "otitle"), "^Voice not registered$", time.Second)
	checkNoGreen("after a status read")
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

// onePage holds one widget, on the second call of sameCallerPage's caller.
const onePage = `<!doctype html><html lang="en"><meta charset="utf-8"><title>one call</title>
<script src="/agent/voicegate-agent.js"></script>
<voicegate-agent id="two" call-sid="` + sameCallB + `" caller-id="` + sameCaller + `" security-token="` + testToken + `" call-in-progress="true"></voicegate-agent>`

// statusCounter passes requests to next and counts the status reads,
// the most at once, and holds them while held is set.
type statusCounter struct {
	next http.Handler
	mu   sync.Mutex
	n    int
	in   int
	most int
	at   []time.Time
	hold chan struct{}
}

func (c *statusCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/agent/status" {
		c.next.ServeHTTP(w, r)
		return
	}
	c.mu.Lock()
	c.n++
	c.in++
	c.most = max(c.most, c.in)
	c.at = append(c.at, time.Now())
	hold := c.hold
	c.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}
	c.next.ServeHTTP(w, r)
	c.mu.Lock()
	c.in--
	c.mu.Unlock()
}

func (c *statusCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestWidgetStatusFreshBrowser: a page on one call of a caller learns,
// without reloading or acting, that another call registered or deleted
// the caller: when the page gets the focus or becomes visible, and
// periodically while idle and visible (at most one read every 15 s, none
// while hidden, never two at once).
func TestWidgetStatusFreshBrowser(t *testing.T) {
	b := browsertest.Start(t)
	e := newEnv(t, func(o *Options, src *fakeSource) { o.Source = infoSource{src} })
	clips := []string{"voices/slt_1.wav", "voices/slt_2.wav", "voices/slt_3.wav"}
	e.src.set(sameCallA, fakeCall{clips: clips, hold: true, ani: sameCaller, live: true})
	e.src.set(sameCallB, fakeCall{clips: clips, hold: true, ani: sameCaller, live: true})
	counter := &statusCounter{next: e.srv}
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/page" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, onePage)
			return
		}
		counter.ServeHTTP(w, r)
	}))
	defer site.Close()
	p := b.NewPage(320, 900)
	p.Goto(site.URL + "/page")
	sel := func(id string) string { return "voicegate-agent#two >> #" + id }
	p.WaitText(sel("main"), "^Register User$", 10*time.Second)
	p.WaitText(sel("state"), "^Not registered$", time.Second)
	registerOn := func(callID string) {
		t.Helper()
		op := e.start("/register", callID, sameCaller, nil)
		_, msgs := e.events(op["events_url"].(string), "")
		if last := checkStream(t, msgs, op); last.Event != "result-success" {
			t.Fatalf("register on the other call ended with %s", last.Raw)
		}
	}

	// Another call registers the caller; the page gets the focus.
	registerOn(sameCallA)
	time.Sleep(2200 * time.Millisecond)
	p.Eval(`window.dispatchEvent(new Event('focus'))`, nil)
	p.WaitText(sel("state"), "^Voice registered$", 3*time.Second)
	p.WaitText(sel("main"), "^Authenticate User$", time.Second)
	// Screen readers hear the change, and the buttons name the state
	// line as their description (why one is off, what it acts on).
	p.WaitText(sel("live"), `^Status updated: Voice registered\. Authenticate User is available\.$`, time.Second)
	var described string
	p.Eval(`document.getElementById('two').shadowRoot.getElementById('main').getAttribute('aria-describedby')`, &described)
	if described != "state" {
		t.Errorf("main button aria-describedby %q, want the state line", described)
	}
	p.Screenshot("widget-fresh-registered", "voicegate-agent#two")

	// Hidden: nothing is read. Visible again: read at once.
	setVisibility := func(v string) {
		p.Eval(`(() => { Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => '`+v+`'}); document.dispatchEvent(new Event('visibilitychange')); })()`, nil)
	}
	if code, m := e.post("/delete", map[string]any{"call_id": sameCallA, "caller_id": sameCaller}); code != 200 {
		t.Fatalf("delete on the other call: %d %v", code, m)
	}
	time.Sleep(2200 * time.Millisecond)
	setVisibility("hidden")
	n := counter.count()
	p.Eval(`window.dispatchEvent(new Event('focus'))`, nil)
	time.Sleep(time.Second)
	if got := counter.count(); got != n {
		t.Errorf("a hidden page read the status %d times", got-n)
	}
	if got := p.Text(sel("state")); got != "Voice registered" {
		t.Errorf("hidden page's state changed to %q", got)
	}
	setVisibility("visible")
	p.WaitText(sel("state"), "^Not registered$", 3*time.Second)
	p.WaitText(sel("main"), "^Register User$", time.Second)
	p.WaitText(sel("live"), `^Status updated: Not registered\. Register User is available\.$`, time.Second)

	// Idle and visible: the status is read again on its own, within
	// REFRESH_MS + REFRESH_JITTER_MS, and not sooner than 15 s.
	n = counter.count()
	readAt := time.Now()
	registerOn(sameCallA)
	p.WaitText(sel("state"), "^Voice registered$", 27*time.Second)
	counter.mu.Lock()
	reads := counter.at[n:]
	counter.mu.Unlock()
	if len(reads) != 1 || reads[0].Sub(readAt) < 14*time.Second {
		t.Errorf("periodic reads %d, first after %v: want one, after 15 s or more", len(reads), func() time.Duration {
			if len(reads) == 0 {
				return 0
			}
			return reads[0].Sub(readAt)
		}())
	}

	// Reads never overlap: focus events while a read is out start none.
	hold := make(chan struct{})
	counter.mu.Lock()
	counter.hold = hold
	counter.most = 0
	counter.mu.Unlock()
	time.Sleep(2200 * time.Millisecond)
	for range 5 {
		p.Eval(`window.dispatchEvent(new Event('focus'))`, nil)
		setVisibility("visible")
		time.Sleep(100 * time.Millisecond)
	}
	counter.mu.Lock()
	most := counter.most
	counter.hold = nil
	counter.mu.Unlock()
	close(hold)
	if most != 1 {
		t.Errorf("%d status reads at once, want 1", most)
	}
	p.WaitText(sel("main"), "^Authenticate User$", 3*time.Second)

	// The page's own green card of an earlier operation does not outlive
	// the registration it was about: after a delete on the other call, a
	// read on focus replaces it, and no green is left beside "Not
	// registered".
	p.Click(sel("main"))
	p.WaitText(sel("otitle"), "^Caller verified$", 20*time.Second)
	if code, m := e.post("/delete", map[string]any{"call_id": sameCallA, "caller_id": sameCaller}); code != 200 || m["deleted"] != true {
		t.Fatalf("delete on the other call: %d %v", code, m)
	}
	time.Sleep(2200 * time.Millisecond)
	p.Eval(`window.dispatchEvent(new Event('focus'))`, nil)
	p.WaitText(sel("state"), "^Not registered$", 3*time.Second)
	p.WaitText(sel("otitle"), "^Status changed$", time.Second)
	// Where the change came from is not known (another call, tab or
	// agent): the card does not claim it was another call.
	p.WaitText(sel("ocause"), `^The caller.s voice registration was deleted meanwhile, elsewhere \(on another call, in another tab or by another agent\)\.`, time.Second)
	if p.Visible(sel("nospoof")) {
		t.Error("the earlier result's anti-spoofing note is still shown")
	}
	var green []string
	p.Eval(`(`+greenIn+`)('two')`, &green)
	if len(green) > 0 {
		t.Errorf("green left after the registration was deleted elsewhere: %q", green)
	}
	p.Screenshot("widget-fresh-deleted-elsewhere", "voicegate-agent#two")
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

// TestWidgetStatusReRegisteredBrowser: a page shows "Caller verified";
// between two of its status reads the caller's registration is deleted
// and registered again on another call. registered stays true, but the
// status's registered_at changes: the green card, checked against a
// voiceprint that no longer exists, is replaced with "Status changed".
func TestWidgetStatusReRegisteredBrowser(t *testing.T) {
	b := browsertest.Start(t)
	e := newEnv(t, func(o *Options, src *fakeSource) { o.Source = infoSource{src} })
	clips := []string{"voices/slt_1.wav", "voices/slt_2.wav", "voices/slt_3.wav"}
	e.src.set(sameCallA, fakeCall{clips: clips, hold: true, ani: sameCaller, live: true})
	e.src.set(sameCallB, fakeCall{clips: clips, hold: true, ani: sameCaller, live: true})
	counter := &statusCounter{next: e.srv}
	site := newSite(t, e, onePage, map[string]http.HandlerFunc{"/agent/status": counter.ServeHTTP})
	registerOn := func(callID string) {
		t.Helper()
		op := e.start("/register", callID, sameCaller, nil)
		_, msgs := e.events(op["events_url"].(string), "")
		if last := checkStream(t, msgs, op); last.Event != "result-success" {
			t.Fatalf("register on the other call ended with %s", last.Raw)
		}
	}
	status := func() map[string]any {
		t.Helper()
		code, m := e.post("/status", map[string]any{"call_id": sameCallA, "caller_id": sameCaller})
		if code != 200 {
			t.Fatalf("status: %d %v", code, m)
		}
		return m
	}
	if st := status(); st["registered_at"] != nil {
		t.Errorf("registered_at %v before any register, want null", st["registered_at"])
	}
	registerOn(sameCallA)
	first, _ := status()["registered_at"].(string)
	if at, err := time.Parse(time.RFC3339Nano, first); err != nil || at.Location() != time.UTC || time.Since(at) > time.Minute {
		t.Fatalf("registered_at %q (%v), want the record's creation time in UTC", first, err)
	}

	p := b.NewPage(320, 900)
	p.Goto(site.URL + "/page")
	sel := func(id string) string { return "voicegate-agent#two >> #" + id }
	p.WaitText(sel("main"), "^Authenticate User$", 10*time.Second)
	p.Click(sel("main"))
	p.WaitText(sel("otitle"), "^Caller verified$", 20*time.Second)
	// The status read that follows the result.
	n := counter.count()
	deadline := time.Now().Add(5 * time.Second)
	for counter.count() == n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}

	// Deleted and registered again elsewhere, within one refresh period.
	if code, m := e.post("/delete", map[string]any{"call_id": sameCallA, "caller_id": sameCaller}); code != 200 || m["deleted"] != true {
		t.Fatalf("delete on the other call: %d %v", code, m)
	}
	registerOn(sameCallA)
	second, _ := status()["registered_at"].(string)
	if second == "" || second == first {
		t.Fatalf("registered_at after a delete and a register: %q, was %q", second, first)
	}
	time.Sleep(2200 * time.Millisecond)
	p.Eval(`window.dispatchEvent(new Event('focus'))`, nil)
	p.WaitText(sel("otitle"), "^Status changed$", 3*time.Second)
	p.WaitText(sel("ocause"), `^The caller.s voice registration was deleted and registered again meanwhile, elsewhere`, time.Second)
	p.WaitText(sel("otodo"), `^Check the caller again before relying on a result\.$`, time.Second)
	p.WaitText(sel("alert"), `^Status changed\. The caller.s voice registration was deleted and registered again meanwhile.*Check the caller again`, 2*time.Second)
	p.WaitText(sel("state"), "^Voice registered$", time.Second)
	var green []string
	p.Eval(`(`+greenIn+`)('two')`, &green)
	if len(green) > 0 {
		t.Errorf("green left after the registration was replaced elsewhere: %q", green)
	}
	p.Screenshot("widget-fresh-reregistered-elsewhere", "voicegate-agent#two")

	// A check on the new registration is green again, and a later read
	// of the same registration keeps it.
	p.Click(sel("main"))
	p.WaitText(sel("otitle"), "^Caller verified$", 20*time.Second)
	time.Sleep(2200 * time.Millisecond)
	p.Eval(`window.dispatchEvent(new Event('focus'))`, nil)
	time.Sleep(time.Second)
	if got := p.Text(sel("otitle")); got != "Caller verified" {
		t.Errorf("after a read of the same registration the card is %q", got)
	}
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

// failingStatus answers /agent/status 503 while fail is set (a service
// restarting, a proxy's error), and passes everything else on.
type failingStatus struct {
	next http.Handler
	fail atomic.Bool
	n    atomic.Int64 // the reads answered by the service
}

func (f *failingStatus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/agent/status" {
		if f.fail.Load() {
			http.Error(w, "service unavailable", http.StatusServiceUnavailable)
			return
		}
		defer f.n.Add(1)
	}
	f.next.ServeHTTP(w, r)
}

// TestWidgetStatusReRegisteredUnanchoredBrowser: the status reads after
// a green result fail (503); meanwhile the caller is deleted and
// registered again elsewhere, so the first read that works already
// names the new registration. Its registered_at is after the result's
// time: the green card gives way to "Status changed". The control: the
// same failed reads with no new registration leave the green card.
func TestWidgetStatusReRegisteredUnanchoredBrowser(t *testing.T) {
	b := browsertest.Start(t)
	e := newEnv(t, func(o *Options, src *fakeSource) { o.Source = infoSource{src} })
	clips := []string{"voices/slt_1.wav", "voices/slt_2.wav", "voices/slt_3.wav"}
	e.src.set(sameCallA, fakeCall{clips: clips, hold: true, ani: sameCaller, live: true})
	e.src.set(sameCallB, fakeCall{clips: clips, hold: true, ani: sameCaller, live: true})
	fs := &failingStatus{next: e.srv}
	site := newSite(t, e, onePage, map[string]http.HandlerFunc{"/agent/status": fs.ServeHTTP})
	registerOn := func(callID string) {
		t.Helper()
		op := e.start("/register", callID, sameCaller, nil)
		_, msgs := e.events(op["events_url"].(string), "")
		if last := checkStream(t, msgs, op); last.Event != "result-success" {
			t.Fatalf("register on the other call ended with %s", last.Raw)
		}
	}
	registerOn(sameCallA)

	p := b.NewPage(320, 900)
	p.Goto(site.URL + "/page")
	sel := func(id string) string { return "voicegate-agent#two >> #" + id }
	p.WaitText(sel("main"), "^Authenticate User$", 10*time.Second)
	// worked waits for a status read the service answered after n.
	worked := func(n int64, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for fs.n.Load() == n {
			if time.Now().After(deadline) {
				t.Fatal("no status read went through")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Control: failed reads after the result, then a read of the same
	// registration: the card stays green.
	fs.fail.Store(true)
	p.Click(sel("main"))
	p.WaitText(sel("otitle"), "^Caller verified$", 20*time.Second)
	time.Sleep(1500 * time.Millisecond)
	n := fs.n.Load()
	fs.fail.Store(false)
	worked(n, 20*time.Second)
	time.Sleep(500 * time.Millisecond)
	if got := p.Text(sel("otitle")); got != "Caller verified" {
		t.Fatalf("after failed reads and a read of the same registration the card is %q", got)
	}

	// Failed reads after the result; meanwhile a delete and a register
	// elsewhere; the first read that works names the new registration.
	fs.fail.Store(true)
	p.Click(sel("main"))
	p.WaitText(sel("otitle"), "^Caller verified$", 20*time.Second)
	time.Sleep(1100 * time.Millisecond)
	if code, m := e.post("/delete", map[string]any{"call_id": sameCallA, "caller_id": sameCaller}); code != 200 || m["deleted"] != true {
		t.Fatalf("delete on the other call: %d %v", code, m)
	}
	registerOn(sameCallA)
	if got := p.Text(sel("otitle")); got != "Caller verified" {
		t.Fatalf("while the reads fail the card is %q", got)
	}
	fs.fail.Store(false)
	p.WaitText(sel("otitle"), "^Status changed$", 20*time.Second)
	p.WaitText(sel("ocause"), `^The caller.s voice registration was deleted and registered again meanwhile, elsewhere`, time.Second)
	p.WaitText(sel("otodo"), `^Check the caller again before relying on a result\.$`, time.Second)
	p.WaitText(sel("alert"), `^Status changed\. The caller.s voice registration was deleted and registered again meanwhile.*Check the caller again`, 2*time.Second)
	var green []string
	p.Eval(`(`+greenIn+`)('two')`, &green)
	if len(green) > 0 {
		t.Errorf("green left after the registration was replaced elsewhere: %q", green)
	}
	p.Screenshot("widget-fresh-reregistered-unanchored", "voicegate-agent#two")
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

// sameCallPage holds two widgets on one call (two tabs of one call).
const sameCallPage = `<!doctype html><html lang="en"><meta charset="utf-8"><title>same call</title>
<script src="/agent/voicegate-agent.js"></script>
<voicegate-agent id="one" call-sid="` + sameCallA + `" caller-id="` + sameCaller + `" security-token="` + testToken + `" call-in-progress="true"></voicegate-agent>
<voicegate-agent id="two" call-sid="` + sameCallA + `" caller-id="` + sameCaller + `" security-token="` + testToken + `" call-in-progress="true"></voicegate-agent>`

// TestWidgetStatusOtherCheckBrowser: two pages on the same call. While
// the first one's check runs, the second is refused ("Another check is
// running"); once it ended, a status read clears that card. The first
// shows "Caller verified"; the second then checks an impostor ("Not
// verified"): the first page's next status read replaces its green card
// with an amber "Status changed" naming the other check's result.
func TestWidgetStatusOtherCheckBrowser(t *testing.T) {
	b := browsertest.Start(t)
	e := newEnv(t, func(o *Options, src *fakeSource) { o.Source = infoSource{src} })
	e.src.set(sameCallA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}, ani: sameCaller, live: true})
	op := e.start("/register", sameCallA, sameCaller, nil)
	if _, msgs := e.events(op["events_url"].(string), ""); checkStream(t, msgs, op).Event != "result-success" {
		t.Fatal("register failed")
	}
	// Before any check, the status says none runs and names the register.
	code, st := e.post("/status", map[string]any{"call_id": sameCallA, "caller_id": sameCaller})
	last, _ := st["last_operation"].(map[string]any)
	if code != 200 || st["operation_running"] != false || last["operation_id"] != op["operation_id"] || last["operation"] != "register" || last["result"] != "result-success" {
		t.Fatalf("status after a register: %d %v", code, st)
	}
	e.src.set(sameCallA, fakeCall{clips: []string{"voices/slt_3.wav"}, hold: true, ani: sameCaller, live: true})
	site := newSite(t, e, sameCallPage, nil)
	p := b.NewPage(320, 1400)
	p.Goto(site.URL + "/page")
	sel := func(w, id string) string { return "voicegate-agent#" + w + " >> #" + id }
	for _, w := range []string{"one", "two"} {
		p.WaitText(sel(w, "main"), "^Authenticate User$", 10*time.Second)
	}

	// One's check waits for the call's audio; two is refused meanwhile.
	block := make(chan struct{})
	e.src.mu.Lock()
	e.src.block = block
	e.src.mu.Unlock()
	p.Click(sel("one", "main"))
	p.WaitText(sel("one", "ptext"), "^Starting", 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	p.Click(sel("two", "main"))
	p.WaitText(sel("two", "otitle"), "^Another check is running$", 5*time.Second)
	e.src.mu.Lock()
	e.src.block = nil
	e.src.mu.Unlock()
	close(block)
	p.WaitText(sel("one", "otitle"), "^Caller verified$", 20*time.Second)
	time.Sleep(2200 * time.Millisecond)
	p.Eval(`window.dispatchEvent(new Event('focus'))`, nil)
	for deadline := time.Now().Add(3 * time.Second); p.Visible(sel("two", "outcome")) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if p.Visible(sel("two", "outcome")) {
		t.Errorf("two still shows %q after the other check ended", p.Text(sel("two", "otitle")))
	}
	if got := p.Text(sel("one", "otitle")); got != "Caller verified" {
		t.Errorf("one's own check, the call's latest, shows %q after a status read", got)
	}

	// An impostor checked from two: one's green card goes.
	e.src.set(sameCallA, fakeCall{clips: []string{"voices/kal_3.wav"}, hold: true, ani: sameCaller, live: true})
	p.Click(sel("two", "main"))
	p.WaitText(sel("two", "otitle"), "^Not verified$", 20*time.Second)
	time.Sleep(2200 * time.Millisecond)
	p.Eval(`window.dispatchEvent(new Event('focus'))`, nil)
	p.WaitText(sel("one", "otitle"), "^Status changed$", 3*time.Second)
	p.WaitText(sel("one", "ocause"), `^Another check ran on this call \(Not verified\) after the result shown here`, time.Second)
	var green []string
	p.Eval(`(`+greenIn+`)('one')`, &green)
	if len(green) > 0 {
		t.Errorf("green left after another check on the call: %q", green)
	}
	p.WaitText(sel("one", "alert"), `^Status changed\. Another check ran on this call \(Not verified\)`, 2*time.Second)
	p.Screenshot("widget-fresh-other-check", "voicegate-agent#one")
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

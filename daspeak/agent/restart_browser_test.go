package agent

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/internal/browsertest"
)

const (
	restartCall   = "CA00000000000000000000000000000031"
	restartCaller = "+34911234569"
)

// restartPage holds one widget on restartCall.
const restartPage = `<!doctype html><html lang="en"><meta charset="utf-8"><title>restart</title>
<script src="/agent/voicegate-agent.js"></script>
<voicegate-agent id="w" call-sid="` + restartCall + `" caller-id="` + restartCaller + `" security-token="` + testToken + `" call-in-progress="true"></voicegate-agent>`

// swapSite serves restartPage and passes the rest to the server in
// front, which the test swaps as a restart would; with down set, every
// connection is cut before an answer (a server that cannot be reached).
type swapSite struct {
	mu    sync.Mutex
	srv   http.Handler
	down  bool
	stops int
}

func (s *swapSite) set(srv http.Handler, down bool) {
	s.mu.Lock()
	s.srv, s.down = srv, down
	s.mu.Unlock()
}

func (s *swapSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/page" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, restartPage)
		return
	}
	s.mu.Lock()
	srv, down := s.srv, s.down
	if r.URL.Path == "/agent/stop" && !down {
		s.stops++
	}
	s.mu.Unlock()
	if down {
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
		return
	}
	srv.ServeHTTP(w, r)
}

func (s *swapSite) stopCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stops
}

// TestWidgetRestartBrowser: the voice service restarts while the widget
// follows a verify (its event stream is cut, and the new server knows
// neither the operation nor, in the second round, the agent's token).
// The widget must not show the check in progress forever: it learns
// why the stream failed and says, in amber and assertively, that the
// check's result is unknown and what to do, shows nothing green, and
// brings the buttons back as the status allows. A Stop pressed while
// the service cannot be reached says the stop did not get through, and
// the result is said unknown once the service answers; a service that
// stays unreachable has the result said unknown after a minute.
func TestWidgetRestartBrowser(t *testing.T) {
	b := browsertest.Start(t)
	clips := []string{"voices/slt_1.wav", "voices/slt_2.wav", "voices/slt_3.wav"}
	call := fakeCall{clips: clips, hold: true, ani: restartCaller, live: true}
	// Every server shares the credential store (a restart keeps it); a
	// verify needs more speech than the call gives, so it runs until
	// stopped.
	var first *env
	newServer := func(token string) *env {
		e := newEnv(t, func(o *Options, src *fakeSource) {
			o.Source = infoSource{src}
			o.Verify = &daspeak.Config{AudioTotalDuration: 30 * time.Second}
			if first != nil {
				o.Store = first.store
			}
			if token != testToken {
				auth, err := NewDevAuthenticator(token)
				if err != nil {
					t.Fatal(err)
				}
				o.Authenticator = auth
			}
		})
		e.src.set(restartCall, call)
		return e
	}
	first = newServer(testToken)
	site := &swapSite{srv: first.srv}
	hs := httptest.NewServer(site)
	defer hs.Close()

	p := b.NewPage(320, 900)
	p.Goto(hs.URL + "/page")
	sel := func(id string) string { return "voicegate-agent#w >> #" + id }
	eval := func(js string) string {
		var s string
		p.Eval(`(() => { const r = document.getElementById('w').shadowRoot; return String(`+js+`); })()`, &s)
		return s
	}
	p.WaitText(sel("main"), "^Register User$", 10*time.Second)
	p.Click(sel("main"))
	p.WaitText(sel("otitle"), "^Voice registered$", 30*time.Second)
	p.WaitText(sel("main"), "^Authenticate User$", 10*time.Second)

	// verifying starts a check and waits until speech was counted.
	verifying := func() {
		t.Helper()
		p.Click(sel("main"))
		p.WaitText(sel("state"), "^Checking voice…$", 5*time.Second)
		p.WaitText(sel("ptext"), `^Voice collected: [1-9][0-9]*\.[0-9] s of 30\.0 s$`, 20*time.Second)
	}
	// unknown checks the account of a check whose result was lost.
	unknown := func(when, cause, todo, main string) {
		t.Helper()
		start := time.Now()
		p.WaitText(sel("otitle"), "^Check result unknown$", 15*time.Second)
		t.Logf("%s: said unknown %v after the cut", when, time.Since(start).Round(10*time.Millisecond))
		p.WaitText(sel("ocause"), cause, time.Second)
		p.WaitText(sel("otodo"), todo, time.Second)
		p.WaitText(sel("main"), main, 10*time.Second)
		p.WaitText(sel("alert"), "^Check result unknown. ", 2*time.Second)
		if got := eval(`r.getElementById('outcome').className`); got != "outcome error" {
			t.Errorf("%s: outcome class %q, want the amber error style", when, got)
		}
		if eval(`r.getElementById('progress').hidden`) != "true" {
			t.Errorf("%s: the progress bar still shows: %q", when, p.Text(sel("ptext")))
		}
		if st := p.Text(sel("state")); strings.Contains(st, "Checking") {
			t.Errorf("%s: state %q", when, st)
		}
		if eval(`r.getElementById('main').disabled`) != "false" {
			t.Errorf("%s: the main button is off", when)
		}
		var greens []string
		p.Eval(`(`+greenIn+`)('w')`, &greens)
		if len(greens) > 0 {
			t.Errorf("%s: green shows: %q", when, greens)
		}
		if said := eval(`r.getElementById('live').textContent`); strings.Contains(said, "verified") && !strings.Contains(said, "not verified") {
			t.Errorf("%s: the polite region says %q", when, said)
		}
	}

	// 1. A restart: the new server does not know the operation (its
	// events URL answers 401, as a bad token), but accepts the agent.
	verifying()
	second := newServer(testToken)
	stops := site.stopCount()
	site.set(second.srv, false)
	hs.CloseClientConnections()
	unknown("restart", `^The voice service restarted or lost this check, so its result is unknown\.$`,
		`^The caller was not verified\. Check again\.$`, "^Re-Authenticate User$")
	if site.stopCount() == stops {
		t.Error("no stop was sent for the operation whose stream was lost")
	}
	p.WaitText(sel("state"), "^Voice registered$", time.Second)
	p.Screenshot("widget-restart-unknown", "voicegate-agent#w")

	// 2. A restart that also drops the agent's sign-in (a new token):
	// the status read is refused too.
	verifying()
	third := newServer("another-token")
	site.set(third.srv, false)
	hs.CloseClientConnections()
	unknown("sign-in", `^The voice service no longer accepts your sign-in, so this check.s result cannot be read\.$`,
		`^The caller was not verified\. Reload the page or sign in again, then check again\.$`, "^Try again$")
	p.Screenshot("widget-restart-signin", "voicegate-agent#w")

	// 3. The service cannot be reached; Stop is pressed meanwhile; then a
	// restarted service answers that knows nothing of the operation.
	// Signed in again: the stop of the operation lost in round 2 is sent
	// again with the status read that gets through.
	stops = site.stopCount()
	site.set(second.srv, false)
	p.Click(sel("main"))
	p.WaitText(sel("main"), "^Authenticate User$", 10*time.Second)
	for deadline := time.Now().Add(5 * time.Second); site.stopCount() == stops; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stop refused with the old sign-in was not sent again")
		}
	}
	verifying()
	site.set(nil, true)
	hs.CloseClientConnections()
	p.WaitText(sel("otodo"), "^Retrying…$", 10*time.Second)
	p.WaitText(sel("state"), "^Checking voice…$", time.Second)
	p.Click(sel("stop"))
	p.WaitText(sel("ocause"), "^Stop did not reach the voice service: it does not answer right now\\.$", 10*time.Second)
	p.WaitText(sel("alert"), "^Cannot reach the voice service. Stop did not reach", 2*time.Second)
	p.Screenshot("widget-restart-stop-unreachable", "voicegate-agent#w")
	fourth := newServer(testToken)
	site.set(fourth.srv, false)
	unknown("stop while down", `^The voice service restarted or lost this check, so its result is unknown\.$`,
		`^The caller was not verified\. Check again\.$`, "^Re-Authenticate User$")

	// 4. The service cannot be reached for good: after a minute without
	// contact the result is said unknown, the buttons stay off while
	// the status cannot be read, and once the service answers the
	// operation is stopped and the buttons come back.
	verifying()
	site.set(nil, true)
	hs.CloseClientConnections()
	cut := time.Now()
	p.WaitText(sel("otodo"), "^Retrying…$", 10*time.Second)
	// (The browser driver waits at most a minute per step.)
	time.Sleep(50*time.Second - time.Since(cut))
	if got := p.Text(sel("otitle")); got != "Cannot reach the voice service" {
		t.Errorf("50 s without contact: title %q, want the service still retried", got)
	}
	p.WaitText(sel("otitle"), "^Check result unknown$", 25*time.Second)
	if d := time.Since(cut); d < 59*time.Second {
		t.Errorf("said unknown %v after the cut, before a minute without contact", d)
	}
	p.WaitText(sel("ocause"), `^The voice service has not answered for 60\u00a0s, so this check.s result is unknown\.$`, time.Second)
	p.WaitText(sel("otodo"), `^The caller was not verified\. Check again once the service answers\.$`, time.Second)
	p.WaitText(sel("alert"), "^Check result unknown. ", 2*time.Second)
	if eval(`r.getElementById('progress').hidden`) != "true" || eval(`r.getElementById('main').disabled`) != "true" {
		t.Error("no contact: the progress bar shows, or the main button is on while the status cannot be read")
	}
	var greens []string
	p.Eval(`(`+greenIn+`)('w')`, &greens)
	if len(greens) > 0 {
		t.Errorf("no contact: green shows: %q", greens)
	}
	p.Screenshot("widget-restart-silent", "voicegate-agent#w")
	stops = site.stopCount()
	site.set(fourth.srv, false)
	p.WaitText(sel("main"), "^Re-Authenticate User$", 20*time.Second)
	p.WaitText(sel("otitle"), "^Check result unknown$", time.Second)
	for deadline := time.Now().Add(5 * time.Second); site.stopCount() == stops; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the operation whose contact was lost was not stopped once the service answered")
		}
	}
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

// TestWidgetRestartRegisterBrowser: the voice service restarts while
// the widget follows a register. The widget says the registration is
// not confirmed, never "Voice registered"; the restarted service is
// asked to stop it, and the caller's status (not registered) is said and
// offers Register again.
func TestWidgetRestartRegisterBrowser(t *testing.T) {
	b := browsertest.Start(t)
	call := fakeCall{clips: []string{"voices/slt_1.wav"}, hold: true, ani: restartCaller, live: true}
	newServer := func() *env {
		e := newEnv(t, func(o *Options, src *fakeSource) {
			o.Source = infoSource{src}
			o.Register = &daspeak.Config{AudioTotalDuration: 30 * time.Second}
		})
		e.src.set(restartCall, call)
		return e
	}
	first := newServer()
	site := &swapSite{srv: first.srv}
	hs := httptest.NewServer(site)
	defer hs.Close()
	p := b.NewPage(320, 900)
	p.Goto(hs.URL + "/page")
	sel := func(id string) string { return "voicegate-agent#w >> #" + id }
	p.WaitText(sel("main"), "^Register User$", 10*time.Second)
	p.Click(sel("main"))
	p.WaitText(sel("state"), "^Registering voice…$", 5*time.Second)
	p.WaitText(sel("ptext"), `^Voice collected: [1-9][0-9]*\.[0-9] s of 30\.0 s$`, 20*time.Second)

	second := newServer()
	site.set(second.srv, false)
	hs.CloseClientConnections()
	p.WaitText(sel("otitle"), "^Registration not confirmed$", 15*time.Second)
	p.WaitText(sel("ocause"), `^The voice service restarted or lost this registration\. The caller is not registered now\.$`, 5*time.Second)
	p.WaitText(sel("otodo"), `^Register again\.$`, time.Second)
	p.WaitText(sel("main"), "^Register User$", 5*time.Second)
	p.WaitText(sel("state"), "^Not registered$", time.Second)
	p.WaitText(sel("alert"), "^Registration not confirmed. The voice service restarted or lost this registration. The caller is not registered now", 2*time.Second)
	if site.stopCount() == 0 {
		t.Error("no stop was sent for the registration whose stream was lost")
	}
	var greens []string
	p.Eval(`(`+greenIn+`)('w')`, &greens)
	if len(greens) > 0 {
		t.Errorf("green shows: %q", greens)
	}
	p.Screenshot("widget-restart-register", "voicegate-agent#w")
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

// TestWidgetRestartUnknownKeptBrowser: after a restart mid-check the
// widget says "Check result unknown"; a later status read refused (the
// service no longer accepts the agent's sign-in, or the agent may no
// longer act on the call) must not drop that warning: the card keeps
// its title and says the sign-in problem too.
func TestWidgetRestartUnknownKeptBrowser(t *testing.T) {
	b := browsertest.Start(t)
	clips := []string{"voices/slt_1.wav", "voices/slt_2.wav", "voices/slt_3.wav"}
	call := fakeCall{clips: clips, hold: true, ani: restartCaller, live: true}
	var first *env
	newServer := func(token string) *env {
		e := newEnv(t, func(o *Options, src *fakeSource) {
			o.Source = infoSource{src}
			o.Verify = &daspeak.Config{AudioTotalDuration: 30 * time.Second}
			if first != nil {
				o.Store = first.store
			}
			if token != testToken {
				auth, err := NewDevAuthenticator(token)
				if err != nil {
					t.Fatal(err)
				}
				o.Authenticator = auth
			}
		})
		e.src.set(restartCall, call)
		return e
	}
	first = newServer(testToken)
	site := &swapSite{srv: first.srv}
	hs := httptest.NewServer(site)
	defer hs.Close()

	p := b.NewPage(320, 900)
	p.Goto(hs.URL + "/page")
	sel := func(id string) string { return "voicegate-agent#w >> #" + id }
	p.WaitText(sel("main"), "^Register User$", 10*time.Second)
	p.Click(sel("main"))
	p.WaitText(sel("otitle"), "^Voice registered$", 30*time.Second)
	p.WaitText(sel("main"), "^Authenticate User$", 10*time.Second)
	p.Click(sel("main"))
	p.WaitText(sel("ptext"), `^Voice collected: [1-9][0-9]*\.[0-9] s of 30\.0 s$`, 20*time.Second)

	// A restart that keeps the sign-in: the result is unknown.
	site.set(newServer(testToken).srv, false)
	hs.CloseClientConnections()
	p.WaitText(sel("otitle"), "^Check result unknown$", 15*time.Second)
	p.WaitText(sel("main"), "^Re-Authenticate User$", 10*time.Second)

	// Another restart drops the sign-in; the next status read (on focus)
	// is refused.
	site.set(newServer("another-token").srv, false)
	time.Sleep(2200 * time.Millisecond)
	p.Eval(`window.dispatchEvent(new Event('focus'))`, nil)
	p.WaitText(sel("ocause"), `^The voice service no longer accepts your sign-in, so this check.s result cannot be read\.$`, 5*time.Second)
	p.WaitText(sel("otitle"), "^Check result unknown$", time.Second)
	p.WaitText(sel("otodo"), `^The caller was not verified\. Reload the page or sign in again, then check again\.$`, time.Second)
	p.WaitText(sel("alert"), "^Check result unknown. ", 2*time.Second)
	// It stays so: later reads do not replace it.
	time.Sleep(2200 * time.Millisecond)
	p.Eval(`window.dispatchEvent(new Event('focus'))`, nil)
	time.Sleep(time.Second)
	if got := p.Text(sel("otitle")); got != "Check result unknown" {
		t.Errorf("a later refused read shows %q", got)
	}
	var greens []string
	p.Eval(`(`+greenIn+`)('w')`, &greens)
	if len(greens) > 0 {
		t.Errorf("green shows: %q", greens)
	}
	p.Screenshot("widget-restart-unknown-signin", "voicegate-agent#w")
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

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

// stopRefusedSite serves restartPage and passes the rest to e's server,
// except that, with cut set, every request for an events URL is cut
// before an answer (the operation's stream is down), and, with refuse
// set, /agent/stop is answered 401 "unauthenticated" (the sign-in has
// expired) and the cut ends: the events URL, which needs no sign-in,
// answers again, and the operation still runs.
type stopRefusedSite struct {
	srv    http.Handler
	mu     sync.Mutex
	cut    bool
	refuse bool
	stops  int // stops that reached the server
}

func (s *stopRefusedSite) set(cut, refuse bool) {
	s.mu.Lock()
	s.cut, s.refuse = cut, refuse
	s.mu.Unlock()
}

func (s *stopRefusedSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/page" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, restartPage)
		return
	}
	s.mu.Lock()
	cut := s.cut && strings.HasSuffix(r.URL.Path, "/events")
	refuse := s.refuse && r.URL.Path == "/agent/stop"
	if refuse {
		s.cut = false
	}
	if r.URL.Path == "/agent/stop" && !refuse {
		s.stops++
	}
	s.mu.Unlock()
	if cut {
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
		return
	}
	if refuse {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"code":"unauthenticated","error":"authentication failed"}`+"\n")
		return
	}
	s.srv.ServeHTTP(w, r)
}

func (s *stopRefusedSite) stopCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stops
}

// TestWidgetStopRefusedBrowser: Stop is pressed while the check's event
// stream is down, and the service answers it 401 (the sign-in expired)
// while the events URL still answers 200: the check goes on. The widget
// must not drop the Stop silently and go on showing the check as if
// nothing was pressed: it says, in amber and assertively, that the Stop
// did not go through and that the check still runs, keeps saying so
// once the stream is back and speech is counted again, and a Stop that
// then gets through ends the check as stopped.
func TestWidgetStopRefusedBrowser(t *testing.T) {
	b := browsertest.Start(t)
	clips := []string{"voices/slt_1.wav", "voices/slt_2.wav", "voices/slt_3.wav"}
	call := fakeCall{clips: clips, hold: true, ani: restartCaller, live: true}
	e := newEnv(t, func(o *Options, src *fakeSource) {
		o.Source = infoSource{src}
		// A verify that runs until stopped.
		o.Verify = &daspeak.Config{AudioTotalDuration: 30 * time.Second}
	})
	e.src.set(restartCall, call)
	site := &stopRefusedSite{srv: e.srv}
	hs := httptest.NewServer(site)
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
	})

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
	p.Click(sel("main"))
	p.WaitText(sel("state"), "^Checking voice…$", 5*time.Second)
	p.WaitText(sel("ptext"), `^Voice collected: [1-9][0-9]*\.[0-9] s of 30\.0 s$`, 20*time.Second)

	// The stream goes down; Stop is refused 401 and the events URL
	// answers again.
	site.set(true, true)
	hs.CloseClientConnections()
	p.WaitText(sel("otodo"), "^Retrying…$", 10*time.Second)
	p.Click(sel("stop"))
	p.WaitText(sel("otitle"), "^Stop did not go through$", 10*time.Second)
	p.WaitText(sel("ocause"), "^The voice service no longer accepts your sign-in, so it refused Stop\\.$", time.Second)
	p.WaitText(sel("otodo"), "^It still runs: its result is shown when it ends\\. Reload the page or sign in again to stop it\\.$", time.Second)
	p.WaitText(sel("alert"), "^Stop did not go through\\. The voice service no longer accepts your sign-in", 2*time.Second)
	if got := eval(`r.getElementById('outcome').className`); got != "outcome error" {
		t.Errorf("outcome class %q, want the amber error style", got)
	}

	// The stream is back (open, after the events URL answered the
	// probe) and the check goes on: the notice stays.
	open := func() string {
		var s string
		p.Eval(`(() => { const op = document.getElementById('w')._op; return String(op && op.es && op.es.readyState); })()`, &s)
		return s
	}
	for deadline := time.Now().Add(15 * time.Second); open() != "1"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the check's stream did not come back (readyState %s)", open())
		}
	}
	time.Sleep(500 * time.Millisecond)
	p.WaitText(sel("state"), "^Checking voice…$", time.Second)
	if got := p.Text(sel("otitle")); got != "Stop did not go through" {
		t.Errorf("with the stream back, title %q, want the refused Stop still said", got)
	}
	p.Screenshot("widget-stop-refused", "voicegate-agent#w")

	// Signed in again: a Stop that gets through ends the check.
	site.set(false, false)
	stops := site.stopCount()
	p.Click(sel("stop"))
	p.WaitText(sel("otitle"), "^Stopped$", 10*time.Second)
	if site.stopCount() == stops {
		t.Error("the second Stop did not reach the server")
	}
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

// TestWidgetStopUnavailableBrowser: Stop is answered 503 while the
// check's stream is up: the widget says the Stop did not go through, why,
// and that the check still runs, not a start refusal ("nothing was
// done").
func TestWidgetStopUnavailableBrowser(t *testing.T) {
	b := browsertest.Start(t)
	clips := []string{"voices/slt_1.wav", "voices/slt_2.wav", "voices/slt_3.wav"}
	e := newEnv(t, func(o *Options, src *fakeSource) {
		o.Source = infoSource{src}
		o.Verify = &daspeak.Config{AudioTotalDuration: 30 * time.Second}
	})
	e.src.set(restartCall, fakeCall{clips: clips, hold: true, ani: restartCaller, live: true})
	site := newSite(t, e, restartPage, map[string]http.HandlerFunc{"/agent/stop": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"code":"unavailable","error":"service unavailable"}`+"\n")
	}})
	p := b.NewPage(320, 900)
	p.Goto(site.URL + "/page")
	sel := func(id string) string { return "voicegate-agent#w >> #" + id }
	p.WaitText(sel("main"), "^Register User$", 10*time.Second)
	p.Click(sel("main"))
	p.WaitText(sel("otitle"), "^Voice registered$", 30*time.Second)
	p.WaitText(sel("main"), "^Authenticate User$", 10*time.Second)
	p.Click(sel("main"))
	p.WaitText(sel("ptext"), `^Voice collected: [1-9][0-9]*\.[0-9] s of 30\.0 s$`, 20*time.Second)
	p.Click(sel("stop"))
	p.WaitText(sel("otitle"), "^Stop did not go through$", 10*time.Second)
	p.WaitText(sel("ocause"), "^The voice service is unavailable, so Stop did not reach it\\.$", time.Second)
	p.WaitText(sel("otodo"), "^It still runs: its result is shown when it ends\\.$", time.Second)
	p.WaitText(sel("alert"), "^Stop did not go through\\. The voice service is unavailable", 2*time.Second)
	p.Screenshot("widget-stop-unavailable", "voicegate-agent#w")
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

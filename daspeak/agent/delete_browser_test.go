package agent

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/browsertest"
)

// deletePage holds one widget on callA.
const deletePage = `<!doctype html><html lang="en"><meta charset="utf-8"><title>delete</title>
<script src="/agent/voicegate-agent.js"></script>
<voicegate-agent id="w" call-sid="` + callA + `" caller-id="` + callerA + `" security-token="` + testToken + `" call-in-progress="true"></voicegate-agent>`

// TestWidgetDeleteSaysAudio: "Registration deleted" says the caller's
// audio was removed only when the service removed some (audio_deleted):
// a server that keeps enrolment audio, and one that keeps none.
func TestWidgetDeleteSaysAudio(t *testing.T) {
	b := browsertest.Start(t)
	for _, c := range []struct {
		name     string
		audioDir bool
		cause    string
	}{
		{"audio kept", true, `^The caller.s voice registration and its audio were removed\.$`},
		{"no audio kept", false, `^The caller.s voice registration was removed\.$`},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options, src *fakeSource) {
				o.Source = infoSource{src}
				if !c.audioDir {
					o.Store = &CredentialStore{Store: o.Store.Store}
				}
			})
			e.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}, ani: callerA, live: true})
			op := e.start("/register", callA, callerA, nil)
			if _, msgs := e.events(op["events_url"].(string), ""); checkStream(t, msgs, op).Event != "result-success" {
				t.Fatal("the register did not succeed")
			}
			e.src.set(callA, fakeCall{ani: callerA, live: true, hold: true})
			site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/page" {
					w.Header().Set("Content-Type", "text/html; charset=utf-8")
					io.WriteString(w, deletePage)
					return
				}
				e.srv.ServeHTTP(w, r)
			}))
			defer site.Close()
			p := b.NewPage(320, 900)
			p.Goto(site.URL + "/page")
			sel := func(id string) string { return "voicegate-agent#w >> #" + id }
			p.WaitText(sel("main"), "^Authenticate User$", 10*time.Second)
			p.Click(sel("trash"))
			p.Click(sel("confirm-yes"))
			p.WaitText(sel("otitle"), "^Registration deleted$", 10*time.Second)
			p.WaitText(sel("ocause"), c.cause, time.Second)
			p.WaitText(sel("live"), "^Registration deleted. "+c.cause[1:], 2*time.Second)
			if _, err := e.mem.Get(context.Background(), callerA); err == nil {
				t.Error("the record is still stored")
			}
			if errs := b.PageErrors(); len(errs) > 0 {
				t.Errorf("page errors: %q", errs)
			}
		})
	}
}

// TestWidgetCancelCauseBrowser: a check cut by a delete (here from the
// API, as another desk would) ends with error-cancelled, cause deleted:
// the widget says why by the cause code, not "Stopped", and that the
// caller is no longer registered.
func TestWidgetCancelCauseBrowser(t *testing.T) {
	b := browsertest.Start(t)
	e := newEnv(t, func(o *Options, src *fakeSource) { o.Source = infoSource{src} })
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}, ani: callerA, live: true})
	op := e.start("/register", callA, callerA, nil)
	if _, msgs := e.events(op["events_url"].(string), ""); checkStream(t, msgs, op).Event != "result-success" {
		t.Fatal("the register did not succeed")
	}
	// No speech comes: the check runs until something ends it.
	e.src.set(callA, fakeCall{ani: callerA, live: true, hold: true})
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/page" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, deletePage)
			return
		}
		e.srv.ServeHTTP(w, r)
	}))
	defer site.Close()
	p := b.NewPage(320, 900)
	p.Goto(site.URL + "/page")
	sel := func(id string) string { return "voicegate-agent#w >> #" + id }
	p.WaitText(sel("main"), "^Authenticate User$", 10*time.Second)
	p.Click(sel("main"))
	p.WaitText(sel("state"), "^Checking voice", 5*time.Second)
	e.waitRunning(callA)
	if code, m := e.post("/delete", map[string]any{"call_id": callA, "caller_id": callerA}); code != 200 || m["deleted"] != true {
		t.Fatalf("delete: %d %v", code, m)
	}
	p.WaitText(sel("otitle"), "^Check ended$", 10*time.Second)
	p.WaitText(sel("ocause"), `^The check ended: the caller.s voice registration was deleted\.$`, time.Second)
	p.WaitText(sel("state"), "^Not registered$", time.Second)
	p.WaitText(sel("alert"), `^Check ended\. The check ended: the caller.s voice registration was deleted\.$`, 2*time.Second)
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

// TestWidgetDeleteAfterCallEndedBrowser: the call ends while the agent
// confirms a delete (Flex answers 409 no_call once the task is wrapping
// up): the refused delete says plainly that nothing was deleted, and a
// call that ended offers no delete.
func TestWidgetDeleteAfterCallEndedBrowser(t *testing.T) {
	b := browsertest.Start(t)
	e := newEnv(t, func(o *Options, src *fakeSource) { o.Source = infoSource{src} })
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}, ani: callerA, live: true})
	op := e.start("/register", callA, callerA, nil)
	if _, msgs := e.events(op["events_url"].(string), ""); checkStream(t, msgs, op).Event != "result-success" {
		t.Fatal("the register did not succeed")
	}
	e.src.set(callA, fakeCall{ani: callerA, live: true, hold: true})
	var ended atomic.Bool
	site := newSite(t, e, deletePage, map[string]http.HandlerFunc{
		// As Flex answers once the call's task is wrapping up.
		"/agent/status": func(w http.ResponseWriter, r *http.Request) {
			if ended.Load() {
				(&Error{Status: http.StatusConflict, Code: CodeNoCall, Message: "the call has ended"}).write(w)
				return
			}
			e.srv.ServeHTTP(w, r)
		},
	})
	p := b.NewPage(320, 900)
	p.Goto(site.URL + "/page")
	sel := func(id string) string { return "voicegate-agent#w >> #" + id }
	p.WaitText(sel("main"), "^Authenticate User$", 10*time.Second)
	p.Click(sel("trash"))
	p.WaitText(sel("confirm-yes"), "^Delete$", time.Second)
	// The call ends before the agent confirms.
	e.src.set(callA, fakeCall{ani: callerA, live: false})
	ended.Store(true)
	p.Click(sel("confirm-yes"))
	p.WaitText(sel("otitle"), "^Registration not deleted$", 10*time.Second)
	p.WaitText(sel("ocause"), `^The call has ended, so the voice service refused the delete\. Nothing was deleted: the caller.s voice registration is still stored\.$`, time.Second)
	p.WaitText(sel("alert"), "^Registration not deleted. ", 2*time.Second)
	p.WaitText(sel("main"), "^Call ended$", 5*time.Second)
	if _, err := e.mem.Get(t.Context(), callerA); err != nil {
		t.Fatalf("the credential is gone: %v", err)
	}
	// No delete is offered on the call that ended, and the card stays.
	time.Sleep(2200 * time.Millisecond)
	p.Eval(`window.dispatchEvent(new Event('focus'))`, nil)
	time.Sleep(500 * time.Millisecond)
	var trash string
	p.Eval(`(() => { const t = document.getElementById('w').shadowRoot.getElementById('trash'); return t.hidden || t.disabled ? 'off' : 'on'; })()`, &trash)
	if trash != "off" {
		t.Error("the delete button is offered after the call ended")
	}
	if got := p.Text(sel("otitle")); got != "Registration not deleted" {
		t.Errorf("the card changed to %q", got)
	}
	if p.Visible(sel("confirm")) {
		t.Error("a delete confirmation shows after the call ended")
	}
	p.Screenshot("widget-delete-call-ended", "voicegate-agent#w")
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

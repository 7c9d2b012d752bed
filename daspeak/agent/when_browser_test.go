package agent

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/browsertest"
)

// registeredOnPage registers callerA on callA through the API and serves
// deletePage (one widget on callA) beside the API; verify is the clip the
// widget's check hears.
func registeredOnPage(t *testing.T, verify string) (*env, string) {
	t.Helper()
	e := newEnv(t, func(o *Options, src *fakeSource) { o.Source = infoSource{src} })
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}, ani: callerA, live: true})
	op := e.start("/register", callA, callerA, nil)
	if _, msgs := e.events(op["events_url"].(string), ""); checkStream(t, msgs, op).Event != "result-success" {
		t.Fatal("the register did not succeed")
	}
	e.src.set(callA, fakeCall{clips: []string{verify}, ani: callerA, live: true, hold: true})
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/page" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, deletePage)
			return
		}
		e.srv.ServeHTTP(w, r)
	}))
	t.Cleanup(site.Close)
	return e, site.URL + "/page"
}

// TestWidgetSuccessSaysWhen: a green "Caller verified" says when it
// happened, in local time, with a machine-readable <time datetime>, and
// keeps saying it after the call ended: an earlier result, not a live
// one. The title itself stays "Caller verified".
func TestWidgetSuccessSaysWhen(t *testing.T) {
	b := browsertest.Start(t)
	_, page := registeredOnPage(t, "voices/slt_3.wav")
	p := b.NewPage(320, 900)
	p.Goto(page)
	sel := func(id string) string { return "voicegate-agent#w >> #" + id }
	p.WaitText(sel("main"), "^Authenticate User$", 10*time.Second)
	before := time.Now().Add(-time.Second)
	p.Click(sel("main"))
	p.WaitText(sel("otitle"), "^Caller verified$", 20*time.Second)
	after := time.Now().Add(time.Second)
	var got struct {
		Line, Text, DateTime, Want string
		Visible                    bool
	}
	read := func() {
		p.Eval(`(() => {
  const r = document.getElementById('w').shadowRoot;
  const t = r.getElementById('otime');
  const d = new Date(t.dateTime);
  return {Line: r.getElementById('otitle').parentElement.textContent, Text: t.textContent, DateTime: t.getAttribute('datetime') || '',
    Want: isNaN(d) ? '' : d.toLocaleTimeString([], {hour: 'numeric', minute: '2-digit'}),
    Visible: !!r.getElementById('owhen').getClientRects().length};
})()`, &got)
	}
	read()
	at, err := time.Parse(time.RFC3339Nano, got.DateTime)
	if err != nil || at.Before(before) || at.After(after) {
		t.Fatalf("<time datetime=%q>: %v, want a time between %v and %v", got.DateTime, err, before, after)
	}
	if !got.Visible || got.Text == "" || got.Text != got.Want || got.Line != "Caller verified \u00b7 "+got.Want {
		t.Fatalf("title line %q, time %q (visible %v): want \"Caller verified \u00b7 %s\"", got.Line, got.Text, got.Visible, got.Want)
	}
	// The call ends: the card keeps its time.
	p.Eval(`document.getElementById('w').setAttribute('call-in-progress', 'false')`, nil)
	p.WaitText(sel("main"), "^Call ended$", 2*time.Second)
	first := got
	read()
	if got != first {
		t.Fatalf("after the call ended: %+v, want %+v", got, first)
	}
	p.Screenshot("widget-success-when", "voicegate-agent#w")
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

// TestWidgetEndedTodo: a failure shown while the call is live asks the
// agent to try again; when the call ends, the card is redrawn and said
// again without asking for the button the widget no longer offers.
func TestWidgetEndedTodo(t *testing.T) {
	b := browsertest.Start(t)
	_, page := registeredOnPage(t, "voices/kal_3.wav")
	p := b.NewPage(320, 900)
	p.Goto(page)
	sel := func(id string) string { return "voicegate-agent#w >> #" + id }
	p.WaitText(sel("main"), "^Authenticate User$", 10*time.Second)
	p.Click(sel("main"))
	p.WaitText(sel("otitle"), "^Not verified$", 20*time.Second)
	p.WaitText(sel("otodo"), "^Re-authenticate with the caller", time.Second)
	if p.Visible(sel("owhen")) {
		t.Error("a failure shows a time")
	}
	p.Eval(`document.getElementById('w').setAttribute('call-in-progress', 'false')`, nil)
	p.WaitText(sel("main"), "^Call ended$", 2*time.Second)
	p.WaitText(sel("otodo"), `^The caller was not verified\.$`, time.Second)
	p.WaitText(sel("alert"), `^Not verified\. .*The caller was not verified\.`, 2*time.Second)
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

package agent

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/browsertest"
)

// TestWidgetStartWhileDraining: a start that reaches a server that is
// shutting down is refused 503 unavailable: the server said it started
// nothing. The widget says the service is restarting, sends no stop (the
// answer was not lost) and offers Register again.
func TestWidgetStartWhileDraining(t *testing.T) {
	b := browsertest.Start(t)
	const callID, callerID = "CA00000000000000000000000000000013", "+34911234568"
	e := newEnv(t, func(o *Options, src *fakeSource) { o.Source = infoSource{src} })
	e.src.set(callID, fakeCall{clips: []string{"voices/slt_1.wav"}, hold: true, ani: callerID, live: true})
	var stops, starts atomic.Int32
	site := newSite(t, e, startingPage, map[string]http.HandlerFunc{
		"/agent/stop":     func(w http.ResponseWriter, r *http.Request) { stops.Add(1); e.srv.ServeHTTP(w, r) },
		"/agent/register": func(w http.ResponseWriter, r *http.Request) { starts.Add(1); e.srv.ServeHTTP(w, r) },
	})

	p := b.NewPage(320, 1200)
	p.Goto(site.URL + "/page")
	sel := func(id string) string { return "voicegate-agent#starting >> #" + id }
	p.WaitText(sel("main"), "^Register User$", 10*time.Second)
	// Drain with nothing running: the server refuses new work until the
	// deadline, far away.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go e.srv.Drain(ctx)
	for !e.srv.Draining() {
		time.Sleep(time.Millisecond)
	}
	p.Click(sel("main"))
	p.WaitText(sel("otitle"), "^The voice service is restarting$", 10*time.Second)
	p.WaitText(sel("otodo"), `^Try again in a moment\.$`, time.Second)
	if starts.Load() != 1 {
		t.Fatalf("%d starts reached the server, want 1", starts.Load())
	}
	time.Sleep(300 * time.Millisecond)
	if n := stops.Load(); n != 0 {
		t.Errorf("the widget sent %d stops after a start the server refused", n)
	}
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

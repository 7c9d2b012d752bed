package agent

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/browsertest"
)

// TestWidgetFenceStopRetriesTooMany: a register's answer is lost (a proxy
// answers 504 and sends the request on only later) and the widget's
// fence stop is answered 429 too_many_requests with Retry-After: 1. The
// widget treats it as transient: it waits the Retry-After and stops
// again, the fence holds, and it says nothing was registered; the start,
// when it reaches the server, is refused 409 fenced and stores nothing.
func TestWidgetFenceStopRetriesTooMany(t *testing.T) {
	b := browsertest.Start(t)
	const callID, callerID = "CA00000000000000000000000000000013", "+34911234568"
	e := newEnv(t, func(o *Options, src *fakeSource) { o.Source = infoSource{src} })
	e.src.set(callID, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav", "voices/slt_3.wav"}, ani: callerID, live: true})
	held := make(chan *http.Request, 1)
	var mu sync.Mutex
	var stopTimes []time.Time
	site := newSite(t, e, startingPage, map[string]http.HandlerFunc{
		"/agent/register": func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			late := r.Clone(context.Background())
			late.Body = io.NopCloser(bytes.NewReader(body))
			held <- late
			http.Error(w, "Gateway Timeout", http.StatusGatewayTimeout)
		},
		"/agent/stop": func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			stopTimes = append(stopTimes, time.Now())
			first := len(stopTimes) == 1
			mu.Unlock()
			if first {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				io.WriteString(w, `{"code":"too_many_requests","error":"too many request_ids on this call; nothing was started or stopped: retry later"}`+"\n")
				return
			}
			e.srv.ServeHTTP(w, r)
		},
	})

	p := b.NewPage(320, 1200)
	p.Goto(site.URL + "/page")
	sel := func(id string) string { return "voicegate-agent#starting >> #" + id }
	p.WaitText(sel("main"), "^Register User$", 10*time.Second)
	p.Click(sel("main"))
	late := <-held
	p.WaitText(sel("otitle"), "^Registration stopped: the voice service.s answer was lost$", 10*time.Second)
	p.WaitText(sel("otodo"), `^Nothing was registered\. Try again\.$`, time.Second)
	mu.Lock()
	times := append([]time.Time(nil), stopTimes...)
	mu.Unlock()
	if len(times) < 2 {
		t.Fatalf("%d stops sent, want the 429 one retried", len(times))
	}
	if gap := times[1].Sub(times[0]); gap < 900*time.Millisecond {
		t.Errorf("the stop was retried %v after its 429, want the Retry-After (1 s)", gap)
	}
	fencedLate(t, e, late, callerID)
	p.Screenshot("fence-stop-429", "voicegate-agent#starting")
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

// TestWidgetStartTooMany: a start answered 429 too_many_requests with
// Retry-After: 7 is shown as such, with the wait, not as an internal
// error.
func TestWidgetStartTooMany(t *testing.T) {
	b := browsertest.Start(t)
	const callID, callerID = "CA00000000000000000000000000000013", "+34911234568"
	e := newEnv(t, func(o *Options, src *fakeSource) { o.Source = infoSource{src} })
	e.src.set(callID, fakeCall{clips: []string{"voices/slt_1.wav"}, ani: callerID, live: true})
	site := newSite(t, e, startingPage, map[string]http.HandlerFunc{
		"/agent/register": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"code":"too_many_requests","error":"too many request_ids on this call; nothing was started or stopped: retry later"}`+"\n")
		},
	})

	p := b.NewPage(320, 1200)
	p.Goto(site.URL + "/page")
	sel := func(id string) string { return "voicegate-agent#starting >> #" + id }
	p.WaitText(sel("main"), "^Register User$", 10*time.Second)
	p.Click(sel("main"))
	p.WaitText(sel("otitle"), "^Too many requests on this call$", 10*time.Second)
	p.WaitText(sel("otodo"), "^Try again in 7\u00a0s\\.$", time.Second)
	p.Screenshot("start-429", "voicegate-agent#starting")
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

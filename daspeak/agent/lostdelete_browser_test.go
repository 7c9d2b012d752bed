package agent

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/browsertest"
)

// TestWidgetLostRegisterDeletedMeanwhile: a register whose answer was
// lost but that ran to success is said as such ("Voice registered: the
// voice service's answer was lost"), but the caller's state is the one
// the status read after it says: a delete from elsewhere between the
// stop's answer and that read leaves the caller not registered, not
// "registered" from the stop's answer.
func TestWidgetLostRegisterDeletedMeanwhile(t *testing.T) {
	b := browsertest.Start(t)
	e := newEnv(t, func(o *Options, src *fakeSource) { o.Source = infoSource{src} })
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}, ani: callerA, live: true})
	ran := make(chan struct{}) // the register has run to its end
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/page":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, deletePage)
			return
		case "/agent/register":
			// It runs to success; its answer is lost.
			rec := httptest.NewRecorder()
			e.srv.ServeHTTP(rec, r)
			var ans struct {
				EventsURL string `json:"events_url"`
			}
			if json.Unmarshal(rec.Body.Bytes(), &ans) != nil || ans.EventsURL == "" {
				t.Errorf("register answered %d %s", rec.Code, rec.Body.String())
			} else if _, msgs := e.events(ans.EventsURL, ""); len(msgs) == 0 || msgs[len(msgs)-1].Event != "result-success" {
				t.Errorf("the register did not succeed: %v", msgs)
			}
			close(ran)
			http.Error(w, "Gateway Timeout", http.StatusGatewayTimeout)
			return
		case "/agent/stop":
			// The stop answers the register's success; another desk
			// deletes the caller before the widget reads the status. (A
			// widget that gave up waiting for the register's answer
			// sends its stop early: it waits for the register's end.)
			select {
			case <-ran:
			case <-time.After(20 * time.Second):
				t.Error("the register did not end")
			}
			rec := httptest.NewRecorder()
			e.srv.ServeHTTP(rec, r)
			if code, m := e.post("/delete", map[string]any{"call_id": callA, "caller_id": callerA}); code != 200 || m["deleted"] != true {
				t.Errorf("delete: %d %v", code, m)
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		e.srv.ServeHTTP(w, r)
	}))
	defer site.Close()
	p := b.NewPage(320, 1000)
	p.Goto(site.URL + "/page")
	sel := func(id string) string { return "voicegate-agent#w >> #" + id }
	p.WaitText(sel("main"), "^Register User$", 10*time.Second)
	p.Click(sel("main"))
	p.WaitText(sel("otitle"), `^Voice registered: the voice service.s answer was lost$`, 15*time.Second)
	p.WaitText(sel("state"), "^Not registered$", time.Second)
	p.WaitText(sel("main"), "^Register User$", time.Second)
	p.Screenshot("widget-lost-register-deleted", "voicegate-agent#w")
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

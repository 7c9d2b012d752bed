package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/internal/browsertest"
)

// TestWidgetStartAnswerCut: a register's start reaches the server (the
// operation starts) and its 202 comes back with the body cut short, so
// the widget cannot read the operation id. The widget treats it as a lost
// answer: it stops the start by its call and request id, and says the
// registration was stopped with nothing registered only because the
// server confirms it (the operation ended cancelled, the caller is not
// registered).
func TestWidgetStartAnswerCut(t *testing.T) {
	b := browsertest.Start(t)
	const callID, callerID = "CA00000000000000000000000000000013", "+34911234568"
	e := newEnv(t, func(o *Options, src *fakeSource) { o.Source = infoSource{src} })
	e.src.set(callID, fakeCall{clips: []string{"voices/slt_1.wav"}, hold: true, ani: callerID, live: true})
	started := make(chan string, 1)
	stops := make(chan map[string]any, 64)
	site := newSite(t, e, startingPage, map[string]http.HandlerFunc{
		"/agent/register": func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			e.srv.ServeHTTP(rec, r)
			var ans struct {
				OperationID string `json:"operation_id"`
			}
			json.Unmarshal(rec.Body.Bytes(), &ans)
			started <- ans.OperationID
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes()[:rec.Body.Len()/2]) // cut short
		},
		"/agent/stop": func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			var m map[string]any
			json.Unmarshal(body, &m)
			select {
			case stops <- m:
			default:
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			e.srv.ServeHTTP(w, r)
		},
	})

	p := b.NewPage(320, 1200)
	p.Goto(site.URL + "/page")
	sel := func(id string) string { return "voicegate-agent#starting >> #" + id }
	p.WaitText(sel("main"), "^Register User$", 10*time.Second)
	p.Click(sel("main"))
	id := <-started
	if id == "" {
		t.Fatal("the register did not start")
	}
	p.WaitText(sel("otitle"), "^Registration stopped: the voice service.s answer was lost$", 10*time.Second)
	p.WaitText(sel("otodo"), `^Nothing was registered\. Try again\.$`, time.Second)
	p.WaitText(sel("main"), "^Register User$", 5*time.Second)
	endedCancelled(t, e, id, callerID)
	select {
	case m := <-stops:
		if m["call_id"] != callID || !validRequestID(m["request_id"]) {
			t.Errorf("stop sent %v: want one naming the call and a request id", m)
		}
	default:
		t.Error("no stop was sent")
	}
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

func validRequestID(v any) bool {
	s, _ := v.(string)
	return len(s) == 36 && strings.Count(s, "-") == 4
}

// fencedLate sends late, a start that a proxy held back while the widget
// fenced it out, on to e's server: it must be refused 409 fenced, and
// callerID must have no credential.
func fencedLate(t *testing.T, e *env, late *http.Request, callerID string) {
	t.Helper()
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, late)
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), `"code":"`+CodeFenced+`"`) {
		t.Fatalf("the fenced start answered %d %s, want 409 %s", rec.Code, rec.Body, CodeFenced)
	}
	if _, err := e.mem.Get(context.Background(), callerID); !errors.Is(err, credstore.ErrNotFound) {
		t.Errorf("credential of %s: err %v, want not found", callerID, err)
	}
}

// TestWidgetStartFencedBrowser: a register's answer is lost before the
// request reached the server (a proxy answers 504 and sends the request
// on only later). The widget's stop by call and request id comes first
// and fences the start out: the widget says nothing was registered, and
// the start, when it reaches the server, is refused 409 fenced and stores
// nothing.
func TestWidgetStartFencedBrowser(t *testing.T) {
	b := browsertest.Start(t)
	const callID, callerID = "CA00000000000000000000000000000013", "+34911234568"
	e := newEnv(t, func(o *Options, src *fakeSource) { o.Source = infoSource{src} })
	e.src.set(callID, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav", "voices/slt_3.wav"}, ani: callerID, live: true})
	held := make(chan *http.Request, 1)
	site := newSite(t, e, startingPage, map[string]http.HandlerFunc{
		"/agent/register": func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			late := r.Clone(context.Background())
			late.Body = io.NopCloser(bytes.NewReader(body))
			held <- late
			http.Error(w, "Gateway Timeout", http.StatusGatewayTimeout)
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
	fencedLate(t, e, late, callerID)
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

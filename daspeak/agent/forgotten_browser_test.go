package agent

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/browsertest"
)

// TestWidgetLostStartForgottenCall: a register's answer is lost and the
// call ends, forgotten by the Source as a Genesys call is with its
// AudioHook session, before the widget's stop by call and request id
// comes. The widget says the truth of each answer, and offers nothing it
// cannot do once the call has ended:
//   - the start ran to its success: the stop is answered from its claim
//     (result-success), and the widget says the voice was registered;
//   - the start ran and ended without success when the call ended (too
//     little speech): the stop answers that result, and as the status of
//     a forgotten call cannot say whether anything was saved, the widget
//     says it is not confirmed;
//   - the start never reached the server: the stop answers no_call
//     (nothing claimed it), the widget says it is not confirmed, why, and
//     what to do instead of pressing a button it no longer offers.
func TestWidgetLostStartForgottenCall(t *testing.T) {
	b := browsertest.Start(t)
	for _, c := range []struct {
		name    string
		reaches bool // the start reaches the server (and runs to its end)
		hold    bool // the call's audio holds until the hang-up (no result before)
		checks  [][2]string
	}{
		{"ran", true, false, [][2]string{
			{"otitle", `^Voice registered: the voice service.s answer was lost$`},
			{"ocause", `^The widget did not get the answer to Register; the service says the registration finished and stored the caller.s voice\.$`},
			{"live", `^Voice registered: the voice service.s answer was lost\. The widget did not get`},
		}},
		{"ended without success", true, true, [][2]string{
			{"otitle", `^Registration not confirmed$`},
			{"ocause", `^The answer to Register was lost\. The registration ended without success, but it may have saved the voice before it ended, and the widget could not check\.$`},
			{"otodo", `^The call has ended, so the widget cannot check it now\. Before registering this caller again on a later call, check whether they are registered\.$`},
		}},
		{"never reached", false, false, [][2]string{
			{"otitle", `^Registration not confirmed$`},
			{"otodo", `^The call has ended, so the widget cannot check it now\. Before registering this caller again on a later call, check whether they are registered\.$`},
			{"odetail", `^The voice service says your part in this call has ended\.$`},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options, src *fakeSource) { o.Source = infoSource{src} })
			clips := []string{"voices/slt_1.wav", "voices/slt_2.wav"}
			if c.hold {
				clips = nil
			}
			e.src.set(callA, fakeCall{clips: clips, hold: c.hold, ani: callerA, live: true})
			stops := make(chan string, 8)
			site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/page":
					w.Header().Set("Content-Type", "text/html; charset=utf-8")
					io.WriteString(w, deletePage)
					return
				case "/agent/register":
					if c.reaches {
						rec := httptest.NewRecorder()
						e.srv.ServeHTTP(rec, r)
						var ans map[string]any
						json.Unmarshal(rec.Body.Bytes(), &ans)
						if c.hold {
							e.waitRunning(callA)
							e.src.hangUp(callA)
						}
						if u, _ := ans["events_url"].(string); u != "" {
							e.events(u, "") // to its end
						}
					}
					e.src.hangUp(callA)
					http.Error(w, "Gateway Timeout", http.StatusGatewayTimeout)
					return
				case "/agent/stop":
					body, _ := io.ReadAll(r.Body)
					r.Body = io.NopCloser(bytes.NewReader(body))
					rec := httptest.NewRecorder()
					e.srv.ServeHTTP(rec, r)
					stops <- rec.Body.String()
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
			for i, ch := range c.checks {
				wait := time.Second
				if i == 0 {
					wait = 15 * time.Second
				}
				p.WaitText(sel(ch[0]), ch[1], wait)
			}
			p.WaitText(sel("main"), "^Call ended$", 2*time.Second)
			var disabled bool
			p.Eval(`document.getElementById('w').shadowRoot.getElementById('main').disabled`, &disabled)
			if !disabled {
				t.Error("the main button is enabled after the call ended")
			}
			if todo := p.Text(sel("otodo")); strings.Contains(todo, "Press") || strings.Contains(todo, "Try again") {
				t.Errorf("after the call ended the card still asks for a button: %q", todo)
			}
			select {
			case s := <-stops:
				t.Logf("stop answered %s", strings.TrimSpace(s))
			default:
				t.Error("no stop was sent")
			}
			p.Screenshot("widget-lost-forgotten-"+strings.ReplaceAll(c.name, " ", "-"), "voicegate-agent#w")
			if errs := b.PageErrors(); len(errs) > 0 {
				t.Errorf("page errors: %q", errs)
			}
		})
	}
}

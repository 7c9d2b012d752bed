package agent

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/browsertest"
)

// retimeWriter rewrites every event's "time" to at: an event stream as a
// widget reads it long after the result (after a reconnect).
type retimeWriter struct {
	http.ResponseWriter
	at string
}

var eventTimeRE = regexp.MustCompile(`"time":"[^"]*"`)

func (w retimeWriter) Write(b []byte) (int, error) {
	if _, err := w.ResponseWriter.Write(eventTimeRE.ReplaceAll(b, []byte(`"time":"`+w.at+`"`))); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (w retimeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestWidgetSuccessTimeIsServers: the time a success card shows is the
// one its event says the result happened (the server's), not the time the
// widget read it.
func TestWidgetSuccessTimeIsServers(t *testing.T) {
	b := browsertest.Start(t)
	e, _ := registeredOnPage(t, "voices/slt_3.wav")
	// The server's clock 3 h ahead of the browser's: after the
	// registration (its registered_at), as a result's time always is.
	at := time.Now().UTC().Add(3 * time.Hour).Truncate(time.Second).Format(time.RFC3339)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/page":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, deletePage)
		case strings.HasSuffix(r.URL.Path, "/events"):
			e.srv.ServeHTTP(retimeWriter{w, at}, r)
		default:
			e.srv.ServeHTTP(w, r)
		}
	}))
	defer site.Close()
	p := b.NewPage(320, 900)
	p.Goto(site.URL + "/page")
	sel := func(id string) string { return "voicegate-agent#w >> #" + id }
	p.WaitText(sel("main"), "^Authenticate User$", 10*time.Second)
	p.Click(sel("main"))
	p.WaitText(sel("otitle"), "^Caller verified$", 20*time.Second)
	var got struct{ DateTime, Text, Want string }
	p.Eval(`(() => {
  const t = document.getElementById('w').shadowRoot.getElementById('otime');
  return {DateTime: t.getAttribute('datetime') || '', Text: t.textContent,
    Want: new Date('`+at+`').toLocaleTimeString([], {hour: 'numeric', minute: '2-digit'})};
})()`, &got)
	want, _ := time.Parse(time.RFC3339, at)
	if d, err := time.Parse(time.RFC3339Nano, got.DateTime); err != nil || !d.Equal(want) || got.Text != got.Want {
		t.Fatalf("<time datetime=%q>%s</time>: want the event's time %s (%s)", got.DateTime, got.Text, at, got.Want)
	}
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

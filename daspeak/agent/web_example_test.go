package agent_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/voicegate/voicegate/daspeak/agent"
)

// A page embeds the widget with a script tag pointing at the server that
// runs the agent API. agent.Server mounts WidgetHandler itself at
// {base}/voicegate-agent.js; a server that serves the page elsewhere can
// mount it too.
func ExampleWidgetHandler() {
	mux := http.NewServeMux()
	mux.Handle("GET /agent"+agent.WidgetPath, agent.WidgetHandler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html>
<script src="/agent/voicegate-agent.js"></script>
<voicegate-agent call-sid="CA0123456789abcdef0123456789abcdef" caller-id="+34600111222"
  security-token="…" call-in-progress="true"></voicegate-agent>`)
	})

	r := httptest.NewRequest("GET", "/agent/voicegate-agent.js", nil)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("Content-Type"))
	// Output: 200 text/javascript; charset=utf-8
}

package agent

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"time"
)

// WidgetPath is the path of the widget script under the API's base path:
// a server with base "/agent" serves it at "/agent/voicegate-agent.js".
const WidgetPath = "/voicegate-agent.js"

//go:embed web/voicegate-agent.js
var widgetJS []byte

// widgetETag is the strong entity tag of the embedded script: the first
// 16 bytes of its SHA-256, hex, quoted.
var widgetETag = func() string {
	sum := sha256.Sum256(widgetJS)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}()

// WidgetJS returns a copy of the widget script: the custom element
// <voicegate-agent>, plain JavaScript with no build step and no external
// resources. The attributes, properties and HTTP API it uses are described
// at the top of the file and in the package documentation.
func WidgetJS() []byte { return bytes.Clone(widgetJS) }

// WidgetHandler serves the widget script. Mount it, without
// authentication, at {base}/voicegate-agent.js; a page loads it with
//
//	<script src="/agent/voicegate-agent.js"></script>
//	<voicegate-agent call-sid="CA…" caller-id="+34…" security-token="…"></voicegate-agent>
//
// and the widget then calls the API under the script's directory (unless
// its backend-url attribute or config.backendUrl says otherwise).
//
// GET and HEAD answer 200 with Content-Type text/javascript, a strong ETag
// and Cache-Control no-cache (browsers revalidate: 304 when unchanged);
// If-None-Match and Range are honoured as by [http.ServeContent]. Other
// methods answer 405 with an Allow header. Safe for concurrent use.
func WidgetHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cross-Origin-Resource-Policy", "cross-origin")
		h.Set("ETag", widgetETag)
		http.ServeContent(w, r, "voicegate-agent.js", time.Time{}, bytes.NewReader(widgetJS))
	})
}

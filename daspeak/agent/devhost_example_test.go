package agent_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/voicegate/voicegate/daspeak/agent"
)

// A development server that hands a token to any page that loads it
// listens on loopback (RequireLoopback) and answers only requests
// addressed to a loopback name: a DNS-rebinding page's Host is refused.
func ExampleLoopbackHostOnly() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"token":"dev-token"}`)
	})
	h := agent.LoopbackHostOnly(mux)
	for _, host := range []string{"127.0.0.1:8080", "localhost:8080", "[::1]:8080", "evil.example:8080"} {
		r := httptest.NewRequest("GET", "/state", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(host, w.Code)
	}
	// Output:
	// 127.0.0.1:8080 200
	// localhost:8080 200
	// [::1]:8080 200
	// evil.example:8080 421
}

package agent

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// newSite serves page at /page and, like a reverse proxy in front of the
// agent server, sends every other request on to e's server, except a
// request whose path is a key of alter: the handler there takes it in
// the proxy's place. It may answer the request itself (the server never
// sees it), count or copy it and send it on with e.srv.ServeHTTP, or send
// it on to a recorder and answer with what it makes of the server's
// answer. The site is closed when the test ends, its connections first:
// an event stream the page still holds (a test that failed while an
// operation ran) ends only when e's server shuts down, in a cleanup that
// runs later, so closing would otherwise wait for it until the test
// binary times out and the failure's message is lost.
func newSite(t *testing.T, e *env, page string, alter map[string]http.HandlerFunc) *httptest.Server {
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/page" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, page)
			return
		}
		if h := alter[r.URL.Path]; h != nil {
			h(w, r)
			return
		}
		e.srv.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		site.CloseClientConnections()
		site.Close()
	})
	return site
}

package agent

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRefusedOrigin: a request a page of another site makes without a
// preflight (POST text/plain with Origin: https://evil.example) is refused
// with 403 origin_not_allowed before authentication, as its preflight
// would be; the allowed origins, the server's own origin and requests
// without Origin reach authentication.
func TestRefusedOrigin(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *fakeSource) { o.AllowedOrigins = []string{"https://flex.twilio.com"} })
	const refused = `{"code":"origin_not_allowed","error":"origin not allowed"}` + "\n"
	own := e.http.URL
	body := `{"call_id":"CA00000000000000000000000000000001","caller_id":"+34911234567"}`
	for _, tc := range []struct {
		name   string
		header map[string]string
		status int
	}{
		{"evil, text/plain", map[string]string{"Origin": "https://evil.example", "Content-Type": "text/plain"}, 403},
		{"evil, with a valid token", map[string]string{"Origin": "https://evil.example", "Content-Type": "application/json", "Authorization": "Bearer " + testToken}, 403},
		{"opaque origin", map[string]string{"Origin": "null", "Content-Type": "text/plain"}, 403},
		{"own host, other port", map[string]string{"Origin": strings.TrimSuffix(own, own[strings.LastIndex(own, ":"):]) + ":1", "Content-Type": "text/plain"}, 403},
		{"cross-site marked same-origin by no browser", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, 403},
		{"flex", map[string]string{"Origin": "https://flex.twilio.com", "Content-Type": "application/json"}, 401},
		{"own origin", map[string]string{"Origin": own, "Content-Type": "application/json"}, 401},
		{"same-origin behind a proxy rewriting Host", map[string]string{"Origin": "https://voice.example.com", "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}, 401},
		{"no Origin", map[string]string{"Content-Type": "application/json"}, 401},
	} {
		req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/agent/register", strings.NewReader(body))
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || tc.status == 403 && string(b) != refused {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, b, tc.status)
		}
		if tc.status == 403 && resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: Access-Control-Allow-Origin %q", tc.name, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
}

// TestRefusedOriginScheme: on a server that terminates TLS, the server's
// host over plain http (Origin: http://voice.example.com, a page a network
// attacker can serve) is another origin and is refused; its https origin
// reaches authentication. Without TLS on the connection (a TLS-terminating
// proxy in front) both schemes are taken as own.
func TestRefusedOriginScheme(t *testing.T) {
	e := newEnv(t, nil)
	const refused = `{"code":"origin_not_allowed","error":"origin not allowed"}` + "\n"
	body := `{"call_id":"CA00000000000000000000000000000001","caller_id":"+34911234567"}`
	for _, tc := range []struct {
		url, origin string
		status      int
	}{
		{"https://voice.example.com/agent/register", "http://voice.example.com", 403},
		{"https://voice.example.com/agent/register", "http://voice.example.com:443", 403},
		{"https://voice.example.com/agent/register", "https://voice.example.com", 401},
		{"https://voice.example.com/agent/register", "https://voice.example.com:443", 401},
		{"http://voice.example.com/agent/register", "https://voice.example.com", 401},
		{"http://voice.example.com/agent/register", "http://voice.example.com", 401},
		{"http://voice.example.com/agent/register", "http://voice.example.com:8080", 403},
	} {
		r := httptest.NewRequest(http.MethodPost, tc.url, strings.NewReader(body))
		r.Header.Set("Origin", tc.origin)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)
		if w.Code != tc.status || tc.status == 403 && w.Body.String() != refused {
			t.Errorf("%s, Origin %s: %d %s, want %d", tc.url, tc.origin, w.Code, w.Body, tc.status)
		}
	}
}

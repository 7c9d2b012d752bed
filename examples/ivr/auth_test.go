package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/fixtures"
)

func TestIsLoopback(t *testing.T) {
	for _, tc := range []struct {
		listen string
		want   bool
	}{
		{"127.0.0.1:8080", true},
		{"127.0.0.2:0", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{"0.0.0.0:8080", false},
		{":8080", false},
		{"[::]:8080", false},
		{"192.168.1.10:8080", false},
		{"example.com:8080", false},
		{"127.0.0.1", false}, // no port: not an address net.Listen takes
	} {
		if got := isLoopback(tc.listen); got != tc.want {
			t.Errorf("isLoopback(%q) = %v", tc.listen, got)
		}
	}
}

func TestCheckExposure(t *testing.T) {
	a, err := newAuthenticator(apiKey, "", "", 0)
	if err != nil || a == nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		listen   string
		auth     *authenticator
		insecure bool
		ok       bool
	}{
		{"0.0.0.0:8080", a, false, true},
		{"127.0.0.1:8080", a, false, true},
		{"0.0.0.0:8080", nil, false, false},
		{"127.0.0.1:8080", nil, false, false},
		{"127.0.0.1:8080", nil, true, true},
		{"0.0.0.0:8080", nil, true, false},
	} {
		err := checkExposure(tc.listen, tc.auth, tc.insecure)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, errExposed)) {
			t.Errorf("%s auth=%v insecure=%v: %v", tc.listen, tc.auth != nil, tc.insecure, err)
		}
	}
}

func TestAuthenticator(t *testing.T) {
	for _, tc := range []struct{ key, user, pass string }{
		{"short", "", ""},
		{"", "u", ""},
		{"", "", basicPass},
		{"", "u", "short"},
	} {
		if _, err := newAuthenticator(tc.key, tc.user, tc.pass, 0); err == nil {
			t.Errorf("%+v accepted", tc)
		}
	}
	if a, err := newAuthenticator("", "", "", 0); a != nil || err != nil {
		t.Fatalf("no credentials: %v %v", a, err)
	}
	keyOnly, _ := newAuthenticator(apiKey, "", "", 0)
	basicOnly, _ := newAuthenticator("", basicUser, basicPass, 0)
	both, _ := newAuthenticator(apiKey, basicUser, basicPass, 0)
	withKey := func(k string) func(*http.Request) { return func(r *http.Request) { r.Header.Set(apiKeyHeader, k) } }
	withBasic := func(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }
	for _, tc := range []struct {
		name string
		a    *authenticator
		set  func(*http.Request)
		want bool
	}{
		{"key ok", keyOnly, withKey(apiKey), true},
		{"key wrong", keyOnly, withKey(apiKey + "x"), false},
		{"key empty", keyOnly, withKey(""), false},
		{"basic to key-only", keyOnly, withBasic(basicUser, apiKey), false},
		{"basic ok", basicOnly, withBasic(basicUser, basicPass), true},
		{"basic wrong pass", basicOnly, withBasic(basicUser, basicPass[:len(basicPass)-1]), false},
		{"basic empty", basicOnly, withBasic("", ""), false},
		{"key to basic-only", basicOnly, withKey(apiKey), false},
		{"both: key", both, withKey(apiKey), true},
		{"both: basic", both, withBasic(basicUser, basicPass), true},
		{"both: user swapped", both, withBasic(basicPass, basicUser), false},
		{"nothing", both, func(*http.Request) {}, false},
		// Every credential presented must be valid.
		{"both: key and basic ok", both, func(r *http.Request) { withKey(apiKey)(r); withBasic(basicUser, basicPass)(r) }, true},
		{"both: key ok, basic wrong", both, func(r *http.Request) { withKey(apiKey)(r); withBasic(basicUser, "wrong-password-of-16")(r) }, false},
		{"both: basic ok, key wrong", both, func(r *http.Request) { withKey(apiKey + "x")(r); withBasic(basicUser, basicPass)(r) }, false},
		{"both: key ok, Bearer", both, func(r *http.Request) { withKey(apiKey)(r); r.Header.Set("Authorization", "Bearer x") }, false},
		{"key-only: key ok, basic sent", keyOnly, func(r *http.Request) { withKey(apiKey)(r); withBasic(basicUser, basicPass)(r) }, false},
		{"key twice", keyOnly, func(r *http.Request) { r.Header.Add(apiKeyHeader, apiKey); r.Header.Add(apiKeyHeader, "other") }, false},
	} {
		r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
		tc.set(r)
		if got := tc.a.ok(r); got != tc.want {
			t.Errorf("%s: %v", tc.name, got)
		}
	}
	// A 401 offers only the forms the server accepts: WWW-Authenticate
	// (RFC 7617) when Basic is one of them.
	for _, tc := range []struct {
		name      string
		a         *authenticator
		challenge string
		body      string
	}{
		{"key only", keyOnly, "", `{"code":"unauthenticated","error":"authentication required: the X-API-Key header, and no other credential"}` + "\n"},
		{"basic only", basicOnly, `Basic realm="voicegate-ivr", charset="UTF-8"`, `{"code":"unauthenticated","error":"authentication required: HTTP Basic, and no other credential"}` + "\n"},
		{"both", both, `Basic realm="voicegate-ivr", charset="UTF-8"`, `{"code":"unauthenticated","error":"authentication required: HTTP Basic or the X-API-Key header, and no invalid credential"}` + "\n"},
	} {
		a := *tc.a
		a.failDelay = 0
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/callers/x", nil)
		r.Header.Set(apiKeyHeader, apiKey)
		r.SetBasicAuth(basicUser, "wrong-password-0123")
		a.wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Errorf("%s: answered", tc.name) })).ServeHTTP(w, r)
		if w.Code != 401 || w.Header().Get("WWW-Authenticate") != tc.challenge || w.Body.String() != tc.body {
			t.Errorf("%s: %d WWW-Authenticate %q %q, want 401 %q %q", tc.name, w.Code, w.Header().Get("WWW-Authenticate"), w.Body, tc.challenge, tc.body)
		}
	}
}

// TestInsecureLoopbackLocalOnly: without credentials (-insecure-loopback)
// the IVR endpoints answer only requests made on this machine: not one
// addressed to another host (a web page using DNS rebinding), nor one a
// proxy forwarded (a TLS proxy in front of a loopback listener); the
// Twilio and probe endpoints keep their own rules.
func TestInsecureLoopbackLocalOnly(t *testing.T) {
	e := newEnv(t, func(c *config) { c.APIKey, c.BasicUser, c.BasicPassword = "", "", "" })
	const path = "/callers/%2B34600000950"
	for _, tc := range []struct {
		name   string
		set    func(*http.Request)
		status int
	}{
		{"local", func(r *http.Request) {}, http.StatusOK},
		{"localhost name", func(r *http.Request) { r.Host = "localhost:8080" }, http.StatusOK},
		{"rebound domain", func(r *http.Request) { r.Host = "evil.example.com" }, http.StatusMisdirectedRequest},
		{"X-Forwarded-For", func(r *http.Request) { r.Header.Set("X-Forwarded-For", "203.0.113.9") }, http.StatusMisdirectedRequest},
		{"Forwarded", func(r *http.Request) { r.Header.Set("Forwarded", "for=203.0.113.9") }, http.StatusMisdirectedRequest},
		{"X-Real-IP", func(r *http.Request) { r.Header.Set("X-Real-IP", "203.0.113.9") }, http.StatusMisdirectedRequest},
	} {
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			req, _ := http.NewRequest(method, e.http.URL+path, nil)
			tc.set(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := tc.status
			if method == http.MethodDelete && want == http.StatusOK {
				want = http.StatusNoContent
			}
			if resp.StatusCode != want {
				t.Errorf("%s %s: %d %s, want %d", tc.name, method, resp.StatusCode, b, want)
			}
			if want == http.StatusMisdirectedRequest && !strings.Contains(string(b), "IVR_API_KEY") {
				t.Errorf("%s: the refusal does not say how to fix it: %s", tc.name, b)
			}
		}
	}
}

// TestInsecureLoopbackCrossSite: without credentials (-insecure-loopback)
// a request a web page of another origin makes (CSRF: a no-cors POST of
// a WAV from another local port, or an Origin of another site) is
// refused with 403 and a JSON error, and nothing is registered; a
// request from the server's own origin, or from a tool that sends no
// Origin, is answered.
func TestInsecureLoopbackCrossSite(t *testing.T) {
	e := newEnv(t, func(c *config) { c.APIKey, c.BasicUser, c.BasicPassword = "", "", "" })
	own := e.http.URL // http://127.0.0.1:PORT
	body := wav(t, fixtures.Utterances("rms")[0])
	for i, tc := range []struct {
		name    string
		headers map[string]string
		status  int
	}{
		{"other local origin", map[string]string{"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"other site", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"opaque origin", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"cross-site fetch metadata only", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"same-site fetch metadata only", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"own origin", map[string]string{"Origin": own, "Sec-Fetch-Site": "same-origin"}, http.StatusOK},
		{"typed in the address bar", map[string]string{"Sec-Fetch-Site": "none"}, http.StatusOK},
		{"curl", nil, http.StatusOK},
	} {
		caller := "+3460000096" + strconv.Itoa(i)
		req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/register?caller="+url.QueryEscape(caller), bytes.NewReader(body))
		req.Header.Set("Content-Type", "text/plain") // what a no-cors fetch may send
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var answer map[string]string
		json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d %v, want %d", tc.name, resp.StatusCode, answer, tc.status)
		}
		_, err = e.store.Get(context.Background(), caller)
		if tc.status == http.StatusForbidden {
			if !strings.Contains(answer["error"], "cross-site") || answer["code"] != "origin_not_allowed" {
				t.Errorf("%s: the refusal does not say why: %v", tc.name, answer)
			}
			if err == nil {
				t.Errorf("%s: a cross-site request registered the caller", tc.name)
			}
		} else if err != nil {
			t.Errorf("%s: not registered: %v", tc.name, err)
		}
	}
}

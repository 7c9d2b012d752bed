package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestFakeHangUpErrors: the fake's POST /fake/hangup refuses what it cannot
// act on with the API's JSON errors, not text/plain.
func TestFakeHangUpErrors(t *testing.T) {
	f := &fakeTwilio{tasks: map[string]string{}, hangups: map[string]chan struct{}{}}
	for _, tc := range []struct {
		name, ct, body string
		origin, site   string
		status         int
		want           string
	}{
		{"foreign origin", "application/json", `{"call_sid":"CA1"}`, "https://evil.example", "", 403, `{"code":"origin_not_allowed","error":"the fake's hang-up answers pages of its own origin only"}` + "\n"},
		{"own origin over https", "application/json", `{"call_sid":"CA1"}`, "https://127.0.0.1:8080", "", 403, `{"code":"origin_not_allowed","error":"the fake's hang-up answers pages of its own origin only"}` + "\n"},
		{"cross-site without origin", "application/json", `{"call_sid":"CA1"}`, "", "cross-site", 403, `{"code":"origin_not_allowed","error":"the fake's hang-up answers pages of its own origin only"}` + "\n"},
		{"own origin", "application/json", `{"call_sid":"CA00000000000000000000000000000000"}`, "http://127.0.0.1:8080", "same-origin", 404, `{"code":"not_found","error":"no such live fake call"}` + "\n"},
		{"form", "application/x-www-form-urlencoded", "call_sid=CA1", "", "", 415, `{"code":"unsupported_media_type","error":"send the body as Content-Type: application/json"}` + "\n"},
		{"text/plain", "text/plain", `{"call_sid":"CA1"}`, "", "", 415, `{"code":"unsupported_media_type","error":"send the body as Content-Type: application/json"}` + "\n"},
		{"not JSON", "application/json", `{"call_sid":`, "", "", 400, `{"code":"bad_request","error":"the body is not JSON {\"call_sid\": \"CA…\"}"}` + "\n"},
		{"no such call", "application/json", `{"call_sid":"CA00000000000000000000000000000000"}`, "", "", 404, `{"code":"not_found","error":"no such live fake call"}` + "\n"},
	} {
		r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8080/fake/hangup", strings.NewReader(tc.body))
		r.Header.Set("Content-Type", tc.ct)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if tc.site != "" {
			r.Header.Set("Sec-Fetch-Site", tc.site)
		}
		w := httptest.NewRecorder()
		f.hangUp(w, r)
		if w.Code != tc.status || w.Body.String() != tc.want || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s %q, want %d application/json %q", tc.name, w.Code, w.Header().Get("Content-Type"), w.Body, tc.status, tc.want)
		}
	}
}

// TestFakeMethodNotAllowed: a method the fake's paths do not take is 405
// method_not_allowed with Allow and a JSON body, as on the API's paths,
// not 404 from the API behind them.
func TestFakeMethodNotAllowed(t *testing.T) {
	f := &fakeTwilio{tasks: map[string]string{}, hangups: map[string]chan struct{}{}}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	h := f.handler(api)
	for _, tc := range []struct {
		method, path, allow string
	}{
		{http.MethodPut, "/", "GET, HEAD"},
		{http.MethodDelete, "/", "GET, HEAD"},
		{http.MethodPost, "/", "GET, HEAD"},
		{http.MethodGet, "/fake/hangup", "POST"},
		{http.MethodDelete, "/fake/hangup", "POST"},
		{http.MethodPut, "/favicon.ico", "GET, HEAD"},
	} {
		r := httptest.NewRequest(tc.method, "http://127.0.0.1"+tc.path, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		want := `{"code":"method_not_allowed","error":"` + tc.method + ` is not allowed on ` + tc.path + `; allowed: ` + tc.allow + `"}` + "\n"
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != tc.allow || w.Header().Get("Content-Type") != "application/json" || w.Body.String() != want {
			t.Errorf("%s %s: %d Allow %q %s %q, want 405 Allow %q application/json %q", tc.method, tc.path, w.Code, w.Header().Get("Allow"), w.Header().Get("Content-Type"), w.Body, tc.allow, want)
		}
	}
}

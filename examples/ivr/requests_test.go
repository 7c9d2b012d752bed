package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/fixtures"
)

// rawAnswer sends an IVR request and returns its status, Content-Type
// and the error message of its JSON body ("" when none).
func (e *env) rawAnswer(method, path string, body io.Reader) (int, string, string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.http.URL+path, body)
	req.Header.Set("X-API-Key", apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b struct{ Error string }
	json.NewDecoder(resp.Body).Decode(&b)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b.Error
}

// TestRequestRefusals: what each refused request is told.
func TestRequestRefusals(t *testing.T) {
	e := newEnv(t)
	rec := string(wav(t, fixtures.Utterances("slt")[0]))
	for _, c := range []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		{"caller twice", "POST", "/register?caller=%2B34600000060&caller=%2B34600000061", rec, 400, "caller: given more than once"},
		{"call twice", "POST", "/register?caller=%2B34600000060&call=CA0123456789abcdef0123456789abcdef&call=CA0123456789abcdef0123456789abcdee", "", 400, "call: given more than once"},
		{"channel twice", "POST", "/register?caller=%2B34600000060&channel=1&channel=2", rec, 400, "channel: given more than once"},
		{"empty body", "POST", "/register?caller=%2B34600000060", "", 400, "empty body"},
		{"wrong method", "GET", "/register", "", 405, "method not allowed"},
		{"no such path", "POST", "/nowhere", "", 404, "no such path"},
		{"not canonical", "GET", "/register//x?caller=%2B34600000060", "", 404, "no such path: /register//x is not in canonical form"},
	} {
		code, ctype, msg := e.rawAnswer(c.method, c.path, strings.NewReader(c.body))
		if code != c.code || !strings.HasPrefix(msg, c.msg) || ctype != "application/json" {
			t.Errorf("%s: %d %s %q, want %d application/json %q…", c.name, code, ctype, msg, c.code, c.msg)
		}
	}
}

// TestCutShortUpload: a body that ends before its Content-Length (the
// client stopped sending) is a recording cut short (400), not one too
// large (413).
func TestCutShortUpload(t *testing.T) {
	e := newEnv(t)
	c, err := net.Dial("tcp", strings.TrimPrefix(e.http.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "POST /register?caller=%%2B34600000062 HTTP/1.1\r\nHost: ivr\r\nX-API-Key: %s\r\nContent-Type: audio/wav\r\nContent-Length: 100000\r\n\r\nRIFF\x00\x00", apiKey)
	c.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b struct{ Error string }
	json.NewDecoder(resp.Body).Decode(&b)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(b.Error, "cut short") {
		t.Errorf("cut-short upload: %d %q, want 400 cut short", resp.StatusCode, b.Error)
	}
}

// TestCallWithoutAuthToken: without TWILIO_AUTH_TOKEN no Twilio stream
// can be accepted, so a session bound to a call is refused at creation.
func TestCallWithoutAuthToken(t *testing.T) {
	e := newEnv(t, func(c *config) { c.AuthToken = "" })
	code, _, msg := e.rawAnswer("POST", "/register?caller=%2B34600000063&call=CA0123456789abcdef0123456789abcdef", nil)
	if code != http.StatusServiceUnavailable || !strings.Contains(msg, "TWILIO_AUTH_TOKEN") {
		t.Errorf("call=CA… without TWILIO_AUTH_TOKEN: %d %q, want 503 naming TWILIO_AUTH_TOKEN", code, msg)
	}
}

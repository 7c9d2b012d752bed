package wsconn

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAcceptKey(t *testing.T) {
	// RFC 6455 section 1.3.
	if got, want := acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; got != want {
		t.Fatalf("accept key %q, want %q", got, want)
	}
}

// TestAcceptRefused checks that bad upgrade requests get the right HTTP
// status and headers without a hijack.
func TestAcceptRefused(t *testing.T) {
	good := func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://example.com/ws", nil)
		r.Header.Set("Upgrade", "websocket")
		r.Header.Set("Connection", "Upgrade")
		r.Header.Set("Sec-WebSocket-Version", "13")
		r.Header.Set("Sec-WebSocket-Key", testKey)
		return r
	}
	tests := []struct {
		name   string
		edit   func(r *http.Request)
		opts   *AcceptOptions
		status int
		header [2]string // a header the response must carry
	}{
		{"POST", func(r *http.Request) { r.Method = http.MethodPost }, nil, 405, [2]string{"Allow", "GET"}},
		{"HTTP/1.0", func(r *http.Request) { r.Proto, r.ProtoMinor = "HTTP/1.0", 0 }, nil, 426, [2]string{"Upgrade", "websocket"}},
		{"no Connection", func(r *http.Request) { r.Header.Del("Connection") }, nil, 426, [2]string{"Connection", "Upgrade"}},
		{"Connection keep-alive only", func(r *http.Request) { r.Header.Set("Connection", "keep-alive") }, nil, 426, [2]string{"Upgrade", "websocket"}},
		{"no Upgrade", func(r *http.Request) { r.Header.Del("Upgrade") }, nil, 426, [2]string{"Upgrade", "websocket"}},
		{"Upgrade h2c", func(r *http.Request) { r.Header.Set("Upgrade", "h2c") }, nil, 426, [2]string{"Upgrade", "websocket"}},
		{"version 8", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Version", "8") }, nil, 426, [2]string{"Sec-WebSocket-Version", "13"}},
		{"no version", func(r *http.Request) { r.Header.Del("Sec-WebSocket-Version") }, nil, 426, [2]string{"Sec-WebSocket-Version", "13"}},
		{"no key", func(r *http.Request) { r.Header.Del("Sec-WebSocket-Key") }, nil, 400, [2]string{}},
		{"two keys", func(r *http.Request) { r.Header.Add("Sec-WebSocket-Key", testKey) }, nil, 400, [2]string{}},
		{"key not base64", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "not base64!") }, nil, 400, [2]string{}},
		{"key of 15 bytes", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA") }, nil, 400, [2]string{}},
		{"foreign origin", func(r *http.Request) { r.Header.Set("Origin", "https://evil.example.net") }, nil, 403, [2]string{}},
		{"origin not a URL", func(r *http.Request) { r.Header.Set("Origin", "::") }, nil, 403, [2]string{}},
		{"origin not in patterns", func(r *http.Request) { r.Header.Set("Origin", "https://evil.example.net") },
			&AcceptOptions{OriginPatterns: []string{"*.example.com"}}, 403, [2]string{}},
		{"good request, no hijacker", func(*http.Request) {}, nil, 501, [2]string{}},
		{"allowed origin, no hijacker", func(r *http.Request) { r.Header.Set("Origin", "https://app.example.com") },
			&AcceptOptions{OriginPatterns: []string{"*.example.com"}}, 501, [2]string{}},
		{"any origin, no hijacker", func(r *http.Request) { r.Header.Set("Origin", "https://evil.example.net") },
			&AcceptOptions{InsecureSkipVerify: true}, 501, [2]string{}},
		{"tokens in lists and any case, no hijacker", func(r *http.Request) {
			r.Header.Set("Connection", "keep-alive, UPGRADE")
			r.Header.Set("Upgrade", "WebSocket")
		}, nil, 501, [2]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good()
			tt.edit(r)
			w := httptest.NewRecorder() // cannot be hijacked
			c, err := Accept(w, r, tt.opts)
			if c != nil {
				t.Fatal("accepted")
			}
			var he *HandshakeError
			if !errors.As(err, &he) {
				t.Fatalf("error %v is not a *HandshakeError", err)
			}
			if he.Status != tt.status || w.Code != tt.status {
				t.Fatalf("status %d (written %d), want %d: %v", he.Status, w.Code, tt.status, err)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" || !strings.HasPrefix(w.Body.String(), `{"code":"`+handshakeCode(tt.status)+`","error":`) {
				t.Errorf("answer %s %q, want a JSON error", ct, w.Body)
			}
			if tt.header[0] != "" && w.Header().Get(tt.header[0]) != tt.header[1] {
				t.Errorf("header %s = %q, want %q", tt.header[0], w.Header().Get(tt.header[0]), tt.header[1])
			}
		})
	}
}

// TestAcceptHandshake checks a real upgrade: the 101 response, subprotocol
// selection, extensions refused, handler headers kept, and that frames the
// client sent together with its request are not lost.
func TestAcceptHandshake(t *testing.T) {
	tests := []struct {
		name    string
		offered string
		server  []string
		want    string
	}{
		{"no subprotocols", "", nil, ""},
		{"server preference wins", "b, a", []string{"a", "b"}, "a"},
		{"case insensitive", "Audio.V2", []string{"audio.v2"}, "Audio.V2"},
		{"none in common", "x", []string{"a"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, &AcceptOptions{Subprotocols: tt.server})
			rc := dialHeaders(t, s, map[string]string{
				"Sec-WebSocket-Protocol":   tt.offered,
				"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
			}, fin(opText, []byte("early")))
			c := s.conn(t)
			if c.Subprotocol() != tt.want || rc.resp.Header.Get("Sec-WebSocket-Protocol") != tt.want {
				t.Errorf("subprotocol %q / header %q, want %q", c.Subprotocol(), rc.resp.Header.Get("Sec-WebSocket-Protocol"), tt.want)
			}
			if got := rc.resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
				t.Errorf("Sec-WebSocket-Accept %q", got)
			}
			if got := rc.resp.Header.Get("Sec-WebSocket-Extensions"); got != "" {
				t.Errorf("extension negotiated: %q", got)
			}
			typ, p, err := c.ReadMessage()
			if err != nil || typ != MessageText || string(p) != "early" {
				t.Fatalf("ReadMessage = %v %q %v, want the pipelined text", typ, p, err)
			}
		})
	}
}

type handshakeClient struct {
	*rawClient
	resp *http.Response
}

func dialHeaders(t *testing.T, s *server, h map[string]string, extra []byte) *handshakeClient {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("GET /ws HTTP/1.1\r\nHost: " + s.addr() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n")
	for k, v := range h {
		if v != "" {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	rc, resp := dialRequest(t, s, append(b.Bytes(), extra...))
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return &handshakeClient{rc, resp}
}

func TestAcceptKeepsHandlerHeaders(t *testing.T) {
	conns := make(chan *Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Trace", "abc")
		w.Header().Set("Content-Length", "5") // dropped: no body follows a 101
		c, err := Accept(w, r, nil)
		if err == nil {
			conns <- c
		}
	}))
	defer srv.Close()
	s := &server{srv: srv}
	rc := dialHeaders(t, s, nil, nil)
	c := <-conns
	defer c.CloseNow()
	if got := rc.resp.Header.Get("X-Trace"); got != "abc" {
		t.Errorf("X-Trace %q", got)
	}
	if got := rc.resp.Header.Get("Content-Length"); got != "" {
		t.Errorf("Content-Length %q sent with 101", got)
	}
}

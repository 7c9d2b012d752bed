package ownorigin

import (
	"crypto/tls"
	"net/http/httptest"
	"testing"
)

func TestIs(t *testing.T) {
	for _, c := range []struct {
		tls    bool
		host   string
		origin string
		want   bool
	}{
		// A TLS server: only its https origin.
		{true, "voice.example.com", "https://voice.example.com", true},
		{true, "voice.example.com", "https://voice.example.com:443", true},
		{true, "voice.example.com:443", "https://voice.example.com", true},
		{true, "voice.example.com", "http://voice.example.com", false},
		{true, "voice.example.com:80", "http://voice.example.com", false},
		{true, "voice.example.com:8443", "https://voice.example.com:8443", true},
		{true, "voice.example.com:8443", "http://voice.example.com:8443", false},
		// Plain HTTP, or TLS ended by a proxy that keeps Host.
		{false, "voice.example.com", "https://voice.example.com", true},
		{false, "voice.example.com", "http://voice.example.com", true},
		{false, "127.0.0.1:8080", "http://127.0.0.1:8080", true},
		{false, "[::1]:8080", "http://[::1]:8080", true},
		{false, "VOICE.example.com", "https://voice.EXAMPLE.com", true},
		// Another host or port.
		{false, "voice.example.com", "https://evil.example.com", false},
		{false, "voice.example.com", "https://voice.example.com:8443", false},
		{false, "voice.example.com:8080", "http://voice.example.com", false},
		{true, "voice.example.com", "https://voice.example.com.evil.example", false},
		// Not an origin.
		{false, "voice.example.com", "null", false},
		{false, "voice.example.com", "ws://voice.example.com", false},
		{false, "voice.example.com", "https://voice.example.com/path", false},
		{false, "voice.example.com", "https://user@voice.example.com", false},
		{false, "voice.example.com", "", false},
	} {
		r := httptest.NewRequest("POST", "/x", nil)
		r.Host = c.host
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		} else {
			r.TLS = nil
		}
		if got := Is(r, c.origin); got != c.want {
			t.Errorf("TLS %v, Host %q, Origin %q: own %v, want %v", c.tls, c.host, c.origin, got, c.want)
		}
	}
}

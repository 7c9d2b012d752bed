package agent

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header (scheme case-insensitive, RFC 6750 §2.1), or ok false.
func BearerToken(r *http.Request) (token string, ok bool) {
	scheme, tok, found := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	tok = strings.TrimSpace(tok)
	if !found || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return tok, true
}

// DevAuthenticator is an [Authenticator] for development: it lets in a
// request whose bearer token equals a fixed token, compared in constant
// time, and only when the request comes from a loopback address. Use it
// only on a server that listens on loopback ([RequireLoopback]); platform
// servers use the Twilio Flex or Genesys authenticators.
type DevAuthenticator struct {
	token []byte
}

// NewDevAuthenticator returns a DevAuthenticator for token, which must not
// be empty.
func NewDevAuthenticator(token string) (*DevAuthenticator, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: empty development token", ErrUnauthenticated)
	}
	return &DevAuthenticator{token: []byte(token)}, nil
}

// Authenticate implements Authenticator. The principal is "dev".
func (a *DevAuthenticator) Authenticate(ctx context.Context, r *http.Request) (Principal, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil || !isLoopbackHost(host) {
		return Principal{}, fmt.Errorf("%w: development token used from a non-loopback address", ErrUnauthenticated)
	}
	tok, ok := BearerToken(r)
	if !ok || subtle.ConstantTimeCompare([]byte(tok), a.token) != 1 {
		return Principal{}, ErrUnauthenticated
	}
	return Principal{Subject: "dev", Name: "development"}, nil
}

// RequireLoopback returns an error unless addr (a listen address
// "host:port" or a net.Addr's String) is on a loopback interface:
// 127.0.0.0/8, ::1 or "localhost". A server that authenticates with a
// fixed development token must refuse to start otherwise. An empty host
// (":8080") listens everywhere and is refused.
func RequireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("agent: listen address %q: %w", addr, err)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("agent: %q is not a loopback address: the development token is for loopback only; configure a platform authenticator to listen on %q", addr, host)
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

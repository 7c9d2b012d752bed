package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/voicegate/voicegate/daspeak/agent"
)

// Credentials of the IVR endpoints, from the environment only.
const (
	envAPIKey    = "IVR_API_KEY"
	envBasicUser = "IVR_BASIC_USER"
	envBasicPass = "IVR_BASIC_PASSWORD"
	// apiKeyHeader carries IVR_API_KEY (a Genesys data action or a Studio
	// HTTP Request widget header).
	apiKeyHeader = "X-API-Key"
	// minSecret is the shortest API key or password accepted.
	minSecret = 16
	// authFailDelay is the least time every failed authentication takes,
	// whatever failed, so timing tells an attacker nothing and guessing is
	// slow.
	authFailDelay = 500 * time.Millisecond
)

const credentialsHelp = "set " + envAPIKey + " (sent as the " + apiKeyHeader + " header) and/or " +
	envBasicUser + " and " + envBasicPass + " (HTTP Basic), each secret at least 16 characters, " +
	"for example " + envAPIKey + "=$(openssl rand -hex 32)"

// authenticator checks the credentials of IVR requests: HTTP Basic and/or
// an API key header. Secrets are kept as SHA-256 digests and compared with
// crypto/subtle over those fixed-length digests, so neither the length nor
// the content of a secret leaks through timing. Every failure answers 401
// after the same minimum delay. It is safe for concurrent use.
type authenticator struct {
	key         [sha256.Size]byte
	user, pass  [sha256.Size]byte
	haveKey     bool
	haveBasic   bool
	failDelay   time.Duration
	failures    func(*http.Request) // told of each failure; may be nil
	basicHeader string
}

// newAuthenticator returns the authenticator for the given secrets, or nil
// when none is set (only allowed with -insecure-loopback, see
// checkExposure). It refuses short secrets and half a Basic pair.
func newAuthenticator(apiKey, user, pass string, failDelay time.Duration) (*authenticator, error) {
	if (user == "") != (pass == "") {
		return nil, fmt.Errorf("%s and %s must be set together", envBasicUser, envBasicPass)
	}
	if apiKey == "" && user == "" {
		return nil, nil
	}
	if apiKey != "" && len(apiKey) < minSecret {
		return nil, fmt.Errorf("%s is shorter than %d characters; generate one with: openssl rand -hex 32", envAPIKey, minSecret)
	}
	if pass != "" && len(pass) < minSecret {
		return nil, fmt.Errorf("%s is shorter than %d characters; generate one with: openssl rand -hex 32", envBasicPass, minSecret)
	}
	a := &authenticator{failDelay: failDelay, basicHeader: `Basic realm="voicegate-ivr", charset="UTF-8"`}
	if apiKey != "" {
		a.key, a.haveKey = sha256.Sum256([]byte(apiKey)), true
	}
	if user != "" {
		a.user, a.pass, a.haveBasic = sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass)), true
	}
	return a, nil
}

// refusal is the message of a 401: it names the forms this server
// accepts, and only those, each presented credential having to be valid.
func (a *authenticator) refusal() string {
	switch {
	case a.haveKey && a.haveBasic:
		return "authentication required: HTTP Basic or the " + apiKeyHeader + " header, and no invalid credential"
	case a.haveKey:
		return "authentication required: the " + apiKeyHeader + " header, and no other credential"
	}
	return "authentication required: HTTP Basic, and no other credential"
}

// methods names the accepted forms, for logs.
func (a *authenticator) methods() string {
	switch {
	case a.haveKey && a.haveBasic:
		return "basic+api-key"
	case a.haveKey:
		return "api-key"
	}
	return "basic"
}

// ok reports whether r carries a valid credential and no invalid one:
// at least one credential (the API key header, an Authorization header)
// is presented, and every one presented is valid, so a valid API key does
// not excuse wrong Basic credentials nor the other way round. A form the
// server has not configured, or a header sent twice, is invalid. Both
// forms are always computed when configured, so the time taken does not
// depend on which one the request used.
func (a *authenticator) ok(r *http.Request) bool {
	keys, auths := r.Header.Values(apiKeyHeader), r.Header.Values("Authorization")
	if len(keys) == 0 && len(auths) == 0 {
		return false
	}
	keyOK, basicOK := 0, 0
	if a.haveKey {
		k := sha256.Sum256([]byte(r.Header.Get(apiKeyHeader)))
		keyOK = subtle.ConstantTimeCompare(k[:], a.key[:]) & nonEmpty(r.Header.Get(apiKeyHeader)) & subtle.ConstantTimeEq(int32(len(keys)), 1)
	}
	if a.haveBasic {
		user, pass, isBasic := r.BasicAuth()
		u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
		basicOK = subtle.ConstantTimeCompare(u[:], a.user[:]) & subtle.ConstantTimeCompare(p[:], a.pass[:]) &
			subtle.ConstantTimeEq(int32(len(auths)), 1) & boolInt(isBasic)
	}
	return (len(keys) == 0 || keyOK == 1) && (len(auths) == 0 || basicOK == 1)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func nonEmpty(s string) int {
	if s == "" {
		return 0
	}
	return 1
}

// wrap requires a valid credential for h. A nil authenticator
// (-insecure-loopback) lets through only requests made on this machine
// (localOnly).
func (a *authenticator) wrap(h http.Handler) http.Handler {
	if a == nil {
		return localOnly(h, slog.Default())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if a.ok(r) {
			h.ServeHTTP(w, r)
			return
		}
		if a.failures != nil {
			a.failures(r)
		}
		t := time.NewTimer(a.failDelay - time.Since(start))
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
		if a.haveBasic {
			w.Header().Set("WWW-Authenticate", a.basicHeader)
		}
		writeError(w, http.StatusUnauthorized, a.refusal())
	})
}

// errExposed reports a server that would listen beyond loopback, or
// without credentials and without -insecure-loopback.
var errExposed = errors.New("refusing to start without IVR credentials")

// checkExposure decides whether the server may start: with credentials it
// always may; without, only with -insecure-loopback on a loopback address.
func checkExposure(listen string, a *authenticator, insecureLoopback bool) error {
	if a != nil {
		return nil
	}
	if !insecureLoopback {
		return fmt.Errorf("%w on %s: %s (for a local test only: -insecure-loopback with a 127.0.0.1 -listen address)", errExposed, listen, credentialsHelp)
	}
	if !isLoopback(listen) {
		return fmt.Errorf("%w: -insecure-loopback needs a loopback -listen address, not %s; for any other address %s", errExposed, listen, credentialsHelp)
	}
	return nil
}

// isLoopback reports whether a listen address (host:port) can only be
// reached from this machine: 127.0.0.0/8, ::1 or "localhost". An empty
// host (all interfaces) is not.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// proxyHeaders mark a request a proxy forwarded.
var proxyHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-Ip"}

// localOnly guards the IVR endpoints when they run without credentials
// (-insecure-loopback). A loopback listener is not enough: a web page
// whose domain its attacker points at 127.0.0.1 (DNS rebinding) posts to
// it as its own origin, and a TLS proxy on the same machine forwards the
// whole Internet to it. So a request is answered only when its Host is a
// loopback name or address (agent.IsLoopbackRequestHost) and it carries
// no proxy header; any other gets 421 and is logged. A page of another
// origin (another port or name on this machine, or any site) can still
// make the browser send a "simple" request (a no-cors POST with a WAV
// body) to the loopback address: the request is cross-site (CSRF) and
// gets 403 and a log line when it carries an Origin other than the
// server's own (http://Host) or a Sec-Fetch-Site other than same-origin
// or none (Fetch Metadata, https://www.w3.org/TR/fetch-metadata/). Tools
// such as curl send neither header and are answered.
func localOnly(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		why := ""
		if !agent.IsLoopbackRequestHost(r.Host) {
			why = "it is addressed to " + strconv.Quote(r.Host) + ", not to localhost, 127.0.0.1 or [::1]"
		}
		for _, name := range proxyHeaders {
			if r.Header.Get(name) != "" {
				why = "a proxy forwarded it (" + name + ")"
			}
		}
		if why != "" {
			log.Warn("-insecure-loopback: refused a request not made on this machine", "route", r.Pattern, "why", why)
			writeError(w, http.StatusMisdirectedRequest, "the IVR endpoints run without credentials (-insecure-loopback) and answer requests made on this machine only, but "+why+"; "+credentialsHelp)
			return
		}
		if why := crossSite(r); why != "" {
			log.Warn("-insecure-loopback: refused a cross-site request", "route", r.Pattern, "why", why)
			writeErrorCode(w, http.StatusForbidden, agent.CodeOriginNotAllowed, "the IVR endpoints run without credentials (-insecure-loopback) and refuse requests a web page of another origin makes (cross-site request forgery), but "+why+"; call them from a program (curl, the IVR platform), or "+credentialsHelp)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// crossSite says why r was made by a page of another origin than the
// server's own (http://r.Host), or "" when nothing says so.
func crossSite(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" && !strings.EqualFold(o, "http://"+r.Host) {
		return "it comes from the origin " + strconv.Quote(o) + ", not http://" + r.Host
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return "the browser marked it Sec-Fetch-Site: " + strconv.Quote(site)
	}
	return ""
}

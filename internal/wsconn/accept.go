package wsconn

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/httperr"
)

// DefaultCloseTimeout is the default of AcceptOptions.CloseTimeout.
const DefaultCloseTimeout = 5 * time.Second

// AcceptOptions configures Accept. A nil *AcceptOptions is the zero value,
// and the zero value of every field is its documented default.
type AcceptOptions struct {
	// Subprotocols lists the subprotocols the server speaks, most preferred
	// first. The first one the client offered in Sec-WebSocket-Protocol is
	// selected; with none in common, none is selected. nil means none.
	Subprotocols []string
	// OriginPatterns lists host patterns (path.Match syntax, compared case
	// insensitively; a pattern containing "://" is matched against
	// scheme://host) accepted in the Origin header when it differs from the
	// request's Host. Requests without Origin are always accepted. nil
	// accepts same-host origins only.
	OriginPatterns []string
	// InsecureSkipVerify accepts every Origin.
	InsecureSkipVerify bool
	// CloseTimeout bounds the close handshake (writing the close frame and
	// waiting for the peer's, also after a protocol error), and the writes
	// the connection makes on its own: the 101 response and pongs. 0 means
	// DefaultCloseTimeout.
	CloseTimeout time.Duration
	// PollInterval, when positive, serves a Linux TCP connection from a
	// poller shared with other connections instead of the Go runtime's
	// network poller: a few goroutines (one per GOMAXPROCS) look for
	// readable sockets every PollInterval and wake their readers together,
	// so that a process serving many connections wakes a thread per
	// interval instead of per message, and a read that emptied the socket
	// is not followed by one that finds nothing. Every message, control
	// frames included, may then wait up to PollInterval before it is read.
	// 0 (the default) uses the runtime's poller; other connections (TLS,
	// other systems) always do. See the package documentation.
	PollInterval time.Duration
}

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// acceptKey returns the Sec-WebSocket-Accept value for a client key.
func acceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte(acceptGUID))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// Accept upgrades an HTTP/1.1 request to a WebSocket connection.
//
// A request that is not a valid RFC 6455 upgrade is answered with an HTTP
// error before anything is hijacked, and a *HandshakeError is returned:
// 405 for a method other than GET, 426 (with Upgrade and Connection
// headers) when the Connection header lacks the "upgrade" token or Upgrade
// lacks "websocket", 426 with "Sec-WebSocket-Version: 13" for another
// version, 400 for a missing or malformed Sec-WebSocket-Key, 403 for a
// refused Origin and 501 when w cannot be hijacked. Header tokens are
// compared case insensitively.
//
// Extensions (permessage-deflate) are never negotiated. Headers the handler
// set on w.Header() are sent with the 101 response. Deadlines the
// http.Server put on the connection are cleared. r.Context() must not be
// used after Accept returns a connection.
func Accept(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) (*Conn, error) {
	var o AcceptOptions
	if opts != nil {
		o = *opts
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	fail := func(status int, format string, args ...any) (*Conn, error) {
		err := &HandshakeError{Status: status, Reason: fmt.Sprintf(format, args...)}
		httperr.Write(w, status, handshakeCode(status), err.Reason)
		return nil, err
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		return fail(http.StatusMethodNotAllowed, "method %q is not GET", r.Method)
	}
	if !r.ProtoAtLeast(1, 1) || !hasToken(r.Header, "Connection", "upgrade") || !hasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		return fail(http.StatusUpgradeRequired, "not a WebSocket upgrade (%s, Connection %.60q, Upgrade %.60q)",
			r.Proto, r.Header.Get("Connection"), r.Header.Get("Upgrade"))
	}
	if v := r.Header.Values("Sec-WebSocket-Version"); len(v) != 1 || strings.TrimSpace(v[0]) != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		return fail(http.StatusUpgradeRequired, "unsupported Sec-WebSocket-Version %.20q", strings.Join(v, ","))
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return fail(http.StatusBadRequest, "%d Sec-WebSocket-Key headers, want 1", len(keys))
	}
	key := strings.TrimSpace(keys[0])
	if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 {
		return fail(http.StatusBadRequest, "Sec-WebSocket-Key %.40q is not 16 bytes in base64", key)
	}
	if !o.InsecureSkipVerify {
		if err := checkOrigin(r, o.OriginPatterns); err != nil {
			return fail(http.StatusForbidden, "%v", err)
		}
	}
	sub := selectSubprotocol(r.Header, o.Subprotocols)

	rc := http.NewResponseController(w)
	nc, brw, err := rc.Hijack()
	if err != nil {
		return fail(http.StatusNotImplemented, "cannot hijack the connection: %v", err)
	}
	// From here on, errors can only be reported by closing the connection.
	_ = nc.SetDeadline(time.Time{})
	bw := brw.Writer
	bw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
	bw.WriteString(acceptKey(key))
	bw.WriteString("\r\n")
	if sub != "" {
		bw.WriteString("Sec-WebSocket-Protocol: ")
		bw.WriteString(sub)
		bw.WriteString("\r\n")
	}
	h := w.Header().Clone()
	for _, k := range []string{"Upgrade", "Connection", "Sec-Websocket-Accept", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions", "Content-Length", "Transfer-Encoding"} {
		delete(h, k)
	}
	_ = h.Write(bw)
	bw.WriteString("\r\n")
	_ = nc.SetWriteDeadline(time.Now().Add(o.CloseTimeout))
	if err := bw.Flush(); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("websocket: writing the handshake response: %w", err)
	}
	_ = nc.SetWriteDeadline(time.Time{})
	if o.PollInterval > 0 {
		if pc := takeOver(nc, o.PollInterval); pc != nc {
			nc = pc
			bw.Reset(nc)
		}
	}
	pr := &prefixReader{nc: nc}
	c := newConn(nc, hijackedReader(brw.Reader, pr), bw, sub, o.CloseTimeout)
	pr.q.init(nc)
	c.quiet = &pr.q
	closeWhenUnreachable(c, nc)
	return c, nil
}

// hijackedReader returns a reader of the client's bytes after the request:
// the bytes net/http already buffered, then the connection. It reuses br's
// buffer and bypasses net/http's reader.
func hijackedReader(br *bufio.Reader, pr *prefixReader) *bufio.Reader {
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		pr.pre = append([]byte(nil), b...)
	}
	br.Reset(pr)
	return br
}

// prefixReader reads pre, then nc (through q while q is active).
type prefixReader struct {
	pre []byte
	nc  net.Conn
	q   quietReader
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.pre) > 0 {
		n := copy(b, p.pre)
		p.pre = p.pre[n:]
		return n, nil
	}
	if p.q.active() {
		return p.q.readQuiet(b)
	}
	return p.nc.Read(b)
}

// hasToken reports whether a comma-separated header contains token,
// ignoring case.
func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func selectSubprotocol(h http.Header, server []string) string {
	for _, sp := range server {
		for _, v := range h.Values("Sec-WebSocket-Protocol") {
			for cp := range strings.SplitSeq(v, ",") {
				if cp = strings.TrimSpace(cp); strings.EqualFold(cp, sp) {
					return cp
				}
			}
		}
	}
	return ""
}

func checkOrigin(r *http.Request, patterns []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("origin %.80q is not a URL with a host", origin)
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		ok, err := path.Match(strings.ToLower(p), strings.ToLower(target))
		if err != nil {
			return fmt.Errorf("bad origin pattern %q: %w", p, err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("origin %.80q is not allowed for host %.80q", u.Host, r.Host)
}

// handshakeCode is the JSON error code of a refused upgrade's status.
func handshakeCode(status int) string {
	switch status {
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusUpgradeRequired:
		return "upgrade_required"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotImplemented:
		return "not_implemented"
	}
	return "bad_request"
}

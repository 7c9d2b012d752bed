package wsconn

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// pollAll runs every test connection through the shared poller
// (AcceptOptions.PollInterval): go test ./internal/wsconn -poll=1ms.
var pollAll = flag.Duration("poll", 0, "serve every test connection from the shared poller with this interval")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server runs Accept on loopback and hands every accepted connection (or
// the Accept error) to the test.
type server struct {
	srv   *httptest.Server
	conns chan *Conn
	errs  chan error
}

func newServer(t testing.TB, opts *AcceptOptions) *server {
	t.Helper()
	s := &server{conns: make(chan *Conn, 16), errs: make(chan error, 16)}
	if *pollAll > 0 {
		var o AcceptOptions
		if opts != nil {
			o = *opts
		}
		if o.PollInterval == 0 {
			o.PollInterval = *pollAll
		}
		opts = &o
	}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, opts)
		if err != nil {
			s.errs <- err
			return
		}
		s.conns <- c
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *server) url() string { return "ws" + strings.TrimPrefix(s.srv.URL, "http") }

func (s *server) addr() string { return strings.TrimPrefix(s.srv.URL, "http://") }

// conn returns the next accepted connection; it is closed at cleanup.
func (s *server) conn(t testing.TB) *Conn {
	t.Helper()
	select {
	case c := <-s.conns:
		t.Cleanup(func() { _ = c.CloseNow() })
		return c
	case err := <-s.errs:
		t.Fatalf("accept: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no connection accepted")
	}
	return nil
}

const testKey = "dGhlIHNhbXBsZSBub25jZQ=="

// rawClient is a hand-driven client over TCP.
type rawClient struct {
	nc net.Conn
	br *bufio.Reader
}

// dialRaw performs the handshake by hand; extra is sent right after the
// request, in the same write.
func dialRaw(t testing.TB, s *server, extra []byte) *rawClient {
	t.Helper()
	req := "GET /ws HTTP/1.1\r\nHost: " + s.addr() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	rc, resp := dialRequest(t, s, append([]byte(req), extra...))
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d", resp.StatusCode)
	}
	return rc
}

// dialRequest sends raw bytes to the server and reads the HTTP response.
func dialRequest(t testing.TB, s *server, raw []byte) (*rawClient, *http.Response) {
	t.Helper()
	nc, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	if _, err := nc.Write(raw); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &rawClient{nc: nc, br: br}, resp
}

func (rc *rawClient) write(t testing.TB, b []byte) {
	t.Helper()
	if _, err := rc.nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

// serverFrame is a frame read from the server.
type serverFrame struct {
	fin     bool
	op      byte
	payload []byte
}

func (rc *rawClient) readFrame() (serverFrame, error) {
	_ = rc.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(rc.br, h[:]); err != nil {
		return serverFrame{}, err
	}
	if h[0]&0x70 != 0 || h[1]&0x80 != 0 {
		return serverFrame{}, fmt.Errorf("bad server frame header % x", h)
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(rc.br, b[:]); err != nil {
			return serverFrame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(rc.br, b[:]); err != nil {
			return serverFrame{}, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(rc.br, p); err != nil {
		return serverFrame{}, err
	}
	return serverFrame{fin: h[0]&0x80 != 0, op: h[0] & 0x0F, payload: p}, nil
}

// readClose reads frames until a close frame and returns its status code
// (0 for none).
func (rc *rawClient) readClose(t testing.TB) StatusCode {
	t.Helper()
	for {
		f, err := rc.readFrame()
		if err != nil {
			t.Fatalf("reading the close frame: %v", err)
		}
		if f.op == opClose {
			if len(f.payload) < 2 {
				return 0
			}
			return StatusCode(binary.BigEndian.Uint16(f.payload))
		}
	}
}

// frameOpts shape a client frame: setLen encodes rawLen as the payload
// length instead of the real one, msb encodes a 64-bit length with its most
// significant bit set; the mask key is fixed unless unmasked.
type frameOpts struct {
	fin, unmasked bool
	rsv           byte
	setLen, msb   bool
	rawLen        uint64
}

func clientFrame(op byte, payload []byte, o frameOpts) []byte {
	b0 := op | o.rsv
	if o.fin {
		b0 |= 0x80
	}
	b := []byte{b0, 0}
	n := uint64(len(payload))
	if o.setLen {
		n = o.rawLen
	}
	switch {
	case o.msb:
		b[1] = 127
		b = binary.BigEndian.AppendUint64(b, 1<<63|uint64(len(payload)))
	case n <= 125:
		b[1] = byte(n)
	case n <= 0xFFFF:
		b[1] = 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] = 127
		b = binary.BigEndian.AppendUint64(b, n)
	}
	if o.unmasked {
		return append(b, payload...)
	}
	b[1] |= 0x80
	key := [4]byte{0x37, 0xFA, 0x21, 0x3D}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// fin is shorthand for a masked final frame.
func fin(op byte, payload []byte) []byte {
	return clientFrame(op, payload, frameOpts{fin: true})
}

// cont is shorthand for a masked non-final frame.
func cont(op byte, payload []byte) []byte {
	return clientFrame(op, payload, frameOpts{})
}

func closePayload(code StatusCode, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

func asProtocolError(t testing.TB, err error) *ProtocolError {
	t.Helper()
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *ProtocolError", err, err)
	}
	return pe
}

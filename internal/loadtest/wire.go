package loadtest

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// RFC 6455 opcodes used by the generator.
const (
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// maskKey is the fixed masking key of every client frame. RFC 6455 §5.3
// asks for an unpredictable key to protect intermediaries' caches; over
// loopback with no intermediary a fixed key lets frames be masked once.
var maskKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// putFrameHeader writes a final, masked client frame header with opcode op
// for a payload of n bytes into dst (RFC 6455 §5.2: 2 bytes, 2 or 8 bytes
// of extended length when n ≥ 126, the 4-byte masking key), which must hold
// 14 bytes, and returns the header length.
func putFrameHeader(dst []byte, op byte, n int) int {
	dst[0] = 0x80 | op
	i := 2
	switch {
	case n < 126:
		dst[1] = 0x80 | byte(n)
	case n <= 0xFFFF:
		dst[1] = 0x80 | 126
		binary.BigEndian.PutUint16(dst[2:], uint16(n))
		i = 4
	default:
		dst[1] = 0x80 | 127
		binary.BigEndian.PutUint64(dst[2:], uint64(n))
		i = 10
	}
	copy(dst[i:], maskKey[:])
	return i + 4
}

// maskAt XORs p with maskKey as RFC 6455 §5.3 does for payload bytes
// starting at payload offset off.
func maskAt(p []byte, off int) {
	for i := range p {
		p[i] ^= maskKey[(off+i)&3]
	}
}

// appendFrame appends a whole masked client frame carrying payload.
func appendFrame(dst []byte, op byte, payload []byte) []byte {
	var h [14]byte
	n := putFrameHeader(h[:], op, len(payload))
	dst = append(dst, h[:n]...)
	start := len(dst)
	dst = append(dst, payload...)
	maskAt(dst[start:], 0)
	return dst
}

// closeFrame is a masked close frame with status 1000 (normal closure).
var closeFrame = appendFrame(nil, opClose, []byte{0x03, 0xe8})

// acceptKey computes Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455
// §4.2.2).
func acceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte("258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// handshake writes a WebSocket upgrade request for path on conn, with the
// extra header h (which it completes), and reads the 101 answer. The
// returned reader holds any bytes the server sent after its answer.
func handshake(conn net.Conn, host, path string, h http.Header, timeout time.Duration) (*bufio.Reader, error) {
	var k [16]byte
	_, _ = rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	h.Set("Upgrade", "websocket")
	h.Set("Connection", "Upgrade")
	h.Set("Sec-WebSocket-Key", key)
	h.Set("Sec-WebSocket-Version", "13")
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, host)
	_ = h.Write(&b)
	b.WriteString("\r\n")
	_ = conn.SetDeadline(time.Now().Add(timeout))
	defer conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, fmt.Errorf("upgrade answered %s", resp.Status)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != acceptKey(key) {
		return nil, fmt.Errorf("Sec-WebSocket-Accept %q, want %q", got, acceptKey(key))
	}
	return br, nil
}

// errFrameTooLong is returned by readServerFrame for a frame over its limit.
var errFrameTooLong = errors.New("server frame over 1 MiB")

// readServerFrame reads one unmasked server frame into buf (grown as
// needed) and returns its opcode and payload. Fragments are returned as
// they come (opcode 0 for continuations): the servers under test send
// whole messages.
func readServerFrame(br *bufio.Reader, buf []byte) (op byte, payload []byte, err error) {
	var h [8]byte
	if _, err := io.ReadFull(br, h[:2]); err != nil {
		return 0, buf, err
	}
	op = h[0] & 0x0f
	masked := h[1]&0x80 != 0
	n := int64(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(br, h[:2]); err != nil {
			return 0, buf, err
		}
		n = int64(binary.BigEndian.Uint16(h[:2]))
	case 127:
		if _, err := io.ReadFull(br, h[:8]); err != nil {
			return 0, buf, err
		}
		n = int64(binary.BigEndian.Uint64(h[:8]))
	}
	if n > 1<<20 || n < 0 {
		return 0, buf, errFrameTooLong
	}
	if masked { // servers must not mask (RFC 6455 §5.1); read and drop the key
		if _, err := io.ReadFull(br, h[:4]); err != nil {
			return 0, buf, err
		}
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err = io.ReadFull(br, buf)
	return op, buf, err
}

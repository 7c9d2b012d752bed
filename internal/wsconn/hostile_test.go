package wsconn

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
)

// TestHostileFrames sends RFC-violating frames over raw TCP and checks the
// close status the server answers with and the error ReadMessage returns.
func TestHostileFrames(t *testing.T) {
	cat := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	big := bytes.Repeat([]byte("a"), 126)
	tests := []struct {
		name  string
		limit int64
		send  []byte
		code  StatusCode
	}{
		{"unmasked", 0, clientFrame(opBinary, []byte("hi"), frameOpts{fin: true, unmasked: true}), StatusProtocolError},
		{"rsv1", 0, clientFrame(opBinary, []byte("hi"), frameOpts{fin: true, rsv: 0x40}), StatusProtocolError},
		{"rsv2", 0, clientFrame(opText, []byte("hi"), frameOpts{fin: true, rsv: 0x20}), StatusProtocolError},
		{"rsv3 on ping", 0, clientFrame(opPing, nil, frameOpts{fin: true, rsv: 0x10}), StatusProtocolError},
		{"data opcode 3", 0, fin(0x3, nil), StatusProtocolError},
		{"data opcode 7", 0, fin(0x7, []byte("x")), StatusProtocolError},
		{"control opcode 0xB", 0, fin(0xB, nil), StatusProtocolError},
		{"control opcode 0xF", 0, fin(0xF, nil), StatusProtocolError},
		{"ping of 126 bytes", 0, fin(opPing, big), StatusProtocolError},
		{"close of 126 bytes", 0, fin(opClose, append(closePayload(1000, ""), big[:124]...)), StatusProtocolError},
		{"fragmented ping", 0, cont(opPing, []byte("x")), StatusProtocolError},
		{"fragmented close", 0, cont(opClose, closePayload(1000, "")), StatusProtocolError},
		{"continuation without start", 0, fin(opContinuation, []byte("x")), StatusProtocolError},
		{"new text inside fragmented binary", 0, cat(cont(opBinary, []byte("a")), fin(opText, []byte("b"))), StatusProtocolError},
		{"new binary inside fragmented text", 0, cat(cont(opText, []byte("a")), cont(opBinary, []byte("b"))), StatusProtocolError},
		{"64-bit length with MSB set", 0, clientFrame(opBinary, []byte("x"), frameOpts{fin: true, msb: true}), StatusProtocolError},
		{"huge length beyond limit", 0, clientFrame(opBinary, nil, frameOpts{fin: true, setLen: true, rawLen: 1 << 40}), StatusMessageTooBig},
		{"frame just over limit", 100, fin(opBinary, make([]byte, 101)), StatusMessageTooBig},
		{"fragments over limit", 100, cat(cont(opBinary, make([]byte, 60)), fin(opContinuation, make([]byte, 41))), StatusMessageTooBig},
		{"invalid UTF-8 text", 0, fin(opText, []byte{'a', 0xff, 'b'}), StatusInvalidFramePayloadData},
		{"truncated UTF-8 across fragments", 0, cat(cont(opText, []byte{0xe2, 0x82}), fin(opContinuation, nil)), StatusInvalidFramePayloadData},
		{"surrogate in text", 0, fin(opText, []byte{0xed, 0xa0, 0x80}), StatusInvalidFramePayloadData},
		{"close payload of 1 byte", 0, fin(opClose, []byte{3}), StatusProtocolError},
		{"close code 999", 0, fin(opClose, closePayload(999, "")), StatusProtocolError},
		{"close code 1004", 0, fin(opClose, closePayload(1004, "")), StatusProtocolError},
		{"close code 1005", 0, fin(opClose, closePayload(1005, "")), StatusProtocolError},
		{"close code 1006", 0, fin(opClose, closePayload(1006, "")), StatusProtocolError},
		{"close code 1015", 0, fin(opClose, closePayload(1015, "")), StatusProtocolError},
		{"close code 2999", 0, fin(opClose, closePayload(2999, "")), StatusProtocolError},
		{"close code 5000", 0, fin(opClose, closePayload(5000, "")), StatusProtocolError},
		{"close reason not UTF-8", 0, fin(opClose, append(closePayload(1000, ""), 0xc0, 0xaf)), StatusInvalidFramePayloadData},
	}
	s := newServer(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := dialRaw(t, s, nil)
			c := s.conn(t)
			if tt.limit > 0 {
				c.SetReadLimit(tt.limit)
			}
			errc := make(chan error, 1)
			go func() {
				for {
					if _, _, err := c.ReadMessage(); err != nil {
						errc <- err
						return
					}
				}
			}()
			rc.write(t, tt.send)
			if got := rc.readClose(t); got != tt.code {
				t.Errorf("close status %d, want %d", got, tt.code)
			}
			// Answer the close like a conforming client; the server then
			// closes the TCP connection.
			rc.write(t, fin(opClose, closePayload(tt.code, "")))
			if _, err := rc.readFrame(); err != io.EOF && !isReset(err) {
				t.Errorf("after the close handshake: %v, want EOF", err)
			}
			_ = rc.nc.Close()
			pe := asProtocolError(t, <-errc)
			if pe.Code != tt.code {
				t.Errorf("ProtocolError.Code %d, want %d", pe.Code, tt.code)
			}
			if _, _, err := c.ReadMessage(); err != pe {
				t.Errorf("second ReadMessage: %v, want the same *ProtocolError", err)
			}
			if err := c.WriteMessage(t.Context(), MessageText, []byte("x")); !errors.Is(err, net.ErrClosed) {
				t.Errorf("write after failure: %v, want net.ErrClosed", err)
			}
		})
	}
}

// TestHostilePeerNeverCloses checks that a failed connection is dropped
// after the close timeout when the peer never answers the close frame.
func TestHostilePeerNeverCloses(t *testing.T) {
	s := newServer(t, &AcceptOptions{CloseTimeout: 50e6})
	rc := dialRaw(t, s, nil)
	c := s.conn(t)
	rc.write(t, fin(0x3, nil))
	_, _, err := c.ReadMessage()
	if pe := asProtocolError(t, err); pe.Code != StatusProtocolError {
		t.Fatalf("code %d", pe.Code)
	}
	if got := rc.readClose(t); got != StatusProtocolError {
		t.Fatalf("close status %d", got)
	}
	if _, err := rc.readFrame(); err == nil {
		t.Fatal("connection still open")
	}
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

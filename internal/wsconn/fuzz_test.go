package wsconn

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
	"unicode/utf8"
)

// pipeConn is a net.Conn whose reads come from a fixed byte stream and
// whose writes are collected.
type pipeConn struct {
	r      *bytes.Reader
	w      bytes.Buffer
	closed bool
}

func (p *pipeConn) Read(b []byte) (int, error) {
	if p.closed {
		return 0, net.ErrClosed
	}
	return p.r.Read(b)
}

func (p *pipeConn) Write(b []byte) (int, error) {
	if p.closed {
		return 0, net.ErrClosed
	}
	return p.w.Write(b)
}
func (p *pipeConn) Close() error                     { p.closed = true; return nil }
func (p *pipeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (p *pipeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (p *pipeConn) SetDeadline(time.Time) error      { return nil }
func (p *pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (p *pipeConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzReadFrames feeds arbitrary client bytes to ReadMessage: it must not
// panic, must stop, and must only return messages within the read limit,
// text ones valid UTF-8. What the server wrote must be well-formed
// unmasked frames, ending with at most one close frame.
func FuzzReadFrames(f *testing.F) {
	cat := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	f.Add(fin(opBinary, []byte("audio")))
	f.Add(fin(opText, []byte(`{"type":"open"}`)))
	f.Add(cat(cont(opText, []byte("frag")), fin(opPing, []byte("p")), fin(opContinuation, []byte("ment"))))
	f.Add(cat(fin(opBinary, make([]byte, 300)), fin(opClose, closePayload(1000, "bye"))))
	f.Add(fin(opClose, nil))
	f.Add(fin(opClose, []byte{1}))
	f.Add(fin(opText, []byte{0xff}))
	f.Add(clientFrame(opBinary, []byte("x"), frameOpts{fin: true, unmasked: true}))
	f.Add(clientFrame(opBinary, nil, frameOpts{fin: true, setLen: true, rawLen: 1 << 40}))
	f.Add(clientFrame(opBinary, []byte("x"), frameOpts{fin: true, msb: true}))
	f.Add(clientFrame(opBinary, make([]byte, 70000), frameOpts{fin: true}))
	f.Add(fin(opContinuation, nil))
	f.Add([]byte{0x82, 0xFE, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		pc := &pipeConn{r: bytes.NewReader(data)}
		c := newConn(pc, bufio.NewReaderSize(pc, 512), bufio.NewWriter(pc), "", time.Second)
		c.SetReadLimit(4096)
		for i := 0; ; i++ {
			if i > len(data) {
				t.Fatal("more messages than input bytes")
			}
			typ, p, err := c.ReadMessage()
			if err != nil {
				var ce *CloseError
				var pe *ProtocolError
				if !errors.As(err, &ce) && !errors.As(err, &pe) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error %v", err)
				}
				if !pc.closed {
					t.Fatal("connection not closed after a read error")
				}
				break
			}
			if len(p) > 4096 {
				t.Fatalf("message of %d bytes over the limit", len(p))
			}
			if typ == MessageText && !utf8.Valid(p) {
				t.Fatal("invalid UTF-8 text returned")
			}
			if typ != MessageText && typ != MessageBinary {
				t.Fatalf("message type %v", typ)
			}
		}
		checkServerFrames(t, pc.w.Bytes())
	})
}

// checkServerFrames checks b is a sequence of unmasked final control frames
// with at most one close frame, last.
func checkServerFrames(t *testing.T, b []byte) {
	closes := 0
	for len(b) > 0 {
		if closes > 0 {
			t.Fatal("frame after close")
		}
		if len(b) < 2 || b[0]&0xF0 != 0x80 || b[1]&0x80 != 0 || b[1]&0x7F > 125 {
			t.Fatalf("bad server frame % x", b[:min(len(b), 4)])
		}
		op, n := b[0]&0x0F, int(b[1]&0x7F)
		if len(b) < 2+n {
			t.Fatal("truncated server frame")
		}
		switch op {
		case opPong:
		case opClose:
			closes++
			if n == 1 || n >= 2 && !StatusCode(uint16(b[2])<<8|uint16(b[3])).validWire() {
				t.Fatalf("bad close payload % x", b[2:2+n])
			}
		default:
			t.Fatalf("server sent opcode %#x", op)
		}
		b = b[2+n:]
	}
}

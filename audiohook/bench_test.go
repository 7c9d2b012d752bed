package audiohook

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/audiohook/wire"
)

// rawSession is a hand-driven client used to time the server precisely.
type rawSession struct {
	c   *websocket.Conn
	id  string
	seq int
}

func dialRaw(ctx context.Context, u string) (*rawSession, error) {
	id := newUUID()
	h := http.Header{}
	h.Set(wire.HeaderSessionID, id)
	h.Set(wire.HeaderOrganizationID, tOrg)
	h.Set(wire.HeaderCorrelationID, newUUID())
	h.Set(wire.HeaderAPIKey, testKey)
	c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, err
	}
	return &rawSession{c: c, id: id}, nil
}

func (r *rawSession) roundTrip(ctx context.Context, typ, params string) (time.Duration, error) {
	r.seq++
	msg := tmsg(r.id, typ, r.seq, r.seq-1, "PT0S", params)
	start := time.Now()
	if err := r.c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		return 0, err
	}
	for {
		mt, _, err := r.c.Read(ctx)
		if err != nil {
			return 0, err
		}
		if mt == websocket.MessageText {
			return time.Since(start), nil
		}
	}
}

// BenchmarkBinaryFrameServerRead is audiohooktest's
// BenchmarkBinaryFrameLoopback with a client that writes pre-masked frames
// straight to the TCP connection, so the allocations reported are those of
// the server: its WebSocket read path, the session's frame handling and
// ReadFrame.
func BenchmarkBinaryFrameServerRead(b *testing.B) {
	rc, s := openFrameWriter(b)
	wire := maskedFrame(0x2, make([]byte, 320))
	ctx := context.Background()
	b.SetBytes(320)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rc.nc.Write(wire); err != nil {
			b.Fatal(err)
		}
		if _, err := s.ReadFrame(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBinaryFrameServerReadAllocs proves that receiving an audio frame
// allocates nothing in the server: WebSocket read, session handling and
// ReadFrame, with the frame written by a raw client.
func TestBinaryFrameServerReadAllocs(t *testing.T) {
	rc, s := openFrameWriter(t)
	payload := make([]byte, 320)
	for i := range payload {
		payload[i] = byte(i)
	}
	wire := maskedFrame(0x2, payload)
	ctx := context.Background()
	var bad error
	step := func() {
		if _, err := rc.nc.Write(wire); err != nil {
			bad = err
			return
		}
		f, err := s.ReadFrame(ctx)
		if err != nil {
			bad = err
			return
		}
		if !slices.Equal(f.Payload, payload) {
			bad = fmt.Errorf("payload mismatch")
		}
	}
	step()
	if n := testing.AllocsPerRun(200, step); n != 0 {
		t.Errorf("%v allocations per audio frame, want 0", n)
	}
	if bad != nil {
		t.Fatal(bad)
	}
}

// openFrameWriter starts a server, connects a frameWriter and runs the
// open transaction for stereo PCMU.
func openFrameWriter(tb testing.TB) (*frameWriter, *Session) {
	tb.Helper()
	got := make(chan *Session, 1)
	opts := &ServerOptions{Keys: StaticKeys{testKey: nil}, BufferFrames: 4096, Buffer: time.Hour}
	u := testServer(tb, opts, func(s *Session) {
		got <- s
		<-s.Done()
	})
	id := newUUID()
	rc, err := dialFrameWriter(u, http.Header{
		wire.HeaderSessionID: {id}, wire.HeaderOrganizationID: {tOrg}, wire.HeaderCorrelationID: {newUUID()}, wire.HeaderAPIKey: {testKey},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = rc.nc.Close() })
	if _, err := rc.nc.Write(maskedFrame(0x1, []byte(tmsg(id, "open", 1, 0, "PT0S", openParams(stereoPCMU, nil))))); err != nil {
		tb.Fatal(err)
	}
	if m, err := rc.readText(); err != nil || !strings.Contains(m, `"opened"`) {
		tb.Fatalf("open answered with %q, %v", m, err)
	}
	return rc, <-got
}

// frameWriter is a minimal WebSocket client over TCP.
type frameWriter struct {
	nc net.Conn
	br *bufio.Reader
}

func dialFrameWriter(u string, h http.Header) (*frameWriter, error) {
	host := strings.TrimPrefix(u, "ws://")
	nc, err := net.Dial("tcp", host)
	if err != nil {
		return nil, err
	}
	var req strings.Builder
	req.WriteString("GET / HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
	_ = h.Write(&req)
	req.WriteString("\r\n")
	if _, err := io.WriteString(nc, req.String()); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		return nil, fmt.Errorf("handshake: %s", resp.Status)
	}
	return &frameWriter{nc: nc, br: br}, nil
}

// readText returns the next text message (unfragmented server frames).
func (fw *frameWriter) readText() (string, error) {
	_ = fw.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var h [2]byte
		if _, err := io.ReadFull(fw.br, h[:]); err != nil {
			return "", err
		}
		n := int(h[1] & 0x7F)
		switch n {
		case 126:
			var x [2]byte
			if _, err := io.ReadFull(fw.br, x[:]); err != nil {
				return "", err
			}
			n = int(binary.BigEndian.Uint16(x[:]))
		case 127:
			return "", fmt.Errorf("unexpected 64-bit frame length")
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(fw.br, p); err != nil {
			return "", err
		}
		if h[0]&0x0F == 0x1 {
			return string(p), nil
		}
	}
}

// maskedFrame returns a final client frame masked with a fixed key.
func maskedFrame(op byte, payload []byte) []byte {
	b := []byte{0x80 | op, 0x80}
	switch n := len(payload); {
	case n <= 125:
		b[1] |= byte(n)
	case n <= 0xFFFF:
		b[1] |= 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] |= 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	key := [4]byte{0xA1, 0x5B, 0x3C, 0x07}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// BenchmarkSessionAudioPath measures the session's own per-frame work
// (validation, ring, ReadFrame) without the WebSocket library.
func BenchmarkSessionAudioPath(b *testing.B) {
	s := newSession(nil, (&ServerOptions{}).withDefaults(), newUUID(), tOrg, newUUID(), "")
	s.setState(stateActive)
	s.m.frameB = 2
	s.m.tmpl = voicegate.Frame{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 2}
	s.m.track.StartAt(0)
	frame := make([]byte, 320)
	ctx := context.Background()
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		s.handleAudio(frame)
		if _, err := s.ReadFrame(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

package twilio_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/twilio"
)

// rawClient is a minimal WebSocket client over TCP that writes frames
// masked in advance, so that it allocates nothing per message and
// testing.AllocsPerRun counts the server's allocations only.
type rawClient struct {
	nc net.Conn
	br *bufio.Reader
}

// dialRaw opens a signed Media Streams upgrade to ms.
func dialRaw(tb testing.TB, ms *mediaServer) *rawClient {
	tb.Helper()
	host := strings.TrimPrefix(strings.TrimSuffix(ms.URL, "/media"), "ws://")
	nc, err := net.Dial("tcp", host)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = nc.Close() })
	req := "GET /media HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		twilio.SignatureHeader + ": " + twilio.ComputeSignature(testToken, ms.URL, nil) + "\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		tb.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		tb.Fatalf("handshake: %s", resp.Status)
	}
	return &rawClient{nc: nc, br: br}
}

// maskedText returns a final, masked text frame carrying msg.
func maskedText(msg string) []byte {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	var f []byte
	switch n := len(msg); {
	case n <= 125:
		f = append(f, 0x81, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x81, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, 0x81, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	f = append(f, key[:]...)
	for i := range len(msg) {
		f = append(f, msg[i]^key[i%4])
	}
	return f
}

// twilioMedia is a media message as Twilio sends it: 20 ms of μ-law.
func twilioMedia(ts int64, payload []byte) string {
	return fmt.Sprintf(`{"event":"media","sequenceNumber":"%d","media":{"track":"inbound","chunk":"%d","timestamp":"%d","payload":"%s"},"streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0"}`,
		ts/20+2, ts/20+1, ts, base64.StdEncoding.EncodeToString(payload))
}

// startRawStream connects a rawClient, sends connected and start, and
// returns the client, the server's Stream, media frames ready to write
// (n of them, timestamps 20 ms apart) and their payload. opts may be nil;
// its AuthTokens are replaced.
func startRawStream(tb testing.TB, n int, opts *twilio.AcceptOptions) (*rawClient, *twilio.Stream, [][]byte, []byte) {
	tb.Helper()
	o := twilio.AcceptOptions{}
	if opts != nil {
		o = *opts
	}
	o.AuthTokens = []string{testToken}
	ms := newMediaServer(tb, &o)
	rc := dialRaw(tb, ms)
	s := ms.next(tb)
	tb.Cleanup(func() { _ = s.CloseNow() })
	for _, m := range []string{
		`{"event":"connected","protocol":"Call","version":"1.0.0"}`,
		`{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{}},"streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0"}`,
	} {
		if _, err := rc.nc.Write(maskedText(m)); err != nil {
			tb.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	payload := make([]byte, twilio.FrameBytes)
	for i := range payload {
		payload[i] = byte(i)
	}
	wire := make([][]byte, n)
	for i := range wire {
		wire[i] = maskedText(twilioMedia(155+int64(i)*20, payload))
	}
	return rc, s, wire, payload
}

// Receiving a 160-byte media message over the WebSocket, parsing and
// decoding it, queueing it and reading it with ReadFrame allocate nothing
// on the server side.
func TestMediaMessageServerReadAllocs(t *testing.T) {
	const runs = 200
	// A read cadence of 1 µs: the pause runs on every message, and
	// allocates nothing either.
	rc, s, wire, payload := startRawStream(t, runs+10, &twilio.AcceptOptions{ReadCadence: time.Microsecond})
	ctx := context.Background()
	i := 0
	var bad error
	step := func() {
		if _, err := rc.nc.Write(wire[i]); err != nil {
			bad = err
			return
		}
		f, err := s.ReadFrame(ctx)
		if err != nil {
			bad = err
			return
		}
		if !bytes.Equal(f.Payload, payload) || f.Timestamp != time.Duration(i)*20*time.Millisecond || f.Seq != uint64(i+1) {
			bad = fmt.Errorf("frame %d: %+v", i, f)
		}
		i++
	}
	step()
	if n := testing.AllocsPerRun(runs, step); n != 0 {
		t.Errorf("%v allocations per media message, want 0", n)
	}
	if bad != nil {
		t.Fatal(bad)
	}
	if st := s.Stats(); st.FramesReceived != uint64(i) || st.Malformed != 0 || st.Ignored != 0 || st.FramesLate != 0 {
		t.Errorf("stats %+v after %d frames", st, i)
	}
}

// BenchmarkServerReadMedia measures one 160-byte media message from the
// socket to ReadFrame on the server side: WebSocket frame, JSON, base64,
// queue. The client writes frames masked in advance. Each message is read
// before the next is written, so the read cadence is disabled: it would
// only add its pause to every message (BenchmarkRealtimeStreams measures
// it under a real-time load).
func BenchmarkServerReadMedia(b *testing.B) {
	const batch = 4096
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(twilio.FrameBytes)
	var rc *rawClient
	var s *twilio.Stream
	var wire [][]byte
	for i := 0; b.Loop(); i++ {
		if i%batch == 0 {
			// Timestamps must increase: a new stream every batch.
			b.StopTimer()
			if s != nil {
				_ = s.CloseNow()
			}
			rc, s, wire, _ = startRawStream(b, batch, &twilio.AcceptOptions{ReadCadence: -1})
			b.StartTimer()
		}
		if _, err := rc.nc.Write(wire[i%batch]); err != nil {
			b.Fatal(err)
		}
		if _, err := s.ReadFrame(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCloseBehindBlockedSendAudio checks Close stays bounded (a few
// seconds) when SendAudio is blocked on a peer that does not read, and that
// closing ends the blocked SendAudio.
func TestCloseBehindBlockedSendAudio(t *testing.T) {
	t.Parallel()
	// No idle timeout, which would also end the blocked write.
	rc, s, _, _ := startRawStream(t, 0, &twilio.AcceptOptions{IdleTimeout: -1})
	if tc, ok := rc.nc.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096) // the client never reads: fill up quickly
	}
	sent := make(chan error, 1)
	go func() {
		sent <- s.SendAudio(context.Background(), bytes.Repeat([]byte{0xFF}, 1<<24))
	}()
	// Wait until the writes stall; the test does not depend on how long.
	last := uint64(0)
	for {
		time.Sleep(20 * time.Millisecond)
		select {
		case err := <-sent:
			t.Fatalf("SendAudio of %d frames finished (%v) on a peer that does not read", s.Stats().MediaSent, err)
		default:
		}
		n := s.Stats().MediaSent
		if n > 0 && n == last {
			break
		}
		last = n
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		_ = rc.nc.Close() // the peer's end unblocks the write, and Close
		<-closed
		t.Fatal("Close did not return within 30 s while SendAudio was blocked")
	}
	if err := <-sent; err == nil {
		t.Error("blocked SendAudio returned nil after Close")
	}
	if _, err := s.ReadFrame(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadFrame after Close: %v", err)
	}
}

// BenchmarkServerReadMediaBatch is BenchmarkServerReadMedia with k media
// messages arriving together (one client write) before ReadFrame takes
// them: what a read cadence of k×20 ms makes of a real-time stream. k=1 is
// a stream read without a cadence, where each 20 ms message finds the
// reader parked: one wake-up of the reader from the network poller, a
// read(2) returning the message and one returning EAGAIN, and one wake-up
// of the ReadFrame caller per message. With k messages per wake-up those
// costs are shared by k. It reports the process CPU time per message
// (client write included) next to the wall time.
func BenchmarkServerReadMediaBatch(b *testing.B) {
	for _, k := range []int{1, 3, 4} {
		b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
			const batch = 4096
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(k) * twilio.FrameBytes)
			var rc *rawClient
			var s *twilio.Stream
			var wire [][]byte
			var buf []byte
			cpu0 := cpuTime()
			msgs := 0
			for i := 0; b.Loop(); i++ {
				if i%(batch/k) == 0 {
					b.StopTimer()
					if s != nil {
						_ = s.CloseNow()
					}
					rc, s, wire, _ = startRawStream(b, batch, &twilio.AcceptOptions{ReadCadence: -1})
					b.StartTimer()
				}
				buf = buf[:0]
				for j := range k {
					buf = append(buf, wire[(i%(batch/k))*k+j]...)
				}
				if _, err := rc.nc.Write(buf); err != nil {
					b.Fatal(err)
				}
				for range k {
					if _, err := s.ReadFrame(ctx); err != nil {
						b.Fatal(err)
					}
				}
				msgs += k
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(msgs), "cpu-ns/msg")
		})
	}
}

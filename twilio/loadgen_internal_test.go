//go:build unix

package twilio

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Environment of the load generator process (see BenchmarkRealtimeStreams).
const (
	loadGenEnv     = "VOICEGATE_TWILIO_LOADGEN"         // host:port of the server
	loadGenStreams = "VOICEGATE_TWILIO_LOADGEN_STREAMS" // number of streams
	loadGenSeconds = "VOICEGATE_TWILIO_LOADGEN_SECONDS" // media time per stream
	loadGenEpoch   = "VOICEGATE_TWILIO_LOADGEN_EPOCH"   // Unix ms of media.timestamp 0
)

// runLoadGenerator opens the streams, sends connected and start on each,
// then one 160-byte media message per stream every 20 ms of wall time
// (phases spread evenly over the 20 ms) for the configured time, then stop,
// and prints "sent <media messages>" on stdout. media.timestamp is the
// time at which the message was due, in milliseconds from the Unix time
// loadGenEpoch (media.timestamp is bounded far below Unix milliseconds), so
// that the server can measure the delivery lag. Frames are masked with the key 0
// (RFC 6455 allows any key), which makes masking free.
func runLoadGenerator(addr string) int {
	n, _ := strconv.Atoi(os.Getenv(loadGenStreams))
	secs, _ := strconv.Atoi(os.Getenv(loadGenSeconds))
	epoch, _ := strconv.ParseInt(os.Getenv(loadGenEpoch), 10, 64)
	if n <= 0 || secs <= 0 {
		fmt.Fprintln(os.Stderr, "loadgen: bad configuration")
		return 2
	}
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := dialLoad(addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			return 1
		}
		conns[i] = c
	}
	payload := base64.StdEncoding.EncodeToString(make([]byte, FrameBytes))
	const workers = 4
	frames := secs * 50
	t0 := time.Now().Add(100 * time.Millisecond).Truncate(time.Millisecond)
	var sent atomic.Uint64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			type st struct {
				c     net.Conn
				phase time.Duration
				k     int
			}
			var mine []*st
			for i := w; i < n; i += workers {
				mine = append(mine, &st{c: conns[i], phase: time.Duration(i) * 20 * time.Millisecond / time.Duration(n)})
			}
			for _, s := range mine {
				buf = loadText(buf[:0], `{"event":"connected","protocol":"Call","version":"1.0.0"}`)
				buf = loadText(buf, `{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{}},"streamSid":"MZ1"}`)
				if _, err := s.c.Write(buf); err != nil {
					fmt.Fprintln(os.Stderr, "loadgen:", err)
					return
				}
			}
			left := len(mine)
			for left > 0 {
				now := time.Now()
				for _, s := range mine {
					for s.k < frames {
						due := t0.Add(time.Duration(s.k)*20*time.Millisecond + s.phase)
						if due.After(now) {
							break
						}
						ms := due.UnixMilli() - epoch
						msg := fmt.Appendf(nil, `{"event":"media","sequenceNumber":"%d","media":{"track":"inbound","chunk":"%d","timestamp":"%d","payload":"%s"},"streamSid":"MZ1"}`, s.k+2, s.k+1, ms, payload)
						buf = loadText(buf[:0], string(msg))
						if _, err := s.c.Write(buf); err != nil {
							fmt.Fprintln(os.Stderr, "loadgen:", err)
							return
						}
						sent.Add(1)
						s.k++
						if s.k == frames {
							buf = loadText(buf[:0], `{"event":"stop","sequenceNumber":"0","streamSid":"MZ1","stop":{"accountSid":"AC1","callSid":"CA1"}}`)
							_, _ = s.c.Write(buf)
							left--
						}
					}
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("sent %d\n", sent.Load())
	for _, c := range conns {
		_ = c.Close()
	}
	return 0
}

// loadText appends a final text frame masked with the key 0.
func loadText(b []byte, msg string) []byte {
	b = append(b, 0x81)
	switch n := len(msg); {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, 0, 0, 0, 0)
	return append(b, msg...)
}

func dialLoad(addr string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	req := "GET /media HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 256), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, fmt.Errorf("handshake: %s", resp.Status)
	}
	return c, nil
}

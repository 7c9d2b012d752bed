package daspeak_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/twilio"
)

var memStreams = flag.Int("mem.streams", 1000, "Twilio streams in BenchmarkTwilioSessionMemory")

// wsText returns a masked WebSocket text frame (RFC 6455 §5.2) of p, with
// a zero masking key, as a client sends it.
func wsText(p []byte) []byte {
	out := []byte{0x81}
	switch {
	case len(p) < 126:
		out = append(out, 0x80|byte(len(p)))
	default:
		out = append(out, 0x80|126)
		out = binary.BigEndian.AppendUint16(out, uint16(len(p)))
	}
	out = append(out, 0, 0, 0, 0)
	return append(out, p...)
}

// rssBytes returns the process's resident set size.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// BenchmarkTwilioSessionMemory measures what a Twilio Media Stream with a
// verify session costs the server: -mem.streams streams (default 1,000)
// over loopback, each read by twilio.Accept's Stream and a daspeak verify
// session in its own goroutine, after each has received 5 s of a voice
// (the default AudioTotalDuration; the session is still collecting). The
// clients are raw TCP connections writing pre-built, pre-masked frames, so
// they add no heap of their own beyond their sockets. It reports heap
// (B/stream-heap), goroutine stacks (B/stream-stack) and resident memory
// (B/stream-rss) per stream.
//
//	go test -run '^$' -bench TwilioSessionMemory -benchtime 1x ./daspeak/
func BenchmarkTwilioSessionMemory(b *testing.B) {
	n := *memStreams
	const secs = 5
	fs := speechFrames(b)
	// The messages of each second of audio, the first with connected and
	// start. They are written a second at a time to every connection, so
	// no stream's queue (2 s) overflows.
	var chunks [][]byte
	var msgs []byte
	msgs = append(msgs, wsText([]byte(`{"event":"connected","protocol":"Call","version":"1.0.0"}`))...)
	msgs = append(msgs, wsText([]byte(`{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"MZ1"}`))...)
	for i := range secs * 50 {
		f := fs[i%len(fs)]
		m := fmt.Sprintf(`{"event":"media","sequenceNumber":"%d","media":{"track":"inbound","chunk":"%d","timestamp":"%d","payload":"%s"},"streamSid":"MZ1"}`,
			i+2, i+1, i*20, base64.StdEncoding.EncodeToString(f.Payload))
		msgs = append(msgs, wsText([]byte(m))...)
		if (i+1)%50 == 0 {
			chunks = append(chunks, msgs)
			msgs = nil
		}
	}

	for range b.N {
		var (
			mu       sync.Mutex
			sessions []*daspeak.Session
			streams  []*twilio.Stream
			hold     = make(chan struct{})
			wg       sync.WaitGroup
		)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			st, err := twilio.Accept(w, r, &twilio.AcceptOptions{InsecureSkipVerify: true})
			if err != nil {
				b.Error(err)
				return
			}
			s, err := daspeak.Verify(st, &fakeEngine{authenticity: 1, score: 1}, "cred",
				&daspeak.Config{ModelHash: "m", ProgressInterval: -1})
			if err != nil {
				b.Error(err)
				return
			}
			mu.Lock()
			sessions, streams = append(sessions, s), append(streams, st)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithCancel(context.Background())
				go func() { <-hold; cancel() }()
				for {
					if _, err := s.Next(ctx); err != nil {
						return
					}
				}
			}()
		}))
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		rss0 := rssBytes()
		addr := srv.Listener.Addr().String()
		var conns []net.Conn
		for i := range n {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
			key := base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%016d", i)))
			fmt.Fprintf(c, "GET /media HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", addr, key)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				b.Fatalf("upgrade %d: %v %v", i, resp, err)
			}
		}
		for _, chunk := range chunks {
			for _, c := range conns {
				if _, err := c.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			time.Sleep(300 * time.Millisecond)
		}
		// Wait until every session has read its audio.
		deadline := time.Now().Add(time.Duration(n/20+10) * time.Second)
		for {
			done := 0
			mu.Lock()
			for _, s := range sessions {
				if s.Stats().Received >= secs*time.Second {
					done++
				}
			}
			mu.Unlock()
			if done == n {
				break
			}
			if time.Now().After(deadline) {
				mu.Lock()
				st := sessions[0].Stats()
				mu.Unlock()
				b.Fatalf("%d of %d sessions read their audio; one: %+v, stream %+v", done, n, st, streams[0].Stats())
			}
			time.Sleep(50 * time.Millisecond)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		rss := rssBytes() - rss0
		heap := float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
		stack := float64(after.StackInuse-before.StackInuse) / float64(n)
		b.ReportMetric(heap, "B/stream-heap")
		b.ReportMetric(stack, "B/stream-stack")
		b.ReportMetric(float64(rss)/float64(n), "B/stream-rss")
		var received time.Duration
		mu.Lock()
		for _, s := range sessions {
			received += s.Stats().Received
		}
		mu.Unlock()
		b.Logf("%d streams with a verify session after %.1f s of audio each: heap %.0f B, stacks %.0f B, RSS %.0f B per stream (loopback clients included in RSS)",
			n, received.Seconds()/float64(n), heap, stack, float64(rss)/float64(n))
		close(hold)
		for _, c := range conns {
			c.Close()
		}
		mu.Lock()
		for _, st := range streams {
			st.CloseNow()
		}
		mu.Unlock()
		wg.Wait()
		srv.Close()
	}
}

//go:build unix

package twilio_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/wsconn"
	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLoopback1000 runs 1,000 concurrent simulated Twilio streams at
// real-time pace into one server on 127.0.0.1, each read by its own
// consumer; b.N is the number of 20 ms frames per stream. It reports the
// process CPU time per media message (simulator and server together, so
// an upper bound for the server side), and the frames dropped, late or
// missing. Allocations are the whole process's (simulator included) per
// b.N step, that is per 1,000 media messages. Run it with a fixed count,
// e.g.
//
//	go test -run '^$' -bench Loopback1000 -benchtime 150x ./twilio/
func BenchmarkLoopback1000(b *testing.B) { loopback(b, true) }

// BenchmarkLoopback1000Baseline is BenchmarkLoopback1000 with a server that
// upgrades and discards messages without twilio.Stream, on the same
// WebSocket implementation: the difference between the two is the Stream's
// own cost (parsing, queueing, handing frames to a reader goroutine).
func BenchmarkLoopback1000Baseline(b *testing.B) { loopback(b, false) }

func loopback(b *testing.B, useStream bool) {
	const streams = 1000
	var (
		dropped, late, gaps, received atomic.Uint64
		wg                            sync.WaitGroup
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !useStream {
			if err := twilio.VerifyUpgrade(r, &twilio.AcceptOptions{PublicURL: "ws://" + r.Host + "/media", AuthTokens: []string{testToken}}); err != nil {
				return
			}
			// The same WebSocket implementation as twilio.Accept.
			c, err := wsconn.Accept(w, r, nil)
			if err != nil {
				return
			}
			c.SetReadLimit(twilio.DefaultReadLimit)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.CloseNow()
				for {
					if _, _, err := c.ReadMessage(); err != nil {
						return
					}
					received.Add(1)
				}
			}()
			return
		}
		s, err := twilio.Accept(w, r, &twilio.AcceptOptions{PublicURL: "ws://" + r.Host + "/media", AuthTokens: []string{testToken}})
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.CloseNow()
			ctx := context.Background()
			for {
				if _, err := s.ReadFrame(ctx); err != nil {
					if err != io.EOF {
						b.Error(err)
					}
					break
				}
			}
			st := s.Stats()
			dropped.Add(st.FramesDropped)
			late.Add(st.FramesLate)
			gaps.Add(st.Gaps)
			received.Add(st.FramesReceived)
		}()
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/media"
	audio := make([]byte, b.N*twilio.FrameBytes)
	for i := range audio {
		audio[i] = byte(i)
	}

	var sent atomic.Uint64
	var clients sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, wall0 := cpuTime(), time.Now()
	for i := range streams {
		clients.Add(1)
		go func() {
			defer clients.Done()
			time.Sleep(time.Duration(i) * 20 * time.Millisecond / streams) // spread the frame phases
			res, err := twiliotest.PlayAudio(context.Background(), url, audio, nil, &twiliotest.Options{AuthToken: testToken})
			if err != nil {
				b.Error(err)
				return
			}
			sent.Add(uint64(res.MediaSent))
		}()
	}
	clients.Wait()
	wg.Wait()
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	b.StopTimer()
	msgs := float64(sent.Load())
	b.ReportMetric(float64(cpu.Microseconds())/msgs, "cpu-µs/msg")
	b.ReportMetric(float64(dropped.Load()), "dropped")
	b.ReportMetric(float64(late.Load()+gaps.Load()), "late+gaps")
	if useStream {
		b.ReportMetric(msgs-float64(received.Load()), "missing")
	}
	b.ReportMetric(float64(cpu)/float64(wall), "cores")
}

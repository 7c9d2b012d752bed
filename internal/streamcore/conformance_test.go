package streamcore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/twilio"
)

// One behavioural table, run against every live stream of the module: the
// FrameReader/Stream contract is written once in package voicegate, and
// twilio.Stream and audiohook.Session must behave the same.

type commonStats struct {
	FramesReceived, FramesDropped, Gaps, SilenceFrames uint64
	GapTime                                            time.Duration
	MaxQueueDepth                                      int
}

// peer drives one protocol's client side with exact messages.
type peer interface {
	// frame sends one 20 ms frame of 160 μ-law bytes, all b.
	frame(b byte)
	// skip makes the next frame start d later than the last one ended.
	skip(d time.Duration)
	// endClean ends the stream the protocol's clean way.
	endClean()
	// drop cuts the connection without any goodbye.
	drop()
}

type options struct {
	queue int // frames the stream may queue
	fill  bool
}

type harness struct {
	name  string
	start func(t *testing.T, o options) (peer, voicegate.Stream, func() commonStats)
}

var harnesses = []harness{
	{"twilio", startTwilio},
	{"audiohook", startAudioHook},
}

func serve(t *testing.T, accept func(w http.ResponseWriter, r *http.Request) voicegate.Stream) (string, chan voicegate.Stream) {
	ch := make(chan voicegate.Stream, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := accept(w, r); s != nil {
			ch <- s
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), ch
}

func dial(t *testing.T, url string, h http.Header, answer func(string)) (*websocket.Conn, chan string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	texts := make(chan string, 64)
	go func() {
		defer close(texts)
		for {
			typ, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if typ == websocket.MessageText {
				if answer != nil {
					answer(string(b))
				}
				select {
				case texts <- string(b):
				default:
				}
			}
		}
	}()
	return c, texts
}

// --- Twilio ---

type twilioPeer struct {
	t    *testing.T
	c    *websocket.Conn
	ts   int64 // ms of the next frame
	seq  int
	send func(string)
}

func startTwilio(t *testing.T, o options) (peer, voicegate.Stream, func() commonStats) {
	url, ch := serve(t, func(w http.ResponseWriter, r *http.Request) voicegate.Stream {
		s, err := twilio.Accept(w, r, &twilio.AcceptOptions{InsecureSkipVerify: true, QueueFrames: o.queue / 2, FillGaps: o.fill})
		if err != nil {
			return nil
		}
		return s
	})
	c, _ := dial(t, url, nil, nil)
	p := &twilioPeer{t: t, c: c, ts: 155}
	p.send = func(m string) {
		if err := c.Write(context.Background(), websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	p.send(`{"event":"connected","protocol":"Call","version":"1.0.0"}`)
	p.send(`{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{}},"streamSid":"MZ1"}`)
	s := (<-ch).(*twilio.Stream)
	return p, s, func() commonStats {
		st := s.Stats()
		return commonStats{st.FramesReceived, st.FramesDropped, st.Gaps, st.SilenceFrames, st.GapTime, st.MaxQueueDepth}
	}
}

func (p *twilioPeer) frame(b byte) {
	p.seq++
	payload := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 160))
	p.send(fmt.Sprintf(`{"event":"media","sequenceNumber":"%d","media":{"track":"inbound","chunk":"%d","timestamp":"%d","payload":"%s"},"streamSid":"MZ1"}`,
		p.seq+1, p.seq, p.ts, payload))
	p.ts += 20
}

func (p *twilioPeer) skip(d time.Duration) { p.ts += d.Milliseconds() }

func (p *twilioPeer) endClean() {
	p.send(`{"event":"stop","sequenceNumber":"999","streamSid":"MZ1","stop":{"accountSid":"AC1","callSid":"CA1"}}`)
	p.c.Close(websocket.StatusNormalClosure, "")
}

func (p *twilioPeer) drop() { p.c.CloseNow() }

// --- AudioHook ---

type ahPeer struct {
	mu    sync.Mutex
	t     *testing.T
	c     *websocket.Conn
	texts chan string
	id    string
	seq   int
	pos   time.Duration
}

func uuid() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func startAudioHook(t *testing.T, o options) (peer, voicegate.Stream, func() commonStats) {
	url, ch := serve(t, func(w http.ResponseWriter, r *http.Request) voicegate.Stream {
		s, err := audiohook.Accept(w, r, &audiohook.ServerOptions{InsecureSkipAuth: true, BufferFrames: o.queue, Buffer: time.Hour, FillGaps: o.fill})
		if err != nil {
			return nil
		}
		return s
	})
	org := uuid()
	p := &ahPeer{t: t, id: uuid()}
	h := http.Header{}
	h.Set(wire.HeaderSessionID, p.id)
	h.Set(wire.HeaderOrganizationID, org)
	h.Set(wire.HeaderCorrelationID, uuid())
	h.Set(wire.HeaderAPIKey, "key")
	// Answer disconnect with close, as the Genesys client does.
	p.c, p.texts = dial(t, url, h, func(m string) {
		if strings.Contains(m, `"type":"disconnect"`) {
			p.text("close", `{"reason":"disconnected"}`)
		}
	})
	s := (<-ch).(*audiohook.Session)
	p.text("open", fmt.Sprintf(`{"organizationId":%q,"conversationId":%q,"participant":{"id":%q,"ani":"+1","aniName":"n","dnis":"+2"},"media":[{"type":"audio","format":"PCMU","channels":["external"],"rate":8000}],"language":"en-US"}`,
		org, uuid(), uuid()))
	p.expect("opened")
	return p, s, func() commonStats {
		st := s.Stats()
		return commonStats{st.FramesReceived, st.FramesDropped, st.Gaps, st.SilenceFrames, st.GapTime, st.MaxQueueDepth}
	}
}

func (p *ahPeer) text(typ, params string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	m := fmt.Sprintf(`{"version":"2","type":%q,"seq":%d,"serverseq":0,"position":"PT%gS","id":%q,"parameters":%s}`,
		typ, p.seq, p.pos.Seconds(), p.id, params)
	if err := p.c.Write(context.Background(), websocket.MessageText, []byte(m)); err != nil {
		p.t.Error(err)
	}
}

func (p *ahPeer) expect(typ string) {
	p.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-p.texts:
			if !ok {
				p.t.Fatalf("connection ended before %s", typ)
			}
			if strings.Contains(m, `"type":"`+typ+`"`) {
				return
			}
		case <-timeout:
			p.t.Fatalf("no %s", typ)
		}
	}
}

func (p *ahPeer) frame(b byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.c.Write(context.Background(), websocket.MessageBinary, bytes.Repeat([]byte{b}, 160)); err != nil {
		p.t.Fatal(err)
	}
	p.pos += 20 * time.Millisecond
}

func (p *ahPeer) skip(d time.Duration) {
	p.mu.Lock()
	p.pos += d
	p.mu.Unlock()
	p.text("discarded", fmt.Sprintf(`{"start":"PT%gS","discarded":"PT%gS"}`, (p.pos-d).Seconds(), d.Seconds()))
}

func (p *ahPeer) endClean() {
	p.text("close", `{"reason":"end"}`)
	p.expect("closed")
	p.c.Close(websocket.StatusNormalClosure, "")
}

func (p *ahPeer) drop() { p.c.CloseNow() }

// --- the table ---

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func readUntilEnd(s voicegate.Stream) ([]voicegate.Frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []voicegate.Frame
	for {
		f, err := s.ReadFrame(ctx)
		if err != nil {
			return out, err
		}
		out = append(out, f.Clone())
	}
}

func isStreamError(err error) bool {
	var se *voicegate.StreamError
	return errors.As(err, &se)
}

func TestStreamContract(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name string
		opts options
		run  func(t *testing.T, p peer, s voicegate.Stream, stats func() commonStats)
	}{
		{"queue overflow drops oldest", options{queue: 10}, func(t *testing.T, p peer, s voicegate.Stream, stats func() commonStats) {
			for i := 1; i <= 30; i++ {
				p.frame(byte(i))
			}
			waitFor(t, "30 frames", func() bool { return stats().FramesReceived == 30 })
			p.endClean()
			frames, err := readUntilEnd(s)
			if err != io.EOF || len(frames) != 10 {
				t.Fatalf("%d frames, %v; want the newest 10 then io.EOF", len(frames), err)
			}
			for i, f := range frames {
				if f.Seq != uint64(21+i) || f.Payload[0] != byte(21+i) || len(f.Payload) != 160 {
					t.Fatalf("frame %d: seq %d payload %#x", i, f.Seq, f.Payload[0])
				}
			}
			if st := stats(); st.FramesDropped != 20 || st.MaxQueueDepth != 10 {
				t.Errorf("stats %+v", st)
			}
		}},
		{"gap counted, seq skips", options{queue: 100}, func(t *testing.T, p peer, s voicegate.Stream, stats func() commonStats) {
			p.frame(1)
			p.frame(2)
			p.skip(80 * ms)
			p.frame(3)
			p.endClean()
			frames, err := readUntilEnd(s)
			if err != io.EOF || len(frames) != 3 {
				t.Fatalf("%d frames, %v", len(frames), err)
			}
			if f := frames[2]; f.Timestamp != 120*ms || f.Seq != 7 {
				t.Errorf("frame after the gap: ts %v seq %d; want 120ms seq 7", f.Timestamp, f.Seq)
			}
			if st := stats(); st.Gaps != 1 || st.GapTime != 80*ms || st.SilenceFrames != 0 {
				t.Errorf("stats %+v", st)
			}
		}},
		{"gap filled with silence", options{queue: 100, fill: true}, func(t *testing.T, p peer, s voicegate.Stream, stats func() commonStats) {
			p.frame(1)
			p.skip(80 * ms)
			p.frame(3)
			p.endClean()
			frames, err := readUntilEnd(s)
			if err != io.EOF || len(frames) != 6 {
				t.Fatalf("%d frames, %v; want 1 + 4 silence + 1", len(frames), err)
			}
			for i, f := range frames {
				if f.Timestamp != time.Duration(i)*20*ms || f.Seq != uint64(i+1) {
					t.Errorf("frame %d: ts %v seq %d", i, f.Timestamp, f.Seq)
				}
				if i >= 1 && i <= 4 && !bytes.Equal(f.Payload, bytes.Repeat([]byte{0xFF}, 160)) {
					t.Errorf("frame %d is not μ-law silence", i)
				}
			}
			if st := stats(); st.Gaps != 1 || st.GapTime != 80*ms || st.SilenceFrames != 4 {
				t.Errorf("stats %+v", st)
			}
		}},
		{"gap over MaxGapFill not filled", options{queue: 100, fill: true}, func(t *testing.T, p peer, s voicegate.Stream, stats func() commonStats) {
			p.frame(1)
			p.skip(voicegate.MaxGapFill + 20*ms)
			p.frame(2)
			p.endClean()
			frames, err := readUntilEnd(s)
			if err != io.EOF || len(frames) != 2 {
				t.Fatalf("%d frames, %v", len(frames), err)
			}
			if st := stats(); st.SilenceFrames != 0 || st.Gaps != 1 {
				t.Errorf("stats %+v", st)
			}
		}},
		{"clean end is io.EOF", options{queue: 100}, func(t *testing.T, p peer, s voicegate.Stream, stats func() commonStats) {
			p.frame(1)
			p.endClean()
			frames, err := readUntilEnd(s)
			if err != io.EOF || len(frames) != 1 {
				t.Fatalf("%d frames, %v", len(frames), err)
			}
			if _, err := s.ReadFrame(context.Background()); err != io.EOF {
				t.Errorf("second read after the end: %v", err)
			}
			<-s.Done()
			if s.Err() != nil {
				t.Errorf("Err after a clean end = %v", s.Err())
			}
		}},
		{"abnormal end is a StreamError after the queued frames", options{queue: 100}, func(t *testing.T, p peer, s voicegate.Stream, stats func() commonStats) {
			p.frame(1)
			p.frame(2)
			waitFor(t, "2 frames", func() bool { return stats().FramesReceived == 2 })
			p.drop()
			frames, err := readUntilEnd(s)
			if !isStreamError(err) || len(frames) != 2 {
				t.Fatalf("%d frames, %v; want 2 then a *voicegate.StreamError", len(frames), err)
			}
			<-s.Done()
			if !isStreamError(s.Err()) {
				t.Errorf("Err = %v", s.Err())
			}
		}},
		{"concurrent readers share the frames", options{queue: 1000}, func(t *testing.T, p peer, s voicegate.Stream, stats func() commonStats) {
			var mu sync.Mutex
			seen := map[uint64]int{}
			var wg sync.WaitGroup
			ends := make(chan error, 4)
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						f, err := s.ReadFrame(context.Background())
						if err != nil {
							ends <- err
							return
						}
						mu.Lock()
						seen[f.Seq]++
						mu.Unlock()
					}
				}()
			}
			for i := range 200 {
				p.frame(byte(i))
			}
			p.endClean()
			wg.Wait()
			close(ends)
			for err := range ends {
				if err != io.EOF {
					t.Errorf("reader ended with %v", err)
				}
			}
			if len(seen) != 200 {
				t.Fatalf("%d distinct frames read, want 200", len(seen))
			}
			for seq, n := range seen {
				if n != 1 {
					t.Fatalf("frame %d read %d times", seq, n)
				}
			}
		}},
		{"cancelled read leaves the stream usable", options{queue: 100}, func(t *testing.T, p peer, s voicegate.Stream, stats func() commonStats) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*ms)
			defer cancel()
			if _, err := s.ReadFrame(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("read on an idle stream: %v", err)
			}
			p.frame(7)
			p.endClean()
			frames, err := readUntilEnd(s)
			if err != io.EOF || len(frames) != 1 || frames[0].Payload[0] != 7 {
				t.Fatalf("%d frames, %v", len(frames), err)
			}
		}},
		{"Close while reading", options{queue: 100}, func(t *testing.T, p peer, s voicegate.Stream, stats func() commonStats) {
			p.frame(1)
			waitFor(t, "1 frame", func() bool { return stats().FramesReceived == 1 })
			if _, err := s.ReadFrame(context.Background()); err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() { _, err := s.ReadFrame(context.Background()); errc <- err }()
			time.Sleep(10 * ms) // let it block; the outcome does not depend on it
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := <-errc; !errors.Is(err, net.ErrClosed) {
				t.Errorf("blocked ReadFrame returned %v", err)
			}
			if _, err := s.ReadFrame(context.Background()); !errors.Is(err, net.ErrClosed) {
				t.Errorf("ReadFrame after Close: %v", err)
			}
			if err := s.Close(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("second Close: %v", err)
			}
			if err := s.CloseNow(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("CloseNow after Close: %v", err)
			}
			select {
			case <-s.Done():
			default:
				t.Error("Done open after Close returned")
			}
			if !errors.Is(s.Err(), net.ErrClosed) {
				t.Errorf("Err = %v", s.Err())
			}
		}},
	}
	for _, h := range harnesses {
		for _, tc := range cases {
			t.Run(h.name+"/"+tc.name, func(t *testing.T) {
				p, s, stats := h.start(t, tc.opts)
				defer s.CloseNow()
				tc.run(t, p, s, stats)
			})
		}
	}
}

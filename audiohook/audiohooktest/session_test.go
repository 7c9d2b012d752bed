package audiohooktest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/codec"
)

// TestInteropStartPausedAndUpdate: the server opens paused, the client
// confirms with paused and sends no audio until resume; the gap shows in
// the media time; update changes the language and is answered with updated.
func TestInteropStartPausedAndUpdate(t *testing.T) {
	// The server resumes once the client answered paused and pausedFrames
	// frames of media time ran; the client's stream is held at that media
	// time until the resume is handled, so the gap and the frames that
	// follow are exact.
	const (
		pausedFrames = 5
		toneFrames   = 30 // 600 ms in 20 ms frames
	)
	acks := newAnswerCounter()
	opts := signedServerOptions(t)
	opts.StartPaused = true
	opts.OnMessage = acks.onMessage
	reached := make(chan struct{})
	type result struct {
		frames []voicegate.Frame
		lang   string
		end    error
		gap    time.Duration
	}
	res := make(chan result, 1)
	url := testServer(t, opts, func(s *audiohook.Session) {
		ctx := ctxT(t)
		var r result
		if _, r.end = s.Open(ctx); r.end != nil {
			res <- r
			return
		}
		// paused must arrive before any audio: the server would answer
		// audio while paused with disconnect "error".
		if r.end = acks.waitPaused(ctx, s, 1); r.end == nil {
			select {
			case <-reached:
			case <-ctx.Done():
				r.end = ctx.Err()
			}
		}
		if r.end == nil {
			r.end = s.Resume(ctx)
		}
		if r.end != nil {
			res <- r
			return
		}
		for {
			f, err := s.ReadFrame(ctx)
			if err != nil {
				r.end = err
				break
			}
			r.frames = append(r.frames, f.Clone())
		}
		r.lang = s.Info().Params.Language
		r.gap = s.Stats().GapTime
		res <- r
	})
	ctx := ctxT(t)
	c, err := Dial(ctx, url, signedDial(t, &DialOptions{Language: "en-US"}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Opened().StartPaused || !c.Paused() {
		t.Fatal("client did not start paused")
	}
	resumed := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		// Wait for resume, then change the language.
		m, err := c.Next(ctx)
		close(resumed)
		if err == nil && m.Type != wire.TypeResume {
			err = fmt.Errorf("first message %s, want resume", m.Type)
		}
		if err == nil {
			err = c.Update(ctx, "es-US")
		}
		first <- err
	}()
	gate := &pausedGate{src: ToneSource(toneFrames*20*time.Millisecond, 440), c: c, k: pausedFrames, reached: reached, release: resumed}
	if err := c.Stream(ctx, gate, &StreamOptions{Chunk: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if m, err := c.Next(ctx); err != nil || m.Type != wire.TypeUpdated {
		t.Fatalf("next: %v %v, want updated", m, err)
	}
	if err := c.Close(ctx, ""); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if !errors.Is(r.end, io.EOF) {
		t.Fatalf("end %v", r.end)
	}
	if r.lang != "es-US" {
		t.Fatalf("language %q after update", r.lang)
	}
	if len(r.frames) != toneFrames-pausedFrames {
		t.Fatalf("%d frames, want %d: audio during the pause was not dropped exactly", len(r.frames), toneFrames-pausedFrames)
	}
	// The first frame after resume sits after the paused gap.
	if r.gap != pausedFrames*20*time.Millisecond || r.frames[0].Timestamp != r.gap {
		t.Fatalf("first frame at %v, gap %v", r.frames[0].Timestamp, r.gap)
	}
	for i := 1; i < len(r.frames); i++ {
		if r.frames[i].Timestamp != r.frames[i-1].End() {
			t.Fatalf("frame %d at %v, previous ends %v", i, r.frames[i].Timestamp, r.frames[i-1].End())
		}
	}
}

// TestSessionBoundedQueue: a reader that falls behind loses the oldest
// frames, counted in Stats, and sees the loss as a Seq gap.
func TestSessionBoundedQueue(t *testing.T) {
	opts := signedServerOptions(t)
	opts.BufferFrames = 4
	type result struct {
		frames []voicegate.Frame
		st     audiohook.Stats
	}
	res := make(chan result, 1)
	url := testServer(t, opts, func(s *audiohook.Session) {
		ctx := ctxT(t)
		var r result
		if _, err := s.Open(ctx); err != nil {
			res <- r
			return
		}
		<-s.Done() // read nothing until the client has gone
		for {
			f, err := s.ReadFrame(ctx)
			if err != nil {
				break
			}
			r.frames = append(r.frames, f.Clone())
		}
		r.st = s.Stats()
		res <- r
	})
	ctx := ctxT(t)
	c, err := Dial(ctx, url, signedDial(t, &DialOptions{Media: []wire.MediaParameter{wire.MediaPCMUExternal}}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stream(ctx, ToneSource(time.Second), &StreamOptions{Fast: true, Chunk: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx, ""); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.st.FramesReceived != 20 || r.st.FramesDropped != 16 || r.st.FramesRead != 4 || r.st.MaxQueueDepth != 4 || len(r.frames) != 4 {
		t.Fatalf("stats %+v, %d frames read", r.st, len(r.frames))
	}
	if r.frames[0].Seq != 17 || r.frames[0].Timestamp != 800*time.Millisecond || r.frames[3].Seq != 20 {
		t.Fatalf("kept frames %d at %v .. %d, want the newest (17..20)", r.frames[0].Seq, r.frames[0].Timestamp, r.frames[3].Seq)
	}
}

// TestClientErrorReachesSession: an error message from the client does not
// end the session and is kept for the application.
func TestClientErrorReachesSession(t *testing.T) {
	res := make(chan *audiohook.PeerError, 1)
	url := testServer(t, signedServerOptions(t), func(s *audiohook.Session) {
		ctx := ctxT(t)
		_, _ = s.Open(ctx)
		for {
			if _, err := s.ReadFrame(ctx); err != nil {
				break
			}
		}
		res <- s.LastPeerError()
	})
	ctx := ctxT(t)
	c, err := Dial(ctx, url, signedDial(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendError(ctx, 429, "slow down"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ping(ctx); err != nil {
		t.Fatalf("session ended by the error message: %v", err)
	}
	if err := c.Close(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if pe := <-res; pe == nil || pe.Code != 429 || pe.Message != "slow down" {
		t.Fatalf("LastPeerError %+v", pe)
	}
}

// TestClientPongTimeout: a server that never answers the automatic ping
// gets error 408 and close "error", and the client reports it.
func TestClientPongTimeout(t *testing.T) {
	url, got := fakeServer(t, func(id string) []string {
		return []string{string(appendServerMessage(nil, wire.TypeOpened, id, 1, 1, []byte(`{"media":`+stereoPCMU+`}`)))}
	})
	ctx := ctxT(t)
	c, err := Dial(ctx, url, &DialOptions{PingInterval: 100 * time.Millisecond, CloseTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var pe *audiohook.ProtocolError
	if err := c.Stream(ctx, ToneSource(10*time.Second), &StreamOptions{Chunk: 100 * time.Millisecond}); !errors.As(err, &pe) || pe.Code != 408 {
		t.Fatalf("stream: %v, want protocol error 408", err)
	}
	if err := c.Close(ctx, ""); !errors.As(err, &pe) || pe.Code != 408 {
		t.Fatalf("close: %v, want protocol error 408", err)
	}
	var seen []string
	for _, m := range <-got {
		if m != "invalid" { // audio frames
			seen = append(seen, m)
		}
	}
	// ping (first one 1 s after opened), then error 408 and close error.
	if len(seen) < 3 || !strings.HasPrefix(seen[0], "ping:") || !strings.HasPrefix(seen[1], `error:{"code":408`) || seen[2] != `close:{"reason":"error"}` {
		t.Fatalf("client sent %v", seen)
	}
}

// TestRecordingL16Mono: the WAV file takes the negotiated format (here
// L16, agent channel only) and holds exactly the audio the session read.
func TestRecordingL16Mono(t *testing.T) {
	dir := t.TempDir()
	opts := signedServerOptions(t)
	opts.Recorder = audiohook.DirSink(dir)
	got := make(chan []byte, 1)
	url := testServer(t, opts, func(s *audiohook.Session) {
		ctx := ctxT(t)
		var pcm []byte
		if _, err := s.Open(ctx); err == nil {
			for {
				f, err := s.ReadFrame(ctx)
				if err != nil {
					break
				}
				pcm = append(pcm, f.Payload...)
			}
		}
		<-s.Done() // the recorder is closed with the session
		got <- pcm
	})
	ctx := ctxT(t)
	c, err := Dial(ctx, url, signedDial(t, &DialOptions{Media: []wire.MediaParameter{wire.MediaL16Internal}}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stream(ctx, ToneSource(300*time.Millisecond, 440, 660), &StreamOptions{Fast: true, Chunk: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx, ""); err != nil {
		t.Fatal(err)
	}
	pcm := <-got
	b, err := os.ReadFile(filepath.Join(dir, c.ID()+".wav"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := codec.ParseWAV(b)
	if err != nil {
		t.Fatal(err)
	}
	if w.Format.Encoding != voicegate.L16 || w.Format.Channels != 1 || w.Format.SampleRate != 8000 {
		t.Fatalf("format %+v", w.Format)
	}
	if len(pcm) != 4800 || !bytes.Equal(w.Data, pcm) {
		t.Fatalf("wav holds %d bytes, session read %d", len(w.Data), len(pcm))
	}
}

// TestClientOpenTimeout: a server that never answers open gets error 408
// and close "error"; Dial reports the timeout.
func TestClientOpenTimeout(t *testing.T) {
	url, got := fakeServer(t, func(id string) []string { return nil })
	_, err := Dial(ctxT(t), url, &DialOptions{OpenTimeout: 100 * time.Millisecond, CloseTimeout: 2 * time.Second})
	var pe *audiohook.ProtocolError
	if !errors.As(err, &pe) || pe.Code != 408 || !strings.Contains(pe.Info, "Open transaction timeout") {
		t.Fatalf("Dial: %v, want protocol error 408", err)
	}
	if seen := <-got; len(seen) != 2 || !strings.HasPrefix(seen[0], `error:{"code":408`) || seen[1] != `close:{"reason":"error"}` {
		t.Fatalf("client sent %v", seen)
	}
}

// A server that never answers close: Close gives up after CloseTimeout,
// tells the server with error 408 and returns ErrTimeout.
func TestClientCloseTimeout(t *testing.T) {
	got := make(chan []string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := ctxT(t)
		id := r.Header.Get(wire.HeaderSessionID)
		if _, _, err := c.Read(ctx); err != nil {
			return
		}
		_ = c.Write(ctx, websocket.MessageText, appendServerMessage(nil, wire.TypeOpened, id, 1, 1, []byte(`{"media":`+stereoPCMU+`}`)))
		var seen []string
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				break
			}
			if m, err := wire.ParseClientMessage(b); err == nil {
				seen = append(seen, m.Type+":"+string(m.Parameters))
			}
		}
		got <- seen
	}))
	t.Cleanup(srv.Close)
	c, err := Dial(ctxT(t), "ws"+strings.TrimPrefix(srv.URL, "http"), &DialOptions{PingInterval: -1, CloseTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctxT(t), ""); !errors.Is(err, audiohook.ErrTimeout) {
		t.Fatalf("Close: %v, want ErrTimeout", err)
	}
	seen := <-got
	if len(seen) != 2 || seen[0] != `close:{"reason":"end"}` || !strings.HasPrefix(seen[1], `error:{"code":408`) {
		t.Fatalf("client sent %v, want close then error 408", seen)
	}
}

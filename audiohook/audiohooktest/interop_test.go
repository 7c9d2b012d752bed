package audiohooktest

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/codec"
)

type serverResult struct {
	info   *audiohook.OpenInfo
	frames []voicegate.Frame
	end    error
	stats  audiohook.Stats
	probe  bool
	reason string
}

// readAll drains a session into a result.
func readAll(t testing.TB, s *audiohook.Session, res chan<- serverResult) {
	var r serverResult
	ctx := ctxT(t)
	r.info, r.end = s.Open(ctx)
	if r.end == nil {
		for {
			f, err := s.ReadFrame(ctx)
			if err != nil {
				r.end = err
				break
			}
			r.frames = append(r.frames, f.Clone())
		}
	}
	r.stats = s.Stats()
	r.probe = s.IsProbe()
	r.reason = s.CloseReason()
	res <- r
}

func TestInteropFormats(t *testing.T) {
	formats := []wire.MediaParameter{wire.MediaPCMUStereo, wire.MediaPCMUExternal, wire.MediaPCMUInternal, wire.MediaL16Stereo, wire.MediaL16External, wire.MediaL16Internal}
	for _, media := range formats {
		t.Run(media.Format+"-"+joinChannels(media.Channels), func(t *testing.T) {
			res := make(chan serverResult, 1)
			url := testServer(t, signedServerOptions(t), func(s *audiohook.Session) { readAll(t, s, res) })
			ctx := ctxT(t)
			c, err := Dial(ctx, url, signedDial(t, &DialOptions{Media: []wire.MediaParameter{media}}))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Media(); got == nil || !got.Equal(media) {
				t.Fatalf("selected %+v, want %+v", got, media)
			}
			if err := c.Stream(ctx, ToneSource(time.Second, 440, 1000), &StreamOptions{Fast: true, Chunk: 100 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(ctx, ""); err != nil {
				t.Fatal(err)
			}
			r := <-res
			if !errors.Is(r.end, io.EOF) {
				t.Fatalf("end %v, want io.EOF", r.end)
			}
			if r.reason != wire.CloseEnd {
				t.Fatalf("close reason %q", r.reason)
			}
			if len(r.frames) != 10 {
				t.Fatalf("%d frames, want 10", len(r.frames))
			}
			var total time.Duration
			for i, f := range r.frames {
				if f.Timestamp != total || f.Seq != uint64(i+1) || f.Channels != len(media.Channels) || f.SampleRate != 8000 {
					t.Fatalf("frame %d: %+v", i, f)
				}
				for k, ch := range media.Channels {
					want := voicegate.Agent
					if ch == wire.ChannelExternal {
						want = voicegate.Customer
					}
					if f.Parties[k] != want {
						t.Fatalf("frame %d channel %d party %v want %v", i, k, f.Parties[k], want)
					}
				}
				wantEnc := voicegate.PCMU
				if media.Format == wire.FormatL16 {
					wantEnc = voicegate.L16
				}
				if f.Encoding != wantEnc {
					t.Fatal("encoding", f.Encoding)
				}
				total = f.End()
			}
			if total != time.Second {
				t.Fatalf("total %v", total)
			}
			// Check the customer channel carries the 440 Hz tone (not the agent's).
			f := r.frames[3]
			ch := f.Channel(voicegate.Customer)
			if ch >= 0 {
				want := int16(8000 * sin(2*3.141592653589793*440*float64(300*8+5)/8000))
				got := sampleAt(f, ch, 5)
				if d := int(got) - int(want); d > 400 || d < -400 {
					t.Fatalf("customer sample %d, want about %d", got, want)
				}
			}
		})
	}
}

func sampleAt(f voicegate.Frame, ch, i int) int16 {
	idx := i*f.Channels + ch
	if f.Encoding == voicegate.L16 {
		return int16(binary.LittleEndian.Uint16(f.Payload[idx*2:]))
	}
	return codec.DecodeULawSample(f.Payload[idx])
}

func joinChannels(cs []string) string {
	s := ""
	for _, c := range cs {
		s += c[:3]
	}
	return s
}

func TestInteropPauseResumeEventsDisconnect(t *testing.T) {
	res := make(chan serverResult, 1)
	var transcript = wire.Transcript{ID: NewUUID(), ChannelID: 0, IsFinal: true, Offset: 0, Duration: wire.Duration(time.Second),
		Alternatives: []wire.TranscriptAlternative{{Confidence: 0.9, Interpretations: []wire.TranscriptInterpretation{{Type: "display", Transcript: "hello"}}}}}
	// The server resumes once the client answered paused and pausedFrames
	// frames of media time ran while it was paused.
	const pausedFrames = 5
	acks := newAnswerCounter()
	opts := signedServerOptions(t)
	opts.OnMessage = acks.onMessage
	reached := make(chan struct{})
	url := testServer(t, opts, func(s *audiohook.Session) {
		ctx := ctxT(t)
		var r serverResult
		r.info, r.end = s.Open(ctx)
		if r.end != nil {
			res <- r
			return
		}
		for len(r.frames) < 5 {
			f, err := s.ReadFrame(ctx)
			if err != nil {
				r.end = err
				res <- r
				return
			}
			r.frames = append(r.frames, f.Clone())
		}
		if r.end = s.Pause(ctx); r.end == nil {
			r.end = acks.waitPaused(ctx, s, 1)
		}
		if r.end == nil {
			select {
			case <-reached:
			case <-ctx.Done():
				r.end = fmt.Errorf("media time while paused: %w", ctx.Err())
			}
		}
		if r.end == nil {
			r.end = s.Resume(ctx)
		}
		if r.end == nil {
			te, _ := wire.TranscriptEntity(transcript)
			ce, _ := wire.NewEntity("custom", map[string]int{"n": 1})
			r.end = s.SendEvent(ctx, te, ce)
		}
		if r.end != nil {
			res <- r
			return
		}
		// Frames the client sent before it handled the pause are still
		// queued, and its resumed answer follows the resume only once it
		// is read: wait for the first frame after the pause (its timestamp
		// is past the previous frame's end) rather than for a count of
		// frames, which may all be from before the pause on a busy machine.
		for resumed := false; !resumed || len(r.frames) < 8; {
			f, err := s.ReadFrame(ctx)
			if err != nil {
				r.end = err
				break
			}
			if prev := r.frames[len(r.frames)-1]; f.Timestamp > prev.End() {
				resumed = true
			}
			r.frames = append(r.frames, f.Clone())
		}
		r.end = s.DisconnectWith(ctx, wire.DisconnectParameters{Reason: wire.ReasonCompleted, Info: "done",
			OutputVariables: map[string]string{"voicegateResult": "result-success"}})
		for {
			f, err := s.ReadFrame(ctx)
			if err != nil {
				if !errors.Is(err, io.EOF) && r.end == nil {
					r.end = err
				}
				break
			}
			r.frames = append(r.frames, f.Clone())
		}
		r.stats = s.Stats()
		r.reason = s.CloseReason()
		res <- r
	})
	ctx := ctxT(t)
	c, err := Dial(ctx, url, signedDial(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	streamErr := make(chan error, 1)
	gate := &pausedGate{src: ToneSource(20*time.Second, 440), c: c, k: pausedFrames, reached: reached}
	go func() {
		streamErr <- c.Stream(ctx, gate, &StreamOptions{Chunk: 20 * time.Millisecond})
	}()
	var got []string
	for {
		m, err := c.Next(ctx)
		if err != nil {
			break
		}
		got = append(got, m.Type)
		if m.Type == wire.TypeEvent {
			var p wire.EventParameters
			if err := json.Unmarshal(m.Parameters, &p); err != nil || len(p.Entities) != 2 || p.Entities[0].Type != "transcript" || p.Entities[1].Type != "custom" {
				t.Fatalf("event %s: %v", m.Parameters, err)
			}
		}
		if m.Type == wire.TypeDisconnect {
			var p wire.DisconnectParameters
			if err := json.Unmarshal(m.Parameters, &p); err != nil || p.OutputVariables["voicegateResult"] != "result-success" {
				t.Fatalf("disconnect %s: %v", m.Parameters, err)
			}
			break
		}
	}
	var de *audiohook.DisconnectError
	if err := <-streamErr; !errors.As(err, &de) || de.Reason != wire.ReasonCompleted || de.Info != "done" {
		t.Fatalf("stream: %v", err)
	}
	if err := c.Close(ctx, ""); err != nil {
		t.Fatal(err)
	}
	want := []string{wire.TypePause, wire.TypeResume, wire.TypeEvent, wire.TypeDisconnect}
	if len(got) != len(want) {
		t.Fatalf("client saw %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("client saw %v, want %v", got, want)
		}
	}
	r := <-res
	if r.end != nil {
		t.Fatalf("disconnect: %v", r.end)
	}
	if r.reason != wire.CloseDisconnect {
		t.Fatalf("close reason %q", r.reason)
	}
	if r.stats.GapTime < pausedFrames*20*time.Millisecond {
		t.Fatalf("gap %v: paused time not counted", r.stats.GapTime)
	}
	// Frames after the pause start at a later media time than their samples alone.
	last := r.frames[len(r.frames)-1]
	var samples time.Duration
	for _, f := range r.frames {
		samples += f.Duration()
	}
	if last.End() <= samples {
		t.Fatalf("timestamps %v do not include the gap (samples %v)", last.End(), samples)
	}
}

func sin(x float64) float64 {
	// small helper to avoid importing math in several places
	return math.Sin(x)
}

func TestInteropProbe(t *testing.T) {
	res := make(chan serverResult, 1)
	url := testServer(t, signedServerOptions(t), func(s *audiohook.Session) {
		inner := make(chan serverResult, 1)
		readAll(t, s, inner)
		r := <-inner
		// A probe has no frames; leave the close to the client, then
		// collect the counters.
		<-s.Done()
		r.stats = s.Stats()
		r.reason = s.CloseReason()
		res <- r
	})
	ctx := ctxT(t)
	c, err := Dial(ctx, url, signedDial(t, &DialOptions{Probe: true}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stream(ctx, ToneSource(time.Second), nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx, ""); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if !r.probe || len(r.frames) != 0 || !errors.Is(r.end, io.EOF) || !r.info.Probe || r.stats.EmptyFrames != 1 || r.reason != wire.CloseEnd {
		t.Fatalf("probe: %+v", r)
	}
}

func TestInteropRecording(t *testing.T) {
	dir := t.TempDir()
	opts := signedServerOptions(t)
	opts.Recorder = audiohook.DirSink(dir)
	res := make(chan serverResult, 1)
	url := testServer(t, opts, func(s *audiohook.Session) {
		inner := make(chan serverResult, 1)
		readAll(t, s, inner)
		_ = s.Close() // files are complete once the session is closed
		res <- <-inner
	})
	ctx := ctxT(t)
	c, err := Dial(ctx, url, signedDial(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stream(ctx, ToneSource(500*time.Millisecond, 440, 880), &StreamOptions{Fast: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx, ""); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if !errors.Is(r.end, io.EOF) {
		t.Fatal(r.end)
	}
	// The recorder is closed by the session's reader before Session.Close
	// returns, and the handler reported only after Close: the files are
	// complete.
	wb, err := os.ReadFile(filepath.Join(dir, c.ID()+".wav"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := codec.ParseWAV(wb)
	if err != nil || w.Samples() != 4000 {
		t.Fatalf("wav: %v %+v", err, w)
	}
	if w.Format.Channels != 2 || w.Format.Encoding != voicegate.PCMU {
		t.Fatalf("format %+v", w.Format)
	}
	b, err := os.ReadFile(filepath.Join(dir, c.ID()+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var sc audiohook.Sidecar
	if err := json.Unmarshal(b, &sc); err != nil {
		t.Fatalf("sidecar: %v\n%s", err, b)
	}
	var kinds []string
	for i, e := range sc.Messages {
		if e.Time.IsZero() || i > 0 && e.Time.Before(sc.Messages[i-1].Time) {
			t.Fatalf("sidecar message %d has time %v", i, e.Time)
		}
		var m struct{ Type string }
		_ = json.Unmarshal(e.Message, &m)
		kinds = append(kinds, e.Direction+":"+m.Type)
	}
	want := []string{"in:open", "out:opened", "in:ping", "out:pong", "in:close", "out:closed"}
	if len(kinds) != len(want) {
		t.Fatalf("sidecar messages %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("sidecar messages %v, want %v", kinds, want)
		}
	}
	if sc.Media == nil || !sc.Media.Equal(wire.MediaPCMUStereo) {
		t.Fatalf("sidecar media %+v", sc.Media)
	}
}

package twilio_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

func TestAcceptSignature(t *testing.T) {
	t.Parallel()
	const public = "wss://vb.example.com/twilio/media"
	for _, tc := range []struct {
		name    string
		opts    twilio.AcceptOptions
		token   string
		signed  string
		wantErr error
	}{
		{"valid", twilio.AcceptOptions{PublicURL: public, AuthTokens: []string{testToken}}, testToken, public, nil},
		{"https configured, wss signed", twilio.AcceptOptions{PublicURL: "https://vb.example.com/twilio/media", AuthTokens: []string{testToken}}, testToken, public, nil},
		// As twilio-node and twilio-go: a port-less wss URL also validates
		// with ":80" added, never ":443".
		{"signed with :80", twilio.AcceptOptions{PublicURL: public, AuthTokens: []string{testToken}}, testToken, "wss://vb.example.com:80/twilio/media", nil},
		{"signed with :443", twilio.AcceptOptions{PublicURL: public, AuthTokens: []string{testToken}}, testToken, "wss://vb.example.com:443/twilio/media", twilio.ErrSignature},
		{"configured with :443", twilio.AcceptOptions{PublicURL: "wss://vb.example.com:443/twilio/media", AuthTokens: []string{testToken}}, testToken, public, nil},
		{"secondary token", twilio.AcceptOptions{PublicURL: public, AuthTokens: []string{"primary", testToken}}, testToken, public, nil},
		{"public origin", twilio.AcceptOptions{PublicOrigin: "wss://vb.example.com/", AuthTokens: []string{testToken}}, testToken, "wss://vb.example.com/media", nil},
		{"wrong token", twilio.AcceptOptions{PublicURL: public, AuthTokens: []string{testToken}}, "other", public, twilio.ErrSignature},
		{"signed https", twilio.AcceptOptions{PublicURL: public, AuthTokens: []string{testToken}}, testToken, "https://vb.example.com/twilio/media", twilio.ErrSignature},
		{"trailing slash", twilio.AcceptOptions{PublicURL: public, AuthTokens: []string{testToken}}, testToken, public + "/", twilio.ErrSignature},
		{"unsigned", twilio.AcceptOptions{PublicURL: public, AuthTokens: []string{testToken}}, "", "", twilio.ErrSignature},
		{"no token configured", twilio.AcceptOptions{PublicURL: public}, testToken, public, twilio.ErrNoAuthToken},
		{"no url configured", twilio.AcceptOptions{AuthTokens: []string{testToken}}, testToken, public, twilio.ErrNoPublicURL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			if opts.PublicURL == "" && opts.PublicOrigin == "" {
				opts.PublicOrigin = "" // keep unset: a misconfiguration
			}
			ms := newMediaServerExact(t, &opts)
			h := http.Header{}
			if tc.token != "" {
				h.Set(twilio.SignatureHeader, twilio.ComputeSignature(tc.token, tc.signed, nil))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, ms.URL, &websocket.DialOptions{HTTPHeader: h})
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				c.CloseNow()
				s := ms.next(t)
				s.Close()
				return
			}
			if err == nil {
				c.CloseNow()
				t.Fatal("upgrade succeeded")
			}
			want := http.StatusForbidden
			if !errors.Is(tc.wantErr, twilio.ErrSignature) {
				want = http.StatusInternalServerError
			}
			if resp == nil || resp.StatusCode != want {
				t.Fatalf("response %v, want %d", resp, want)
			}
			select {
			case err := <-ms.errs:
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("Accept error %v, want %v", err, tc.wantErr)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no Accept error")
			}
		})
	}
}

// newMediaServerExact is newMediaServer without the PublicURL default.
func newMediaServerExact(t *testing.T, opts *twilio.AcceptOptions) *mediaServer {
	o := *opts
	if o.PublicURL == "" && o.PublicOrigin == "" {
		// newMediaServer would fill PublicURL; use a placeholder origin
		// that makes Accept fail with ErrNoPublicURL instead.
		return newMediaServerNoURL(t, &o)
	}
	return newMediaServer(t, &o)
}

func newMediaServerNoURL(t *testing.T, opts *twilio.AcceptOptions) *mediaServer {
	ms := newMediaServer(t, &twilio.AcceptOptions{})
	ms.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := twilio.Accept(w, r, opts)
		if err != nil {
			ms.errs <- err
			return
		}
		ms.streams <- s
	})
	return ms
}

func play(t *testing.T, ms *mediaServer, audio []byte, o *twiliotest.Options) (*twiliotest.Result, *twilio.Stream) {
	t.Helper()
	if o.AuthToken == "" {
		o.AuthToken = testToken
	}
	type out struct {
		r   *twiliotest.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := twiliotest.PlayAudio(context.Background(), ms.URL, audio, nil, o)
		done <- out{r, err}
	}()
	s := ms.next(t)
	t.Cleanup(func() { s.Close() })
	res := <-done
	if res.err != nil {
		t.Fatalf("play: %v", res.err)
	}
	return res.r, s
}

// A 30 s file at real-time pace, timed by a fake clock: 1,500 frames with
// media time i×20 ms, sent on a 20 ms schedule.
func TestThirtySecondsPaced(t *testing.T) {
	t.Parallel()
	ms := newMediaServer(t, &twilio.AcceptOptions{AuthTokens: []string{testToken}, QueueFrames: 1600})
	audio := synthULaw(30 * time.Second)
	wav := ulawWAV(t, audio)
	clk := twiliotest.NewFakeClock(time.Unix(1700000000, 0))
	type out struct {
		r   *twiliotest.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := twiliotest.PlayWAV(context.Background(), ms.URL, wav, &twiliotest.Options{
			AuthToken: testToken, Clock: clk, CustomParameters: map[string]string{"session": "s-1"}})
		done <- out{r, err}
	}()
	s := ms.next(t)
	defer s.Close()
	st, err := s.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.CustomParameters["session"] != "s-1" || len(st.Tracks) != 1 || st.Tracks[0] != "inbound" {
		t.Errorf("start %+v", st)
	}
	frames, err := readAll(t, s)
	if err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	if len(frames) != 1500 {
		t.Fatalf("%d frames, want 1500", len(frames))
	}
	var got []byte
	for i, f := range frames {
		if f.Timestamp != time.Duration(i)*20*time.Millisecond || f.Seq != uint64(i+1) || f.Parties[0] != voicegate.Customer || f.Duration() != 20*time.Millisecond {
			t.Fatalf("frame %d: ts %v seq %d", i, f.Timestamp, f.Seq)
		}
		got = append(got, f.Payload...)
	}
	if !bytes.Equal(got, audio) {
		t.Error("audio differs from the file")
	}
	if end := frames[len(frames)-1].End(); end != 30*time.Second {
		t.Errorf("media time %v, want 30s", end)
	}
	if len(res.r.SendOffsets) != 1500 {
		t.Fatalf("%d send offsets", len(res.r.SendOffsets))
	}
	for i, off := range res.r.SendOffsets {
		if off != time.Duration(i)*20*time.Millisecond {
			t.Fatalf("frame %d sent at %v", i, off)
		}
	}
	if first, _ := s.FirstTimestamp(); first != 155 {
		t.Errorf("first timestamp %d", first)
	}
	if stats := s.Stats(); stats.FramesDropped != 0 || stats.Gaps != 0 || stats.FramesReceived != 1500 {
		t.Errorf("stats %+v", stats)
	}
	if s.Err() != nil {
		t.Errorf("Err after stop = %v", s.Err())
	}
}

// Real pacing on the real clock: 2 s of audio cannot arrive in less than
// 100 frames × 20 ms (minus the first).
func TestRealTimePacing(t *testing.T) {
	t.Parallel()
	ms := newMediaServer(t, &twilio.AcceptOptions{AuthTokens: []string{testToken}})
	audio := synthULaw(2 * time.Second)
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := twiliotest.PlayAudio(context.Background(), ms.URL, audio, nil, &twiliotest.Options{AuthToken: testToken})
		done <- err
	}()
	s := ms.next(t)
	defer s.Close()
	frames, err := readAll(t, s)
	if err != io.EOF {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(frames) != 100 {
		t.Fatalf("%d frames", len(frames))
	}
	if el := time.Since(start); el < 99*20*time.Millisecond {
		t.Errorf("2 s of audio arrived in %v: not paced", el)
	}
}

func TestLossAndGapFill(t *testing.T) {
	t.Parallel()
	audio := synthULaw(30 * time.Second)
	for _, fill := range []bool{false, true} {
		ms := newMediaServer(t, &twilio.AcceptOptions{AuthTokens: []string{testToken}, FillGaps: fill, QueueFrames: 1600})
		res, s := play(t, ms, audio, &twiliotest.Options{Pace: twiliotest.AsFastAsPossible, LossRate: 0.05, Seed: 7})
		frames, err := readAll(t, s)
		if err != io.EOF {
			t.Fatal(err)
		}
		if res.Lost < 40 || res.Lost > 120 {
			t.Fatalf("lost %d of 1500 frames; 5%% expected", res.Lost)
		}
		stats := s.Stats()
		if stats.GapTime != time.Duration(res.Lost)*20*time.Millisecond || stats.Gaps == 0 || stats.Gaps > uint64(res.Lost) {
			t.Errorf("fill=%v: gaps %d time %v, lost %d frames", fill, stats.Gaps, stats.GapTime, res.Lost)
		}
		var total time.Duration
		for i, f := range frames {
			total += f.Duration()
			if i > 0 && f.Timestamp < frames[i-1].End() {
				t.Fatalf("frame %d overlaps", i)
			}
			if fill && i > 0 && f.Timestamp != frames[i-1].End() {
				t.Fatalf("fill: hole before frame %d", i)
			}
		}
		last := frames[len(frames)-1]
		if last.End() != 30*time.Second {
			t.Errorf("fill=%v: last frame ends at %v", fill, last.End())
		}
		if last.Seq != 1500 {
			t.Errorf("fill=%v: last seq %d, want 1500 (seq counts lost frames)", fill, last.Seq)
		}
		if fill {
			if total != 30*time.Second || stats.SilenceFrames != uint64(res.Lost) || len(frames) != 1500 {
				t.Errorf("fill: media time %v, %d silence frames, %d frames", total, stats.SilenceFrames, len(frames))
			}
		} else if want := 30*time.Second - time.Duration(res.Lost)*20*time.Millisecond; total != want || len(frames) != 1500-res.Lost {
			t.Errorf("no fill: media time %v want %v", total, want)
		}
	}
}

func TestDuplicateAndReorder(t *testing.T) {
	t.Parallel()
	ms := newMediaServer(t, &twilio.AcceptOptions{AuthTokens: []string{testToken}, QueueFrames: 600, FillGaps: true})
	audio := synthULaw(10 * time.Second)
	res, s := play(t, ms, audio, &twiliotest.Options{Pace: twiliotest.AsFastAsPossible, DuplicateRate: 0.05, ReorderRate: 0.05, Seed: 3})
	frames, err := readAll(t, s)
	if err != io.EOF {
		t.Fatal(err)
	}
	stats := s.Stats()
	if res.Duplicated == 0 || res.Reordered == 0 {
		t.Fatalf("no faults injected: %+v", res)
	}
	// Each duplicate and each reordered frame (arriving after a later one)
	// is late; the hole a reordered frame leaves is filled.
	if stats.FramesLate != uint64(res.Duplicated+res.Reordered) {
		t.Errorf("late %d, want %d duplicated + %d reordered", stats.FramesLate, res.Duplicated, res.Reordered)
	}
	if len(frames) != 500 || frames[len(frames)-1].End() != 10*time.Second {
		t.Errorf("%d frames ending %v", len(frames), frames[len(frames)-1].End())
	}
	for i := 1; i < len(frames); i++ {
		if frames[i].Timestamp != frames[i-1].End() {
			t.Fatalf("timeline broken at %d", i)
		}
	}
}

func TestBothTracks(t *testing.T) {
	t.Parallel()
	ms := newMediaServer(t, &twilio.AcceptOptions{AuthTokens: []string{testToken}})
	in := bytes.Repeat([]byte{0x11}, 160*50)
	out := bytes.Repeat([]byte{0x22}, 160*40)
	done := make(chan error, 1)
	go func() {
		_, err := twiliotest.PlayAudio(context.Background(), ms.URL, in, out, &twiliotest.Options{AuthToken: testToken, Pace: twiliotest.AsFastAsPossible})
		done <- err
	}()
	s := ms.next(t)
	defer s.Close()
	frames, err := readAll(t, s)
	if err != io.EOF {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, _ := s.Start(context.Background())
	if len(st.Tracks) != 2 {
		t.Errorf("tracks %v", st.Tracks)
	}
	var nIn, nOut int
	for _, f := range frames {
		switch f.Parties[0] {
		case voicegate.Customer:
			if f.Payload[0] != 0x11 || f.Timestamp != time.Duration(nIn)*20*time.Millisecond || f.Seq != uint64(nIn+1) {
				t.Fatalf("customer frame %d: %+v", nIn, f)
			}
			nIn++
		case voicegate.Agent:
			if f.Payload[0] != 0x22 || f.Timestamp != time.Duration(nOut)*20*time.Millisecond || f.Seq != uint64(nOut+1) {
				t.Fatalf("agent frame %d: %+v", nOut, f)
			}
			nOut++
		default:
			t.Fatalf("frame without party: %+v", f)
		}
	}
	if nIn != 50 || nOut != 40 || s.Stats().Gaps != 0 {
		t.Errorf("in %d out %d stats %+v", nIn, nOut, s.Stats())
	}
}

func TestMissingStop(t *testing.T) {
	t.Parallel()
	ms := newMediaServer(t, &twilio.AcceptOptions{AuthTokens: []string{testToken}})
	_, s := play(t, ms, synthULaw(time.Second), &twiliotest.Options{Pace: twiliotest.AsFastAsPossible, OmitStop: true})
	frames, err := readAll(t, s)
	// Without stop the end is abnormal, even with a close frame 1000.
	var se *voicegate.StreamError
	if !errors.As(err, &se) || len(frames) != 50 {
		t.Fatalf("%d frames, %v; want 50 then a *voicegate.StreamError", len(frames), err)
	}
	<-s.Done()
	if s.StopInfo() != nil {
		t.Error("stop reported")
	}
	if voicegate.CloseStatus(s.Err()) != voicegate.CloseNormal || voicegate.CloseStatus(err) != voicegate.CloseNormal {
		t.Errorf("Err = %v, want the peer's close", s.Err())
	}
}

func TestSlowReaderDropsOldest(t *testing.T) {
	t.Parallel()
	ms := newMediaServer(t, &twilio.AcceptOptions{AuthTokens: []string{testToken}, QueueFrames: 10})
	res, s := play(t, ms, synthULaw(2*time.Second), &twiliotest.Options{Pace: twiliotest.AsFastAsPossible})
	<-s.Done()
	frames, err := readAll(t, s)
	if err != io.EOF {
		t.Fatal(err)
	}
	stats := s.Stats()
	if len(frames) != 20 || stats.FramesDropped != 80 || stats.MaxQueueDepth != 20 || res.MediaSent != 100 {
		t.Fatalf("%d frames, stats %+v", len(frames), stats)
	}
	// The newest survive.
	if frames[0].Seq != 81 || frames[19].Seq != 100 {
		t.Errorf("kept seq %d..%d", frames[0].Seq, frames[19].Seq)
	}
}

func TestReadFrameCancelKeepsStream(t *testing.T) {
	t.Parallel()
	ms := newMediaServer(t, &twilio.AcceptOptions{AuthTokens: []string{testToken}})
	hold := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := twiliotest.PlayAudio(context.Background(), ms.URL, synthULaw(200*time.Millisecond), nil,
			&twiliotest.Options{AuthToken: testToken, Pace: twiliotest.AsFastAsPossible, HoldOpen: hold})
		done <- err
	}()
	s := ms.next(t)
	defer s.Close()
	for range 10 {
		if _, err := s.ReadFrame(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	go cancel()
	if _, err := s.ReadFrame(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled read: %v", err)
	}
	close(hold)
	if f, err := s.ReadFrame(context.Background()); err == nil || err == io.EOF {
		_ = f
	} else {
		t.Fatalf("read after cancel: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCloseUnblocksAndIsIdempotent(t *testing.T) {
	t.Parallel()
	ms := newMediaServer(t, &twilio.AcceptOptions{AuthTokens: []string{testToken}})
	hold := make(chan struct{})
	defer close(hold)
	done := make(chan *twiliotest.Result, 1)
	go func() {
		r, _ := twiliotest.PlayAudio(context.Background(), ms.URL, synthULaw(40*time.Millisecond), nil,
			&twiliotest.Options{AuthToken: testToken, Pace: twiliotest.AsFastAsPossible, HoldOpen: hold})
		done <- r
	}()
	s := ms.next(t)
	for range 2 {
		if _, err := s.ReadFrame(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	errc := make(chan error, 2)
	go func() { _, err := s.ReadFrame(context.Background()); errc <- err }()
	go func() { _, err := s.ReadEvent(context.Background()); errc <- err }()
	time.Sleep(10 * time.Millisecond) // let the readers block; correctness does not depend on it
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range 2 {
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			t.Errorf("blocked call returned %v", err)
		}
	}
	if err := s.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.ReadFrame(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadFrame after Close: %v", err)
	}
	if !errors.Is(s.Err(), net.ErrClosed) {
		t.Errorf("Err = %v", s.Err())
	}
	r := <-done
	if !r.ServerClosed || r.CloseStatus != websocket.StatusNormalClosure {
		t.Errorf("simulator saw %+v", r)
	}
}

// idleStep is one media message of an idle-timeout scenario: the fake
// clock advances by gap before the message is written, or, with a
// whileRead, after the reader has read the message and before it has
// recorded it.
type idleStep struct {
	gap       time.Duration
	whileRead whileRead
}

type whileRead int

const (
	_           whileRead = iota
	readTimed             // the reader has taken the time of the read
	readUntimed           // the reader has not yet taken the time
)

// paced returns n steps gap apart.
func paced(n int, gap time.Duration) []idleStep {
	steps := make([]idleStep, n)
	for i := range steps {
		steps[i].gap = gap
	}
	return steps
}

// runIdle plays connected, start and the steps' media on a fake clock, in
// lockstep with the server (each frame is read back before the clock
// moves again), lets tail pass, and then sends stop unless tail reaches
// idle. It returns the frames read and the error that ended them.
func runIdle(t *testing.T, idle time.Duration, steps []idleStep, tail time.Duration) (int, *twilio.Stream, error) {
	t.Helper()
	clk := twilio.NewFakeClock(time.Unix(1700000000, 0))
	o := &twilio.AcceptOptions{IdleTimeout: idle}
	twilio.SetClock(o, clk)
	rc, s, wire, payload := startRawStream(t, len(steps), o)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // failsafe only
	defer cancel()
	n := 0
	for i, st := range steps {
		var reading, release chan struct{}
		if st.whileRead != 0 {
			reading, release = make(chan struct{}), make(chan struct{})
			clk.OnNextNow(func() { close(reading); <-release }, st.whileRead == readUntimed)
		} else {
			clk.Advance(st.gap)
		}
		if _, err := rc.nc.Write(wire[i]); err != nil {
			t.Fatalf("write frame %d: %v", i, err)
		}
		if st.whileRead != 0 {
			select {
			case <-reading:
			case <-ctx.Done():
				t.Fatalf("frame %d never read", i)
			}
			clk.Advance(st.gap)
			close(release)
		}
		f, err := s.ReadFrame(ctx)
		if err != nil {
			return n, s, err
		}
		if f.Seq != uint64(i+1) || !bytes.Equal(f.Payload, payload) {
			t.Fatalf("frame %d: seq %d", i, f.Seq)
		}
		n++
	}
	clk.Advance(tail)
	if tail < idle {
		stop := `{"event":"stop","sequenceNumber":"999","streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0","stop":{"accountSid":"AC1","callSid":"CA1"}}`
		if _, err := rc.nc.Write(maskedText(stop)); err != nil {
			t.Fatalf("write stop: %v", err)
		}
	}
	_, err := s.ReadFrame(ctx)
	if ctx.Err() != nil {
		t.Fatal("stream neither stopped nor timed out")
	}
	return n, s, err
}

// The idle timeout, on a fake clock: a silence of IdleTimeout ends the
// stream with ErrIdleTimeout, a silence 1 ns shorter does not, and a
// message read when the timer expires keeps the stream alive.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 250 * time.Millisecond
	for _, tc := range []struct {
		name   string
		steps  []idleStep
		tail   time.Duration
		frames int
		idle   bool
	}{
		{"silence after start", nil, idle, 0, true},
		{"silence after two frames", paced(2, 0), idle, 2, true},
		{"silence just under the timeout", paced(2, 0), idle - 1, 2, false},
		{"silence mid-stream", []idleStep{{}, {gap: idle}, {}}, 0, 1, true},
		{"silences just under the timeout", paced(3, idle-1), 0, 3, false},
		// The timer comes due after the reader has read a message and
		// before it has recorded it. The message counts if it was read
		// before the expiry, not if it was read after (a read under way
		// when the deadline is set can still return a message).
		{"timer expires after a message was read", []idleStep{{}, {gap: idle, whileRead: readTimed}, {}}, idle - 1, 3, false},
		{"silence after a message read as the timer expired", []idleStep{{}, {gap: idle, whileRead: readTimed}, {}}, idle, 3, true},
		{"message read after the timer expired", []idleStep{{}, {gap: idle, whileRead: readUntimed}, {}}, 0, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n, s, err := runIdle(t, idle, tc.steps, tc.tail)
			if tc.idle {
				if n != tc.frames || !errors.Is(err, twilio.ErrIdleTimeout) || !errors.Is(s.Err(), twilio.ErrIdleTimeout) {
					t.Fatalf("%d frames, %v (Err %v); want %d then ErrIdleTimeout", n, err, s.Err(), tc.frames)
				}
			} else if n != tc.frames || err != io.EOF || s.Err() != nil {
				t.Fatalf("%d frames, %v (Err %v); want %d then io.EOF", n, err, s.Err(), tc.frames)
			}
		})
	}
}

// Every message restarts the idle timer: a stream that keeps sending for
// several idle timeouts is not cut off, at Twilio's pace or with gaps just
// under the timeout. The clock is fake, so a loaded machine cannot stretch
// a gap past the timeout.
func TestIdleTimeoutResetByTraffic(t *testing.T) {
	t.Parallel()
	const idle = 400 * time.Millisecond
	for _, tc := range []struct {
		name  string
		steps []idleStep
	}{
		{"20 ms pace for five timeouts", paced(100, 20*time.Millisecond)},
		{"gaps just under the timeout", paced(6, idle-1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n, s, err := runIdle(t, idle, tc.steps, idle-1)
			if n != len(tc.steps) || err != io.EOF || s.Err() != nil {
				t.Fatalf("%d of %d frames, %v (Err %v); want all then io.EOF", n, len(tc.steps), err, s.Err())
			}
		})
	}
}

// On the real clock, a connection that sends nothing ends with
// ErrIdleTimeout. Only the outcome is checked, not when it comes.
func TestIdleTimeoutRealClock(t *testing.T) {
	t.Parallel()
	ms := newMediaServer(t, &twilio.AcceptOptions{AuthTokens: []string{testToken}, IdleTimeout: 50 * time.Millisecond})
	dialRaw(t, ms)
	s := ms.next(t)
	defer s.Close()
	frames, err := readAll(t, s)
	if len(frames) != 0 || !errors.Is(err, twilio.ErrIdleTimeout) || !errors.Is(s.Err(), twilio.ErrIdleTimeout) {
		t.Fatalf("%d frames, %v / %v", len(frames), err, s.Err())
	}
}

func TestBidirectional(t *testing.T) {
	t.Parallel()
	ms := newMediaServer(t, &twilio.AcceptOptions{AuthTokens: []string{testToken}})
	hold := make(chan struct{})
	done := make(chan *twiliotest.Result, 1)
	go func() {
		r, err := twiliotest.PlayAudio(context.Background(), ms.URL, synthULaw(100*time.Millisecond), nil,
			&twiliotest.Options{AuthToken: testToken, Pace: twiliotest.AsFastAsPossible, HoldOpen: hold,
				DTMF: []twiliotest.DTMF{{At: 40 * time.Millisecond, Digit: "7"}}})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	s := ms.next(t)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// DTMF is readable without reading audio.
	ev, err := s.ReadEvent(ctx)
	if err != nil || ev.Kind != twilio.EventDTMF || ev.Digit != "7" || ev.Track != "inbound_track" {
		t.Fatalf("event %+v %v", ev, err)
	}
	// Nothing buffered: the mark comes back at once, played.
	if err := s.SendMark(ctx, "early"); err != nil {
		t.Fatal(err)
	}
	ev, err = s.ReadEvent(ctx)
	if err != nil || ev.Mark != "early" || ev.MarkStatus != twilio.MarkPlayed {
		t.Fatalf("event %+v %v", ev, err)
	}
	// 10 s of audio, a mark behind it, then barge-in: the mark comes back
	// cleared.
	long := synthULaw(10 * time.Second)
	if err := s.SendAudio(ctx, long); err != nil {
		t.Fatal(err)
	}
	if err := s.SendMark(ctx, "prompt-end"); err != nil {
		t.Fatal(err)
	}
	if err := s.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	ev, err = s.ReadEvent(ctx)
	if err != nil || ev.Kind != twilio.EventMark || ev.Mark != "prompt-end" || ev.MarkStatus != twilio.MarkCleared {
		t.Fatalf("event %+v %v (stream %v, stats %+v)", ev, err, s.Err(), s.Stats())
	}
	// A short WAV (header stripped, PCM converted) and a mark that plays.
	pcm := make([]int16, 250) // 31.25 ms: padded to two frames
	for i := range pcm {
		pcm[i] = int16(i * 50)
	}
	if err := s.SendAudio(ctx, pcmWAV(t, pcm)); err != nil {
		t.Fatal(err)
	}
	if err := s.SendMark(ctx, "beep-end"); err != nil {
		t.Fatal(err)
	}
	ev, err = s.ReadEvent(ctx)
	if err != nil || ev.Mark != "beep-end" || ev.MarkStatus != twilio.MarkPlayed {
		t.Fatalf("event %+v %v", ev, err)
	}
	if s.PendingMarks() != 0 {
		t.Errorf("%d marks pending", s.PendingMarks())
	}
	if err := s.SendAudio(ctx, []byte("RIFF....garbage")); err == nil {
		t.Error("bad WAV accepted")
	}
	close(hold)
	frames, err := readAll(t, s)
	if err != io.EOF || len(frames) != 5 {
		t.Fatalf("%d frames, %v", len(frames), err)
	}
	r := <-done
	if r.MediaReceived != 500+2 || r.Clears != 1 {
		t.Errorf("simulator got %d media, %d clears", r.MediaReceived, r.Clears)
	}
	want := append(append([]byte(nil), long...), make([]byte, 320)...)
	codec.EncodeULaw(want[len(long):], pcm)
	for i := len(long) + len(pcm); i < len(want); i++ {
		want[i] = codec.ULawSilence
	}
	if !bytes.Equal(r.ReceivedAudio, want) {
		t.Error("outbound audio differs")
	}
	if len(r.MarksEchoed) != 3 || r.MarksEchoed[0].Cleared || !r.MarksEchoed[1].Cleared || r.MarksEchoed[2].Cleared {
		t.Errorf("marks %+v", r.MarksEchoed)
	}
	stats := s.Stats()
	if stats.MediaSent != 502 || stats.MarksSent != 3 || stats.ClearsSent != 1 {
		t.Errorf("stats %+v", stats)
	}
}

// SendAudio takes raw μ-law or a WAV file in each supported encoding and
// sends the same μ-law bytes; other WAV formats are refused before anything
// is sent.
func TestSendAudioFormats(t *testing.T) {
	t.Parallel()
	ulaw := synthULaw(50 * time.Millisecond) // 400 samples: 2.5 frames
	pcm := make([]int16, len(ulaw))
	codec.DecodeULaw(pcm, ulaw)
	alaw := make([]byte, len(ulaw))
	codec.ULawToALaw(alaw, ulaw)
	// Every μ-law code except 0x7F survives the round trips through A-law
	// and PCM; compute the exact bytes expected for each input.
	fromALaw := make([]byte, len(alaw))
	codec.ALawToULaw(fromALaw, alaw)
	fromPCM := make([]byte, len(pcm))
	codec.EncodeULaw(fromPCM, pcm)
	wav := func(f codec.WAVFormat, data []byte) []byte {
		b, err := codec.EncodeWAV(nil, f, data)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name  string
		audio []byte
		want  []byte // μ-law before padding; nil: refused
	}{
		{"raw μ-law", ulaw, ulaw},
		{"μ-law WAV", ulawWAV(t, ulaw), ulaw},
		{"A-law WAV", wav(codec.WAVFormat{Encoding: voicegate.PCMA, SampleRate: 8000, Channels: 1}, alaw), fromALaw},
		{"PCM WAV", pcmWAV(t, pcm), fromPCM},
		{"16 kHz WAV", wav(codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 16000, Channels: 1}, ulaw), nil},
		{"stereo WAV", wav(codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 2}, ulaw), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := newMediaServer(t, &twilio.AcceptOptions{AuthTokens: []string{testToken}})
			hold := make(chan struct{})
			done := make(chan *twiliotest.Result, 1)
			go func() {
				r, err := twiliotest.PlayAudio(context.Background(), ms.URL, synthULaw(20*time.Millisecond), nil,
					&twiliotest.Options{AuthToken: testToken, Pace: twiliotest.AsFastAsPossible, HoldOpen: hold})
				if err != nil {
					t.Error(err)
				}
				done <- r
			}()
			s := ms.next(t)
			defer s.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := s.Start(ctx); err != nil {
				t.Fatal(err)
			}
			err := s.SendAudio(ctx, tc.audio)
			if tc.want == nil {
				if !errors.Is(err, twilio.ErrUnsupportedAudio) {
					t.Errorf("SendAudio = %v, want ErrUnsupportedAudio", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			// The mark's echo says the audio before it has arrived.
			if err := s.SendMark(ctx, "end"); err != nil {
				t.Fatal(err)
			}
			if ev, err := s.ReadEvent(ctx); err != nil || ev.Mark != "end" {
				t.Fatalf("event %+v %v", ev, err)
			}
			close(hold)
			r := <-done
			if r == nil {
				t.Fatal("simulator failed")
			}
			var want []byte
			if tc.want != nil {
				want = append(append([]byte(nil), tc.want...), bytes.Repeat([]byte{codec.ULawSilence}, 3*twilio.FrameBytes-len(tc.want))...)
			}
			if !bytes.Equal(r.ReceivedAudio, want) || r.MediaReceived != len(want)/twilio.FrameBytes {
				t.Errorf("simulator received %d bytes in %d messages, want %d bytes", len(r.ReceivedAudio), r.MediaReceived, len(want))
			}
		})
	}
}

// A peer that drops the connection without a close frame or stop ends the
// stream by itself; its goroutines end even if the Stream is never closed
// (TestMain checks for leaks).
func TestPeerDisconnectWithoutClose(t *testing.T) {
	t.Parallel()
	streams := make(chan *twilio.Stream, 1)
	srv := newRawServer(t, func(w http.ResponseWriter, r *http.Request) {
		s, err := twilio.Accept(w, r, &twilio.AcceptOptions{InsecureSkipVerify: true})
		if err == nil {
			streams <- s
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := <-streams
	if err := s.SendMark(ctx, "m"); !errors.Is(err, twilio.ErrNotStarted) {
		t.Errorf("mark before start: %v", err)
	}
	c.Write(ctx, websocket.MessageText, []byte(`{"event":"start","start":{"streamSid":"MZ1"}}`))
	c.Write(ctx, websocket.MessageText, []byte(`{"event":"media","media":{"track":"inbound","timestamp":"1","payload":"////"}}`))
	if _, err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
	frames, err := readAll(t, s)
	var se *voicegate.StreamError
	if !errors.As(err, &se) || len(frames) != 1 {
		t.Fatalf("%d frames, %v; want 1 then a *voicegate.StreamError", len(frames), err)
	}
	<-s.Done()
	if s.Err() != err {
		t.Errorf("Err = %v, ReadFrame ended with %v", s.Err(), err)
	}
}

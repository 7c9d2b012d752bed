package twiliotest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/twilio"
)

// Pace says how fast the simulator sends media.
type Pace int

const (
	// RealTime sends one 20 ms frame per track every 20 ms, as Twilio does.
	RealTime Pace = iota
	// AsFastAsPossible sends frames back to back.
	AsFastAsPossible
)

// Tracks selects the streamed tracks.
type Tracks int

const (
	// Inbound streams the caller's audio only (Twilio's default).
	Inbound Tracks = iota
	// Outbound streams the audio Twilio plays to the caller only.
	Outbound
	// Both streams both tracks, interleaved on one socket.
	Both
)

// FrameDuration is the media time of one simulated frame.
const FrameDuration = 20 * time.Millisecond

// DTMF is a key press the simulator sends at a media time.
type DTMF struct {
	At    time.Duration
	Digit string
}

// Options configures a simulated stream. The zero value streams the inbound
// track at real-time pace without signing the upgrade.
type Options struct {
	// AuthToken signs the upgrade with X-Twilio-Signature when set.
	AuthToken string
	// PublicURL is the URL signed; default the URL dialed. Set it to the
	// wss:// URL the server is configured with when dialing a local address.
	PublicURL string
	// Header adds HTTP headers to the upgrade request.
	Header http.Header

	// AccountSID, CallSID and StreamSID default to random SIDs.
	AccountSID string
	CallSID    string
	StreamSID  string
	// CustomParameters are sent in start.customParameters.
	CustomParameters map[string]string
	// Tracks selects the tracks. With Both and mono audio, PlayWAV sends
	// the file on both tracks.
	Tracks Tracks
	// FirstTimestamp is the media.timestamp of the first frame in ms;
	// default 155, as in a real capture (Twilio does not start at 0).
	FirstTimestamp int64

	// Pace and Clock control timing; Clock defaults to the real clock.
	Pace  Pace
	Clock Clock
	// Jitter delays each real-time send by a random duration in
	// [0, Jitter).
	Jitter time.Duration
	// LossRate is the probability that a media frame is not sent. The first
	// frame of each track is always sent: its timestamp anchors the
	// receiver's timeline, and no receiver can detect its loss.
	LossRate float64
	// DuplicateRate is the probability that a media message is sent twice.
	DuplicateRate float64
	// ReorderRate is the probability that a media message is held back and
	// sent after the next one.
	ReorderRate float64
	// OmitStop ends the stream by closing the WebSocket without a stop
	// message, as when the call drops.
	OmitStop bool
	// Seed makes loss, duplication, reordering and jitter reproducible.
	Seed uint64
	// DTMF events are sent at their media time.
	DTMF []DTMF
	// HoldOpen, when not nil, keeps the stream open after the audio was
	// sent (before stop) until it is closed or the server closes the
	// WebSocket, so a bidirectional test can exchange media and marks.
	HoldOpen <-chan struct{}
	// Stop, when not nil, ends the stream as Twilio does when it is stopped
	// over REST (CreatedStream.Stopped): once it is closed no more media is
	// sent, then stop and the close of the WebSocket.
	Stop <-chan struct{}
}

// Result reports what a simulated stream sent and what the server sent back.
type Result struct {
	// MessagesSent counts all messages sent; MediaSent the media messages
	// (duplicates included); Lost, Duplicated and Reordered the injected
	// faults.
	MessagesSent int
	MediaSent    int
	Lost         int
	Duplicated   int
	Reordered    int
	// SendOffsets holds, for every media message sent, the Clock time
	// since the first frame was due.
	SendOffsets []time.Duration
	// ReceivedAudio is the μ-law the server sent in media messages.
	ReceivedAudio []byte
	// MediaReceived counts the server's media messages; Clears its clear
	// messages.
	MediaReceived int
	Clears        int
	// MarksEchoed lists the marks echoed back, in order, with whether
	// Clear flushed them.
	MarksEchoed []EchoedMark
	// ServerClosed reports that the server closed the WebSocket first, and
	// CloseStatus with which status (-1 when unknown).
	ServerClosed bool
	CloseStatus  websocket.StatusCode
	// Unexpected counts server messages that are not media, mark or clear
	// (Twilio would end the stream with error 31924).
	Unexpected int
}

// EchoedMark is a mark the simulator echoed.
type EchoedMark struct {
	Name    string
	Cleared bool
}

// SID returns a random SID with the given two-letter prefix ("CA", "MZ").
func SID(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// PlayWAV streams a WAV file (8 kHz; μ-law, A-law or 16-bit PCM) to the
// Media Streams server at url. A stereo file carries the inbound track in
// channel 0 and the outbound track in channel 1.
func PlayWAV(ctx context.Context, url string, wav []byte, opts *Options) (*Result, error) {
	w, err := codec.ParseWAV(wav)
	if err != nil {
		return nil, err
	}
	if w.Format.SampleRate != 8000 {
		return nil, fmt.Errorf("twiliotest: WAV is %d Hz, want 8000", w.Format.SampleRate)
	}
	var ch [2][]byte
	for c := 0; c < w.Format.Channels && c < 2; c++ {
		pcm := w.Mono(c)
		ch[c] = make([]byte, len(pcm))
		codec.EncodeULaw(ch[c], pcm)
	}
	if w.Format.Channels == 1 && w.Format.Encoding == voicegate.PCMU {
		ch[0] = w.Data // exact bytes, no re-encoding
	}
	o := options(opts)
	in, out := ch[0], ch[1]
	switch {
	case w.Format.Channels == 1 && o.Tracks == Outbound:
		in, out = nil, ch[0]
	case w.Format.Channels == 1 && o.Tracks == Both:
		out = ch[0]
	}
	return PlayAudio(ctx, url, in, out, &o)
}

// PlayAudio streams raw 8 kHz μ-law audio: inbound and/or outbound (nil
// for a track not streamed). Options.Tracks is set from which are present.
func PlayAudio(ctx context.Context, url string, inbound, outbound []byte, opts *Options) (*Result, error) {
	o := options(opts)
	switch {
	case inbound != nil && outbound != nil:
		o.Tracks = Both
	case outbound != nil:
		o.Tracks = Outbound
	default:
		o.Tracks = Inbound
	}
	sim, err := dial(ctx, url, &o)
	if err != nil {
		return nil, err
	}
	return sim.run(ctx, func(ctx context.Context) error { return sim.sendAudio(ctx, inbound, outbound) })
}

// PlayJSONL replays a capture holding one Media Streams message per line,
// sent as is (blank lines skipped). At RealTime pace it waits 20 ms before
// each media message after the first; other messages go out at once.
// Options that shape audio (Tracks, faults, SIDs, OmitStop) do not apply:
// no stop is added to the capture. HoldOpen does apply.
func PlayJSONL(ctx context.Context, url string, r io.Reader, opts *Options) (*Result, error) {
	o := options(opts)
	o.OmitStop = true // the capture has its own stop, or none
	sim, err := dial(ctx, url, &o)
	if err != nil {
		return nil, err
	}
	return sim.run(ctx, func(ctx context.Context) error {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		media := 0
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			isMedia := bytes.Contains(line, []byte(`"event":"media"`))
			if isMedia {
				if media > 0 && o.Pace == RealTime {
					if err := o.Clock.Sleep(ctx, FrameDuration); err != nil {
						return err
					}
				}
				media++
			}
			if err := sim.write(ctx, line); err != nil {
				return err
			}
			if isMedia {
				sim.res.MediaSent++
			}
		}
		if err := sc.Err(); err != nil {
			return err
		}
		return sim.hold(ctx)
	})
}

func options(opts *Options) Options {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.AccountSID == "" {
		o.AccountSID = SID("AC")
	}
	if o.CallSID == "" {
		o.CallSID = SID("CA")
	}
	if o.StreamSID == "" {
		o.StreamSID = SID("MZ")
	}
	if o.FirstTimestamp == 0 {
		o.FirstTimestamp = 155
	}
	return o
}

type sim struct {
	o    Options
	conn *websocket.Conn
	seq  atomic.Int64
	rnd  *mrand.Rand
	// closing is set once the simulator starts its own close handshake.
	closing atomic.Bool
	// stopped is closed when Options.Stop is: the media loop ends between
	// frames (cancelling a write would drop the connection).
	stopped chan struct{}

	mu  sync.Mutex
	res Result

	playMu   sync.Mutex
	playQ    []playItem
	playGen  int
	playWake chan struct{}
}

type playItem struct {
	frames int
	mark   string
}

func dial(ctx context.Context, url string, o *Options) (*sim, error) {
	h := http.Header{}
	for k, v := range o.Header {
		h[k] = v
	}
	if o.AuthToken != "" {
		signed := o.PublicURL
		if signed == "" {
			signed = url
		}
		h.Set(twilio.SignatureHeader, twilio.ComputeSignature(o.AuthToken, signed, nil))
	}
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("twiliotest: dial %s: HTTP %d: %w", url, resp.StatusCode, err)
		}
		return nil, fmt.Errorf("twiliotest: dial %s: %w", url, err)
	}
	c.SetReadLimit(1 << 20)
	return &sim{o: *o, conn: c, rnd: mrand.New(mrand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)), playWake: make(chan struct{}, 1)}, nil
}

// run starts the reader and playout goroutines, runs send, ends the stream
// and waits for the goroutines.
func (s *sim) run(ctx context.Context, send func(ctx context.Context) error) (*Result, error) {
	s.res.CloseStatus = -1
	rctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	serverGone := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(serverGone)
		s.readLoop(rctx)
	}()
	go func() {
		defer wg.Done()
		s.playout(rctx)
	}()
	sendCtx, stopSend := context.WithCancel(ctx)
	s.stopped = make(chan struct{})
	go func() {
		select {
		case <-serverGone:
			stopSend()
		case <-s.o.Stop:
			close(s.stopped)
		case <-sendCtx.Done():
		}
	}()
	err := send(sendCtx)
	stopSend()
	if errors.Is(err, errStopped) {
		err = nil // stopped over REST: stop follows
	}
	if err != nil && ctx.Err() == nil {
		// A write fails when the server has closed the connection, and the
		// reader sees that close a moment later: give it the chance before
		// reporting the write error as a failure of the simulation.
		t := time.NewTimer(2 * time.Second)
		select {
		case <-serverGone:
		case <-t.C:
		}
		t.Stop()
	}
	select {
	case <-serverGone:
		// The server ended the stream; not an error of the simulation.
		err = nil
	default:
		if err == nil && !s.o.OmitStop {
			err = s.writeJSON(ctx, map[string]any{
				"event": "stop", "sequenceNumber": s.nextSeq(), "streamSid": s.o.StreamSID,
				"stop": map[string]string{"accountSid": s.o.AccountSID, "callSid": s.o.CallSID},
			})
		}
	}
	s.closing.Store(true)
	if ctx.Err() != nil {
		s.conn.CloseNow()
		err = ctx.Err()
	} else {
		s.conn.Close(websocket.StatusNormalClosure, "")
	}
	cancel()
	wg.Wait()
	s.conn.CloseNow()
	s.mu.Lock()
	defer s.mu.Unlock()
	res := s.res
	if errors.Is(err, context.Canceled) && ctx.Err() == nil {
		err = nil
	}
	return &res, err
}

// errStopped ends the media loop after Options.Stop.
var errStopped = errors.New("twiliotest: stopped")

// sleep waits d on clk, or until ctx ends or the stream is stopped.
func (s *sim) sleep(ctx context.Context, clk Clock, d time.Duration) error {
	if s.o.Stop == nil {
		return clk.Sleep(ctx, d)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.stopped:
			cancel()
		case <-sctx.Done():
		}
	}()
	if err := clk.Sleep(sctx, d); err != nil {
		select {
		case <-s.stopped:
			return errStopped
		default:
		}
		return err
	}
	return nil
}

func (s *sim) nextSeq() string { return strconv.FormatInt(s.seq.Add(1), 10) }

func (s *sim) write(ctx context.Context, b []byte) error {
	if err := s.conn.Write(ctx, websocket.MessageText, b); err != nil {
		return err
	}
	s.mu.Lock()
	s.res.MessagesSent++
	s.mu.Unlock()
	return nil
}

func (s *sim) writeJSON(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.write(ctx, b)
}

func (s *sim) sendStart(ctx context.Context) error {
	if err := s.write(ctx, []byte(`{"event":"connected","protocol":"Call","version":"1.0.0"}`)); err != nil {
		return err
	}
	var tracks []string
	switch s.o.Tracks {
	case Inbound:
		tracks = []string{"inbound"}
	case Outbound:
		tracks = []string{"outbound"}
	case Both:
		tracks = []string{"inbound", "outbound"}
	}
	params := s.o.CustomParameters
	if params == nil {
		params = map[string]string{}
	}
	return s.writeJSON(ctx, map[string]any{
		"event":          "start",
		"sequenceNumber": s.nextSeq(),
		"start": map[string]any{
			"accountSid":       s.o.AccountSID,
			"streamSid":        s.o.StreamSID,
			"callSid":          s.o.CallSID,
			"tracks":           tracks,
			"mediaFormat":      map[string]any{"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
			"customParameters": params,
		},
		"streamSid": s.o.StreamSID,
	})
}

type mediaOut struct {
	track string
	chunk int
	ts    int64
	data  []byte
}

func (s *sim) mediaMsg(m mediaOut) []byte {
	b := make([]byte, 0, 128+base64.StdEncoding.EncodedLen(len(m.data)))
	b = append(b, `{"event":"media","sequenceNumber":"`...)
	b = append(b, s.nextSeq()...)
	b = append(b, `","media":{"track":"`...)
	b = append(b, m.track...)
	b = append(b, `","chunk":"`...)
	b = strconv.AppendInt(b, int64(m.chunk), 10)
	b = append(b, `","timestamp":"`...)
	b = strconv.AppendInt(b, m.ts, 10)
	b = append(b, `","payload":"`...)
	b = base64.StdEncoding.AppendEncode(b, m.data)
	b = append(b, `"},"streamSid":"`...)
	b = append(b, s.o.StreamSID...)
	b = append(b, `"}`...)
	return b
}

func (s *sim) sendAudio(ctx context.Context, inbound, outbound []byte) error {
	if err := s.sendStart(ctx); err != nil {
		return err
	}
	const fb = twilio.FrameBytes
	n := max((len(inbound)+fb-1)/fb, (len(outbound)+fb-1)/fb)
	clk := s.o.Clock
	t0 := clk.Now()
	var held *mediaOut
	dtmf := append([]DTMF(nil), s.o.DTMF...)
	send := func(m mediaOut) error {
		if err := s.write(ctx, s.mediaMsg(m)); err != nil {
			return err
		}
		s.mu.Lock()
		s.res.MediaSent++
		s.res.SendOffsets = append(s.res.SendOffsets, clk.Now().Sub(t0))
		s.mu.Unlock()
		return nil
	}
	for i := 0; i < n; i++ {
		select {
		case <-s.stopped:
			return errStopped
		default:
		}
		due := time.Duration(i) * FrameDuration
		if s.o.Pace == RealTime {
			wait := due - clk.Now().Sub(t0)
			if s.o.Jitter > 0 {
				wait += time.Duration(s.rnd.Int64N(int64(s.o.Jitter)))
			}
			if err := s.sleep(ctx, clk, wait); err != nil {
				return err
			}
		}
		for len(dtmf) > 0 && dtmf[0].At <= due {
			if err := s.writeJSON(ctx, map[string]any{"event": "dtmf", "streamSid": s.o.StreamSID, "sequenceNumber": s.nextSeq(),
				"dtmf": map[string]string{"track": "inbound_track", "digit": dtmf[0].Digit}}); err != nil {
				return err
			}
			dtmf = dtmf[1:]
		}
		for tr, audio := range [2][]byte{inbound, outbound} {
			if audio == nil || i*fb >= len(audio) {
				continue
			}
			m := mediaOut{track: "inbound", chunk: i + 1, ts: s.o.FirstTimestamp + int64(i)*20, data: audio[i*fb : min((i+1)*fb, len(audio))]}
			if len(m.data) < fb {
				// Twilio always sends 160 bytes: a short end is padded
				// with μ-law silence.
				pad := bytes.Repeat([]byte{codec.ULawSilence}, fb)
				copy(pad, m.data)
				m.data = pad
			}
			if tr == 1 {
				m.track = "outbound"
			}
			if i > 0 && s.o.LossRate > 0 && s.rnd.Float64() < s.o.LossRate {
				s.mu.Lock()
				s.res.Lost++
				s.mu.Unlock()
				continue
			}
			if held == nil && i > 0 && s.o.ReorderRate > 0 && s.rnd.Float64() < s.o.ReorderRate {
				mm := m
				held = &mm
				s.mu.Lock()
				s.res.Reordered++
				s.mu.Unlock()
				continue
			}
			if err := send(m); err != nil {
				return err
			}
			if s.o.DuplicateRate > 0 && s.rnd.Float64() < s.o.DuplicateRate {
				s.mu.Lock()
				s.res.Duplicated++
				s.mu.Unlock()
				if err := send(m); err != nil {
					return err
				}
			}
			if held != nil && held.track == m.track {
				if err := send(*held); err != nil {
					return err
				}
				held = nil
			}
		}
	}
	if held != nil {
		if err := send(*held); err != nil {
			return err
		}
	}
	return s.hold(ctx)
}

func (s *sim) hold(ctx context.Context) error {
	if s.o.HoldOpen == nil {
		return nil
	}
	select {
	case <-s.o.HoldOpen:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type serverMsg struct {
	Event     string `json:"event"`
	StreamSid string `json:"streamSid"`
	Media     *struct {
		Payload string `json:"payload"`
	} `json:"media"`
	Mark *struct {
		Name string `json:"name"`
	} `json:"mark"`
}

// readLoop reads what the server sends, as Twilio would on a
// bidirectional stream, until the connection ends.
func (s *sim) readLoop(ctx context.Context) {
	for {
		_, b, err := s.conn.Read(ctx)
		if err != nil {
			if s.closing.Load() {
				return
			}
			if st := websocket.CloseStatus(err); st != -1 && ctx.Err() == nil {
				s.mu.Lock()
				s.res.ServerClosed = true
				s.res.CloseStatus = st
				s.mu.Unlock()
			} else if ctx.Err() == nil {
				s.mu.Lock()
				s.res.ServerClosed = true
				s.mu.Unlock()
			}
			return
		}
		var m serverMsg
		if json.Unmarshal(b, &m) != nil {
			s.count(&s.res.Unexpected)
			continue
		}
		switch m.Event {
		case "media":
			if m.Media == nil {
				s.count(&s.res.Unexpected)
				continue
			}
			audio, err := base64.StdEncoding.DecodeString(m.Media.Payload)
			if err != nil {
				s.count(&s.res.Unexpected)
				continue
			}
			s.mu.Lock()
			s.res.MediaReceived++
			s.res.ReceivedAudio = append(s.res.ReceivedAudio, audio...)
			s.mu.Unlock()
			s.enqueue(playItem{frames: (len(audio) + twilio.FrameBytes - 1) / twilio.FrameBytes})
		case "mark":
			if m.Mark == nil || m.Mark.Name == "" {
				s.count(&s.res.Unexpected)
				continue
			}
			s.enqueue(playItem{mark: m.Mark.Name})
		case "clear":
			s.count(&s.res.Clears)
			s.playMu.Lock()
			q := s.playQ
			s.playQ = nil
			s.playGen++
			s.playMu.Unlock()
			for _, it := range q {
				if it.mark != "" {
					s.echo(ctx, it.mark, true)
				}
			}
		default:
			s.count(&s.res.Unexpected)
		}
	}
}

func (s *sim) count(c *int) {
	s.mu.Lock()
	*c++
	s.mu.Unlock()
}

func (s *sim) enqueue(it playItem) {
	s.playMu.Lock()
	s.playQ = append(s.playQ, it)
	s.playMu.Unlock()
	select {
	case s.playWake <- struct{}{}:
	default:
	}
}

func (s *sim) echo(ctx context.Context, name string, cleared bool) {
	s.mu.Lock()
	s.res.MarksEchoed = append(s.res.MarksEchoed, EchoedMark{Name: name, Cleared: cleared})
	s.mu.Unlock()
	s.writeJSON(ctx, map[string]any{"event": "mark", "sequenceNumber": s.nextSeq(), "streamSid": s.o.StreamSID,
		"mark": map[string]string{"name": name}})
}

// playout plays the server's audio in real time (on the Clock) and echoes
// each mark when the audio before it has played.
func (s *sim) playout(ctx context.Context) {
	for {
		s.playMu.Lock()
		if len(s.playQ) == 0 {
			s.playMu.Unlock()
			select {
			case <-s.playWake:
				continue
			case <-ctx.Done():
				return
			}
		}
		it := s.playQ[0]
		gen := s.playGen
		s.playMu.Unlock()
		if it.mark != "" {
			s.playMu.Lock()
			if s.playGen == gen && len(s.playQ) > 0 {
				s.playQ = s.playQ[1:]
				s.playMu.Unlock()
				s.echo(ctx, it.mark, false)
				continue
			}
			s.playMu.Unlock()
			continue
		}
		// Play one frame of the item.
		if s.o.Clock.Sleep(ctx, FrameDuration) != nil {
			return
		}
		s.playMu.Lock()
		if s.playGen == gen && len(s.playQ) > 0 {
			s.playQ[0].frames--
			if s.playQ[0].frames <= 0 {
				s.playQ = s.playQ[1:]
			}
		}
		s.playMu.Unlock()
	}
}

package twilio

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/internal/httperr"
	"github.com/voicegate/voicegate/internal/streamcore"
	"github.com/voicegate/voicegate/internal/wsconn"
)

// Defaults of AcceptOptions.
const (
	DefaultQueueFrames = 100
	DefaultReadLimit   = 64 << 10
	DefaultIdleTimeout = 15 * time.Second
	DefaultEventQueue  = 64
	// DefaultReadCadence is the default AcceptOptions.ReadCadence: four
	// 20 ms media messages per read(2) and per ReadFrame wake-up, which
	// more than halves the CPU time per message
	// (BenchmarkServerReadMediaBatch: about 30 µs per message one at a
	// time, 13–15 µs three at a time, 12 µs four at a time; see
	// internal/wsconn's package doc for the design and the alternatives
	// measured). It adds at most 80 ms to the delivery of a frame, within
	// the ~100 ms that voice biometrics can wait for audio (it needs
	// seconds of speech) and DefaultLagBudget. 200 real-time streams, the
	// cadences alternating in one session (vgload -kind twilio -n 200
	// -duration 8s -cadence 60ms,80ms,100ms -repeat 3, other jobs using
	// 0.8–1.8 of the machine's 2 cores): server CPU per stream-second
	// 481, 437, 375 µs at 60 ms (lag p99 71, 63, 65 ms), 381, 324, 319 at
	// 80 ms (150 with the generator 58 ms late, 83, 84), 350, 294, 281 at
	// 100 ms (110, 200, 120: over the lag budget).
	DefaultReadCadence = 80 * time.Millisecond
	// DefaultLagBudget is the delivery lag over which a stream counts
	// frames in Stats.FramesLagged and logs a warning.
	DefaultLagBudget = streamcore.DefaultLagBudget
)

// FrameBytes is the size of one 20 ms frame of 8 kHz μ-law, the unit in
// which Twilio sends audio and in which Stream.SendAudio sends it.
const FrameBytes = 160

// AcceptOptions configures Accept. The zero value of every field is its
// documented default, and a nil *AcceptOptions is the zero value; but
// without AuthTokens and a public URL, Accept refuses every request unless
// InsecureSkipVerify is set.
type AcceptOptions struct {
	// PublicURL is the stream URL exactly as written in <Stream url> or the
	// REST Url parameter, for example "wss://vb.example.com/twilio/media".
	// An https:// or http:// URL is read as wss:// or ws://, the scheme
	// Twilio signs. Twilio may sign it with or without the default port;
	// both are accepted. Never derive it from the Host header unless a
	// trusted proxy sets it.
	PublicURL string
	// PublicOrigin is used when PublicURL is empty: scheme and host
	// ("wss://vb.example.com"), to which the request path is appended. Use
	// it when one handler serves several paths.
	PublicOrigin string
	// AuthTokens are the auth tokens of the account that owns the calls.
	// A signature made with any of them is accepted, so both the primary
	// and the secondary token can be listed while rotating.
	AuthTokens []string
	// InsecureSkipVerify accepts upgrades without checking
	// X-Twilio-Signature. For local tests only.
	InsecureSkipVerify bool

	// QueueFrames sizes the queue of frames buffered for a slow reader;
	// default DefaultQueueFrames. The queue holds 2×QueueFrames frames
	// shared by both tracks: QueueFrames per track (2 s of 20 ms frames by
	// default) on a both_tracks stream, twice that on a single-track one.
	// When the queue is full the oldest frame is dropped and counted in
	// Stats.FramesDropped.
	QueueFrames int
	// EventQueue bounds the DTMF and mark events waiting for ReadEvent;
	// default DefaultEventQueue. The oldest is dropped when it is full.
	EventQueue int
	// ReadLimit is the largest WebSocket message accepted, in bytes;
	// default DefaultReadLimit (64 KiB). A larger message closes the stream
	// with status 1009.
	ReadLimit int64
	// IdleTimeout ends the stream with ErrIdleTimeout when no message
	// arrives for this long, counted from when the stream's reader read
	// the last message; default DefaultIdleTimeout. A negative value
	// disables it.
	IdleTimeout time.Duration
	// FillGaps inserts μ-law silence (0xFF) frames for media time that a
	// track's timestamps skip, up to voicegate.MaxGapFill per gap, so that
	// the audio read keeps the stream's timeline. Gaps are counted in Stats
	// either way; longer ones are not filled.
	FillGaps bool
	// ReadCadence is the longest the stream's reader pauses, once it has
	// handled every message received, before it reads the socket again
	// (pauses end together on a grid of this period); default
	// DefaultReadCadence. Twilio sends a media message every 20 ms
	// per track: with a cadence, one read(2) takes all the messages that
	// arrived during the pause and the ReadFrame caller is woken once for
	// all of them, which halves the CPU time per message (see
	// DefaultReadCadence for the measurements). The cadence runs from the start event to the stop
	// event: connected, start and the end of the connection are read as
	// they arrive, while media, stop, DTMF and mark echoes are seen up to
	// ReadCadence later. A negative value disables it: each message is
	// read as it arrives.
	ReadCadence time.Duration
	// LagBudget is the delivery lag (Stats.Lag) a stream tolerates: a
	// frame read later than that counts in Stats.FramesLagged, and when
	// the lag goes over it the stream logs a warning to Logger, once per
	// episode of falling behind (again only after the lag stayed under
	// half the budget for 5 s of media), not per frame. Default
	// DefaultLagBudget (100 ms);
	// negative counts and logs nothing.
	LagBudget time.Duration
	// Logger receives the lag warnings; nil means none.
	Logger *slog.Logger

	// clock times IdleTimeout; nil is the time package. Tests set a fake.
	clock clock
}

// clock is the time source of the idle timeout.
type clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d, like time.AfterFunc.
	AfterFunc(d time.Duration, f func()) timer
}

// timer is the part of *time.Timer the idle timeout uses.
type timer interface {
	Reset(d time.Duration) bool
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) timer { return time.AfterFunc(d, f) }

func (o *AcceptOptions) withDefaults() AcceptOptions {
	var c AcceptOptions
	if o != nil {
		c = *o
		c.AuthTokens = append([]string(nil), o.AuthTokens...)
	}
	if c.QueueFrames <= 0 {
		c.QueueFrames = DefaultQueueFrames
	}
	if c.EventQueue <= 0 {
		c.EventQueue = DefaultEventQueue
	}
	if c.ReadLimit <= 0 {
		c.ReadLimit = DefaultReadLimit
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.ReadCadence == 0 {
		c.ReadCadence = DefaultReadCadence
	}
	if c.clock == nil {
		c.clock = realClock{}
	}
	if c.LagBudget == 0 {
		c.LagBudget = DefaultLagBudget
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (o *AcceptOptions) publicURL(r *http.Request) string {
	u := o.PublicURL
	if u == "" && o.PublicOrigin != "" {
		u = strings.TrimSuffix(o.PublicOrigin, "/") + r.URL.EscapedPath()
		if r.URL.RawQuery != "" {
			u += "?" + r.URL.RawQuery
		}
	}
	return upgradeURL(u)
}

// VerifyUpgrade checks the X-Twilio-Signature of a WebSocket upgrade
// request against the public URL and auth tokens in opts, without
// upgrading. Accept calls it.
func VerifyUpgrade(r *http.Request, opts *AcceptOptions) error {
	o := opts.withDefaults()
	if len(o.AuthTokens) == 0 {
		return ErrNoAuthToken
	}
	pub := o.publicURL(r)
	if pub == "" {
		return ErrNoPublicURL
	}
	sig := r.Header.Get(SignatureHeader)
	if sig == "" {
		return fmt.Errorf("%w: header missing", ErrSignature)
	}
	if !NewValidator(o.AuthTokens...).Validate(pub, nil, sig) {
		return fmt.Errorf("%w for %s", ErrSignature, pub)
	}
	return nil
}

// Accept validates the X-Twilio-Signature of a Media Streams WebSocket
// upgrade request, upgrades it and starts reading the stream.
//
// On a bad or missing signature it answers HTTP 403 {"error":"invalid
// signature","code":"forbidden"} before upgrading and returns an error
// wrapping ErrSignature; on a configuration error it answers 500
// ("internal"). Otherwise it returns a Stream whose own goroutine reads the
// socket; the caller must Close it.
//
// Accept does not wait for the start event; use Stream.Start for that. It
// does not use r.Context() after the upgrade.
func Accept(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) (*Stream, error) {
	o := opts.withDefaults()
	if !o.InsecureSkipVerify {
		if err := VerifyUpgrade(r, &o); err != nil {
			if errors.Is(err, ErrSignature) {
				httperr.Write(w, http.StatusForbidden, "forbidden", "invalid signature")
			} else {
				httperr.Write(w, http.StatusInternalServerError, "internal", "stream endpoint misconfigured")
			}
			return nil, err
		}
	}
	c, err := wsconn.Accept(w, r, &wsconn.AcceptOptions{
		// Twilio sends no Origin; the signature authenticates the peer.
		InsecureSkipVerify: true,
		PollInterval:       pollInterval,
	})
	if err != nil {
		return nil, fmt.Errorf("twilio: websocket upgrade: %w", err)
	}
	c.SetReadLimit(o.ReadLimit)
	s := newStream(c, o)
	// The read cadence starts with the start event: connected and start
	// are read as they arrive.
	c.SetFlush(s.beforeRead)
	c.SetCadenceFastPath(s.fastMessage)
	// The reader belongs to the Stream, not to the request: r.Context()
	// ends when the handler returns, and the reader does not use it.
	go s.run()
	return s, nil
}

// MediaFormat is start.mediaFormat.
type MediaFormat struct {
	// Encoding is "audio/x-mulaw" for Twilio.
	Encoding string
	// SampleRate is 8000 for Twilio.
	SampleRate int
	// Channels is 1 for Twilio.
	Channels int
}

// Start is the metadata of a start event.
type Start struct {
	// StreamSID is the stream's SID ("MZ…").
	StreamSID string
	// AccountSID is the account that owns the call ("AC…").
	AccountSID string
	// CallSID is the call being streamed ("CA…").
	CallSID string
	// Tracks lists the streamed tracks: "inbound", "outbound" or both.
	Tracks []string
	// CustomParameters holds the <Parameter> or ParameterN values. Check a
	// signed value here to bind the stream to your own session: the upgrade
	// signature proves only that Twilio opened the connection.
	CustomParameters map[string]string
	// MediaFormat is the announced audio format.
	MediaFormat MediaFormat
	// SequenceNumber is the start message's sequenceNumber.
	SequenceNumber int64
}

// Stop is the metadata of a stop event.
type Stop struct {
	// AccountSID is stop.accountSid ("AC…").
	AccountSID string
	// CallSID is stop.callSid ("CA…").
	CallSID string
}

// EventKind tells events apart.
type EventKind uint8

const (
	// EventDTMF is a key press (bidirectional streams only).
	EventDTMF EventKind = iota + 1
	// EventMark is the echo of a mark sent with SendMark.
	EventMark
)

// String returns "dtmf" or "mark".
func (k EventKind) String() string {
	switch k {
	case EventDTMF:
		return "dtmf"
	case EventMark:
		return "mark"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// MarkStatus says what a mark echo means.
type MarkStatus uint8

const (
	// MarkUnknown is an echo of a mark this Stream did not send.
	MarkUnknown MarkStatus = iota
	// MarkPlayed means the audio sent before the mark has played.
	MarkPlayed
	// MarkCleared means the mark was echoed because Clear flushed the
	// audio before it: that audio did not (entirely) play.
	MarkCleared
)

// String returns "played", "cleared" or "unknown".
func (m MarkStatus) String() string {
	switch m {
	case MarkPlayed:
		return "played"
	case MarkCleared:
		return "cleared"
	}
	return "unknown"
}

// Event is a DTMF or mark event.
type Event struct {
	// Kind is EventDTMF or EventMark.
	Kind EventKind
	// SequenceNumber is the message's sequenceNumber.
	SequenceNumber int64
	// Digit is dtmf.digit.
	Digit string
	// Track is dtmf.track ("inbound_track").
	Track string
	// Mark is mark.name.
	Mark string
	// MarkStatus tells a played mark from a cleared one.
	MarkStatus MarkStatus
}

// Stats are counters of a Stream. Frame counts cover both tracks. The
// fields from MessagesReceived to QueueDepth have the same names and
// meaning in audiohook.Stats.
type Stats struct {
	// MessagesReceived counts WebSocket messages read.
	MessagesReceived uint64
	// MessagesSent counts messages sent: MediaSent + MarksSent + ClearsSent.
	MessagesSent uint64
	// FramesReceived counts media messages accepted (silence not included).
	FramesReceived uint64
	// FramesRead counts frames returned by ReadFrame, silence included.
	FramesRead uint64
	// FramesDropped counts frames dropped because the queue was full.
	FramesDropped uint64
	// FramesLate counts media messages dropped because their timestamp was
	// not after the previous one of their track (duplicates and frames
	// arriving out of order).
	FramesLate uint64
	// Gaps counts jumps in a track's media timestamps of half a frame or
	// more, and GapTime the media time they skipped.
	Gaps    uint64
	GapTime time.Duration
	// SilenceFrames counts the μ-law silence frames inserted by FillGaps.
	SilenceFrames uint64
	// MaxQueueDepth is the largest number of frames queued at once, and
	// QueueDepth the number queued now.
	MaxQueueDepth int
	QueueDepth    int

	// Malformed counts messages that could not be parsed: the first ends
	// the stream (ErrMalformed, close status 1007).
	Malformed uint64
	// Ignored counts well-formed messages ignored: unknown events, binary
	// messages, unknown tracks, empty payloads, a second start, media
	// after stop; and a message read after the idle timeout expired.
	Ignored uint64
	// EventsDropped counts DTMF and mark events dropped from a full queue.
	EventsDropped uint64
	// MediaSent, MarksSent and ClearsSent count outbound messages.
	MediaSent  uint64
	MarksSent  uint64
	ClearsSent uint64

	// Lag is the delivery lag of the last frame ReadFrame returned: when
	// it was returned less when it was due, a frame being due at its media
	// time on the stream's best delivery so far (the running minimum of
	// delivery time less media time), so Lag is 0 while the stream keeps
	// up with real time and grows by the time the server or the
	// application falls behind. MaxLag is the largest Lag so far, and
	// FramesLagged counts frames returned with a Lag over
	// AcceptOptions.LagBudget. The fields have the same meaning in
	// audiohook.Stats.
	Lag          time.Duration
	MaxLag       time.Duration
	FramesLagged uint64
}

type pendingMark struct {
	name    string
	cleared bool
}

// Stream is one Twilio Media Streams WebSocket connection, server side. It
// is a voicegate.Stream and honours the contract written there.
//
// A goroutine owned by the Stream reads the socket from Accept until the
// stream ends. It handles every event at once: media goes into a bounded
// queue (drop-oldest, counted in Stats), DTMF and mark echoes into a
// separate bounded queue read with ReadEvent, so neither blocks the other.
// The caller need not keep reading for the protocol to work, but unread
// audio is dropped once the queue is full. Between the start and stop
// events the connection is read every AcceptOptions.ReadCadence (80 ms
// by default), the messages of that time taken in one system call by the
// connection's shared cadence timer, which queues the media itself and
// wakes a waiting ReadFrame once for them; the goroutine is woken only for
// the other messages.
//
// The clean end of a Twilio stream is its stop event: ReadFrame returns
// the queued frames, then io.EOF, and Err is nil. Any other end is
// abnormal: ReadFrame returns the queued frames, then a
// *voicegate.StreamError whose cause Err also returns: a
// *voicegate.CloseError for a peer that closed the WebSocket without stop
// or that this side failed (1009 for a message over
// AcceptOptions.ReadLimit, 1007 for a text message that is not valid
// UTF-8, 1002 for an unmasked frame, as RFC 6455 requires),
// ErrIdleTimeout, or the network error. After Close or CloseNow, ReadFrame
// returns voicegate.ErrClosed (net.ErrClosed).
//
// Frames carry PCMU at 8000 Hz, one channel; Parties[0] is
// voicegate.Customer for the inbound track and voicegate.Agent for the
// outbound track. Seq counts frames per track from 1 (a jump means frames
// were lost in transit or dropped from the queue). Timestamp is
// media.timestamp minus the first media.timestamp of the stream (any
// track), which Twilio does not start at 0; FirstTimestamp returns that raw
// value. Lateness is judged per track: on a both_tracks stream a track
// whose first frames are older than the other track's first frame keeps
// them, with a negative Timestamp.
//
// All methods are safe for concurrent use; concurrent ReadFrame (or
// ReadEvent) calls are serialised.
type Stream struct {
	conn *wsconn.Conn
	opts AcceptOptions
	q    *streamcore.Queue

	done chan struct{} // reader goroutine exited

	startCh chan struct{}
	closeCh chan struct{}
	eventCh chan struct{}
	emu     chan struct{}
	wmu     chan struct{}

	// reader goroutine only
	b64Buf []byte
	mm     mediaMsg
	wire   wireMsg
	tracks [2]streamcore.Track
	readAt time.Time // clock time of the connection's last network read

	// bad is the first malformed message's error and badReason the close
	// reason sent for it; reader only.
	bad       error
	badReason string
	badCode   wsconn.StatusCode

	// reread: the connection may have read the network since readAt. Set
	// by the flush hook, which also runs on Close's goroutine.
	reread atomic.Bool

	mu sync.Mutex
	// refusedStart is the start refused for its mediaFormat, which Start
	// returns with ErrMediaFormat.
	refusedStart *Start
	start        *Start
	stop         *Stop
	sidJSON      []byte
	events       []Event
	evHead       int
	evCount      int
	firstTS      int64
	haveFirst    bool
	stopped      bool
	ended        bool
	closed       bool
	marks        []pendingMark
	gaps         streamcore.GapCounters
	stats        Stats

	// Idle timeout: the reader records when it read each message, the
	// timer callback decides from that record whether the stream is idle.
	idle      timer
	lastMsg   time.Time // clock time the last message was read
	idleFired bool      // the callback expired the read deadline
	firedAt   time.Time // clock time it did
	idleOff   bool      // the reader exited and stopped the timer

	wbuf      []byte
	closeOnce sync.Once
}

func newStream(c *wsconn.Conn, o AcceptOptions) *Stream {
	n := 2 * o.QueueFrames
	s := &Stream{
		conn:    c,
		opts:    o,
		done:    make(chan struct{}),
		startCh: make(chan struct{}),
		closeCh: make(chan struct{}),
		eventCh: make(chan struct{}, 1),
		emu:     make(chan struct{}, 1),
		wmu:     make(chan struct{}, 1),
		b64Buf:  make([]byte, 768),
		events:  make([]Event, o.EventQueue),
	}
	// Room for n frames of 160 bytes, or fewer larger ones from clones
	// that send more per message.
	s.q = streamcore.NewQueue(streamcore.QueueOptions{Frames: n, Bytes: 2 * n * FrameBytes, Overflow: streamcore.DropOldest,
		Batched: true, LagBudget: o.LagBudget, OnLag: s.warnLag})
	for i := range s.tracks {
		s.tracks[i].MinGap = halfFrame
	}
	return s
}

// warnLag logs a crossing of AcceptOptions.LagBudget.
func (s *Stream) warnLag(lag, budget time.Duration) {
	s.mu.Lock()
	var sid, call string
	if s.start != nil {
		sid, call = s.start.StreamSID, s.start.CallSID
	}
	s.mu.Unlock()
	s.opts.Logger.Warn("twilio: stream lag over budget: frames are read later than their media time",
		"stream_sid", sid, "call_sid", call, "lag", lag, "budget", budget)
}

// beforeRead is the connection's flush hook (wsconn.Conn.SetFlush), called
// before it may read the network: it hands the frames queued so far to a
// waiting ReadFrame and notes that the next message needs a new clock
// reading. The messages taken by one read(2) share the clock reading of
// the first, so a batch of three costs one time.Now instead of three.
func (s *Stream) beforeRead() {
	s.reread.Store(true)
	s.q.Flush()
}

// run is the reader goroutine: it reads every message until the
// connection ends. The message is read in place (the connection's buffer
// is valid until the next read), so a steady stream of media costs no
// allocation.
func (s *Stream) run() {
	defer close(s.done)
	useIdle := s.opts.IdleTimeout > 0
	if useIdle {
		s.mu.Lock()
		s.lastMsg = s.opts.clock.Now()
		s.idle = s.opts.clock.AfterFunc(s.opts.IdleTimeout, s.idleExpired)
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.idleOff = true // a callback running now does not re-arm
			s.idle.Stop()
			s.mu.Unlock()
		}()
	}
	var err error
	for {
		var typ wsconn.MessageType
		var msg []byte
		typ, msg, err = s.conn.ReadMessage()
		if err != nil {
			break
		}
		var now time.Time
		if useIdle {
			if s.reread.Swap(false) || s.readAt.IsZero() {
				s.readAt = s.opts.clock.Now()
			}
			now = s.readAt
		}
		s.mu.Lock()
		s.stats.MessagesReceived++
		if useIdle && !s.msgReadLocked(now) {
			s.stats.Ignored++
			s.mu.Unlock()
			err = os.ErrDeadlineExceeded
			break
		}
		s.mu.Unlock()
		if typ != wsconn.MessageText {
			s.count1(&s.stats.Ignored)
			continue
		}
		s.handle(msg)
		if s.bad != nil {
			// A message that cannot be parsed ends the stream (RFC 6455
			// section 7.4.1: 1007, data inconsistent with the message
			// type).
			// A start with an unsupported mediaFormat ends it with 1003.
			_ = s.conn.Close(s.badCode, s.badReason)
			break
		}
	}
	s.finish(err)
}

// fastMessage is the connection's cadence fast path
// (wsconn.Conn.SetCadenceFastPath): while the reader is paused for the
// read cadence, the connection's cadence timer reads the socket and hands
// each message here, and a media message is queued without waking the
// reader. Every other message (start, stop, mark, DTMF, anything
// malformed) is declined and reaches the reader unchanged, as does any
// message once the idle timeout has expired.
func (s *Stream) fastMessage(typ wsconn.MessageType, msg []byte) bool {
	if typ != wsconn.MessageText || len(msg)*3/4+4 > len(s.b64Buf) {
		return false
	}
	if _, err := scanMedia(msg, s.b64Buf, &s.mm); err != nil {
		return false
	}
	idx, ok := trackIndex(s.mm.track)
	useIdle := s.opts.IdleTimeout > 0
	if useIdle && (s.reread.Swap(false) || s.readAt.IsZero()) {
		s.readAt = s.opts.clock.Now()
	}
	// One lock pair per message: the count, the idle record and the
	// track's placement (onMedia takes a second pair).
	s.mu.Lock()
	if useIdle && s.idleFired {
		s.mu.Unlock()
		return false
	}
	s.stats.MessagesReceived++
	if useIdle {
		s.lastMsg = s.readAt
	}
	if !ok {
		s.stats.Ignored++
		s.mu.Unlock()
		return true
	}
	gap, ts, dur, late := s.placeLocked(idx, &s.mm)
	s.mu.Unlock()
	if !late {
		s.pushMedia(idx, &s.mm, gap, ts, dur)
	}
	return true
}

// msgReadLocked records a message read at now for the idle timeout and
// reports whether it counts. The timer is not reset here: idleExpired
// re-arms it for the time left.
//
// A message read before the timer expired counts even if the timer expired
// before it was recorded: the expiry is undone. One read after it does not
// (a read already under way when the deadline was set can still return
// it): the stream has ended.
func (s *Stream) msgReadLocked(now time.Time) bool {
	if s.idleFired {
		if !now.Before(s.firedAt) {
			return false
		}
		s.idleFired = false
		_ = s.conn.SetReadDeadline(time.Time{})
		s.idle.Reset(s.opts.IdleTimeout)
	}
	s.lastMsg = now
	return true
}

// idleExpired is the idle timer's callback. If a message was read within
// IdleTimeout it re-arms the timer for the time left; otherwise it expires
// the read deadline, so that the blocked read fails and the reader ends the
// stream with ErrIdleTimeout.
func (s *Stream) idleExpired() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idleOff || s.closed {
		return
	}
	now := s.opts.clock.Now()
	if left := s.opts.IdleTimeout - now.Sub(s.lastMsg); left > 0 {
		s.idle.Reset(left)
		return
	}
	s.idleFired, s.firedAt = true, now
	_ = s.conn.SetReadDeadline(time.Unix(1, 0))
}

func (s *Stream) count1(c *uint64) {
	s.mu.Lock()
	*c++
	s.mu.Unlock()
}

// finish records why reading ended.
func (s *Stream) finish(err error) {
	s.mu.Lock()
	idle := s.idleFired
	s.mu.Unlock()
	var cause error
	switch {
	case s.bad != nil:
		cause = fmt.Errorf("twilio: stream ended: %w: %w", s.bad,
			&voicegate.CloseError{Code: int(s.badCode), Reason: s.badReason, Sent: true})
	case idle && errors.Is(err, os.ErrDeadlineExceeded):
		cause = fmt.Errorf("twilio: stream ended: %w", ErrIdleTimeout)
	default:
		cause = readError(err)
	}
	s.mu.Lock()
	closed := s.closed
	s.endLocked()
	s.mu.Unlock()
	if !closed {
		// After stop or Close the queue has ended already: the first end
		// wins.
		s.q.Finish(cause)
	}
}

// readError turns an error of the connection's reader into the cause of an
// abnormal end: the peer's close frame or the close this side sent for a
// protocol violation as a *voicegate.CloseError, network errors as they
// are.
func readError(err error) error {
	var ce *wsconn.CloseError
	if errors.As(err, &ce) {
		return fmt.Errorf("twilio: stream ended without stop: %w", &voicegate.CloseError{Code: int(ce.Code), Reason: ce.Reason})
	}
	var pe *wsconn.ProtocolError
	if errors.As(err, &pe) {
		return fmt.Errorf("twilio: stream ended: %w", &voicegate.CloseError{Code: int(pe.Code), Reason: pe.Reason, Sent: true})
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("twilio: stream ended without stop: %w", err)
}

// endLocked ends the event queue; the frame queue is ended by its caller.
func (s *Stream) endLocked() {
	s.ended = true
	signal(s.eventCh)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// malformed counts a message that could not be parsed and keeps the first
// error, which ends the stream. Reader only.
func (s *Stream) malformed(err error) {
	s.count1(&s.stats.Malformed)
	if s.bad == nil {
		s.bad = fmt.Errorf("%w: %w", ErrMalformed, err)
		s.badReason = malformedReason(err)
		s.badCode = wsconn.StatusInvalidFramePayloadData
	}
}

// handle processes one text message.
func (s *Stream) handle(msg []byte) {
	if need := len(msg)*3/4 + 4; need > len(s.b64Buf) {
		s.b64Buf = make([]byte, need)
	}
	ev, err := scanMedia(msg, s.b64Buf, &s.mm)
	if err == nil {
		s.onMedia(&s.mm)
		return
	}
	if !errors.Is(err, errSlowPath) {
		s.malformed(err)
		return
	}
	_ = ev
	w := &s.wire
	if err := decodeFull(msg, w); err != nil {
		s.malformed(err)
		return
	}
	seq, _ := parseIntString(w.SequenceNumber)
	switch string(w.Event) {
	case eventConnected:
		// Nothing to do: the upgrade already happened.
	case eventStart:
		s.onStart(w, seq)
	case eventMedia:
		if w.Media == nil {
			s.malformed(fmt.Errorf("%w: media event without media", errMalformed))
			return
		}
		if err := fillMedia(&s.mm, []byte(w.Media.Track), []byte(w.Media.Timestamp), []byte(w.Media.Chunk), []byte(w.Media.Payload), s.b64Buf); err != nil {
			s.malformed(err)
			return
		}
		s.onMedia(&s.mm)
	case eventDTMF:
		if w.DTMF == nil {
			s.malformed(fmt.Errorf("%w: dtmf event without dtmf", errMalformed))
			return
		}
		s.pushEvent(Event{Kind: EventDTMF, SequenceNumber: seq, Digit: string(w.DTMF.Digit), Track: string(w.DTMF.Track)})
	case eventMark:
		if w.Mark == nil {
			s.malformed(fmt.Errorf("%w: mark event without mark", errMalformed))
			return
		}
		s.onMark(string(w.Mark.Name), seq)
	case eventStop:
		s.mu.Lock()
		if !s.stopped {
			s.stopped = true
			st := &Stop{}
			if w.Stop != nil {
				st.AccountSID, st.CallSID = string(w.Stop.AccountSid), string(w.Stop.CallSid)
			}
			s.stop = st
		} else {
			s.stats.Ignored++
		}
		s.mu.Unlock()
		// Events go on until the connection ends (marks may still be
		// echoed); the audio ends here. Twilio closes the connection
		// next: read its close frame without pausing.
		s.q.Finish(io.EOF)
		if s.conn != nil {
			s.conn.SetReadCadence(0)
		}
	default:
		s.count1(&s.stats.Ignored)
	}
}

func (s *Stream) onStart(w *wireMsg, seq int64) {
	if w.Start == nil {
		s.malformed(fmt.Errorf("%w: start event without start", errMalformed))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.start != nil {
		s.stats.Ignored++
		return
	}
	ws := w.Start
	st := &Start{
		StreamSID:      string(ws.StreamSid),
		AccountSID:     string(ws.AccountSid),
		CallSID:        string(ws.CallSid),
		SequenceNumber: seq,
		MediaFormat: MediaFormat{
			Encoding: string(ws.MediaFormat.Encoding),
		},
		CustomParameters: make(map[string]string, len(ws.CustomParameters)),
	}
	if st.StreamSID == "" {
		st.StreamSID = string(w.StreamSid)
	}
	if v, ok := parseIntString(ws.MediaFormat.SampleRate); ok && v < 1<<31 {
		st.MediaFormat.SampleRate = int(v)
	}
	if v, ok := parseIntString(ws.MediaFormat.Channels); ok && v < 1<<31 {
		st.MediaFormat.Channels = int(v)
	}
	for _, t := range ws.Tracks {
		st.Tracks = append(st.Tracks, string(t))
	}
	for k, v := range ws.CustomParameters {
		st.CustomParameters[k] = string(v)
	}
	if reason := checkMediaFormat(ws); reason != "" {
		// Not the start of a stream this package reads: refuse it, so
		// that nobody waits for audio it would misread.
		s.stats.Malformed++
		if s.bad == nil {
			s.bad = fmt.Errorf("%w: %s", ErrMediaFormat, reason)
			s.badReason = reason
			s.badCode = wsconn.StatusUnsupportedData
			s.refusedStart = st
		}
		return
	}
	s.sidJSON, _ = json.Marshal(st.StreamSID)
	s.start = st
	close(s.startCh)
	if s.conn != nil && !s.stopped {
		s.conn.SetReadCadence(s.opts.ReadCadence)
	}
}

// checkMediaFormat returns "" for Twilio's media format, else the close
// reason naming what the start announced (at most 123 bytes, the limit of
// a close reason). A field left out is taken as Twilio's value.
func checkMediaFormat(ws *wireStart) string {
	f := &ws.MediaFormat
	rate, rateOK := parseIntString(f.SampleRate)
	ch, chOK := parseIntString(f.Channels)
	if (f.Encoding == "" || f.Encoding == "audio/x-mulaw") &&
		(f.SampleRate == "" || rateOK && rate == 8000) &&
		(f.Channels == "" || chOK && ch == 1) {
		return ""
	}
	num := func(v int64, ok bool, raw lenientString) string {
		if ok && v < 1<<31 {
			return strconv.FormatInt(v, 10)
		}
		return fmt.Sprintf("%+.12q", string(raw)) // ASCII: a close reason is UTF-8
	}
	channels := "channels"
	if chOK && ch == 1 {
		channels = "channel"
	}
	reason := fmt.Sprintf("unsupported mediaFormat %+.24q %s Hz %s %s; want \"audio/x-mulaw\" 8000 Hz 1 channel",
		string(f.Encoding), num(rate, rateOK, f.SampleRate), num(ch, chOK, f.Channels), channels)
	if len(reason) > 123 { // ASCII only: no rune is cut
		reason = reason[:123]
	}
	return reason
}

func (s *Stream) onMark(name string, seq int64) {
	s.mu.Lock()
	status := MarkUnknown
	for i, m := range s.marks {
		if m.name == name {
			status = MarkPlayed
			if m.cleared {
				status = MarkCleared
			}
			s.marks = append(s.marks[:i], s.marks[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	s.pushEvent(Event{Kind: EventMark, SequenceNumber: seq, Mark: name, MarkStatus: status})
}

func (s *Stream) pushEvent(e Event) {
	s.mu.Lock()
	n := len(s.events)
	if s.evCount == n {
		s.evHead = (s.evHead + 1) % n
		s.evCount--
		s.stats.EventsDropped++
	}
	s.events[(s.evHead+s.evCount)%n] = e
	s.evCount++
	s.mu.Unlock()
	signal(s.eventCh)
}

// halfFrame is the least timestamp jump counted as a gap: Twilio's
// timestamps are in whole milliseconds.
const halfFrame = 10 * time.Millisecond

// sampleTime is the play time of one 8 kHz sample.
const sampleTime = time.Second / 8000

// trackIndex maps a media message's track to its index in Stream.tracks;
// ok is false for a track that is not Twilio's.
func trackIndex(track []byte) (idx int, ok bool) {
	switch string(track) {
	case "inbound", "inbound_track", "":
		// Twilio always names the track; some clones omit it on
		// single-track streams.
		return 0, true
	case "outbound", "outbound_track":
		return 1, true
	}
	return 0, false
}

func (s *Stream) onMedia(m *mediaMsg) {
	idx, ok := trackIndex(m.track)
	if !ok {
		s.count1(&s.stats.Ignored)
		return
	}
	s.mu.Lock()
	gap, ts, dur, late := s.placeLocked(idx, m)
	s.mu.Unlock()
	if !late {
		s.pushMedia(idx, m, gap, ts, dur)
	}
}

// placeLocked places a media message on its track's clock; late reports
// that it is not to be queued (empty, after stop or Close, or late).
func (s *Stream) placeLocked(idx int, m *mediaMsg) (gap, ts, dur time.Duration, late bool) {
	if len(m.payload) == 0 || s.stopped || s.closed {
		s.stats.Ignored++
		return 0, 0, 0, true
	}
	if !s.haveFirst {
		s.firstTS, s.haveFirst = m.timestamp, true
	}
	ts = time.Duration(m.timestamp-s.firstTS) * time.Millisecond
	dur = time.Duration(len(m.payload)) * sampleTime
	gap, late = s.tracks[idx].Place(ts, dur, &s.gaps)
	return gap, ts, dur, late
}

// pushMedia queues a placed media message, after the silence of its gap.
func (s *Stream) pushMedia(idx int, m *mediaMsg, gap, ts, dur time.Duration) {
	tr := &s.tracks[idx]
	f := voicegate.Frame{
		Encoding:   voicegate.PCMU,
		SampleRate: 8000,
		Channels:   1,
		Parties:    [voicegate.MaxChannels]voicegate.Party{voicegate.Customer},
	}
	if idx == 1 {
		f.Parties[0] = voicegate.Agent
	}
	tr.FillGap(s.q, f, ts, gap, dur, 20*time.Millisecond, s.opts.FillGaps)
	f.Seq = tr.Seq()
	f.Timestamp = ts
	f.Payload = m.payload
	s.q.Push(f, dur)
}

func lock(ctx context.Context, mu chan struct{}, closed <-chan struct{}) error {
	select {
	case mu <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-closed:
		return errClosed
	}
}

// ReadFrame returns the next frame of either track, as the
// voicegate.FrameReader contract says: the payload is valid until the next
// ReadFrame call; io.EOF follows the last frame after a stop event, a
// *voicegate.StreamError after any other end; ctx.Err() when ctx ends first
// (the stream stays usable); voicegate.ErrClosed after Close.
func (s *Stream) ReadFrame(ctx context.Context) (voicegate.Frame, error) {
	return s.q.Pop(ctx)
}

// ReadEvent returns the next DTMF or mark event. It blocks like ReadFrame
// and returns io.EOF once the stream has ended and the queued events were
// read. Events are queued independently of audio, so reading them never
// waits for ReadFrame and vice versa.
func (s *Stream) ReadEvent(ctx context.Context) (Event, error) {
	if err := lock(ctx, s.emu, s.closeCh); err != nil {
		return Event{}, err
	}
	defer func() { <-s.emu }()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return Event{}, errClosed
		}
		if s.evCount > 0 {
			e := s.events[s.evHead]
			s.events[s.evHead] = Event{}
			s.evHead = (s.evHead + 1) % len(s.events)
			s.evCount--
			s.mu.Unlock()
			return e, nil
		}
		if s.ended {
			s.mu.Unlock()
			return Event{}, io.EOF
		}
		s.mu.Unlock()
		select {
		case <-s.eventCh:
		case <-s.closeCh:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// Start waits for the start event and returns its metadata, which the
// caller must not modify. It returns an
// error wrapping io.ErrUnexpectedEOF if the stream ends without one, and
// ctx.Err() if ctx ends first. A start announcing a mediaFormat other than
// 8 kHz mono μ-law ends the stream: Start then returns that start's
// metadata (to tell the session it named) with an error wrapping
// ErrMediaFormat.
func (s *Stream) Start(ctx context.Context) (*Start, error) {
	select {
	case <-s.startCh:
	case <-s.q.Done():
		select {
		case <-s.startCh:
		default:
			// Name what did arrive: junk before start is otherwise only a
			// counter, and the end alone reads like a network fault.
			s.mu.Lock()
			bad, ignored := s.stats.Malformed, s.stats.Ignored
			s.mu.Unlock()
			if end := s.q.Err(); errors.Is(end, ErrMediaFormat) {
				s.mu.Lock()
				defer s.mu.Unlock()
				return s.refusedStart, end
			} else if errors.Is(end, ErrMalformed) {
				return nil, fmt.Errorf("twilio: stream ended before start, after %d ignored messages: %w: %w", ignored, io.ErrUnexpectedEOF, end)
			}
			if bad+ignored > 0 {
				return nil, fmt.Errorf("twilio: stream ended before start, after %d malformed and %d ignored messages: %w", bad, ignored, io.ErrUnexpectedEOF)
			}
			return nil, fmt.Errorf("twilio: stream ended before start: %w", io.ErrUnexpectedEOF)
		}
	case <-s.closeCh:
		return nil, errClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.start, nil
}

// StopInfo returns the stop event's metadata, or nil if none arrived.
func (s *Stream) StopInfo() *Stop {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stop
}

// FirstTimestamp returns the first media.timestamp of the stream in
// milliseconds, from which Frame.Timestamp is counted, and whether a media
// message arrived yet.
func (s *Stream) FirstTimestamp() (ms int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firstTS, s.haveFirst
}

// Done is closed when the stream has ended and its reader goroutine has
// exited (the connection is gone: after stop Twilio closes it at once, or
// peer close, broken connection, idle timeout, Close): no more frames or
// events will be queued and Stats are final.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Err tells why the audio ended once Done is closed: nil for a stop event,
// the *voicegate.StreamError of an abnormal end (its cause a
// *voicegate.CloseError, ErrIdleTimeout or a network error; read a close
// status with voicegate.CloseStatus), or voicegate.ErrClosed after Close.
func (s *Stream) Err() error { return s.q.Err() }

// Stats returns a snapshot of the stream's counters.
func (s *Stream) Stats() Stats {
	c := s.q.Counters()
	s.mu.Lock()
	st := s.stats
	g := s.gaps
	s.mu.Unlock()
	st.MessagesSent = st.MediaSent + st.MarksSent + st.ClearsSent
	st.FramesReceived = c.FramesReceived - c.SilenceFrames
	st.FramesRead = c.FramesRead
	st.FramesDropped = c.FramesDropped
	st.SilenceFrames = c.SilenceFrames
	st.MaxQueueDepth = c.MaxQueueDepth
	st.QueueDepth = c.QueueDepth
	st.FramesLate, st.Gaps, st.GapTime = g.FramesLate, g.Gaps, g.GapTime
	st.Lag, st.MaxLag, st.FramesLagged = c.Lag, c.MaxLag, c.FramesLagged
	return st
}

// PendingMarks returns the number of marks sent and not yet echoed.
func (s *Stream) PendingMarks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.marks)
}

// Close ends the stream: it closes the WebSocket with status 1000, waiting
// for the peer's answer (a few seconds at most; CloseNow does not wait),
// and stops the reader goroutine. Pending and later ReadFrame and
// ReadEvent calls return voicegate.ErrClosed (net.ErrClosed) at once. On a
// bidirectional <Connect><Stream>, closing makes Twilio continue with the
// next TwiML verb. The first call returns nil, or the error of a close
// frame that could not be sent (the connection is closed all the same);
// later calls return voicegate.ErrClosed.
func (s *Stream) Close() error {
	return s.close(true)
}

// CloseNow is Close without the WebSocket close handshake.
func (s *Stream) CloseNow() error {
	return s.close(false)
}

var errClosed = fmt.Errorf("twilio: %w", voicegate.ErrClosed)

// Refuse ends a stream the application does not take (a start naming no
// call it waits for, say): it closes the WebSocket with status 1008
// (policy violation, RFC 6455 section 7.4.1) and reason, which the peer
// sees (keep it short: at most 123 bytes are sent, and no secret), then
// behaves as Close.
func (s *Stream) Refuse(reason string) error {
	return s.closeWith(true, wsconn.StatusPolicyViolation, reason)
}

func (s *Stream) close(graceful bool) error {
	return s.closeWith(graceful, wsconn.StatusNormalClosure, "")
}

func (s *Stream) closeWith(graceful bool, code wsconn.StatusCode, reason string) error {
	err := errClosed
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.q.Abort(errClosed)
		close(s.closeCh)
		if graceful {
			err = s.conn.Close(code, reason)
		} else {
			err = s.conn.CloseNow()
		}
		<-s.done
		switch {
		case errors.Is(err, net.ErrClosed):
			err = nil // the connection had already ended
		case err != nil:
			// The close frame could not be sent in time; the connection
			// is closed all the same.
			err = fmt.Errorf("twilio: close: %w", err)
		}
	})
	return err
}

// writeMsg sends wbuf as one text message; the caller holds wmu.
func (s *Stream) writeMsg(ctx context.Context) error {
	if err := s.conn.WriteMessage(ctx, wsconn.MessageText, s.wbuf); err != nil {
		return fmt.Errorf("twilio: write: %w", err)
	}
	return nil
}

func (s *Stream) beginWrite(ctx context.Context) ([]byte, error) {
	if err := lock(ctx, s.wmu, s.closeCh); err != nil {
		return nil, err
	}
	s.mu.Lock()
	sid := s.sidJSON
	s.mu.Unlock()
	if sid == nil {
		<-s.wmu
		return nil, ErrNotStarted
	}
	return sid, nil
}

// SendAudio sends audio to Twilio for playback on a bidirectional
// (<Connect><Stream>) stream. audio is raw 8 kHz μ-law, or a WAV file
// (8 kHz mono μ-law, A-law or 16-bit PCM), whose header is stripped and
// whose samples are converted to μ-law. The audio is split into 160-byte
// (20 ms) media messages; a short last frame is padded with μ-law silence.
//
// Twilio queues the audio and plays it in order; use SendMark to learn when
// it has played and Clear to interrupt it. Sending on a unidirectional
// <Start><Stream> is a protocol error at Twilio (31924). Before the start
// event it returns ErrNotStarted. A ctx that ends during a write closes the
// connection, since a message may have been half written.
func (s *Stream) SendAudio(ctx context.Context, audio []byte) error {
	ulaw, err := toULaw(audio)
	if err != nil {
		return err
	}
	sid, err := s.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer func() { <-s.wmu }()
	var frame [FrameBytes]byte
	for len(ulaw) > 0 {
		n := copy(frame[:], ulaw)
		for i := n; i < FrameBytes; i++ {
			frame[i] = codec.ULawSilence
		}
		ulaw = ulaw[n:]
		s.wbuf = append(s.wbuf[:0], `{"event":"media","streamSid":`...)
		s.wbuf = append(s.wbuf, sid...)
		s.wbuf = append(s.wbuf, `,"media":{"payload":"`...)
		s.wbuf = base64.StdEncoding.AppendEncode(s.wbuf, frame[:])
		s.wbuf = append(s.wbuf, `"}}`...)
		if err := s.writeMsg(ctx); err != nil {
			return err
		}
		s.count1(&s.stats.MediaSent)
	}
	return nil
}

func toULaw(audio []byte) ([]byte, error) {
	if !bytes.HasPrefix(audio, []byte("RIFF")) {
		return audio, nil
	}
	w, err := codec.ParseWAV(audio)
	if err != nil {
		return nil, fmt.Errorf("twilio: outbound audio: %w", err)
	}
	f := w.Format
	if f.SampleRate != 8000 || f.Channels != 1 {
		return nil, fmt.Errorf("%w: %d Hz, %d channels (want 8000 Hz mono)", ErrUnsupportedAudio, f.SampleRate, f.Channels)
	}
	switch f.Encoding {
	case voicegate.PCMU:
		return w.Data, nil
	case voicegate.PCMA:
		out := make([]byte, len(w.Data))
		codec.ALawToULaw(out, w.Data)
		return out, nil
	case voicegate.L16:
		pcm := w.PCM(nil)
		out := make([]byte, len(pcm))
		codec.EncodeULaw(out, pcm)
		return out, nil
	}
	return nil, fmt.Errorf("%w: encoding %v", ErrUnsupportedAudio, f.Encoding)
}

// SendMark sends a mark after the audio sent so far. Twilio echoes it when
// that audio has played, or at once if nothing is buffered, or when Clear
// flushes it; ReadEvent reports the echo with MarkPlayed or MarkCleared.
func (s *Stream) SendMark(ctx context.Context, name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty mark name", ErrInvalidArgument)
	}
	sid, err := s.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer func() { <-s.wmu }()
	nameJSON, _ := json.Marshal(name)
	s.wbuf = append(s.wbuf[:0], `{"event":"mark","streamSid":`...)
	s.wbuf = append(s.wbuf, sid...)
	s.wbuf = append(s.wbuf, `,"mark":{"name":`...)
	s.wbuf = append(s.wbuf, nameJSON...)
	s.wbuf = append(s.wbuf, `}}`...)
	// Register before writing: the echo can arrive before Write returns.
	s.mu.Lock()
	s.marks = append(s.marks, pendingMark{name: name})
	s.mu.Unlock()
	if err := s.writeMsg(ctx); err != nil {
		s.mu.Lock()
		for i := len(s.marks) - 1; i >= 0; i-- {
			if s.marks[i].name == name {
				s.marks = append(s.marks[:i], s.marks[i+1:]...)
				break
			}
		}
		s.mu.Unlock()
		return err
	}
	s.count1(&s.stats.MarksSent)
	return nil
}

// Clear asks Twilio to drop the audio it has buffered (barge-in). Every
// mark still pending is echoed by Twilio and reported as MarkCleared; so is
// a mark whose "played" echo crosses the clear on the wire, since its
// playback can no longer be told apart.
func (s *Stream) Clear(ctx context.Context) error {
	sid, err := s.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer func() { <-s.wmu }()
	s.wbuf = append(s.wbuf[:0], `{"event":"clear","streamSid":`...)
	s.wbuf = append(s.wbuf, sid...)
	s.wbuf = append(s.wbuf, '}')
	s.mu.Lock()
	for i := range s.marks {
		s.marks[i].cleared = true
	}
	s.mu.Unlock()
	if err := s.writeMsg(ctx); err != nil {
		return err
	}
	s.count1(&s.stats.ClearsSent)
	return nil
}

var _ voicegate.FrameReader = (*Stream)(nil)

// pollInterval is the interval of the shared poller that serves streams'
// sockets on Linux (wsconn.AcceptOptions.PollInterval). Once started, a
// stream reads on its read cadence with the socket's mark raised, which
// the poller does not change; before the start event and after stop, a
// message waits at most this long before it is read.
const pollInterval = 2 * time.Millisecond

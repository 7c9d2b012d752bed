package audiohook

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/internal/streamcore"
	"github.com/voicegate/voicegate/internal/wsconn"
)

// OpenInfo describes an opened session.
type OpenInfo struct {
	SessionID      string
	OrganizationID string
	CorrelationID  string
	APIKey         string
	// Params are the client's open parameters; Params.Media is the offer.
	Params wire.OpenParameters
	// Media is the selected format, nil when no audio will flow.
	Media *wire.MediaParameter
	// StartPaused and DiscardTo are sent in opened.
	StartPaused bool
	DiscardTo   time.Duration
	// Probe is true for a connection probe (null conversation id).
	Probe bool
}

// Stats are a session's counters. The fields from MessagesReceived to
// QueueDepth have the same names and meaning in twilio.Stats.
type Stats struct {
	MessagesReceived uint64        // text messages received
	MessagesSent     uint64        // text messages sent
	FramesReceived   uint64        // non-empty binary frames accepted (silence not included)
	FramesRead       uint64        // frames returned by ReadFrame, silence included
	FramesDropped    uint64        // dropped because the queue was full
	FramesLate       uint64        // always 0: the server computes AudioHook media time
	Gaps             uint64        // discarded or paused stretches before a frame
	GapTime          time.Duration // media time they skipped
	SilenceFrames    uint64        // silence frames inserted by ServerOptions.FillGaps
	MaxQueueDepth    int           // most frames queued at once
	QueueDepth       int           // frames queued now

	EmptyFrames    uint64        // zero-length binary frames
	BytesReceived  uint64        // audio bytes received
	Pings          uint64        // pings answered
	OpenLatency    time.Duration // from receiving open to writing opened
	MaxPongLatency time.Duration // most time from receiving a ping to writing its pong
	Position       time.Duration // media position of the next sample
	RecordDropped  uint64        // recorder entries dropped because the recorder fell behind
	Lag            time.Duration // delivery lag of the last frame read (as twilio.Stats.Lag)
	MaxLag         time.Duration // largest Lag so far
	FramesLagged   uint64        // frames read with a Lag over ServerOptions.LagBudget
}

type sessionState int

const (
	statePreparing sessionState = iota
	stateActive
	statePaused
	stateDisconnecting // we sent disconnect; waiting for close
	stateClosed        // close answered with closed
	stateUnauthorized  // auth failed, disconnect pending
)

// Session is the server side of one AudioHook connection, a voicegate.Stream
// honouring the contract written there. All methods are safe for concurrent
// use; concurrent ReadFrame calls are serialised.
//
// A goroutine of its own holds the session's protocol state and runs the
// application's calls. It answers open, ping, update and close at once, and
// every violation (sequence numbers, session id, malformed JSON or parameters,
// a message in the wrong state, audio before opened or while paused, text over
// wire.MaxTextMessage, wrong organization) with disconnect "error" or
// "unauthorized", then the close/closed transaction; a message over 1 MiB
// (refused unread) with disconnect "error", then WebSocket close 1009.
//
// That transaction is the clean end: ReadFrame returns the queued frames,
// then io.EOF. Any other end returns a *voicegate.StreamError wrapping a
// *ProtocolError, ErrIdleTimeout or ErrConnectionLost (closed without
// close); after Close or CloseNow, ErrClosed.
type Session struct {
	conn *wsconn.Conn
	opts ServerOptions
	q    *streamcore.Queue

	id, org, corr, apiKey string

	in        chan inMsg    // socket reader → owner, unbuffered
	ack       chan struct{} // owner → socket reader: handled, read on
	cmds      chan func()   // application calls and timers → owner
	openCh    chan struct{} // the open transaction is over
	closedCh  chan struct{} // close was answered with closed
	doneCh    chan struct{} // the owner goroutine has exited
	closing   atomic.Bool   // Close or CloseNow was called
	idleFired atomic.Bool
	msgs      atomic.Uint64      // messages read, for the idle timeout
	cancel    context.CancelFunc // ends the owner's context

	o      owned       // the owner goroutine's state; nobody else touches it
	m      media       // the socket reader's state (see media)
	active atomic.Bool // the state is stateActive: the reader may queue audio

	mu  sync.Mutex // guards pub: written by the owner, read by anyone
	pub published

	// Counters written by the owner only.
	emptyFrames, bytesIn, msgsIn, msgsOut, pings atomic.Uint64
	gaps, recDropped                             atomic.Uint64
	gapNs, posNs, openLatNs, maxPongNs           atomic.Int64
	openOnce, closedOnce                         sync.Once
}

// published is what the owner goroutine makes visible to other
// goroutines. Values are replaced, never modified in place.
type published struct {
	info        *OpenInfo
	openErr     error
	closeReason string
	peerErr     *PeerError
	probe       bool
	state       sessionState
}

// ID returns the session id (Audiohook-Session-Id).
func (s *Session) ID() string { return s.id }

// OrganizationID returns the Audiohook-Organization-Id header.
func (s *Session) OrganizationID() string { return s.org }

// CorrelationID returns the Audiohook-Correlation-Id header.
func (s *Session) CorrelationID() string { return s.corr }

// Open waits until the open transaction completed and returns its result,
// or an *AuthError, *ProtocolError or *DisconnectError (wrapping
// ErrNonceCacheFull for a full nonce cache) when the session ended before
// opened was sent, or ctx.Err().
func (s *Session) Open(ctx context.Context) (*OpenInfo, error) {
	select {
	case <-s.openCh:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pub.info != nil {
		return s.pub.info, nil
	}
	if s.pub.openErr != nil {
		return nil, s.pub.openErr
	}
	if s.closing.Load() {
		return nil, ErrClosed
	}
	return nil, ErrConnectionLost
}

// Info returns the open parameters, or nil before the session opened. The
// caller must not modify them.
func (s *Session) Info() *OpenInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pub.info
}

// IsProbe reports whether the session is a connection probe. A probe is
// answered with opened and produces no frames: ReadFrame returns io.EOF.
func (s *Session) IsProbe() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pub.probe
}

// CloseReason returns the reason of the client's close message, or "".
func (s *Session) CloseReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pub.closeReason
}

// LastPeerError returns the last error message the client sent, or nil.
func (s *Session) LastPeerError() *PeerError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pub.peerErr
}

// Done is closed when the session has ended and its goroutines have
// exited: no more frames will be queued, Stats are final and the recording
// is closed.
func (s *Session) Done() <-chan struct{} { return s.doneCh }

// Err tells why the audio ended: nil before the end and after a clean end
// (close/closed), the *voicegate.StreamError of an abnormal end, or
// ErrClosed when Close or CloseNow came first.
func (s *Session) Err() error { return s.q.Err() }

// ReadFrame returns the next audio frame: Encoding PCMU or L16
// (little-endian), SampleRate 8000, Channels 1 or 2 with Parties from the
// negotiated channels (external = voicegate.Customer, internal =
// voicegate.Agent), Seq from 1 (a jump means frames were dropped or a gap
// was not filled), Timestamp the media position of the first sample,
// discarded and paused gaps included. The payload is valid until the next
// call; the end errors are those of Session; ctx.Err() when ctx ends first
// (the session stays usable).
func (s *Session) ReadFrame(ctx context.Context) (voicegate.Frame, error) {
	return s.q.Pop(ctx)
}

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	c := s.q.Counters()
	return Stats{
		MessagesReceived: s.msgsIn.Load(),
		MessagesSent:     s.msgsOut.Load(),
		FramesReceived:   c.FramesReceived - c.SilenceFrames,
		FramesRead:       c.FramesRead,
		FramesDropped:    c.FramesDropped,
		Gaps:             s.gaps.Load(),
		GapTime:          time.Duration(s.gapNs.Load()),
		SilenceFrames:    c.SilenceFrames,
		MaxQueueDepth:    c.MaxQueueDepth,
		QueueDepth:       c.QueueDepth,
		EmptyFrames:      s.emptyFrames.Load(),
		BytesReceived:    s.bytesIn.Load(),
		Pings:            s.pings.Load(),
		OpenLatency:      time.Duration(s.openLatNs.Load()),
		MaxPongLatency:   time.Duration(s.maxPongNs.Load()),
		Position:         time.Duration(s.posNs.Load()),
		RecordDropped:    s.recDropped.Load(),
		Lag:              c.Lag,
		MaxLag:           c.MaxLag,
		FramesLagged:     c.FramesLagged,
	}
}

// do runs f on the owner goroutine and waits for it. It fails when the
// session has ended or ctx ends before f started.
func (s *Session) do(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case s.cmds <- func() { defer close(done); f() }:
	case <-s.doneCh:
		if s.closing.Load() {
			return ErrClosed
		}
		return ErrConnectionLost
	case <-ctx.Done():
		return ctx.Err()
	}
	<-done
	return nil
}

// call runs a send on the owner goroutine once the session is open.
func (s *Session) call(ctx context.Context, f func() error) error {
	if s.closing.Load() {
		return ErrClosed
	}
	var err error
	if derr := s.do(ctx, func() {
		if st := s.o.state; st != stateActive && st != statePaused {
			err = ErrNotOpen
			return
		}
		err = f()
	}); derr != nil {
		return derr
	}
	return err
}

// Pause asks the client to stop sending audio (pause). The client answers
// paused; the media position keeps running and the gap is reported when the
// client resumes.
func (s *Session) Pause(ctx context.Context) error {
	return s.call(ctx, func() error { return s.send(ctx, wire.TypePause, nil) })
}

// Resume ends a pause requested with Pause (resume).
func (s *Session) Resume(ctx context.Context) error {
	return s.call(ctx, func() error { return s.send(ctx, wire.TypeResume, nil) })
}

// SendEvent sends an event with the given entities (see
// wire.TranscriptEntity). An event the Genesys client would answer with
// error 500 and close, ending the call (no entities, an entity whose type or
// data is missing or null), is refused with ErrBadEvent and not sent.
func (s *Session) SendEvent(ctx context.Context, entities ...wire.Entity) error {
	if len(entities) == 0 {
		return fmt.Errorf("%w: no entities", ErrBadEvent)
	}
	for i, e := range entities {
		if e.Type == "" {
			return fmt.Errorf("%w: entity %d has no type", ErrBadEvent, i)
		}
		if d := string(e.Data); d == "" || d == "null" {
			return fmt.Errorf("%w: entity %d (%s) has no data", ErrBadEvent, i, e.Type)
		}
		if !json.Valid(e.Data) {
			return fmt.Errorf("%w: entity %d (%s) data is not JSON", ErrBadEvent, i, e.Type)
		}
	}
	b, err := json.Marshal(wire.EventParameters{Entities: entities})
	if err != nil {
		return fmt.Errorf("audiohook: event: %w", err)
	}
	if len(b) > wire.MaxTextMessage-200 {
		return fmt.Errorf("%w: %d bytes exceed the message limit", ErrBadEvent, len(b))
	}
	return s.call(ctx, func() error { return s.send(ctx, wire.TypeEvent, b) })
}

// Reconnect asks the client to move the session to a new connection
// (reconnect). Genesys logs it and does not act on it today.
func (s *Session) Reconnect(ctx context.Context, info string) error {
	b, _ := json.Marshal(struct {
		Info string `json:"info,omitempty"`
	}{info})
	return s.call(ctx, func() error { return s.send(ctx, wire.TypeReconnect, b) })
}

// Disconnect sends disconnect (reason wire.ReasonCompleted, ReasonError or
// ReasonUnauthorized; info optional) and waits until the client's close was
// answered with closed, ctx ends or the connection drops. ReadFrame then
// returns the queued frames and io.EOF.
func (s *Session) Disconnect(ctx context.Context, reason, info string) error {
	return s.DisconnectWith(ctx, wire.DisconnectParameters{Reason: reason, Info: info})
}

// DisconnectWith is Disconnect with every parameter of the message,
// including outputVariables, which a Genesys Architect flow can read after
// the AudioHook action (for example a verification result).
func (s *Session) DisconnectWith(ctx context.Context, p wire.DisconnectParameters) error {
	switch reason := p.Reason; reason {
	case wire.ReasonCompleted, wire.ReasonUnauthorized, wire.ReasonError:
	default:
		return fmt.Errorf("audiohook: invalid disconnect reason %q", reason)
	}
	if s.closing.Load() {
		return ErrClosed
	}
	if err := s.do(ctx, func() { s.failWith(p, false) }); err != nil {
		return err
	}
	select {
	case <-s.closedCh:
		return nil
	case <-s.doneCh:
		select {
		case <-s.closedCh:
			return nil
		default:
		}
		return ErrConnectionLost
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close ends the session gracefully: ReadFrame returns ErrClosed at once;
// unless the client already closed, Close sends disconnect "completed" and
// waits up to CloseTimeout for close/closed, then closes the WebSocket and
// waits for the session's goroutines. A second call returns ErrClosed.
func (s *Session) Close() error {
	if !s.closing.CompareAndSwap(false, true) {
		return ErrClosed
	}
	s.q.Abort(ErrClosed)
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CloseTimeout)
	defer cancel()
	if s.do(ctx, func() {
		switch s.o.state {
		case stateActive, statePaused, statePreparing:
			s.fail(wire.ReasonCompleted, "", false)
		}
	}) == nil {
		select {
		case <-s.closedCh:
		case <-s.doneCh:
		case <-ctx.Done():
		}
	}
	_ = s.conn.Close(wsconn.StatusNormalClosure, "")
	s.cancel()
	<-s.doneCh
	return nil
}

// CloseNow drops the connection without the close transaction. A second
// call returns ErrClosed.
func (s *Session) CloseNow() error {
	if !s.closing.CompareAndSwap(false, true) {
		return ErrClosed
	}
	s.q.Abort(ErrClosed)
	_ = s.conn.CloseNow()
	s.cancel()
	<-s.doneCh
	return nil
}

var _ voicegate.Stream = (*Session)(nil)

package audiohook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/internal/streamcore"
	"github.com/voicegate/voicegate/internal/wsconn"
)

// owned is the session state only the owner goroutine reads and writes.
type owned struct {
	state      sessionState
	disconnect bool                      // a disconnect was sent
	appEnd     bool                      // the disconnect came from the application
	endErr     error                     // protocol failure to report after draining
	openErr    error                     // why the open did not complete
	authFail   wire.DisconnectParameters // the disconnect that answers open in stateUnauthorized

	lastClientSeq int64
	seq           int64 // last server seq sent
	wbuf          []byte
	recvAt        time.Time

	info *OpenInfo

	timers []*time.Timer
}

// media is the media clock and the recorder. The socket reader owns it: it
// queues audio frames itself while the session is active (the common case
// costs no hand-over). The owner goroutine touches it only while the
// reader waits for the ack of a message it handed over (open, discarded,
// resumed, audio outside the active state), or after the reader exited.
type media struct {
	probe    bool
	frameB   int
	tmpl     voicegate.Frame // format of the frames queued
	samples  int64
	gap      time.Duration
	track    streamcore.Track
	gapCount streamcore.GapCounters
	rec      *recorder
}

// inMsg is one read of the socket, handed from the reader to the owner.
type inMsg struct {
	typ    wsconn.MessageType
	p      []byte
	err    error
	tooBig bool // a message over maxMessage, refused unread (Session.tooBig)
}

func newSession(conn *wsconn.Conn, o ServerOptions, sid, org, corr, key string) *Session {
	s := &Session{
		conn: conn, opts: o, id: sid, org: org, corr: corr, apiKey: key,
		q: streamcore.NewQueue(streamcore.QueueOptions{
			Frames: o.BufferFrames,
			// The largest format: two channels of L16 at 8 kHz.
			Bytes:     max(int(o.Buffer/time.Millisecond)*8*4, maxBinary),
			Duration:  o.Buffer,
			Overflow:  streamcore.DropOldest,
			LagBudget: o.LagBudget,
			// The reader flushes before it blocks: on the network (the
			// connection's flush hook) or on the hand-over to the owner.
			Batched: true,
			OnLag: func(lag, budget time.Duration) {
				o.Logger.Warn("audiohook: lag over budget: frames are read later than their media time",
					"session", sid, "lag", lag, "budget", budget)
			},
		}),
		in:       make(chan inMsg),
		ack:      make(chan struct{}),
		cmds:     make(chan func()),
		openCh:   make(chan struct{}),
		closedCh: make(chan struct{}),
		doneCh:   make(chan struct{}),
	}
	s.o.wbuf = make([]byte, 0, 512)
	s.cancel = func() {}
	if conn != nil {
		conn.SetFlush(s.q.Flush)
		conn.SetTooBig(s.tooBig)
		if o.ReadCadence <= 0 {
			conn.SetFastPath(s.pollFast)
		}
	}
	return s
}

// start runs the session's goroutines; first, when set, runs on the owner
// before any message.
func (s *Session) start(first func()) {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.readLoop()
	go s.run(ctx, first)
}

// readLoop reads the socket and hands every message to the owner, waiting
// until it was handled: the payload is valid until the next read.
func (s *Session) readLoop() {
	stopIdle := func() {}
	if d := s.opts.IdleTimeout; d > 0 {
		w := startIdleWatch(d, &s.msgs, func() {
			s.idleFired.Store(true)
			_ = s.conn.SetReadDeadline(time.Unix(1, 0))
		})
		stopIdle = w.stop
	}
	defer stopIdle()
	for {
		typ, p, err := s.conn.ReadMessage()
		if err == nil {
			s.msgs.Add(1)
		}
		if err == nil && typ == wsconn.MessageBinary && s.audioFast(p) {
			continue
		}
		s.q.Flush()
		if err != nil {
			// Before the owner reads idleFired (exit): no look may
			// fire, set it or re-arm after this.
			stopIdle()
		}
		s.in <- inMsg{typ: typ, p: p, err: err}
		if err != nil {
			return
		}
		<-s.ack
	}
}

// idleWatch looks at a message count every d/2 instead of resetting a
// timer per message (the poller queues audio without the reader
// goroutine): no message in two looks in a row means none for at least d,
// found at most 1.5 d after the last one, and it calls fire (which must
// not block), once.
type idleWatch struct {
	mu      sync.Mutex // held by a look and by stop
	t       *time.Timer
	stopped bool
	last    uint64
	quiet   int
}

// startIdleWatch starts an idleWatch of msgs.
func startIdleWatch(d time.Duration, msgs *atomic.Uint64, fire func()) *idleWatch {
	w := &idleWatch{}
	w.mu.Lock() // the first look waits for w.t
	defer w.mu.Unlock()
	w.t = time.AfterFunc(d/2, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.stopped {
			return
		}
		if n := msgs.Load(); n != w.last {
			w.last, w.quiet = n, 0
		} else if w.quiet++; w.quiet >= 2 {
			w.stopped = true
			fire()
			return
		}
		w.t.Reset(d / 2)
	})
	return w
}

// stop ends the watch: once it returned, fire is not called and the timer
// is not re-armed. It may be called more than once.
func (w *idleWatch) stop() {
	w.mu.Lock()
	w.stopped = true
	w.t.Stop()
	w.mu.Unlock()
}

// post hands f to the owner from a timer; it is dropped once the session
// has ended.
func (s *Session) post(f func()) {
	select {
	case s.cmds <- f:
	case <-s.doneCh:
	}
}

// after runs f on the owner after d. Owner only.
func (s *Session) after(d time.Duration, f func()) {
	s.o.timers = append(s.o.timers, time.AfterFunc(d, func() { s.post(f) }))
}

// run is the owner goroutine. ctx ends with Close, CloseNow or the end of
// the connection and bounds the application callbacks that take one.
func (s *Session) run(ctx context.Context, first func()) {
	var readErr error
	defer func() { s.exit(readErr) }()
	if first != nil {
		first()
	}
	for {
		select {
		case m := <-s.in:
			if m.err != nil {
				readErr = m.err
				return
			}
			if m.tooBig {
				s.failTooLarge(m.typ)
			} else {
				s.handle(ctx, m.typ, m.p)
			}
			s.ack <- struct{}{}
		case f := <-s.cmds:
			f()
		}
	}
}

// exit ends the session once the socket reader has stopped.
func (s *Session) exit(readErr error) {
	for _, t := range s.o.timers {
		t.Stop()
	}
	s.cancel()
	var end error
	switch {
	case s.o.endErr != nil:
		end = s.o.endErr
	case s.o.state == stateClosed || s.o.appEnd:
		end = io.EOF
	case s.idleFired.Load() && errors.Is(readErr, os.ErrDeadlineExceeded):
		end = fmt.Errorf("audiohook: no message for %v: %w", s.opts.IdleTimeout, ErrIdleTimeout)
	default:
		end = ErrConnectionLost
	}
	s.q.Finish(end)
	if c := s.q.Counters(); c.FramesDropped > 0 {
		// A reader slower than the audio (or a client sending faster
		// than real time) loses the oldest frames: say so.
		s.opts.Logger.Warn("audiohook: frames dropped: the application read slower than the audio arrived",
			"session", s.id, "dropped", c.FramesDropped, "received", c.FramesReceived, "queue", s.opts.BufferFrames)
	}
	s.openOnce.Do(func() { close(s.openCh) })
	s.endRecording(0)
	_ = s.conn.CloseNow()
	close(s.doneCh)
}

// endRecording closes the recorder, once, and waits until its files are
// written, at most bound when bound > 0 (a later call waits again).
// Owner only.
func (s *Session) endRecording(bound time.Duration) {
	if err := s.m.rec.close(bound); err == errRecordSlow {
		s.opts.Logger.Warn("audiohook: recording not finished at closed: sending closed anyway; it completes before Done",
			"session", s.id, "waited", bound)
	} else if err != nil {
		s.opts.Logger.Warn("audiohook: recording", "session", s.id, "err", err)
	}
}

// closedRecordWait bounds the wait for the recording before closed: the
// reference client waits 10 s for closed, then sends error 408 and drops
// the connection (specs/audiohook.md, 5.4), and the write of closed needs
// its own WriteTimeout after it.
const closedRecordWait = 5 * time.Second

// maxBinary is the largest audio frame accepted: 64 KiB.
const maxBinary = 65536

// maxMessage is the WebSocket read limit. Text messages over
// wire.MaxTextMessage and binary ones over maxBinary are answered with
// disconnect "error"; over maxMessage too (Session.tooBig), and then the
// connection fails with close status 1009, the message unread.
const maxMessage = 1 << 20

// messageLimit is the largest message of type typ the session takes.
func messageLimit(typ wsconn.MessageType) int {
	if typ == wsconn.MessageBinary {
		return maxBinary
	}
	return wire.MaxTextMessage
}

// failTooLarge answers a message over messageLimit with disconnect
// "error". Owner only.
func (s *Session) failTooLarge(typ wsconn.MessageType) {
	s.fail(wire.ReasonError, fmt.Sprintf("Message too large (more than %d bytes)", messageLimit(typ)), true)
}

// tooBig is the connection's SetTooBig hook, on the socket reader: a
// message over maxMessage is refused from its header, before its payload
// is read, with close status 1009; the owner sends disconnect "error"
// first, so the client learns why in AudioHook terms.
func (s *Session) tooBig(typ wsconn.MessageType, _ uint64) {
	s.q.Flush()
	s.in <- inMsg{typ: typ, tooBig: true}
	<-s.ack
}

func (s *Session) handle(ctx context.Context, typ wsconn.MessageType, p []byte) {
	s.o.recvAt = time.Now()
	if len(p) > messageLimit(typ) {
		s.failTooLarge(typ)
		return
	}
	if typ == wsconn.MessageText {
		s.msgsIn.Add(1)
		s.handleText(ctx, p)
	} else {
		s.handleAudio(p)
	}
}

func (s *Session) setState(st sessionState) {
	s.o.state = st
	s.active.Store(st == stateActive)
	if s.conn != nil && s.opts.ReadCadence > 0 {
		if st == stateActive {
			s.conn.SetReadCadence(s.opts.ReadCadence)
		} else {
			s.conn.SetReadCadence(0)
		}
	}
	s.mu.Lock()
	s.pub.state = st
	s.mu.Unlock()
}

func (s *Session) handleText(ctx context.Context, b []byte) {
	s.m.rec.message("in", b)
	m, err := wire.ParseClientMessage(b)
	if err != nil {
		s.fail(wire.ReasonError, "Client Error: "+err.Error(), true)
		return
	}
	if m.ID != s.id {
		s.fail(wire.ReasonError, "Client Error: Session identifier mismatch", true)
		return
	}
	if s.o.disconnect && m.Type == wire.TypeClose {
		// After a disconnect for a sequence error every later message is out
		// of sequence; the close transaction is still completed.
		s.o.lastClientSeq = m.Seq
		s.handleClose(m)
		return
	}
	if m.Seq != s.o.lastClientSeq+1 {
		s.fail(wire.ReasonError, "Client Error: Invalid seq value (not monotonically increasing)", true)
		return
	}
	if m.ServerSeq > s.o.seq {
		s.fail(wire.ReasonError, "Client Error: Invalid serverseq value", true)
		return
	}
	s.o.lastClientSeq = m.Seq

	st := s.o.state
	switch m.Type {
	case wire.TypePing:
		s.pings.Add(1)
		s.sendFromOwner(wire.TypePong, nil)
		if d := int64(time.Since(s.o.recvAt)); d > s.maxPongNs.Load() {
			s.maxPongNs.Store(d)
		}
	case wire.TypeClose:
		s.handleClose(m)
	case wire.TypeError:
		var p wire.ErrorParameters
		if err := json.Unmarshal(m.Parameters, &p); err == nil {
			pe := &PeerError{Code: p.Code, Message: p.Message}
			if p.RetryAfter != nil {
				pe.RetryAfter = time.Duration(*p.RetryAfter)
			}
			s.mu.Lock()
			s.pub.peerErr = pe
			s.mu.Unlock()
		}
	default:
		if st == stateUnauthorized && m.Type == wire.TypeOpen {
			s.failWith(s.o.authFail, true)
			break
		}
		if st == stateDisconnecting || st == stateUnauthorized || st == stateClosed {
			break // answered only close and ping from now on
		}
		s.handleStateful(ctx, m, st)
	}
	if s.opts.OnMessage != nil {
		s.opts.OnMessage(s, m)
	}
}

func (s *Session) handleStateful(ctx context.Context, m *wire.Message, st sessionState) {
	switch m.Type {
	case wire.TypeOpen:
		if st != statePreparing {
			// The reference server ignores it (specs/audiohook.md, 7);
			// like every message in the wrong state it is answered
			// with disconnect "error" here, as Session documents.
			s.fail(wire.ReasonError, "Client Error: Unexpected open message in current state", true)
			return
		}
		s.handleOpen(ctx, m)
	case wire.TypePaused:
		switch st {
		case stateActive:
			s.setState(statePaused)
		case statePaused:
		default:
			s.fail(wire.ReasonError, "Client Error: Unexpected paused message in current state", true)
		}
	case wire.TypeResumed:
		if st != stateActive && st != statePaused {
			s.fail(wire.ReasonError, "Client Error: Unexpected resumed message in current state", true)
			return
		}
		p, err := wire.ParseResumedParameters(m.Parameters)
		if err != nil {
			s.fail(wire.ReasonError, "Client Error: resumed: "+err.Error(), true)
			return
		}
		s.addGap(time.Duration(p.Discarded))
		s.setState(stateActive)
	case wire.TypeDiscarded:
		if st == statePreparing {
			s.fail(wire.ReasonError, "Client Error: Unexpected discarded message before open", true)
			return
		}
		p, err := wire.ParseResumedParameters(m.Parameters)
		if err != nil {
			s.fail(wire.ReasonError, "Client Error: discarded: "+err.Error(), true)
			return
		}
		s.addGap(time.Duration(p.Discarded))
	case wire.TypeUpdate:
		if st != stateActive && st != statePaused {
			s.fail(wire.ReasonError, "Client Error: Unexpected update message in current state", true)
			return
		}
		p, err := wire.ParseUpdateParameters(m.Parameters)
		if err != nil {
			s.fail(wire.ReasonError, "Client Error: update: invalid language", true)
			return
		}
		if p.Language != "" {
			info := *s.o.info
			info.Params.Language = p.Language
			s.o.info = &info
			s.mu.Lock()
			s.pub.info = &info
			s.mu.Unlock()
		}
		s.sendFromOwner(wire.TypeUpdated, nil)
	case wire.TypeDTMF, wire.TypePlaybackStarted, wire.TypePlaybackCompleted:
		if st == statePreparing {
			s.fail(wire.ReasonError, "Client Error: Unexpected "+m.Type+" message before open", true)
		}
	default:
		s.fail(wire.ReasonError, fmt.Sprintf("Client Error: Unknown message type %.40q", m.Type), true)
	}
}

// addGap moves the media position over audio the client did not send
// (discarded or paused); the next frame's Timestamp carries it.
func (s *Session) addGap(d time.Duration) {
	if d <= 0 {
		return
	}
	s.m.gap += d
	s.posNs.Store(int64(s.position()))
}

func (s *Session) position() time.Duration {
	return time.Duration(s.m.samples)*time.Second/8000 + s.m.gap
}

func (s *Session) handleOpen(ctx context.Context, m *wire.Message) {
	p, err := wire.ParseOpenParameters(m.Parameters)
	if err != nil {
		s.fail(wire.ReasonError, "Client Error: "+err.Error(), true)
		return
	}
	if p.OrganizationID != s.org {
		s.fail(wire.ReasonUnauthorized, "Organization identifier mismatch", true)
		return
	}
	info := &OpenInfo{
		SessionID: s.id, OrganizationID: s.org, CorrelationID: s.corr, APIKey: s.apiKey,
		Params: *p, StartPaused: s.opts.StartPaused, Probe: p.ConversationID == wire.NullUUID,
	}
	for _, pref := range s.opts.Media {
		for i := range p.Media {
			if pref.Equal(p.Media[i]) {
				info.Media = &p.Media[i]
				break
			}
		}
		if info.Media != nil {
			break
		}
	}
	if s.opts.OnOpen != nil {
		if err := s.opts.OnOpen(info); err != nil {
			reason := wire.ReasonError
			if errors.Is(err, ErrUnauthorized) {
				reason = wire.ReasonUnauthorized
			}
			s.fail(reason, err.Error(), false)
			return
		}
		if info.Media != nil {
			found := false
			for _, o := range p.Media {
				found = found || o.Equal(*info.Media)
			}
			if !found {
				s.fail(wire.ReasonError, "Server Error: selected media was not offered", false)
				return
			}
		}
	}
	op := wire.OpenedParameters{Media: []wire.MediaParameter{}, StartPaused: info.StartPaused}
	if info.Media != nil {
		op.Media = []wire.MediaParameter{*info.Media}
		t := voicegate.Frame{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: len(info.Media.Channels)}
		if info.Media.Format == wire.FormatL16 {
			t.Encoding = voicegate.L16
		}
		for i, c := range info.Media.Channels {
			t.Parties[i] = voicegate.Agent
			if c == wire.ChannelExternal {
				t.Parties[i] = voicegate.Customer
			}
		}
		s.m.tmpl = t
		s.m.frameB = t.Channels * t.Encoding.BytesPerSample()
		s.m.track.StartAt(0)
	}
	if info.DiscardTo > 0 {
		d := wire.Duration(info.DiscardTo)
		op.DiscardTo = &d
	}
	if p.SupportedLanguages {
		op.SupportedLanguages = append([]string{}, s.opts.Languages...)
		if len(op.SupportedLanguages) == 0 {
			// Sent as [] (omitempty would drop it).
			op.SupportedLanguages = nil
		}
	}
	if info.Probe {
		s.m.probe = true
		s.m.rec.discard()
		s.m.rec = nil
	} else if s.m.rec != nil {
		if err := s.m.rec.start(ctx, s.opts.Recorder, s.id, info.Media); err != nil {
			s.opts.Logger.Warn("audiohook: recorder", "session", s.id, "err", err)
			s.m.rec.discard()
			s.m.rec = nil
		}
	}
	params := mustJSON(op)
	if p.SupportedLanguages && len(op.SupportedLanguages) == 0 {
		params = append(params[:len(params)-1], `,"supportedLanguages":[]}`...)
	}
	s.o.info = info
	s.mu.Lock()
	s.pub.info = info
	s.pub.probe = info.Probe
	s.mu.Unlock()
	s.setState(stateActive)
	s.sendFromOwner(wire.TypeOpened, params)
	s.openLatNs.Store(int64(time.Since(s.o.recvAt)))
	s.openOnce.Do(func() { close(s.openCh) })
	if info.Probe || info.Media == nil {
		s.q.Finish(io.EOF)
	}
}

func (s *Session) handleClose(m *wire.Message) {
	if s.o.state == stateClosed {
		return
	}
	var p wire.CloseParameters
	_ = json.Unmarshal(m.Parameters, &p)
	s.mu.Lock()
	s.pub.closeReason = p.Reason
	s.mu.Unlock()
	s.setState(stateClosed)
	s.sendFromOwner(wire.TypeClosed, nil)
	s.closedOnce.Do(func() { close(s.closedCh) })
	s.openOnce.Do(func() { close(s.openCh) })
	s.q.Finish(s.endErrOrEOF())
	// The client closes the WebSocket after closed; drop it if it does not.
	s.after(s.opts.CloseTimeout, func() { _ = s.conn.CloseNow() })
}

func (s *Session) endErrOrEOF() error {
	if s.o.endErr != nil {
		return s.o.endErr
	}
	return io.EOF
}

func (s *Session) handleAudio(b []byte) {
	if len(b) == 0 {
		s.emptyFrames.Add(1)
		return
	}
	switch s.o.state {
	case statePreparing:
		s.fail(wire.ReasonError, "Client Error: Unexpected binary message before open transaction completed", true)
		return
	case statePaused:
		s.fail(wire.ReasonError, "Client Error: Unexpected binary message while paused", true)
		return
	case stateActive:
	default:
		return // in-flight audio after close or disconnect is dropped
	}
	if s.m.frameB == 0 {
		s.fail(wire.ReasonError, "Client Error: Unexpected binary message: no media was selected", true)
		return
	}
	if len(b)%s.m.frameB != 0 {
		s.fail(wire.ReasonError, fmt.Sprintf("Client Error: Audio frame of %d bytes is not a multiple of %d", len(b), s.m.frameB), true)
		return
	}
	s.pushAudio(b)
}

// audioFast queues a valid audio frame of an active session on the socket
// reader's goroutine and reports whether it did; everything else (errors,
// other states) goes to the owner.
func (s *Session) audioFast(b []byte) bool {
	if !s.active.Load() || len(b) == 0 || len(b) > maxBinary || s.m.frameB == 0 || len(b)%s.m.frameB != 0 {
		return false
	}
	s.pushAudio(b)
	return true
}

// pollFast is the connection's fast path (wsconn.Conn.SetFastPath): on a
// polled connection the poller queues an active session's audio itself
// while the reader sleeps in ReadMessage, so a message costs no wake-up of
// the reader; what it declines reaches the reader unchanged.
func (s *Session) pollFast(b []byte) bool {
	s.msgs.Add(1)
	return s.audioFast(b)
}

// pushAudio queues a valid audio frame. Reader, or owner during a
// hand-over.
func (s *Session) pushAudio(b []byte) {
	if s.m.probe {
		return
	}
	ts := s.position()
	n := int64(len(b) / s.m.frameB)
	dur := time.Duration(n) * time.Second / 8000
	s.m.samples += n
	s.bytesIn.Add(uint64(len(b)))
	s.posNs.Store(int64(s.position()))
	s.m.rec.audioAt(ts, b)
	gap, late := s.m.track.Place(ts, dur, &s.m.gapCount)
	if late {
		return // cannot happen: the position only grows
	}
	if gap > 0 {
		s.gaps.Store(s.m.gapCount.Gaps)
		s.gapNs.Store(int64(s.m.gapCount.GapTime))
		s.m.track.FillGap(s.q, s.m.tmpl, ts, gap, dur, 20*time.Millisecond, s.opts.FillGaps)
	}
	f := s.m.tmpl
	f.Seq = s.m.track.Seq()
	f.Timestamp = ts
	f.Payload = b
	s.q.Push(f, dur)
}

// send writes one server message from the owner goroutine. params nil
// means {}.
func (s *Session) send(ctx context.Context, typ string, params []byte) error {
	s.o.seq++
	s.o.wbuf = appendServerMessage(s.o.wbuf[:0], typ, s.id, s.o.seq, s.o.lastClientSeq, params)
	s.m.rec.message("out", s.o.wbuf)
	if typ == wire.TypeClosed {
		// closed is the session's last message: the recording ends with
		// it and is on the sink before the client can read it, unless
		// the sink takes longer than the client waits for closed.
		s.endRecording(min(closedRecordWait, s.opts.WriteTimeout))
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
	defer cancel()
	if err := s.conn.WriteMessage(ctx, wsconn.MessageText, s.o.wbuf); err != nil {
		return fmt.Errorf("audiohook: send %s: %w", typ, err)
	}
	s.msgsOut.Add(1)
	return nil
}

// sendFromOwner sends a message the session makes on its own. The write
// is bounded by WriteTimeout and ends when the connection is closed.
func (s *Session) sendFromOwner(typ string, params []byte) {
	if err := s.send(context.Background(), typ, params); err != nil {
		s.opts.Logger.Debug("audiohook: send failed", "session", s.id, "type", typ, "err", err)
	}
}

// fail sends disconnect once and starts the close timer. peer marks a
// failure caused by the client, reported by ReadFrame and Open.
func (s *Session) fail(reason, info string, peer bool) {
	s.failWith(wire.DisconnectParameters{Reason: reason, Info: info}, peer)
}

// failWith sends disconnect with p, once, and ends the session's audio.
// peer says whether the peer's behaviour caused it (a protocol error) or
// the application asked for it. Owner only.
func (s *Session) failWith(p wire.DisconnectParameters, peer bool) {
	reason, info := p.Reason, p.Info
	if s.o.disconnect || s.o.state == stateClosed {
		return
	}
	s.o.disconnect = true
	if s.o.state != stateUnauthorized && peer {
		s.o.endErr = &ProtocolError{Reason: reason, Info: info}
		if s.o.openErr == nil && s.o.info == nil {
			s.o.openErr = s.o.endErr
		}
	}
	if !peer {
		s.o.appEnd = true
		if s.o.info == nil && s.o.openErr == nil {
			s.o.openErr = &DisconnectError{Reason: reason, Info: info}
		}
	}
	s.mu.Lock()
	s.pub.openErr = s.o.openErr
	s.mu.Unlock()
	s.setState(stateDisconnecting)
	s.opts.Logger.Info("audiohook: disconnect", "session", s.id, "reason", reason, "info", info)
	s.openOnce.Do(func() { close(s.openCh) })
	if peer || s.o.info == nil {
		s.q.Finish(s.endErrOrEOF())
	}
	s.sendFromOwner(wire.TypeDisconnect, mustJSON(p))
	s.after(s.opts.CloseTimeout, func() { _ = s.conn.CloseNow() })
}

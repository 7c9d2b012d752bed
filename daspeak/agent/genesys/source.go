package genesys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/daspeak/agent"
)

// EntityResult is the entity type of the AudioHook event message that
// carries an operation's terminal event (data: the agent event's JSON).
const EntityResult = "voicegate.result"

// DefaultQueueFrames bounds the frames waiting for an attached operation:
// 100 frames, 2 s of 20 ms frames.
const DefaultQueueFrames = 100

// DefaultEndedTTL is how long a Source remembers a conversation that
// ended: 1 h.
const DefaultEndedTTL = time.Hour

// DefaultMaxEnded bounds the ended conversations a Source remembers:
// 10000, some hundred bytes each.
const DefaultMaxEnded = 10000

// SourceOptions configures NewSource.
type SourceOptions struct {
	// QueueFrames bounds the frames waiting for an operation that reads
	// slower than the call speaks; default DefaultQueueFrames. The oldest
	// frame is dropped when it is full, counted in Stats.
	QueueFrames int
	// EndedTTL is how long a conversation that ended (its last session
	// closed) is remembered with its caller: until then a new session on
	// it is refused (ErrConversationEnded) and Call answers it ended;
	// default DefaultEndedTTL.
	EndedTTL time.Duration
	// MaxEnded bounds the ended conversations remembered; when it is
	// reached the one that ended first is forgotten first; default
	// DefaultMaxEnded.
	MaxEnded int
	// Logger receives session registrations and failures; nil discards.
	Logger *slog.Logger
	// OnConversation, when set, is called when a conversation gets its
	// first live session (live true, info of that session, which binds
	// the caller id) and when its last session ended (live false, the
	// same info). It runs on Run's goroutine with the Source locked, in
	// order for each conversation: it must not block or call the Source.
	OnConversation func(info *audiohook.OpenInfo, live bool)
}

// Stats are a Source's counters.
type Stats struct {
	Sessions      int    // conversations with a live session now
	Ended         int    // ended conversations remembered now (SourceOptions.EndedTTL)
	Refused       uint64 // sessions refused: another caller, or the conversation ended
	Attached      int    // operations reading a conversation now
	FramesRead    uint64 // frames drained from sessions
	FramesQueued  uint64 // frames handed to operations
	FramesDropped uint64 // frames dropped because an operation's queue was full
}

// Source gets a Genesys Cloud conversation's customer audio for an
// operation from the AudioHook Monitor session already open for it.
//
// The application accepts each AudioHook connection (audiohook.Accept,
// Session.Open) and hands the session to Run, which registers it under its
// conversationId and drains it continuously for as long as the
// conversation lasts: nothing waits in the session's buffer, so an
// operation sees the audio from the moment of the agent's click (Open)
// and none from before.
//
// A conversation is bound to the caller id of its first session while
// any of its sessions is live. A newer session for the same conversation
// and caller (a reconnect) serves new operations; an operation keeps the
// session it started on, and when that session ends before the others
// its audio ends with a *voicegate.StreamError wrapping ErrSessionEnded,
// never io.EOF. The conversation ends when its last session does. A
// session that names another caller (participant ani) while the
// conversation is live is refused (ErrCallerConflict): the caller an
// agent checks never changes under them.
//
// An ended conversation stays ended: the Source remembers it with its
// caller for SourceOptions.EndedTTL (at most SourceOptions.MaxEnded of
// them, the oldest forgotten first), and refuses any new session on it
// (ErrConversationEnded; with ErrCallerConflict too when it names another
// caller), also one naming the same caller: Genesys Cloud does not
// re-establish AudioHook sessions, so a session on a conversation whose
// sessions all closed is not the call the agent saw, and a call that
// ended must not come back under the agent's widget. Call answers it with
// its caller, not in progress. Only after it is forgotten may a session
// bind the conversation id again, to any caller. The memory is the
// Source's own: each server of a cluster remembers the conversations that
// ended on it.
//
// Source implements agent.Source and agent.CallInfo (the caller id is the
// session's participant ani in E.164 form); its Audio implements
// agent.ResultNotifier: the terminal event goes to Genesys as an AudioHook
// event message with one EntityResult entity. It is safe for concurrent
// use.
type Source struct {
	queue    int
	endedTTL time.Duration
	maxEnded int
	log      *slog.Logger
	now      func() time.Time // time.Now; tests change it

	onConv func(info *audiohook.OpenInfo, live bool)

	mu    sync.Mutex
	convs map[string]*conversation // by conversation id
	ended map[string]endedConv     // by conversation id, while remembered
	// endq is the ended conversations in the order they ended, oldest
	// first; an entry whose conversation was forgotten or ended again
	// (its at differs from ended's) is skipped.
	endq []endedAt

	framesRead, framesQueued, framesDropped, refused atomic.Uint64
}

// conversation is a conversation with at least one live session.
type conversation struct {
	callerID string              // of the first session: the binding
	info     *audiohook.OpenInfo // of the first session
	calls    []*call             // live sessions, oldest first
}

// endedConv is a conversation that ended, as remembered.
type endedConv struct {
	callerID string
	at       time.Time
}

// endedAt is an entry of Source.endq.
type endedAt struct {
	id string
	at time.Time
}

// call is one live AudioHook session of a conversation.
type call struct {
	sess     *audiohook.Session
	attached *audio // guarded by Source.mu
}

// NewSource returns a Source.
func NewSource(opts *SourceOptions) *Source {
	var o SourceOptions
	if opts != nil {
		o = *opts
	}
	if o.QueueFrames <= 0 {
		o.QueueFrames = DefaultQueueFrames
	}
	if o.EndedTTL <= 0 {
		o.EndedTTL = DefaultEndedTTL
	}
	if o.MaxEnded <= 0 {
		o.MaxEnded = DefaultMaxEnded
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{
		queue: o.QueueFrames, endedTTL: o.EndedTTL, maxEnded: o.MaxEnded, log: log, now: time.Now,
		onConv: o.OnConversation, convs: map[string]*conversation{}, ended: map[string]endedConv{},
	}
}

// Run makes an opened AudioHook session's conversation available to
// operations and drains the session until it ends (then it returns nil
// for a clean end, the session's error otherwise) or ctx ends (it returns
// ctx.Err()). The attached operation, if any, then reads the remaining
// frames and the end (see the ReadFrame of the Audio Open returns). Run does not close sess; the caller does.
// A connection probe, or a session without conversation id, is refused
// with ErrNoConversation. A session whose caller id differs from that of
// the conversation's live sessions is refused: Run sends it disconnect
// "error" (info ConflictInfo), waits for the close transaction (or ctx)
// and returns an error wrapping ErrCallerConflict. A session on a
// conversation that ended less than SourceOptions.EndedTTL ago is refused
// the same way with info EndedInfo and an error wrapping
// ErrConversationEnded (and ErrCallerConflict when it names another
// caller than the conversation had).
func (s *Source) Run(ctx context.Context, sess *audiohook.Session) error {
	info := sess.Info()
	if info == nil {
		return fmt.Errorf("genesys: Run before the session opened: %w", audiohook.ErrNotOpen)
	}
	// Genesys sends conversation ids in lower case, and an agent names
	// them so; an id in another case is the same conversation, not a new
	// one to bind to another caller.
	conv := strings.ToLower(info.Params.ConversationID)
	if info.Probe || conv == "" || conv == wire.NullUUID {
		return ErrNoConversation
	}
	caller, err := agent.NormalizeCallerID(info.Params.Participant.ANI)
	if err != nil {
		caller = "" // the agent's widget must name the caller
	}
	c := &call{sess: sess}
	s.mu.Lock()
	cv, live := s.convs[conv]
	if ec, ok := s.endedConv(conv); ok && !live {
		s.mu.Unlock()
		s.refused.Add(1)
		err := fmt.Errorf("%w: conversation %s, session %s", ErrConversationEnded, conv, sess.ID())
		if ec.callerID != caller {
			err = fmt.Errorf("%w: %w", ErrCallerConflict, err)
		}
		// No caller ids in the log: they are personal data.
		s.log.Warn("AudioHook session refused: its conversation has ended",
			"conversation", conv, "session", sess.ID(), "same_caller", ec.callerID == caller)
		_ = sess.Disconnect(ctx, wire.ReasonError, EndedInfo)
		return err
	}
	if live && cv.callerID != caller {
		first := cv.calls[0].sess.ID()
		s.mu.Unlock()
		s.refused.Add(1)
		// No caller ids in the log: they are personal data.
		s.log.Warn("AudioHook session refused: it names another caller than the conversation's live session",
			"conversation", conv, "session", sess.ID(), "live_session", first)
		_ = sess.Disconnect(ctx, wire.ReasonError, ConflictInfo)
		return fmt.Errorf("%w: conversation %s, session %s (live session %s)", ErrCallerConflict, conv, sess.ID(), first)
	}
	if !live {
		cv = &conversation{callerID: caller, info: info}
		s.convs[conv] = cv
		if s.onConv != nil {
			s.onConv(info, true)
		}
	}
	cv.calls = append(cv.calls, c)
	n := len(cv.calls)
	s.mu.Unlock()
	if n == 1 {
		s.log.Info("conversation monitored", "conversation", conv, "session", sess.ID())
	} else {
		s.log.Warn("conversation has another AudioHook session for the same caller: new operations use the newest",
			"conversation", conv, "session", sess.ID(), "sessions", n)
	}

	var end error
	for {
		f, err := sess.ReadFrame(ctx)
		if err != nil {
			end = err
			break
		}
		s.framesRead.Add(1)
		s.mu.Lock()
		a := c.attached
		s.mu.Unlock()
		if a != nil {
			if a.push(f.Clone()) {
				s.framesDropped.Add(1)
			}
			s.framesQueued.Add(1)
		}
	}
	s.mu.Lock()
	cv.calls = slices.DeleteFunc(cv.calls, func(o *call) bool { return o == c })
	left := len(cv.calls)
	if left == 0 {
		delete(s.convs, conv)
		s.remember(conv, cv.callerID)
		if s.onConv != nil {
			s.onConv(cv.info, false)
		}
	}
	a := c.attached
	c.attached = nil
	s.mu.Unlock()
	if a != nil {
		if left > 0 {
			// The conversation goes on: the operation's own audio
			// ended, not the call, and it never moves to another
			// session.
			a.end(&voicegate.StreamError{Err: fmt.Errorf("genesys: conversation %s: session %s ended: %w", conv, sess.ID(), ErrSessionEnded)})
		} else {
			a.end(audioEnd(conv, end))
		}
	}
	if left > 0 {
		s.log.Info("AudioHook session ended; the conversation goes on", "conversation", conv, "session", sess.ID(), "sessions", left, "err", end)
	} else {
		s.log.Info("conversation ended", "conversation", conv, "session", sess.ID(), "err", end)
	}
	if errors.Is(end, io.EOF) {
		return nil
	}
	return end
}

// remember keeps conversation id, which has just ended, as ended with
// callerID, and forgets those past EndedTTL or beyond MaxEnded. s.mu is
// held.
func (s *Source) remember(id, callerID string) {
	now := s.now()
	s.forget(now)
	for len(s.ended) >= s.maxEnded && len(s.endq) > 0 {
		s.pop()
	}
	s.ended[id] = endedConv{callerID: callerID, at: now}
	s.endq = append(s.endq, endedAt{id: id, at: now})
}

// forget drops the ended conversations past EndedTTL at now. s.mu is held.
func (s *Source) forget(now time.Time) {
	for len(s.endq) > 0 && now.Sub(s.endq[0].at) >= s.endedTTL {
		s.pop()
	}
}

// pop forgets the oldest entry of endq. s.mu is held.
func (s *Source) pop() {
	e := s.endq[0]
	s.endq[0] = endedAt{}
	s.endq = s.endq[1:]
	if ec, ok := s.ended[e.id]; ok && ec.at.Equal(e.at) {
		delete(s.ended, e.id)
	}
}

// endedConv returns conversation id if it ended less than EndedTTL ago.
// s.mu is held.
func (s *Source) endedConv(id string) (endedConv, bool) {
	s.forget(s.now())
	ec, ok := s.ended[id]
	return ec, ok
}

// Open implements agent.Source: it attaches the operation to the live
// session of conversation req.CallID from now on. Without one it returns
// an error wrapping agent.ErrNoCall. A req.CallerID other than the
// conversation's caller is refused with an error wrapping both
// agent.ErrNoCall and ErrCallerConflict: the agent checked the caller
// (Call) before Open, and meanwhile the conversation's sessions may have
// ended, been forgotten (SourceOptions.EndedTTL) and a new one bound
// another caller; the call the agent checked is gone. A conversation that
// has ended is no live session: agent.ErrNoCall. An operation already attached to the conversation is
// detached: its ReadFrame returns ErrDetached.
func (s *Source) Open(ctx context.Context, req agent.SourceRequest) (agent.Audio, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cv, ok := s.convs[strings.ToLower(req.CallID)]
	if !ok {
		return nil, fmt.Errorf("%w: no AudioHook session for conversation %q", agent.ErrNoCall, req.CallID)
	}
	if req.CallerID != "" && req.CallerID != cv.callerID {
		// No caller ids in the error: it is logged.
		return nil, fmt.Errorf("%w: %w: conversation %q", agent.ErrNoCall, ErrCallerConflict, req.CallID)
	}
	c := cv.calls[len(cv.calls)-1]
	a := &audio{
		src: s, cv: cv, c: c, op: req.OperationID,
		q: make(chan voicegate.Frame, s.queue), ended: make(chan struct{}), closed: make(chan struct{}),
	}
	// One operation per conversation, whichever session it reads: the
	// one on an older session is detached too.
	for _, o := range cv.calls {
		if old := o.attached; old != nil {
			old.end(&voicegate.StreamError{Err: ErrDetached})
			o.attached = nil
		}
	}
	c.attached = a
	return a, nil
}

// Call implements agent.CallInfo: the caller id from the session's
// participant ani ("" when it is not an E.164 number) and whether the
// conversation has a live session. A conversation that ended less than
// SourceOptions.EndedTTL ago is answered with its caller id, not in
// progress (an agent's status: the call ended). An unknown conversation
// is an error wrapping agent.ErrNoCall.
func (s *Source) Call(ctx context.Context, callID string) (string, bool, error) {
	callID = strings.ToLower(callID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if cv, ok := s.convs[callID]; ok {
		return cv.callerID, true, nil
	}
	if ec, ok := s.endedConv(callID); ok {
		return ec.callerID, false, nil
	}
	return "", false, fmt.Errorf("%w: no AudioHook session for conversation %q", agent.ErrNoCall, callID)
}

// Stats returns the Source's counters.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	s.forget(s.now())
	st := Stats{Sessions: len(s.convs), Ended: len(s.ended)}
	for _, cv := range s.convs {
		for _, c := range cv.calls {
			if c.attached != nil {
				st.Attached++
			}
		}
	}
	s.mu.Unlock()
	st.Refused = s.refused.Load()
	st.FramesRead = s.framesRead.Load()
	st.FramesQueued = s.framesQueued.Load()
	st.FramesDropped = s.framesDropped.Load()
	return st
}

// audio is one operation's view of a conversation.
type audio struct {
	src *Source
	cv  *conversation // its binding to a caller lasts while it has sessions
	c   *call
	op  string
	q   chan voicegate.Frame // one producer: the Run goroutine

	endOnce   sync.Once
	ended     chan struct{}
	endErr    error // set before ended is closed
	closeOnce sync.Once
	closed    chan struct{}
}

// push queues f, dropping the oldest frame when the queue is full; it
// reports whether it dropped one. Only Run's goroutine calls it.
func (a *audio) push(f voicegate.Frame) (dropped bool) {
	for {
		select {
		case a.q <- f:
			return dropped
		default:
		}
		select {
		case <-a.q:
			dropped = true
		default:
		}
	}
}

// audioEnd is what an attached operation's ReadFrame returns after Run's
// session read ended with err, as the voicegate.FrameReader contract says:
// io.EOF after the session's clean end (Genesys' close transaction), the
// session's *voicegate.StreamError after an abnormal one, and a
// *voicegate.StreamError wrapping the cause when Run stopped for another
// reason (its ctx ended; the application closed the session), so that an
// operation never mistakes Run's context for its own.
func audioEnd(conv string, err error) error {
	if err == io.EOF {
		return io.EOF
	}
	var se *voicegate.StreamError
	if errors.As(err, &se) {
		return err
	}
	return &voicegate.StreamError{Err: fmt.Errorf("genesys: conversation %s no longer monitored: %w", conv, err)}
}

// end makes ReadFrame return err (io.EOF for a clean end) once the queue
// is drained.
func (a *audio) end(err error) {
	a.endOnce.Do(func() {
		if err == nil {
			err = io.EOF
		}
		a.endErr = err
		close(a.ended)
	})
}

// ReadFrame returns the customer's audio since Open (PCMU or L16, 8 kHz,
// as negotiated; frames are the caller's to keep), honouring the
// voicegate.FrameReader contract: after the queued frames, io.EOF (on
// every later call too) when the session ended cleanly; a
// *voicegate.StreamError when it did not (the session's own), when Run
// stopped monitoring the conversation, or when a newer operation took the
// conversation (wrapping ErrDetached); and, at once, an error satisfying
// errors.Is(err, net.ErrClosed) after Close. Concurrent calls each get
// different frames; a cancelled ctx returns ctx.Err() and loses nothing.
func (a *audio) ReadFrame(ctx context.Context) (voicegate.Frame, error) {
	select {
	case <-a.closed:
		return voicegate.Frame{}, fmt.Errorf("genesys: audio: %w", net.ErrClosed)
	default:
	}
	select {
	case f := <-a.q:
		return f, nil
	default:
	}
	select {
	case f := <-a.q:
		return f, nil
	case <-a.ended:
		select {
		case f := <-a.q:
			return f, nil
		default:
			return voicegate.Frame{}, a.endErr
		}
	case <-a.closed:
		return voicegate.Frame{}, fmt.Errorf("genesys: audio: %w", net.ErrClosed)
	case <-ctx.Done():
		return voicegate.Frame{}, ctx.Err()
	}
}

// NotifyResult implements agent.ResultNotifier: it sends ev to Genesys as
// an AudioHook event message with one EntityResult entity whose data is
// ev's JSON (never a credential or audio). It goes on the operation's
// session, or, when that session has ended while the conversation goes
// on, on the conversation's newest live session (the same caller: the
// conversation is still bound to it).
func (a *audio) NotifyResult(ctx context.Context, ev agent.Event) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return a.session().SendEvent(ctx, wire.Entity{Type: EntityResult, Data: data})
}

// session returns the session that NotifyResult sends on: the operation's
// while it is live, else the newest live one of its conversation, else
// the operation's (whose SendEvent then reports the end).
func (a *audio) session() *audiohook.Session {
	a.src.mu.Lock()
	defer a.src.mu.Unlock()
	// a.cv has live sessions only while it is the conversation's entry:
	// a later session on the same conversation id makes a new one, which
	// may name another caller.
	if n := len(a.cv.calls); n > 0 && !slices.Contains(a.cv.calls, a.c) {
		return a.cv.calls[n-1].sess
	}
	return a.c.sess
}

// Close detaches the operation from the conversation; the session stays
// open for the next one. It is idempotent and unblocks a ReadFrame in
// progress.
func (a *audio) Close() error {
	a.closeOnce.Do(func() {
		a.src.mu.Lock()
		if a.c.attached == a {
			a.c.attached = nil
		}
		a.src.mu.Unlock()
		close(a.closed)
	})
	return nil
}

var (
	_ agent.Source         = (*Source)(nil)
	_ agent.CallInfo       = (*Source)(nil)
	_ agent.ResultNotifier = (*audio)(nil)
)

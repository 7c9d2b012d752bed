package audiohook

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/internal/wsconn"
)

// AuthFailureMode selects how a server signals a failed authentication.
type AuthFailureMode int

const (
	// AuthReject answers the upgrade request with HTTP 401 (the reference
	// server's SESSION_AUTH_STRATEGY=request). It is the default.
	AuthReject AuthFailureMode = iota
	// AuthDisconnect accepts the WebSocket, then sends disconnect with reason
	// "unauthorized" (the reference server's default strategy).
	AuthDisconnect
)

// DefaultAuthFailureDelay is the least time from the start of verification
// to the answer of a failed authentication, the reference server's
// (app/src/authenticator.ts, defaultMinDelayResponseOnFailureMs).
const DefaultAuthFailureDelay = 500 * time.Millisecond

// DefaultMedia is the server's default media preference: stereo PCMU, then
// mono PCMU of the customer, then of the agent, then the same for L16.
var DefaultMedia = []MediaParameter{
	MediaPCMUStereo, MediaPCMUExternal, MediaPCMUInternal,
	MediaL16Stereo, MediaL16External, MediaL16Internal,
}

// ServerOptions configures Accept. A nil *ServerOptions is the zero value:
// every request is refused, because Keys is nil and InsecureSkipAuth false.
type ServerOptions struct {
	// Keys looks up client secrets by X-API-KEY. Requests with an unknown
	// key fail; keys whose secret is empty may connect unsigned, but a
	// signature they do carry must verify (see KeyStore).
	Keys KeyStore
	// InsecureSkipAuth accepts every request without checking X-API-KEY or
	// signatures. For local tests only.
	InsecureSkipAuth bool
	// AuthFailure selects HTTP 401 (default) or disconnect "unauthorized".
	AuthFailure AuthFailureMode
	// AuthFailureDelay is the least time between the start of verification
	// and the answer to a failed authentication (the 401, or the upgrade
	// followed by disconnect), whatever failed: missing or unknown key,
	// key store error, unsigned or bad signature, replay. 0 means
	// DefaultAuthFailureDelay (500 ms), negative means none.
	AuthFailureDelay time.Duration
	// Sleep waits d or until ctx ends, then returns ctx.Err(); it holds back
	// failed authentications (AuthFailureDelay) with the request's
	// context. nil means a timer. Tests replace it to run without waiting.
	Sleep func(ctx context.Context, d time.Duration) error
	// Nonces, when set, rejects replayed signature nonces. When it is full
	// of live nonces (ErrNonceCacheFull) the request is refused with HTTP
	// 503 or disconnect "error", without AuthFailureDelay: it reaches the
	// cache only after its signature matched.
	Nonces NonceCache
	// Now is the clock for signatures and for AuthFailureDelay; nil means
	// time.Now.
	Now func() time.Time
	// ClockSkew and MaxSignatureAge tune signature checks (VerifyOptions);
	// 0 means 3 s and 10 s.
	ClockSkew, MaxSignatureAge time.Duration

	// Media lists the formats the server accepts, most preferred first; the
	// first one the client offered is selected. nil means DefaultMedia. If
	// none was offered, opened selects no media and the client sends none.
	Media []MediaParameter
	// Languages is returned in opened when open asks for supportedLanguages.
	Languages []string
	// StartPaused asks the client to start paused.
	StartPaused bool
	// OnOpen, when set, is called from the session's reader goroutine with
	// the open parameters and the selected media before opened is sent. It
	// may change info.Media (to nil or another offered entry),
	// info.StartPaused and info.DiscardTo. An error refuses the session with
	// disconnect: reason "unauthorized" if it wraps ErrUnauthorized, else
	// "error", info = the error text. It must return quickly: pings wait.
	OnOpen func(info *OpenInfo) error
	// OnMessage, when set, is called from the reader goroutine for every
	// valid client text message after the session handled it. It must not
	// block and must not keep m.
	OnMessage func(s *Session, m *Message)

	// OpenTimeout bounds the wait for open after the upgrade; 0 means 10 s.
	// On expiry the server sends disconnect "error".
	OpenTimeout time.Duration
	// CloseTimeout bounds the wait for the client's close after a
	// disconnect, and the graceful part of Close; 0 means 10 s. On expiry the
	// connection is dropped.
	CloseTimeout time.Duration
	// WriteTimeout bounds each message write; 0 means 5 s.
	WriteTimeout time.Duration

	// Buffer is the most audio queued for ReadFrame; 0 means 2 s. When full,
	// the oldest frames are dropped and counted in Stats.
	Buffer time.Duration
	// BufferFrames is the most frames queued; 0 means 128.
	BufferFrames int

	// Recorder, when set, records every session (WAV + JSON sidecar).
	Recorder RecordSink
	// Logger receives protocol diagnostics; nil means none. Secrets are
	// never logged.
	Logger *slog.Logger
	// OriginPatterns lists host patterns (path.Match syntax, case
	// insensitive; a pattern with "://" is matched against scheme://host)
	// accepted in the Origin header of the upgrade request when it differs
	// from the request's Host; "*" accepts every origin. Requests without
	// Origin, like those of Genesys Cloud, are always accepted. nil accepts
	// same-host origins only.
	OriginPatterns []string
}

func (o *ServerOptions) withDefaults() ServerOptions {
	var c ServerOptions
	if o != nil {
		c = *o
	}
	if c.AuthFailureDelay == 0 {
		c.AuthFailureDelay = DefaultAuthFailureDelay
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Media == nil {
		c.Media = DefaultMedia
	}
	if c.OpenTimeout <= 0 {
		c.OpenTimeout = 10 * time.Second
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 5 * time.Second
	}
	if c.Buffer <= 0 {
		c.Buffer = 2 * time.Second
	}
	if c.BufferFrames <= 0 {
		c.BufferFrames = 128
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// OpenInfo describes an opened session.
type OpenInfo struct {
	SessionID      string
	OrganizationID string
	CorrelationID  string
	APIKey         string
	// Params are the client's open parameters; Params.Media is the offer.
	Params OpenParameters
	// Media is the selected format, nil when no audio will flow.
	Media *MediaParameter
	// StartPaused and DiscardTo are sent in opened.
	StartPaused bool
	DiscardTo   time.Duration
	// Probe is true for a connection probe (null conversation id).
	Probe bool
}

// Stats are a session's counters.
type Stats struct {
	FramesReceived   uint64        // non-empty binary frames queued
	FramesDropped    uint64        // dropped because the queue was full
	FramesRead       uint64        // returned by ReadFrame
	EmptyFrames      uint64        // zero-length binary frames
	BytesReceived    uint64        // audio bytes received
	MaxQueueDepth    int           // most frames queued at once
	QueueDepth       int           // frames queued now
	MessagesReceived uint64        // text messages received
	MessagesSent     uint64        // text messages sent
	Pings            uint64        // pings answered
	OpenLatency      time.Duration // from receiving open to writing opened
	MaxPongLatency   time.Duration // most time from receiving a ping to writing its pong
	Gap              time.Duration // discarded and paused media time
	Position         time.Duration // media position of the next sample
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

// Session is the server side of one AudioHook connection and a
// voicegate.FrameReader of its audio.
//
// A goroutine owned by the session reads the WebSocket from Accept until
// the connection ends. It answers open, ping, close and the other client
// messages at once, enforces sequence numbers and state rules (violations
// are answered with disconnect "error"), and queues audio frames in a
// bounded buffer that drops the oldest frames when the application falls
// behind (see Stats).
//
// ReadFrame must be called from one goroutine at a time; all other methods
// are safe for concurrent use. Call Close (graceful: disconnect "completed"
// and the close/closed transaction) or CloseNow when done; ReadFrame then
// returns errors satisfying errors.Is(err, net.ErrClosed).
type Session struct {
	conn   *wsconn.Conn
	opts   ServerOptions
	cancel context.CancelFunc // ends the reader's context

	id, org, corr, apiKey string

	mu          sync.Mutex
	state       sessionState
	info        *OpenInfo
	openErr     error // why the open did not complete
	endErr      error // protocol failure to report after draining
	closeReason string
	authFail    DisconnectParameters // the disconnect that answers open in stateUnauthorized
	peerErr     *PeerError
	disconnect  bool // a disconnect was sent
	appEnd      bool // the disconnect came from the application

	lastClientSeq atomic.Int64
	seq           int64 // guarded by wlock
	sentSeq       atomic.Int64
	wlock         chan struct{}
	wbuf          []byte

	// reader-goroutine-only
	samples   int64
	gap       time.Duration
	frameB    int
	enc       voicegate.Encoding
	channels  int
	parties   [voicegate.MaxChannels]voicegate.Party
	pausedAt  time.Duration
	lastPos   time.Duration
	recording *recorder

	ring *ring

	openCh    chan struct{}
	openOnce  sync.Once
	closedCh  chan struct{}
	closedOne sync.Once
	doneCh    chan struct{}
	closing   atomic.Bool
	probe     atomic.Bool

	timerMu    sync.Mutex
	timers     []*time.Timer
	timersDone bool

	emptyFrames, bytesIn, msgsIn, msgsOut, pings atomic.Uint64
	gapNs, posNs                                 atomic.Int64
	openLatNs, maxPongNs                         atomic.Int64
	recvAt                                       time.Time // reader goroutine only
}

// Accept authenticates an AudioHook upgrade request, upgrades it and starts
// the session.
//
// Accept checks the Audiohook-Session-Id, -Organization-Id and
// -Correlation-Id headers (UUIDs; HTTP 400 otherwise) and authenticates
// X-API-KEY and the HTTP message signature with opts.Keys. A failure is
// answered no sooner than AuthFailureDelay (500 ms) after verification
// started, whatever failed. With AuthReject it is answered with HTTP 401
// and an *AuthError is returned; with AuthDisconnect the session is
// returned and disconnected as unauthorized in answer to the client's open
// (or after OpenTimeout without one), and Open reports the
// *AuthError. A request refused because the NonceCache is full
// (ErrNonceCacheFull) is answered at once with HTTP 503, or disconnect
// "error" with AuthDisconnect.
//
// The open transaction is run by the session: Accept returns before open
// arrives. Use Open to wait for it. r.Context() is not used after the
// upgrade; the session lives until Close, CloseNow or the end of the
// connection.
func Accept(w http.ResponseWriter, r *http.Request, opts *ServerOptions) (*Session, error) {
	o := opts.withDefaults()
	sid := r.Header.Get(HeaderSessionID)
	org := r.Header.Get(HeaderOrganizationID)
	corr := r.Header.Get(HeaderCorrelationID)
	for _, h := range []struct{ name, v string }{{HeaderSessionID, sid}, {HeaderOrganizationID, org}, {HeaderCorrelationID, corr}} {
		if !IsUUID(h.v) || (h.name == HeaderSessionID && h.v == NullUUID) {
			http.Error(w, "missing or invalid "+h.name, http.StatusBadRequest)
			return nil, fmt.Errorf("%w: header %s %.40q is not a UUID", ErrBadRequest, h.name, h.v)
		}
	}
	start := o.Now()
	authErr := authenticate(r, &o)
	busy := errors.Is(authErr, ErrNonceCacheFull)
	if busy {
		o.Logger.Warn("audiohook: connection refused: nonce cache full", "session", sid)
		if o.AuthFailure == AuthReject {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "service unavailable", http.StatusServiceUnavailable)
			return nil, fmt.Errorf("audiohook: connection refused (HTTP 503): %w", authErr)
		}
	} else if authErr != nil {
		o.Logger.Info("audiohook: authentication failed", "session", sid, "err", authErr)
		// Every failure is answered at the same least time after
		// verification started, so timing does not tell what failed.
		if wait := o.AuthFailureDelay - o.Now().Sub(start); o.AuthFailureDelay > 0 && wait > 0 {
			if err := o.Sleep(r.Context(), wait); err != nil {
				// The client went away: no upgrade for it.
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return nil, &AuthError{Status: http.StatusUnauthorized, Info: "authentication failed", Err: authErr}
			}
		}
		if o.AuthFailure == AuthReject {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return nil, &AuthError{Status: http.StatusUnauthorized, Info: "authentication failed", Err: authErr}
		}
	}
	conn, err := wsconn.Accept(w, r, &wsconn.AcceptOptions{OriginPatterns: o.OriginPatterns, CloseTimeout: o.CloseTimeout})
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(maxMessage)
	s := newSession(conn, o, sid, org, corr, r.Header.Get(HeaderAPIKey))
	if authErr != nil {
		// No client message is handled from now on but close and ping.
		s.state = stateUnauthorized
		reason, info := ReasonUnauthorized, "Authentication failed"
		s.openErr = &AuthError{Info: "authentication failed", Err: authErr}
		if busy {
			reason, info = ReasonError, "Service unavailable: too many recent connections (nonce cache full)"
			s.openErr = fmt.Errorf("audiohook: connection refused: %w", authErr)
		}
		s.endErr = s.openErr
		// The disconnect answers the client's open, as the reference
		// server's does (it authenticates in its opening state): sent at
		// once, it would race the client's open, and a client answering it
		// with close before its open went out could see the WebSocket
		// closed under that open. A client that sends no open gets it after
		// OpenTimeout.
		s.authFail = DisconnectParameters{Reason: reason, Info: info}
		s.after(o.OpenTimeout, func() { s.failWith(s.authFail, true) })
	} else {
		s.after(o.OpenTimeout, func() {
			s.mu.Lock()
			st := s.state
			s.mu.Unlock()
			if st == statePreparing {
				s.fail(ReasonError, "Open transaction timeout", true)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.run(ctx)
	return s, nil
}

func newSession(conn *wsconn.Conn, o ServerOptions, sid, org, corr, key string) *Session {
	s := &Session{
		conn: conn, opts: o, id: sid, org: org, corr: corr, apiKey: key,
		wlock:    make(chan struct{}, 1),
		openCh:   make(chan struct{}),
		closedCh: make(chan struct{}),
		doneCh:   make(chan struct{}),
		ring:     newRing(o.BufferFrames, o.Buffer),
		wbuf:     make([]byte, 0, 512),
	}
	if o.Recorder != nil {
		s.recording = &recorder{}
	}
	return s
}

// sleep is the default ServerOptions.Sleep.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func authenticate(r *http.Request, o *ServerOptions) error {
	if o.InsecureSkipAuth {
		return nil
	}
	key := r.Header.Get(HeaderAPIKey)
	if key == "" {
		return fmt.Errorf("%w: missing %s", ErrUnauthorized, HeaderAPIKey)
	}
	if o.Keys == nil {
		return fmt.Errorf("%w: no key store configured", ErrUnauthorized)
	}
	secret, ok, err := o.Keys.Secret(r.Context(), key)
	if err != nil {
		return fmt.Errorf("%w: key store: %w", ErrUnauthorized, err)
	}
	signed := r.Header.Get(HeaderSignature) != "" || r.Header.Get(HeaderSignatureInput) != ""
	vo := &VerifyOptions{Now: o.Now, ClockSkew: o.ClockSkew, MaxAge: o.MaxSignatureAge, Nonces: o.Nonces}
	if !ok {
		if signed {
			// Constant work for unknown keys.
			var k [32]byte
			_, _ = rand.Read(k[:])
			vo.Nonces = nil
			_, _ = VerifyRequest(r, k[:], vo)
		}
		return fmt.Errorf("%w: unknown API key", ErrUnauthorized)
	}
	if !signed {
		if len(secret) == 0 {
			return nil // the key is configured for unsigned requests
		}
		return fmt.Errorf("%w: request is not signed", ErrSignature)
	}
	// A signature that is present must verify, also for a key without a
	// secret: the reference server then verifies with the empty key.
	_, err = VerifyRequest(r, secret, vo)
	return err
}

func (s *Session) after(d time.Duration, f func()) {
	s.timerMu.Lock()
	defer s.timerMu.Unlock()
	if s.timersDone {
		return
	}
	s.timers = append(s.timers, time.AfterFunc(d, f))
}

func (s *Session) stopTimers() {
	s.timerMu.Lock()
	defer s.timerMu.Unlock()
	for _, t := range s.timers {
		t.Stop()
	}
	s.timers = nil
	s.timersDone = true
}

// ID returns the session id (Audiohook-Session-Id).
func (s *Session) ID() string { return s.id }

// OrganizationID returns the Audiohook-Organization-Id header.
func (s *Session) OrganizationID() string { return s.org }

// CorrelationID returns the Audiohook-Correlation-Id header.
func (s *Session) CorrelationID() string { return s.corr }

// Open waits until the open transaction completed and returns its result.
// It fails with an *AuthError, *ProtocolError or *DisconnectError when the
// session ended before opened was sent (with an error wrapping
// ErrNonceCacheFull when it was refused for a full nonce cache), and with
// ctx.Err() when ctx ends.
func (s *Session) Open(ctx context.Context) (*OpenInfo, error) {
	select {
	case <-s.openCh:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.info != nil {
		return s.info, nil
	}
	if s.openErr != nil {
		return nil, s.openErr
	}
	if s.closing.Load() {
		return nil, ErrClosed
	}
	return nil, ErrConnectionLost
}

// Info returns the open parameters, or nil before the session opened.
func (s *Session) Info() *OpenInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info
}

// IsProbe reports whether the session is a connection probe. A probe is
// answered with opened and produces no frames: ReadFrame returns io.EOF.
func (s *Session) IsProbe() bool { return s.probe.Load() }

// CloseReason returns the reason of the client's close message, or "".
func (s *Session) CloseReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeReason
}

// LastPeerError returns the last error message the client sent, or nil.
func (s *Session) LastPeerError() *PeerError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peerErr
}

// Done is closed when the connection has ended and the reader goroutine
// has exited.
func (s *Session) Done() <-chan struct{} { return s.doneCh }

// ReadFrame returns the next audio frame. The frame's Encoding is PCMU or
// L16 (little-endian), SampleRate 8000, Channels 1 or 2 with Parties taken
// from the negotiated channels (external = voicegate.Customer, internal =
// voicegate.Agent), Seq counts received frames (a gap means frames were
// dropped) and Timestamp is the media position of the first sample,
// including discarded and paused gaps. The payload is valid until the next
// call.
//
// ReadFrame returns io.EOF after the last frame of a clean end (close
// answered, or a disconnect by the application), a *ProtocolError when the
// server ended the session for a client protocol violation,
// ErrConnectionLost when the connection dropped, and ErrClosed after Close.
// Cancelling ctx returns ctx.Err() and leaves the session usable.
func (s *Session) ReadFrame(ctx context.Context) (voicegate.Frame, error) {
	p, m, err := s.ring.pop(ctx)
	if err != nil {
		return voicegate.Frame{}, err
	}
	return voicegate.Frame{
		Encoding: s.enc, SampleRate: 8000, Channels: s.channels, Parties: s.parties,
		Seq: m.seq, Timestamp: m.ts, Payload: p,
	}, nil
}

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	s.ring.mu.Lock()
	st := Stats{
		FramesReceived: s.ring.received, FramesDropped: s.ring.dropped, FramesRead: s.ring.read,
		MaxQueueDepth: s.ring.maxDepth, QueueDepth: s.ring.n,
	}
	s.ring.mu.Unlock()
	st.EmptyFrames = s.emptyFrames.Load()
	st.BytesReceived = s.bytesIn.Load()
	st.MessagesReceived = s.msgsIn.Load()
	st.MessagesSent = s.msgsOut.Load()
	st.Pings = s.pings.Load()
	st.OpenLatency = time.Duration(s.openLatNs.Load())
	st.MaxPongLatency = time.Duration(s.maxPongNs.Load())
	st.Gap = time.Duration(s.gapNs.Load())
	st.Position = time.Duration(s.posNs.Load())
	return st
}

func (s *Session) lock(ctx context.Context) error {
	select {
	case s.wlock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.doneCh:
		return ErrConnectionLost
	}
}

func (s *Session) unlock() { <-s.wlock }

// send writes one server message. params nil means {}.
func (s *Session) send(ctx context.Context, typ string, params []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
	defer cancel()
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.unlock()
	s.seq++
	s.sentSeq.Store(s.seq)
	s.wbuf = appendServerMessage(s.wbuf[:0], typ, s.id, s.seq, s.lastClientSeq.Load(), params)
	s.recording.message("out", s.wbuf)
	if err := s.conn.WriteMessage(ctx, wsconn.MessageText, s.wbuf); err != nil {
		return fmt.Errorf("audiohook: send %s: %w", typ, err)
	}
	s.msgsOut.Add(1)
	return nil
}

// sendFromReader sends a message the session makes on its own. The write
// is bounded by WriteTimeout and ends when the connection is closed.
func (s *Session) sendFromReader(typ string, params []byte) {
	if err := s.send(context.Background(), typ, params); err != nil {
		s.opts.Logger.Debug("audiohook: send failed", "session", s.id, "type", typ, "err", err)
	}
}

// fail sends disconnect once and starts the close timer. peer marks a
// failure caused by the client, reported by ReadFrame and Open.
func (s *Session) fail(reason, info string, peer bool) {
	s.failWith(DisconnectParameters{Reason: reason, Info: info}, peer)
}

// failWith sends disconnect with p, once, and ends the session's audio.
// peer says whether the peer's behaviour caused it (a protocol error) or
// the application asked for it.
func (s *Session) failWith(p DisconnectParameters, peer bool) {
	reason, info := p.Reason, p.Info
	s.mu.Lock()
	if s.disconnect || s.state == stateClosed {
		s.mu.Unlock()
		return
	}
	s.disconnect = true
	if s.state != stateUnauthorized && peer {
		s.endErr = &ProtocolError{Reason: reason, Info: info}
		if s.openErr == nil && s.info == nil {
			s.openErr = s.endErr
		}
	}
	if !peer {
		s.appEnd = true
		if s.info == nil && s.openErr == nil {
			s.openErr = &DisconnectError{Reason: reason, Info: info}
		}
	}
	s.state = stateDisconnecting
	s.mu.Unlock()
	s.opts.Logger.Info("audiohook: disconnect", "session", s.id, "reason", reason, "info", info)
	s.openOnce.Do(func() { close(s.openCh) })
	if peer || s.info == nil {
		s.ring.finish(s.endErrOrEOF())
	}
	s.sendFromReader(TypeDisconnect, mustJSON(p))
	s.after(s.opts.CloseTimeout, func() { _ = s.conn.CloseNow() })
}

func (s *Session) endErrOrEOF() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.endErr != nil {
		return s.endErr
	}
	return io.EOF
}

// run is the reader goroutine. ctx ends with CloseNow, Close or the end of
// the connection and bounds the application callbacks that take one.
func (s *Session) run(ctx context.Context) {
	defer close(s.doneCh)
	defer func() {
		s.stopTimers()
		s.cancel()
		s.mu.Lock()
		var end error
		switch {
		case s.endErr != nil:
			end = s.endErr
		case s.state == stateClosed || s.appEnd:
			end = io.EOF
		case s.closing.Load():
			end = ErrClosed
		default:
			end = ErrConnectionLost
		}
		s.mu.Unlock()
		s.ring.finish(end)
		s.openOnce.Do(func() { close(s.openCh) })
		if err := s.recording.close(); err != nil {
			s.opts.Logger.Warn("audiohook: recording", "session", s.id, "err", err)
		}
		_ = s.conn.CloseNow()
	}()
	for {
		// The payload is valid until the next ReadMessage; everything that
		// keeps audio or text copies it.
		typ, p, err := s.conn.ReadMessage()
		if err != nil {
			return
		}
		s.recvAt = time.Now()
		limit := MaxTextMessage
		if typ == wsconn.MessageBinary {
			limit = maxBinary
		}
		if len(p) > limit {
			s.fail(ReasonError, fmt.Sprintf("Message too large (more than %d bytes)", limit), true)
			continue
		}
		if typ == wsconn.MessageText {
			s.msgsIn.Add(1)
			s.handleText(ctx, p)
		} else {
			s.handleAudio(p)
		}
	}
}

// maxBinary is the largest audio frame accepted: 64 KiB.
const maxBinary = 65536

// maxMessage is the WebSocket read limit. Larger messages fail the
// connection with close status 1009; text messages over MaxTextMessage and
// binary ones over maxBinary are answered with disconnect "error".
const maxMessage = 1 << 20

func (s *Session) handleText(ctx context.Context, b []byte) {
	s.recording.message("in", b)
	m, err := ParseClientMessage(b)
	if err != nil {
		s.fail(ReasonError, "Client Error: "+err.Error(), true)
		return
	}
	if m.ID != s.id {
		s.fail(ReasonError, "Client Error: Session identifier mismatch", true)
		return
	}
	s.mu.Lock()
	disconnected := s.disconnect
	s.mu.Unlock()
	if disconnected && m.Type == TypeClose {
		// After a disconnect for a sequence error every later message is out
		// of sequence; the close transaction is still completed.
		s.lastClientSeq.Store(m.Seq)
		s.handleClose(m)
		return
	}
	if last := s.lastClientSeq.Load(); m.Seq != last+1 {
		s.fail(ReasonError, "Client Error: Invalid seq value (not monotonically increasing)", true)
		return
	}
	if m.ServerSeq > s.sentSeq.Load() {
		s.fail(ReasonError, "Client Error: Invalid serverseq value", true)
		return
	}
	s.lastClientSeq.Store(m.Seq)
	s.lastPos = m.Position

	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	switch m.Type {
	case TypePing:
		s.pings.Add(1)
		s.sendFromReader(TypePong, nil)
		if d := int64(time.Since(s.recvAt)); d > s.maxPongNs.Load() {
			s.maxPongNs.Store(d)
		}
	case TypeClose:
		s.handleClose(m)
	case TypeError:
		var p ErrorParameters
		if err := json.Unmarshal(m.Parameters, &p); err == nil {
			pe := &PeerError{Code: p.Code, Message: p.Message}
			if p.RetryAfter != nil {
				pe.RetryAfter = time.Duration(*p.RetryAfter)
			}
			s.mu.Lock()
			s.peerErr = pe
			s.mu.Unlock()
		}
	default:
		if st == stateUnauthorized && m.Type == TypeOpen {
			s.failWith(s.authFail, true)
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

func (s *Session) handleStateful(ctx context.Context, m *Message, st sessionState) {
	switch m.Type {
	case TypeOpen:
		if st != statePreparing {
			return // the reference server ignores a second open
		}
		s.handleOpen(ctx, m)
	case TypePaused:
		switch st {
		case stateActive:
			s.mu.Lock()
			s.state = statePaused
			s.mu.Unlock()
			s.pausedAt = m.Position
		case statePaused:
		default:
			s.fail(ReasonError, "Client Error: Unexpected paused message in current state", true)
		}
	case TypeResumed:
		if st != stateActive && st != statePaused {
			s.fail(ReasonError, "Client Error: Unexpected resumed message in current state", true)
			return
		}
		p, err := parseResumed(m.Parameters)
		if err != nil {
			s.fail(ReasonError, "Client Error: resumed: "+err.Error(), true)
			return
		}
		s.addGap(time.Duration(p.Discarded))
		s.mu.Lock()
		s.state = stateActive
		s.mu.Unlock()
	case TypeDiscarded:
		if st == statePreparing {
			s.fail(ReasonError, "Client Error: Unexpected discarded message before open", true)
			return
		}
		p, err := parseResumed(m.Parameters)
		if err != nil {
			s.fail(ReasonError, "Client Error: discarded: "+err.Error(), true)
			return
		}
		s.addGap(time.Duration(p.Discarded))
	case TypeUpdate:
		if st != stateActive && st != statePaused {
			s.fail(ReasonError, "Client Error: Unexpected update message in current state", true)
			return
		}
		var p struct {
			Language *string `json:"language"`
		}
		if err := json.Unmarshal(m.Parameters, &p); err != nil || p.Language != nil && !validLanguage(*p.Language) {
			s.fail(ReasonError, "Client Error: update: invalid language", true)
			return
		}
		if p.Language != nil {
			s.mu.Lock()
			info := *s.info
			info.Params.Language = *p.Language
			s.info = &info
			s.mu.Unlock()
		}
		s.sendFromReader(TypeUpdated, nil)
	case TypeDTMF, TypePlaybackStarted, TypePlaybackCompleted:
		if st == statePreparing {
			s.fail(ReasonError, "Client Error: Unexpected "+m.Type+" message before open", true)
		}
	default:
		s.fail(ReasonError, fmt.Sprintf("Client Error: Unknown message type %.40q", m.Type), true)
	}
}

func parseResumed(b []byte) (*ResumedParameters, error) {
	var w struct {
		Start     *Duration `json:"start"`
		Discarded *Duration `json:"discarded"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, badMessage("%v", err)
	}
	if w.Start == nil || w.Discarded == nil {
		return nil, badMessage("missing start or discarded")
	}
	return &ResumedParameters{Start: *w.Start, Discarded: *w.Discarded}, nil
}

func (s *Session) addGap(d time.Duration) {
	s.gap += d
	s.gapNs.Store(int64(s.gap))
	s.posNs.Store(int64(s.position()))
}

func (s *Session) position() time.Duration {
	return time.Duration(s.samples)*time.Second/8000 + s.gap
}

func (s *Session) handleOpen(ctx context.Context, m *Message) {
	p, err := ParseOpenParameters(m.Parameters)
	if err != nil {
		s.fail(ReasonError, "Client Error: "+err.Error(), true)
		return
	}
	if p.OrganizationID != s.org {
		s.fail(ReasonUnauthorized, "Organization identifier mismatch", true)
		return
	}
	info := &OpenInfo{
		SessionID: s.id, OrganizationID: s.org, CorrelationID: s.corr, APIKey: s.apiKey,
		Params: *p, StartPaused: s.opts.StartPaused, Probe: p.ConversationID == NullUUID,
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
			reason := ReasonError
			if errors.Is(err, ErrUnauthorized) {
				reason = ReasonUnauthorized
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
				s.fail(ReasonError, "Server Error: selected media was not offered", false)
				return
			}
		}
	}
	op := OpenedParameters{Media: []MediaParameter{}, StartPaused: info.StartPaused}
	if info.Media != nil {
		op.Media = []MediaParameter{*info.Media}
		s.channels = len(info.Media.Channels)
		s.enc = voicegate.PCMU
		if info.Media.Format == FormatL16 {
			s.enc = voicegate.L16
		}
		for i, c := range info.Media.Channels {
			s.parties[i] = voicegate.Agent
			if c == ChannelExternal {
				s.parties[i] = voicegate.Customer
			}
		}
		s.frameB = s.channels * s.enc.BytesPerSample()
		bufBytes := int(s.opts.Buffer/time.Millisecond) * 8 * s.frameB
		s.ring.alloc(max(bufBytes, maxBinary))
	}
	if info.DiscardTo > 0 {
		d := Duration(info.DiscardTo)
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
		s.probe.Store(true)
		s.recording = nil
	} else if s.recording != nil {
		if err := s.recording.start(ctx, s.opts.Recorder, s.id, info.Media); err != nil {
			s.opts.Logger.Warn("audiohook: recorder", "session", s.id, "err", err)
			s.recording = nil
		}
	}
	params := mustJSON(op)
	if p.SupportedLanguages && len(op.SupportedLanguages) == 0 {
		params = append(params[:len(params)-1], `,"supportedLanguages":[]}`...)
	}
	s.mu.Lock()
	s.info = info
	s.state = stateActive
	s.mu.Unlock()
	s.sendFromReader(TypeOpened, params)
	s.openLatNs.Store(int64(time.Since(s.recvAt)))
	s.openOnce.Do(func() { close(s.openCh) })
	if info.Probe || info.Media == nil {
		s.ring.finish(io.EOF)
	}
}

func (s *Session) handleClose(m *Message) {
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		return
	}
	var p CloseParameters
	_ = json.Unmarshal(m.Parameters, &p)
	s.closeReason = p.Reason
	s.state = stateClosed
	s.mu.Unlock()
	s.sendFromReader(TypeClosed, nil)
	s.closedOne.Do(func() { close(s.closedCh) })
	s.openOnce.Do(func() { close(s.openCh) })
	s.ring.finish(s.endErrOrEOF())
	// The client closes the WebSocket after closed; drop it if it does not.
	s.after(s.opts.CloseTimeout, func() { _ = s.conn.CloseNow() })
}

func (s *Session) handleAudio(b []byte) {
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	if len(b) == 0 {
		s.emptyFrames.Add(1)
		return
	}
	switch st {
	case statePreparing:
		s.fail(ReasonError, "Client Error: Unexpected binary message before open transaction completed", true)
		return
	case statePaused:
		s.fail(ReasonError, "Client Error: Unexpected binary message while paused", true)
		return
	case stateActive:
	default:
		return // in-flight audio after close or disconnect is dropped
	}
	if s.frameB == 0 {
		s.fail(ReasonError, "Client Error: Unexpected binary message: no media was selected", true)
		return
	}
	if len(b)%s.frameB != 0 {
		s.fail(ReasonError, fmt.Sprintf("Client Error: Audio frame of %d bytes is not a multiple of %d", len(b), s.frameB), true)
		return
	}
	if s.probe.Load() {
		return
	}
	ts := s.position()
	n := int64(len(b) / s.frameB)
	s.samples += n
	s.bytesIn.Add(uint64(len(b)))
	s.posNs.Store(int64(s.position()))
	s.recording.audioAt(ts, b)
	s.ring.push(b, ts, time.Duration(n)*time.Second/8000)
}

func (s *Session) requireOpen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return ErrClosed
	}
	if s.state != stateActive && s.state != statePaused {
		return ErrNotOpen
	}
	return nil
}

// Pause asks the client to stop sending audio (pause). The client answers
// paused; the media position keeps running and the gap is reported when the
// client resumes.
func (s *Session) Pause(ctx context.Context) error {
	if err := s.requireOpen(); err != nil {
		return err
	}
	return s.send(ctx, TypePause, nil)
}

// Resume ends a pause requested with Pause (resume).
func (s *Session) Resume(ctx context.Context) error {
	if err := s.requireOpen(); err != nil {
		return err
	}
	return s.send(ctx, TypeResume, nil)
}

// SendEvent sends an event message with the given entities (see
// TranscriptEntity, AgentAssistEntity and NewEntity).
func (s *Session) SendEvent(ctx context.Context, entities ...Entity) error {
	if err := s.requireOpen(); err != nil {
		return err
	}
	if entities == nil {
		entities = []Entity{}
	}
	b, err := json.Marshal(EventParameters{Entities: entities})
	if err != nil {
		return fmt.Errorf("audiohook: event: %w", err)
	}
	if len(b) > MaxTextMessage-200 {
		return fmt.Errorf("audiohook: event of %d bytes exceeds the message limit", len(b))
	}
	return s.send(ctx, TypeEvent, b)
}

// Reconnect asks the client to move the session to a new connection
// (reconnect). Genesys does not act on it today.
func (s *Session) Reconnect(ctx context.Context, info string) error {
	if err := s.requireOpen(); err != nil {
		return err
	}
	b, _ := json.Marshal(struct {
		Info string `json:"info,omitempty"`
	}{info})
	return s.send(ctx, TypeReconnect, b)
}

// Disconnect asks the client to end the session (disconnect with reason
// ReasonCompleted, ReasonUnauthorized or ReasonError and optional info),
// then waits until the client's close was answered with closed, ctx ends or
// the connection drops. ReadFrame returns the queued frames, then io.EOF.
func (s *Session) Disconnect(ctx context.Context, reason, info string) error {
	return s.DisconnectWith(ctx, DisconnectParameters{Reason: reason, Info: info})
}

// DisconnectWith is Disconnect with every parameter of the message,
// including outputVariables, which a Genesys Architect flow can read after
// the AudioHook action (for example a verification result).
func (s *Session) DisconnectWith(ctx context.Context, p DisconnectParameters) error {
	switch reason := p.Reason; reason {
	case ReasonCompleted, ReasonUnauthorized, ReasonError:
	default:
		return fmt.Errorf("audiohook: invalid disconnect reason %q", reason)
	}
	if s.closing.Load() {
		return ErrClosed
	}
	s.failWith(p, false)
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

// Close ends the session gracefully: unless the client already closed, it
// sends disconnect "completed" and waits up to CloseTimeout for the
// close/closed transaction, then closes the WebSocket and waits for the
// reader goroutine. A second call returns ErrClosed.
func (s *Session) Close() error {
	if !s.closing.CompareAndSwap(false, true) {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CloseTimeout)
	defer cancel()
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	if st == stateActive || st == statePaused || st == statePreparing {
		s.fail(ReasonCompleted, "", false)
	}
	select {
	case <-s.closedCh:
	case <-s.doneCh:
	case <-ctx.Done():
	}
	s.ring.stop(ErrClosed)
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
	s.ring.stop(ErrClosed)
	_ = s.conn.CloseNow()
	s.cancel()
	<-s.doneCh
	return nil
}

package audiohook

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/internal/httperr"
	"github.com/voicegate/voicegate/internal/streamcore"
	"github.com/voicegate/voicegate/internal/wsconn"
)

// AuthFailureMode selects how a server signals a failed authentication.
type AuthFailureMode int

const (
	// AuthReject answers the upgrade request with HTTP 401 (the reference
	// server's SESSION_AUTH_STRATEGY=request). It is the default.
	AuthReject AuthFailureMode = iota
	// AuthDisconnect accepts the WebSocket, then answers the client's open
	// (or OpenTimeout without one) with disconnect reason "unauthorized"
	// (the reference server's default strategy).
	AuthDisconnect
)

// DefaultAuthFailureDelay is the least time from the start of verification
// to the answer of a failed authentication, the reference server's
// (app/src/authenticator.ts, defaultMinDelayResponseOnFailureMs).
const DefaultAuthFailureDelay = 500 * time.Millisecond

// DefaultIdleTimeout is the default ServerOptions.IdleTimeout: three
// missed Genesys pings.
const DefaultIdleTimeout = 15 * time.Second

// DefaultLagBudget is the default ServerOptions.LagBudget.
const DefaultLagBudget = streamcore.DefaultLagBudget

// DefaultMedia is the server's default media preference: stereo PCMU, then
// mono PCMU of the customer, then of the agent, then the same for L16.
var DefaultMedia = []wire.MediaParameter{
	wire.MediaPCMUStereo, wire.MediaPCMUExternal, wire.MediaPCMUInternal,
	wire.MediaL16Stereo, wire.MediaL16External, wire.MediaL16Internal,
}

// ServerOptions configures Accept. A nil *ServerOptions is the zero value:
// every request is refused, because Keys is nil and InsecureSkipAuth false.
type ServerOptions struct {
	// Keys looks up client secrets by X-API-KEY (see KeyStore).
	Keys KeyStore
	// InsecureSkipAuth accepts every request without checking X-API-KEY or
	// signatures. For local tests only.
	InsecureSkipAuth bool
	// AuthFailure selects HTTP 401 (default) or disconnect "unauthorized".
	AuthFailure AuthFailureMode
	// AuthFailureDelay is the least time before answering any failed
	// authentication; 0 means DefaultAuthFailureDelay, <0 none.
	AuthFailureDelay time.Duration
	// Sleep holds back failed authentications (d, or ctx.Err()); nil: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Nonces, when set, rejects replayed signature nonces (see Accept for a
	// full cache).
	Nonces NonceCache
	// Now is the clock for signatures; nil means time.Now.
	Now func() time.Time
	// ClockSkew and MaxSignatureAge tune signature checks; 0 means 3 s, 10 s.
	ClockSkew, MaxSignatureAge time.Duration

	// Media lists the formats the server accepts, most preferred first; the
	// first one the client offered is selected. nil means DefaultMedia. If
	// none was offered, opened selects no media and the client sends none.
	Media []wire.MediaParameter
	// Languages is returned in opened when open asks for supportedLanguages.
	Languages []string
	// StartPaused asks the client to start paused.
	StartPaused bool
	// OnOpen, when set, is called from the session's goroutine before opened
	// is sent; it may change info.Media (to nil or another offered entry),
	// info.StartPaused and info.DiscardTo, and must return quickly. An error
	// refuses the session with disconnect "unauthorized" if it wraps
	// ErrUnauthorized, else "error", info = the error text.
	OnOpen func(info *OpenInfo) error
	// OnMessage, when set, gets each valid client text message once handled,
	// on the session's goroutine: it must not block, keep m, or call Session
	// methods that send (call them from another goroutine).
	OnMessage func(s *Session, m *wire.Message)

	// OpenTimeout bounds the wait for open (then disconnect "error"); 0: 10 s.
	OpenTimeout time.Duration
	// CloseTimeout bounds the wait for close after disconnect; 0 means 10 s.
	CloseTimeout time.Duration
	// WriteTimeout bounds each message write; 0 means 5 s.
	WriteTimeout time.Duration
	// IdleTimeout ends a session (ErrIdleTimeout) from which no message
	// arrived for this long, such as a half-open connection behind a proxy.
	// 0 means DefaultIdleTimeout; negative disables it.
	IdleTimeout time.Duration
	// ReadCadence pauses an active session's reader this long between reads
	// to batch messages, delaying ping and close as long; 0 (default): none.
	ReadCadence time.Duration

	// Buffer is the most audio queued for ReadFrame; 0 means 2 s. When full,
	// the oldest frames are dropped and counted in Stats.
	Buffer time.Duration
	// BufferFrames is the most frames queued; 0 means 128.
	BufferFrames int
	// FillGaps inserts silence for media time the client discarded or
	// paused, up to voicegate.MaxGapFill per gap. Stats counts gaps anyway.
	FillGaps bool
	// LagBudget is the lag (Stats.Lag) over which a frame counts in
	// Stats.FramesLagged and Logger warns, once per episode (5 s of media
	// under half the budget re-arms); 0: DefaultLagBudget (100 ms); <0: off.
	LagBudget time.Duration

	// Recorder records each session (WAV + JSON), complete at Done, and at
	// closed when the sink finishes within min(5 s, WriteTimeout).
	Recorder RecordSink
	// Logger receives protocol diagnostics, never secrets; nil means none.
	Logger *slog.Logger
	// OriginPatterns lists hosts (path.Match, case insensitive; with "://"
	// against scheme://host) accepted in an Origin other than Host; nil: same
	// host only. Requests without Origin (Genesys Cloud's) are accepted.
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
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
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
	if c.LagBudget == 0 {
		c.LagBudget = DefaultLagBudget
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Accept authenticates an AudioHook upgrade request, upgrades it and starts
// the session, which lives until Close, CloseNow or the end of the
// connection (r.Context() is not used after the upgrade). It returns before
// open arrives; Open waits for it.
//
// The Audiohook-Session-Id, -Organization-Id and -Correlation-Id headers
// must be UUIDs (HTTP 400 otherwise). X-API-KEY and the HTTP message
// signature (hmac-sha256 over the components SignRequest lists, clock
// checks, constant-time compare) are checked with opts.Keys. A failure is
// answered no sooner than AuthFailureDelay after verification started: with
// AuthReject by HTTP 401 and an *AuthError; with AuthDisconnect the session
// is returned, disconnected as unauthorized in answer to open, and Open
// reports the *AuthError. A full NonceCache is answered at once with HTTP
// 503 (disconnect "error" with AuthDisconnect). Bodies: JSON {"error","code"}.
func Accept(w http.ResponseWriter, r *http.Request, opts *ServerOptions) (*Session, error) {
	o := opts.withDefaults()
	sid := r.Header.Get(wire.HeaderSessionID)
	org := r.Header.Get(wire.HeaderOrganizationID)
	corr := r.Header.Get(wire.HeaderCorrelationID)
	for _, h := range []struct{ name, v string }{{wire.HeaderSessionID, sid}, {wire.HeaderOrganizationID, org}, {wire.HeaderCorrelationID, corr}} {
		if !wire.IsUUID(h.v) || (h.name == wire.HeaderSessionID && h.v == wire.NullUUID) {
			httperr.Write(w, http.StatusBadRequest, "bad_request", "missing or invalid "+h.name)
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
			httperr.Write(w, http.StatusServiceUnavailable, "unavailable", "service unavailable")
			return nil, fmt.Errorf("audiohook: connection refused (HTTP 503): %w", authErr)
		}
	} else if authErr != nil {
		o.Logger.Info("audiohook: authentication failed", "session", sid, "err", authErr)
		// Every failure is answered at the same least time after
		// verification started, so timing does not tell what failed.
		if wait := o.AuthFailureDelay - o.Now().Sub(start); o.AuthFailureDelay > 0 && wait > 0 {
			if err := o.Sleep(r.Context(), wait); err != nil {
				// The client went away: no upgrade for it.
				httperr.Write(w, http.StatusUnauthorized, "unauthenticated", "unauthorized")
				return nil, &AuthError{Status: http.StatusUnauthorized, Info: "authentication failed", Err: authErr}
			}
		}
		if o.AuthFailure == AuthReject {
			httperr.Write(w, http.StatusUnauthorized, "unauthenticated", "unauthorized")
			return nil, &AuthError{Status: http.StatusUnauthorized, Info: "authentication failed", Err: authErr}
		}
	}
	conn, err := wsconn.Accept(w, r, &wsconn.AcceptOptions{OriginPatterns: o.OriginPatterns, CloseTimeout: o.CloseTimeout,
		PollInterval: pollInterval})
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(maxMessage)
	s := newSession(conn, o, sid, org, corr, r.Header.Get(wire.HeaderAPIKey))
	if o.Recorder != nil {
		s.m.rec = newRecorder(o.Logger, &s.recDropped)
	}
	var first func()
	if authErr != nil {
		// No client message is handled from now on but open (answered
		// with the disconnect), close and ping.
		s.o.state = stateUnauthorized
		s.pub.state = stateUnauthorized
		reason, info := wire.ReasonUnauthorized, "Authentication failed"
		s.o.openErr = &AuthError{Info: "authentication failed", Err: authErr}
		if busy {
			reason, info = wire.ReasonError, "Service unavailable: too many recent connections (nonce cache full)"
			s.o.openErr = fmt.Errorf("audiohook: connection refused: %w", authErr)
		}
		s.o.endErr = s.o.openErr
		s.pub.openErr = s.o.openErr
		// The disconnect answers the client's open, as the reference
		// server's does (it authenticates in its opening state): sent at
		// once, it would race the client's open, and a client answering it
		// with close before its open went out could see the WebSocket
		// closed under that open. A client that sends no open gets it after
		// OpenTimeout.
		s.o.authFail = wire.DisconnectParameters{Reason: reason, Info: info}
		first = func() {
			s.after(o.OpenTimeout, func() { s.failWith(s.o.authFail, true) })
		}
	} else {
		first = func() {
			s.after(o.OpenTimeout, func() {
				if s.o.state == statePreparing {
					s.fail(wire.ReasonError, "Open transaction timeout", true)
				}
			})
		}
	}
	s.start(first)
	return s, nil
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
	key := r.Header.Get(wire.HeaderAPIKey)
	if key == "" {
		return fmt.Errorf("%w: missing %s", ErrUnauthorized, wire.HeaderAPIKey)
	}
	if o.Keys == nil {
		return fmt.Errorf("%w: no key store configured", ErrUnauthorized)
	}
	secret, ok, err := o.Keys.Secret(r.Context(), key)
	if err != nil {
		return fmt.Errorf("%w: key store: %w", ErrUnauthorized, err)
	}
	signed := r.Header.Get(wire.HeaderSignature) != "" || r.Header.Get(wire.HeaderSignatureInput) != ""
	vo := &verifyOptions{Now: o.Now, ClockSkew: o.ClockSkew, MaxAge: o.MaxSignatureAge, Nonces: o.Nonces}
	if !ok {
		if signed {
			// Constant work for unknown keys.
			var k [32]byte
			_, _ = rand.Read(k[:])
			vo.Nonces = nil
			_, _ = verifyRequest(r, k[:], vo)
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
	_, err = verifyRequest(r, secret, vo)
	return err
}

// pollInterval is the interval of the shared poller that serves sessions'
// sockets on Linux (wsconn.AcceptOptions.PollInterval): a message, a ping
// included, waits at most this long before it is read, and an idle
// process wakes once per interval for all the sessions' messages instead
// of once per message. At 1,000 stereo PCMU sessions it cut the server's
// CPU from 114–167 µs per session-second (one run at 69, with the load
// generator 0.9 s late) to 75–111, with 1, 2, 5 and 10 ms alike; 1 ms
// keeps pongs prompt (BenchmarkPollPingPong in internal/wsconn: ping round
// trip p99 1.4 ms against 3.5 ms with 2 ms and 0.1 ms through the
// runtime's poller). The poller also queues an active session's audio
// itself (Session.pollFast, wsconn.Conn.SetFastPath), so an audio message
// wakes no session goroutine, only the application's ReadFrame: 155, 147
// and 135 µs per session-second against 206, 191 and 183 before (go build
// -o /tmp/vgload ./internal/loadtest/cmd/vgload && /tmp/vgload -kind
// audiohook -n 1000 -duration 12s, builds alternating, load average
// 6.3–9.0). internal/wsconn's package doc has the runs.
const pollInterval = time.Millisecond

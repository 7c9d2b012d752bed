package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent/oplog"
)

// Defaults of [Options].
const (
	DefaultBasePath         = "/agent"
	DefaultOpenTimeout      = 15 * time.Second
	DefaultEventTokenTTL    = 10 * time.Minute
	DefaultAuthFailureDelay = 500 * time.Millisecond
	DefaultKeepAlive        = 15 * time.Second
	DefaultRetain           = 15 * time.Minute
	DefaultOperationTimeout = 2 * time.Minute
)

// The daspeak defaults the server's floors start from when Options leave
// them zero (daspeak.Config documents them).
const (
	defaultAudioTotalDuration    = 5 * time.Second
	defaultAuthenticityThreshold = 0.8
	defaultScoreThreshold        = 0.5
)

// Options configure a [Server]. Engine, Store, Source and Authenticator
// are required; zero values of the others select the documented defaults.
type Options struct {
	// BasePath is where the API is mounted. Default "/agent".
	BasePath string
	// Engine is the biometric engine (das-Peak or the offline engine).
	Engine daspeak.Engine
	// Store keeps the credentials and enrolment audio.
	Store *CredentialStore
	// Source gets a call's audio (daspeak/agent/flex, daspeak/agent/genesys).
	// It should implement CallInfo, which ties each request's caller_id to
	// the call. WARNING: a Source without CallInfo lets any agent
	// register, verify, delete and query any number on any call (see
	// [Source]).
	Source Source
	// Authenticator checks API requests' bearer tokens. When it also
	// implements CallAuthorizer, the agent must be allowed on each call
	// they name (genesys.Authenticator does); otherwise any authenticated
	// agent may act on any call.
	Authenticator Authenticator
	// AllowedOrigins are the browser origins ("https://flex.twilio.com")
	// answered with CORS headers. A request with any other Origin, the
	// server's own aside, gets 403 origin_not_allowed, a preflight or not
	// (a text/plain POST another site sends without one). Empty: same
	// origin only.
	AllowedOrigins []string
	// Register and Verify are the session configurations. Their
	// AudioTotalDuration, AuthenticityThreshold and ScoreThreshold (zero:
	// daspeak's defaults 5 s, 0.8, 0.5) are floors: a browser's value
	// below one is raised to it. Store and CallerID are set by the server.
	Register, Verify *daspeak.Config
	// EventKey keys the event-stream tokens (32 random bytes advised).
	// Empty: a random key, so tokens do not survive a restart.
	EventKey []byte
	// EventTokenTTL is how long an event-stream URL can be opened.
	// Default 10 minutes.
	EventTokenTTL time.Duration
	// OpenTimeout bounds Source.Open. Default 15 s.
	OpenTimeout time.Duration
	// OperationTimeout bounds an operation after its audio opened: a
	// caller who stays silent on a live call would otherwise keep it
	// running. It then ends with error-audio (reason speech). Default
	// 2 minutes.
	OperationTimeout time.Duration
	// AuthFailureDelay is the least time before a 401 (or 503
	// auth_unavailable) answer, the same whatever failed. Default 500 ms, as the AudioHook and IVR servers.
	AuthFailureDelay time.Duration
	// KeepAlive is the interval of event-stream comments that keep
	// proxies from closing an idle stream. Default 15 s.
	KeepAlive time.Duration
	// Retain is how long a finished operation's events stay readable.
	// Default 15 minutes. An operation started with a request_id is kept
	// at least as long as its claim (oplog.MinRequestRetain), so that a
	// stop of that id can say how it ended.
	Retain time.Duration
	// Logger receives one line per operation and per failure; never a
	// credential, audio or token. Default slog.Default().
	Logger *slog.Logger
	// Log keeps the operations and their events. Nil: an in-memory log
	// (oplog.NewMemory with Retain): one node. A log shared by nodes
	// (daspeak/agent/natsbus) makes every node serve every operation's
	// events, forwards requests about a call to the node holding its audio
	// (Sources that implement CallInfo), lets a node take over an
	// operation whose audio reached it ([Server.Adopt]) and ends the
	// operations of a node that died (error-cancelled, reason cancelled,
	// "cancelled: the node running the operation stopped"). All nodes then
	// need the same EventKey, credential store and engine configuration.
	// The server does not close the Log.
	Log oplog.Log
	// Observer receives measurements (daspeak/agent/metrics). Nil: none.
	Observer Observer
}

// Server is the agent HTTP API (see the package documentation): it runs
// register and verify operations on calls, each with its own event stream,
// and serves status and delete. It is an http.Handler; mount it at the
// root of a mux or strip nothing: its routes include BasePath. A Server is
// safe for concurrent use. Call Shutdown to end its operations and event
// streams.
type Server struct {
	opts   Options
	log    *slog.Logger
	ops    oplog.Log
	tokens *Binder
	mux    *http.ServeMux
	// Operations and event streams are tracked apart, so Shutdown can
	// end the operations first and their streams still send the
	// error-cancelled event.
	opsTrack, streams Tracker

	obs      Observer
	handlers map[string]func(http.ResponseWriter, *http.Request, Principal)
	reapStop context.CancelFunc
	reapDone chan struct{}

	mu      sync.Mutex
	running map[string]*run // by call id
	// pending holds, by operation id, the starts with a request id that
	// claimed it (or are claiming it) and have not reserved their call
	// yet; reserve moves one into running under mu.
	pending  map[string]*pendingStart
	closed   bool
	draining bool
	// maxClaimDelay is MaxClaimDelay (tests shorten it).
	maxClaimDelay time.Duration
}

// run is a running (or starting) operation of a call.
type run struct {
	id       string // "" while its audio is being opened
	callerID string
	reqID    string // the start's request_id, "" without one
	cancel   context.CancelCauseFunc
	finished bool          // its terminal event is published; it is closing its audio
	done     chan struct{} // closed when it has released everything
}

// cancelError is a cancellation cause: its text is the error of
// error-cancelled (after "cancelled: "), its code the cause.
type cancelError struct {
	code CancelCause
	text string
}

func (e *cancelError) Error() string { return e.text }

// Cancellation causes, shown as the error of error-cancelled.
var (
	errStopped  error = &cancelError{CauseStopped, "stopped"}
	errReplaced error = &cancelError{CauseReplaced, "replaced by a new operation on the call"}
	errDeleted  error = &cancelError{CauseDeleted, "the caller's credential was deleted"}
	errShutdown error = &cancelError{CauseShutdown, "server shutting down"}
	errTimeout        = errors.New("operation timed out")
)

// causeOf is the CancelCause of a cancellation cause (CauseShutdown for
// one that is not a cancelError: the server's own contexts ended).
func causeOf(err error) CancelCause {
	if ce, ok := errors.AsType[*cancelError](err); ok {
		return ce.code
	}
	return CauseShutdown
}

// msgNodeStopped is the error of error-cancelled, cause node_stopped.
const msgNodeStopped = "cancelled: the node running the operation stopped"

// NewServer returns a Server. opts is copied; it is an error to leave out
// Engine, Store, Source or Authenticator.
func NewServer(opts *Options) (*Server, error) {
	if opts == nil {
		return nil, errors.New("agent: NewServer needs Options")
	}
	o := *opts
	switch {
	case o.Engine == nil:
		return nil, errors.New("agent: Options.Engine is required")
	case o.Source == nil:
		return nil, errors.New("agent: Options.Source is required")
	case o.Authenticator == nil:
		return nil, errors.New("agent: Options.Authenticator is required")
	}
	if err := o.Store.check(); err != nil {
		return nil, err
	}
	if o.BasePath == "" {
		o.BasePath = DefaultBasePath
	}
	o.BasePath = "/" + strings.Trim(o.BasePath, "/")
	if o.BasePath == "/" {
		o.BasePath = ""
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = DefaultOpenTimeout
	}
	if o.OperationTimeout <= 0 {
		o.OperationTimeout = DefaultOperationTimeout
	}
	if o.EventTokenTTL <= 0 {
		o.EventTokenTTL = DefaultEventTokenTTL
	}
	if o.AuthFailureDelay <= 0 {
		o.AuthFailureDelay = DefaultAuthFailureDelay
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.Retain <= 0 {
		o.Retain = DefaultRetain
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.AllowedOrigins = slices.Clone(o.AllowedOrigins)
	for _, c := range []*daspeak.Config{o.Register, o.Verify} {
		if c != nil && c.Store != nil {
			return nil, errors.New("agent: Options.Register and Verify must not set Store; the server uses Options.Store")
		}
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	} else {
		o.Engine = timed(o.Engine, o.Observer)
	}
	s := &Server{
		opts:    o,
		log:     o.Logger,
		ops:     o.Log,
		obs:     o.Observer,
		tokens:  NewBinder(o.EventKey),
		running: map[string]*run{},
		pending: map[string]*pendingStart{},

		maxClaimDelay: MaxClaimDelay,
	}
	if s.ops == nil {
		s.ops = oplog.NewMemory(o.Retain, 0)
	}
	s.handlers = map[string]func(http.ResponseWriter, *http.Request, Principal){
		"status":   s.handleStatus,
		"register": s.handleStart(kindRegister),
		"verify":   s.handleStart(kindVerify),
		"reverify": s.handleStart(kindReverify),
		"delete":   s.handleDelete,
		"stop":     s.handleStop,
	}
	b := o.BasePath
	mux := http.NewServeMux()
	for _, name := range []string{"status", "register", "verify", "reverify", "delete"} {
		mux.HandleFunc("POST "+b+"/"+name, s.authed(s.routed(name, s.handlers[name])))
	}
	mux.HandleFunc("POST "+b+"/stop", s.authed(s.handleStop))
	mux.HandleFunc("GET "+b+"/operations/{id}/events", s.handleEvents)
	mux.HandleFunc("OPTIONS "+b+"/", s.handlePreflight)
	mux.Handle("GET "+b+WidgetPath, WidgetHandler())
	mux.HandleFunc(catchAll, s.handleUnrouted)
	s.mux = mux
	if s.multiNode() {
		s.ops.Handle(s)
		ctx, cancel := context.WithCancel(context.Background())
		s.reapStop, s.reapDone = cancel, make(chan struct{})
		go func() {
			defer close(s.reapDone)
			s.reap(ctx)
		}()
	}
	return s, nil
}

// BasePath returns the path the API is mounted at ("/agent").
func (s *Server) BasePath() string { return s.opts.BasePath }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.refusedOrigin(r) {
		WriteError(w, http.StatusForbidden, CodeOriginNotAllowed, "origin not allowed")
		return
	}
	if o := r.Header.Get("Origin"); o != "" && s.allowed(o) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", o)
		// The widget waits as long as a 429 or 503 asks.
		h.Set("Access-Control-Expose-Headers", "Retry-After")
		h.Add("Vary", "Origin")
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) allowed(origin string) bool {
	return slices.Contains(s.opts.AllowedOrigins, origin)
}

func (s *Server) handlePreflight(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o == "" || !s.allowed(o) {
		WriteError(w, http.StatusForbidden, CodeOriginNotAllowed, "origin not allowed")
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// Shutdown refuses new operations, ends the running ones with
// error-cancelled, closes the event streams and waits for all of them
// until ctx ends.
//
// The event streams of operations that ended are given a moment
// (streamGrace, within ctx) to send their terminal event; the others are
// closed, and their clients reconnect (to another node) with
// Last-Event-ID. With a shared Log the node stops answering other nodes'
// commands and ending dead nodes' operations.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for _, r := range s.running {
		r.cancel(errShutdown)
	}
	s.mu.Unlock()
	if s.reapStop != nil {
		s.ops.Handle(nil)
		s.reapStop()
		<-s.reapDone
	}
	err := s.opsTrack.Shutdown(ctx)
	gctx, cancel := context.WithTimeout(ctx, streamGrace)
	s.streams.Wait(gctx)
	cancel()
	return errors.Join(err, s.streams.Shutdown(ctx))
}

type kind uint8

const (
	kindRegister kind = iota
	kindVerify
	kindReverify
)

func (k kind) operation() daspeak.Operation {
	if k == kindRegister {
		return daspeak.OperationRegister
	}
	return daspeak.OperationVerify
}

// authed wraps an API handler with authentication.
func (s *Server) authed(h func(http.ResponseWriter, *http.Request, Principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		p, err := s.opts.Authenticator.Authenticate(r.Context(), r)
		if errors.Is(err, ErrAuthUnavailable) {
			// The server's fault: the token was not judged. The cause
			// (never the token) is for the operator, not the agent.
			s.log.Error("agent: token not checked: authentication service unavailable or misconfigured",
				"path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
			s.authUnavailable(w, r, start)
			return
		}
		if err != nil {
			s.log.Warn("agent: token refused", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
			s.unauthenticated(w, r, start)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), arrivedKey{}, start)), p)
	}
}

// unauthenticated answers 401 no sooner than AuthFailureDelay after start.
func (s *Server) unauthenticated(w http.ResponseWriter, r *http.Request, start time.Time) {
	if s.failureDelay(r, start) {
		WriteError(w, http.StatusUnauthorized, CodeUnauthenticated, "authentication failed")
	}
}

// authUnavailable answers 503 auth_unavailable no sooner than
// AuthFailureDelay after start.
func (s *Server) authUnavailable(w http.ResponseWriter, r *http.Request, start time.Time) {
	if s.failureDelay(r, start) {
		WriteError(w, http.StatusServiceUnavailable, CodeAuthUnavailable, "authentication service unavailable or misconfigured")
	}
}

// failureDelay waits until AuthFailureDelay after start; false when the
// client went away meanwhile.
func (s *Server) failureDelay(r *http.Request, start time.Time) bool {
	t := time.NewTimer(time.Until(start.Add(s.opts.AuthFailureDelay)))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// apiRequest is the body of every POST.
type apiRequest struct {
	CallID                string `json:"call_id"`
	CallerID              string `json:"caller_id"`
	OperationID           string `json:"operation_id"`
	AudioTotalDuration    number `json:"audio_total_duration"`
	AuthenticityThreshold number `json:"authenticity_threshold"`
	ScoreThreshold        number `json:"score_threshold"`
	ModelHash             string `json:"model_hash"`
	// RequestID is the client's id of a start (register, verify,
	// reverify), which a stop of a start whose answer was lost names
	// (see handleStop).
	RequestID string `json:"request_id"`
	// raw is the body as received (the spec another node runs it from).
	raw json.RawMessage
}

// number is a JSON number or a numeric string (the vendor's config.js
// spells numbers as strings); null and "" mean absent.
type number struct {
	v   float64
	set bool
}

func (n *number) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s = strings.TrimSpace(s); s == "" {
			return nil
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		n.v, n.set = v, true
		return nil
	}
	if err := json.Unmarshal(b, &n.v); err != nil {
		return err
	}
	n.set = true
	return nil
}

// decode reads the JSON body (at most 64 KiB).
func decode(w http.ResponseWriter, r *http.Request) (apiRequest, *Error) {
	var req apiRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
		return req, &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: "body larger than 64 KiB"}
	}
	if err != nil {
		return req, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: "body is not the expected JSON object: " + jsonProblem(err)}
	}
	req.raw = body
	return req, nil
}

// jsonProblem says what is wrong with a request body in the API's terms:
// the field and the JSON types, never the server's Go types.
func jsonProblem(err error) string {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if te.Field != "" {
			return fmt.Sprintf("field %q cannot be a JSON %s", te.Field, te.Value)
		}
		return "a JSON object is required, not a JSON " + te.Value
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "the JSON ends early"
	}
	return "invalid JSON"
}

// validCallID accepts Twilio CallSids and Genesys conversation ids: 1 to
// 128 bytes of letters, digits and "-_.:".
func validCallID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// callUse is what a request does with its call.
type callUse uint8

const (
	// useRead: status. An unknown or ended call is answered, not refused.
	useRead callUse = iota
	// useAct: register, verify, reverify, delete. The call must be live
	// and its caller known and equal to the request's.
	useAct
)

// callCheck is a request's call after [Server.call].
type callCheck struct {
	callerID   string // normalised: the request's, or the call's when the request had none
	inProgress bool   // the Source's word; true when it cannot tell (no CallInfo)
	// bound: callerID is the call's own caller (CallInfo), or the Source
	// cannot tell (no CallInfo: the request is taken on trust).
	bound bool
}

// call checks the call id and binds the request's caller id to the call.
// Without CallInfo the request's caller id is taken on trust (see
// [Source]). With CallInfo, for useAct the call must exist and be in
// progress (409 no_call), its caller must be known and the request's
// caller id, when given, must be it (400 bad_caller_id); for useRead an
// unknown call is not in progress, a caller id that is not the call's
// caller is not bound (status then never says registered), and a call
// not in progress whose caller is known neither from the request nor
// from the Source is answered not in progress with caller id "".
func (s *Server) call(ctx context.Context, req apiRequest, use callUse) (callCheck, *Error) {
	if !validCallID(req.CallID) {
		return callCheck{}, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: "call_id is missing or malformed"}
	}
	ci, ok := s.opts.Source.(CallInfo)
	if !ok {
		callerID, err := NormalizeCallerID(req.CallerID)
		if err != nil {
			return callCheck{}, &Error{Status: http.StatusBadRequest, Code: CodeBadCallerID, Message: err.Error()}
		}
		return callCheck{callerID: callerID, inProgress: true, bound: true}, nil
	}
	ani, live, err := lookupCall(ctx, ci, req.CallID)
	known := true
	switch {
	case errors.Is(err, ErrNoCall):
		known, ani, live = false, "", false
	case err != nil:
		s.log.Warn("agent: call lookup failed", "call_id", req.CallID, "err", err)
		return callCheck{}, &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "call lookup failed"}
	}
	if use == useAct {
		if !known {
			return callCheck{}, &Error{Status: http.StatusConflict, Code: CodeNoCall, Message: "no such call"}
		}
		if !live {
			return callCheck{}, &Error{Status: http.StatusConflict, Code: CodeNoCall, Message: "the call is not in progress"}
		}
	}
	var callCaller string
	if ani != "" {
		if n, err := NormalizeCallerID(ani); err == nil {
			callCaller = n
		}
	}
	raw := req.CallerID
	if raw == "" {
		raw = callCaller
	}
	if raw == "" && use == useRead && !live {
		// A call that ended (a Genesys call is forgotten with its
		// AudioHook session, its caller with it) or is unknown: its state
		// is the answer, not the want of a caller id. Nothing is bound,
		// so registered is false.
		return callCheck{inProgress: false}, nil
	}
	callerID, err := NormalizeCallerID(raw)
	if err != nil {
		return callCheck{}, &Error{Status: http.StatusBadRequest, Code: CodeBadCallerID, Message: err.Error()}
	}
	switch {
	case callCaller != "" && callerID != callCaller:
		return callCheck{}, &Error{Status: http.StatusBadRequest, Code: CodeBadCallerID, Message: msgCallerMismatch}
	case callCaller == "" && use == useAct:
		return callCheck{}, &Error{Status: http.StatusBadRequest, Code: CodeBadCallerID, Message: "the call's caller number is not known, so no caller can be bound to it"}
	}
	return callCheck{callerID: callerID, inProgress: live, bound: callCaller != ""}, nil
}

// msgCallerMismatch is the message of a 400 bad_caller_id whose number is
// valid but not the call's caller: the widget tells it from a number that
// is not usable by it (CALLER_MISMATCH in web/voicegate-agent.js).
const msgCallerMismatch = "caller_id is not the caller of this call"

// msgPartEnded is the message of a 409 no_call from the CallAuthorizer:
// the agent's part in the call has ended, while the call itself may go
// on with another agent.
const msgPartEnded = "your part in this call has ended"

// authorize asks the Authenticator, when it is a CallAuthorizer, whether
// p may act on callID. Refusals answering 401 or 503 wait for
// AuthFailureDelay, as authentication failures do; a call id the
// CallAuthorizer finds malformed (ErrBadCallID) is a 400 bad_request.
//
// A request another node forwarded is not asked again: the node that
// received it from the agent authorized it before forwarding ([Server.routed],
// handleStop), with the agent's token, which is not forwarded. Nor is a
// request whose call routed already authorized.
func (s *Server) authorize(r *http.Request, p Principal, callID string) *Error {
	az, ok := s.opts.Authenticator.(CallAuthorizer)
	if !ok || forwarded(r) {
		return nil
	}
	if id, _ := r.Context().Value(authorizedKey{}).(string); id != "" && id == callID {
		return nil
	}
	start := time.Now()
	err := az.AuthorizeCall(r.Context(), r, p, callID)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrBadCallID):
		// The form alone: nothing about any call was looked up.
		return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: "call_id is not a call id of this platform"}
	case errors.Is(err, ErrAuthUnavailable):
		s.log.Error("agent: call access not checked: authorization service unavailable or misconfigured",
			"call_id", callID, "agent", p.Subject, "err", err)
		s.failureDelay(r, start)
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeAuthUnavailable, Message: "authentication service unavailable or misconfigured"}
	case errors.Is(err, ErrUnauthenticated):
		s.log.Warn("agent: token refused", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
		s.failureDelay(r, start)
		return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: "authentication failed"}
	case errors.Is(err, ErrNoCall):
		// The agent's part in the call has ended (Flex: their
		// reservation of its task is wrapping or completed; Genesys:
		// their participant disconnected), whether the call did or
		// goes on with another agent after a transfer: refused all the
		// same, with the answer of an ended call.
		s.log.Info("agent: call access refused: the agent's part in the call has ended", "call_id", callID, "agent", p.Subject, "err", err)
		return &Error{Status: http.StatusConflict, Code: CodeNoCall, Message: msgPartEnded}
	}
	s.log.Warn("agent: call access refused", "call_id", callID, "agent", p.Subject, "err", err)
	return &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: "not allowed on this call"}
}

// checkCall validates the call id, authorizes the agent on the call and
// binds the caller (see call).
func (s *Server) checkCall(r *http.Request, p Principal, req apiRequest, use callUse) (callCheck, *Error) {
	if !validCallID(req.CallID) {
		return callCheck{}, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: "call_id is missing or malformed"}
	}
	if e := s.authorize(r, p, req.CallID); e != nil {
		return callCheck{}, e
	}
	return s.call(r.Context(), req, use)
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request, p Principal) {
	req, e := decode(w, r)
	if e == nil {
		var c callCheck
		if c, e = s.checkCall(r, p, req, useRead); e == nil {
			// Only the call's own caller is looked up: status must not
			// tell whether an arbitrary number is registered.
			// registered_at tells one registration from the next (a
			// delete and a register elsewhere between two reads): the
			// record's CreatedAt, null when not registered.
			var registered bool
			var registeredAt any
			var err error
			if c.bound {
				var rec credstore.Record
				rec, err = s.getCredential(r.Context(), c.callerID)
				switch {
				case err == nil:
					registered = true
					if !rec.CreatedAt.IsZero() {
						registeredAt = rec.CreatedAt.UTC().Format(time.RFC3339Nano)
					}
				case errors.Is(err, credstore.ErrNotFound):
					err = nil
				}
			}
			if err != nil {
				e = s.internal("credential store read failed", err)
			} else {
				out := map[string]any{
					"call_id": req.CallID, "caller_id": c.callerID,
					"registered": registered, "registered_at": registeredAt,
					"call_in_progress": c.inProgress,
				}
				if c.bound {
					s.callSummary(r.Context(), req.CallID, c.callerID, out)
				}
				WriteJSON(w, http.StatusOK, out)
				return
			}
		}
	}
	e.write(w)
}

// callSummary adds to a status answer out whether an operation runs on
// callID ("operation_running") and the caller's operation on it that
// ended last ("last_operation", null when none is kept), when the
// operation log keeps a summary per call ([oplog.CallSummarizer]; a
// Memory does, a cluster's log may not: then neither is answered). A
// page that shows an earlier result learns that another check ran.
func (s *Server) callSummary(ctx context.Context, callID, callerID string, out map[string]any) {
	cs, ok := s.ops.(oplog.CallSummarizer)
	if !ok {
		return
	}
	running, op, rec, ok, err := cs.CallSummary(ctx, callID)
	if err != nil {
		s.log.Warn("agent: reading the call's operations failed", "err", err)
		return
	}
	out["operation_running"] = running > 0
	var last any
	if ok && op.CallerID == callerID {
		last = map[string]any{
			"operation_id": op.ID, "operation": op.Kind, "result": rec.Type,
			"time": op.Ended.UTC().Format(time.RFC3339Nano),
		}
	}
	out["last_operation"] = last
}

func (s *Server) internal(msg string, err error) *Error {
	s.log.Error("agent: "+msg, "err", err)
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: msg}
}

// config returns the session configuration of an operation: the server's,
// with the request's durations and thresholds where they are stricter. A
// register's CallerID is set by the caller once it is bound to the call.
func (s *Server) config(k kind, req apiRequest) (daspeak.Config, *Error) {
	base := s.opts.Verify
	if k == kindRegister {
		base = s.opts.Register
	}
	var cfg daspeak.Config
	if base != nil {
		cfg = *base
	}
	bad := func(msg string) (daspeak.Config, *Error) {
		return cfg, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: msg}
	}
	floorDur := cfg.AudioTotalDuration
	if floorDur == 0 {
		floorDur = defaultAudioTotalDuration
	}
	cfg.AudioTotalDuration = floorDur
	if n := req.AudioTotalDuration; n.set {
		if !(n.v >= 0 && n.v <= daspeak.MaxAudioDuration.Seconds()) {
			return bad("audio_total_duration must be in 0-30 seconds")
		}
		cfg.AudioTotalDuration = max(floorDur, time.Duration(n.v*float64(time.Second)))
	}
	threshold := func(n number, floor, def float64) (float64, bool) {
		if floor == 0 {
			floor = def
		}
		if !n.set {
			return floor, true
		}
		if !(n.v >= 0 && n.v <= 1) {
			return 0, false
		}
		return max(floor, n.v), true
	}
	var ok bool
	if cfg.AuthenticityThreshold, ok = threshold(req.AuthenticityThreshold, cfg.AuthenticityThreshold, defaultAuthenticityThreshold); !ok {
		return bad("authenticity_threshold must be in 0-1")
	}
	if cfg.ScoreThreshold, ok = threshold(req.ScoreThreshold, cfg.ScoreThreshold, defaultScoreThreshold); !ok {
		return bad("score_threshold must be in 0-1")
	}
	if k == kindRegister {
		if req.ModelHash != "" {
			if cfg.ModelHash != "" && cfg.ModelHash != req.ModelHash {
				return bad("model_hash differs from the server's model")
			}
			cfg.ModelHash = req.ModelHash
		}
		cfg.Store = daspeak.StoreFunc(func(ctx context.Context, callerID, credential, modelHash string, audio []byte) error {
			t := time.Now()
			err := s.storeOnce(ctx, callerID, credential, modelHash, audio)
			s.obs.StoreCall("store", time.Since(t), err)
			return err
		})
	}
	cfg.AudioInJSON = false
	return cfg, nil
}

// storeOnce stores a register's credential unless the caller already has
// one: two registers of one caller on two calls that both started before
// either stored must not let the second overwrite the first's voiceprint.
// CredentialStore.StoreNew makes the check and the write under the
// CredentialStore's lock, so this holds for every writer sharing it in
// this process; across nodes sharing a store it is the start-time check
// only (credstore has no put-if-absent).
func (s *Server) storeOnce(ctx context.Context, callerID, credential, modelHash string, audio []byte) error {
	return s.opts.Store.StoreNew(ctx, callerID, credential, modelHash, audio)
}

// startAnswer is the 202 answer of register, verify and reverify.
type startAnswer struct {
	OperationID string            `json:"operation_id"`
	Kind        daspeak.Operation `json:"kind"`
	CallID      string            `json:"call_id"`
	CallerID    string            `json:"caller_id"`
	EventsURL   string            `json:"events_url"`
}

func (s *Server) handleStart(k kind) func(http.ResponseWriter, *http.Request, Principal) {
	return func(w http.ResponseWriter, r *http.Request, p Principal) {
		ans, e := s.start(r.Context(), k, w, r, p)
		if e != nil {
			e.write(w)
			return
		}
		WriteJSON(w, http.StatusAccepted, ans)
	}
}

func (s *Server) start(ctx context.Context, k kind, w http.ResponseWriter, r *http.Request, p Principal) (startAnswer, *Error) {
	req, e := decode(w, r)
	if e != nil {
		return startAnswer{}, e
	}
	// The request's form first (400), then the agent's right to the call
	// (CallAuthorizer), then the fence, then what depends on the call and
	// the caller: a start a stop fenced out is answered fenced, whatever
	// else would refuse it now.
	if req.RequestID != "" && !oplog.ValidRequestID(req.RequestID) {
		return startAnswer{}, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: msgBadRequestID}
	}
	if !validCallID(req.CallID) {
		return startAnswer{}, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: "call_id is missing or malformed"}
	}
	cfg, e := s.config(k, req)
	if e != nil {
		return startAnswer{}, e
	}
	if e := s.authorize(r, p, req.CallID); e != nil {
		return startAnswer{}, e
	}
	id := newOperationID()
	// The request id is claimed before anything about the call is read
	// and before the call is reserved: a start that a stop fenced out
	// must do nothing, and a re-verify's reserve ends the operation
	// running on the call. Until reserve moves it into running, the start
	// is in pending, where a stop that came second finds it and marks it
	// stopped: reserve then refuses it (409 fenced).
	var ps *pendingStart
	if req.RequestID != "" {
		// A call the Source does not know claims nothing (409 no_call):
		// made-up call ids must not fill the log with claims.
		if r, e = s.knownCall(r, req.CallID); e != nil {
			return startAnswer{}, e
		}
		ctx = r.Context()
		ps = s.pend(id, req.RequestID)
		defer s.unpend(ps)
		if e := s.claimStart(ctx, arrival(r), p, req.RequestID, req.CallID, id); e != nil {
			return startAnswer{}, e
		}
	}
	c, e := s.call(ctx, req, useAct)
	if e != nil {
		return startAnswer{}, e
	}
	callerID := c.callerID
	if k == kindRegister {
		cfg.CallerID = callerID
	}
	// Everything that can refuse the request is checked before the call
	// is reserved: a refused re-verify must not end the running
	// operation. The store is read again once the call is reserved.
	if e := s.checkStored(ctx, k, callerID); e != nil {
		return startAnswer{}, e
	}
	// Reserve the call; a re-verify first ends what runs on it.
	rn, opCtx, done, e := s.reserve(ctx, k, req.CallID, callerID, ps)
	if e != nil {
		return startAnswer{}, e
	}
	started := false
	defer func() {
		if !started {
			s.release(req.CallID, rn)
			rn.cancel(nil)
			close(rn.done)
			done()
		}
	}()

	rec, e := s.stored(ctx, k, callerID)
	if e != nil {
		return startAnswer{}, e
	}

	op := &operation{
		s: s, id: id, kind: k.operation(), callID: req.CallID, callerID: callerID,
		cfg: cfg, credential: rec.Credential, principal: p,
	}
	var spec []byte
	if s.multiNode() {
		spec, _ = json.Marshal(opSpec{Kind: k, Body: req.raw, Subject: p.Subject, AgentName: p.Name})
	}
	logOp := oplog.Op{ID: id, Kind: string(op.kind), CallID: req.CallID, CallerID: callerID, Spec: spec}
	if err := s.ops.Create(ctx, logOp); err != nil {
		return startAnswer{}, s.internal("operation log failed", err)
	}
	answer := startAnswer{
		OperationID: id, Kind: op.kind, CallID: req.CallID, CallerID: callerID,
		EventsURL: s.opts.BasePath + "/operations/" + id + "/events?token=" + url.QueryEscape(s.eventToken(id, req.CallID)),
	}
	// Open is bounded by OpenTimeout, and abandoned when the operation is
	// replaced or the client goes away: an operation nobody got the
	// events of must not run (a register would store unseen). With a
	// shared log, the audio may reach another node, which takes the
	// operation over (Adopt): Open is then cancelled with
	// ErrOpenedElsewhere.
	octx, cancel := context.WithTimeout(opCtx, s.opts.OpenTimeout)
	octx, cancelElsewhere := context.WithCancelCause(octx)
	stopAfter := context.AfterFunc(ctx, cancel)
	watched := s.watchAdoption(octx, id, cancelElsewhere)
	audio, err := s.opts.Source.Open(octx, SourceRequest{OperationID: id, CallID: req.CallID, CallerID: callerID})
	elsewhere := errors.Is(context.Cause(octx), ErrOpenedElsewhere)
	stopAfter()
	cancelElsewhere(nil)
	cancel()
	<-watched
	if err == nil && (ctx.Err() != nil || elsewhere) {
		audio.Close()
		err = context.Cause(octx)
	}
	if err != nil || ctx.Err() != nil {
		why, cause := "no audio for the call", CauseNoAudio
		switch c := context.Cause(opCtx); {
		case ctx.Err() != nil:
			why = "the request ended"
		case c != nil:
			// Stopped, replaced, deleted or shut down before the audio
			// came.
			why, cause = c.Error(), causeOf(c)
		}
		aerr := s.abort(context.WithoutCancel(ctx), logOp, why, cause)
		if errors.Is(aerr, oplog.ErrSeq) {
			// Another node got the audio and started the operation.
			s.log.Info("agent: operation started on the node that got its audio", "operation_id", id, "kind", op.kind, "call_id", req.CallID, "agent", p.Subject)
			return answer, nil
		}
		if ctx.Err() != nil {
			return startAnswer{}, &Error{Status: http.StatusServiceUnavailable, Code: CodeInternal, Message: "request ended"}
		}
		if c := context.Cause(opCtx); c != nil {
			return startAnswer{}, &Error{Status: http.StatusConflict, Code: CodeBusy, Message: "cancelled before the audio started: " + c.Error()}
		}
		s.log.Warn("agent: no audio for the call", "call_id", req.CallID, "operation_id", id, "err", err)
		return startAnswer{}, &Error{Status: http.StatusConflict, Code: CodeNoCall, Message: "no audio source for the call"}
	}
	op.audio = audio
	if err := op.publish(ctx, &Event{Type: EventStarted}); err != nil {
		audio.Close()
		return startAnswer{}, s.internal("operation log failed", err)
	}
	s.mu.Lock()
	rn.id = id
	s.mu.Unlock()
	started = true
	s.launch(op, rn, opCtx, done)
	s.log.Info("agent: operation started", "operation_id", id, "kind", op.kind, "call_id", req.CallID, "agent", p.Subject)
	return answer, nil
}

// watchAdoption cancels octx with ErrOpenedElsewhere as soon as operation
// id has a record written by another node (multi-node only). The returned
// channel is closed when the watch ended (octx done).
func (s *Server) watchAdoption(octx context.Context, id string, cancel context.CancelCauseFunc) <-chan struct{} {
	ch := make(chan struct{})
	if !s.multiNode() {
		close(ch)
		return ch
	}
	go func() {
		defer close(ch)
		cur, err := s.ops.Subscribe(octx, id, 0)
		if err != nil {
			return
		}
		defer cur.Close()
		// Its first record, started or the error-cancelled of a node
		// that got the audio but could not run it, is another node's.
		if _, err := cur.Next(octx); err == nil {
			cancel(ErrOpenedElsewhere)
		}
	}()
	return ch
}

// launch runs op on its goroutine; rn, opCtx and done come from reserve.
func (s *Server) launch(op *operation, rn *run, opCtx context.Context, done func()) {
	s.obs.OperationStarted(op.kind)
	go func() {
		defer done()
		defer close(rn.done)
		defer s.release(op.callID, rn)
		op.run(opCtx, func() {
			s.mu.Lock()
			rn.finished = true
			s.mu.Unlock()
		})
	}()
}

// getCredential reads a caller's record, timed.
func (s *Server) getCredential(ctx context.Context, callerID string) (credstore.Record, error) {
	t := time.Now()
	rec, err := s.opts.Store.Get(ctx, callerID)
	if errors.Is(err, credstore.ErrNotFound) {
		s.obs.StoreCall("get", time.Since(t), nil)
	} else {
		s.obs.StoreCall("get", time.Since(t), err)
	}
	return rec, err
}

// stored reads callerID's record and refuses a register of a registered
// caller and a verify of an unregistered one.
func (s *Server) stored(ctx context.Context, k kind, callerID string) (credstore.Record, *Error) {
	rec, err := s.getCredential(ctx, callerID)
	switch {
	case err == nil && k == kindRegister:
		return rec, &Error{Status: http.StatusConflict, Code: CodeAlreadyRegistered, Message: "the caller has a stored credential; delete it first"}
	case errors.Is(err, credstore.ErrNotFound) && k != kindRegister:
		return rec, &Error{Status: http.StatusNotFound, Code: CodeNotRegistered, Message: "the caller has no stored credential"}
	case err != nil && !errors.Is(err, credstore.ErrNotFound):
		return rec, s.internal("credential store read failed", err)
	}
	return rec, nil
}

// checkStored is stored without the record.
func (s *Server) checkStored(ctx context.Context, k kind, callerID string) *Error {
	_, e := s.stored(ctx, k, callerID)
	return e
}

// eventToken signs the event-stream token of operation id on callID.
func (s *Server) eventToken(id, callID string) string {
	return s.tokens.Sign(s.opts.EventTokenTTL, "events", id, callID)
}

// reserve claims the call for a new operation and returns its context and
// the tracker's done function. A re-verify cancels the call's operation
// and waits for its end first; register and verify answer busy. ps is the
// start's pending entry (nil without a request id): one a stop marked
// stopped is refused with 409 fenced before anything is cancelled or
// reserved, and it leaves pending for running under the same lock.
func (s *Server) reserve(ctx context.Context, k kind, callID, callerID string, ps *pendingStart) (*run, context.Context, func(), *Error) {
	reqID := ""
	if ps != nil {
		reqID = ps.reqID
	}
	for {
		s.mu.Lock()
		if s.closed || s.draining {
			s.mu.Unlock()
			return nil, nil, nil, &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "server shutting down"}
		}
		if ps != nil && ps.stopped {
			s.mu.Unlock()
			s.log.Info("agent: start refused: stopped before it reserved its call", "call_id", callID, "request_id", reqID)
			return nil, nil, nil, errFencedStart
		}
		old := s.running[callID]
		if old == nil {
			tctx, done, ok := s.opsTrack.Start()
			if !ok {
				s.mu.Unlock()
				return nil, nil, nil, &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "server shutting down"}
			}
			opCtx, cancel := context.WithCancelCause(tctx)
			rn := &run{callerID: callerID, reqID: reqID, cancel: cancel, done: make(chan struct{})}
			s.running[callID] = rn
			if ps != nil {
				delete(s.pending, ps.id)
			}
			s.mu.Unlock()
			return rn, opCtx, done, nil
		}
		finished := old.finished
		if !finished && k != kindReverify {
			s.mu.Unlock()
			return nil, nil, nil, &Error{Status: http.StatusConflict, Code: CodeBusy, Message: "an operation is already running on the call"}
		}
		// A finished operation is only closing its audio: wait for it.
		if !finished {
			old.cancel(errReplaced)
			if ps != nil {
				ps.replacing = true
			}
		}
		s.mu.Unlock()
		select {
		case <-old.done:
		case <-ctx.Done():
			return nil, nil, nil, &Error{Status: http.StatusServiceUnavailable, Code: CodeInternal, Message: "request ended"}
		}
	}
}

// release frees the call's slot if rn still holds it.
func (s *Server) release(callID string, rn *run) {
	s.mu.Lock()
	if s.running[callID] == rn {
		delete(s.running, callID)
	}
	s.mu.Unlock()
}

func newOperationID() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand)
	return "op_" + hex.EncodeToString(b)
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request, p Principal) {
	req, e := decode(w, r)
	if e == nil {
		var c callCheck
		if c, e = s.checkCall(r, p, req, useAct); e == nil {
			callerID := c.callerID
			// End what runs for the call or the caller, so a register in
			// flight cannot store after the delete.
			s.mu.Lock()
			var waits []chan struct{}
			for cid, rn := range s.running {
				if cid == req.CallID || rn.callerID == callerID {
					rn.cancel(errDeleted)
					waits = append(waits, rn.done)
				}
			}
			s.mu.Unlock()
			for _, c := range waits {
				select {
				case <-c:
				case <-r.Context().Done():
					return
				}
			}
			// deleted says whether this delete removed a record: a
			// delete of a caller with nothing stored still clears any
			// orphaned audio, but it is not reported (or logged) as a
			// deletion. A record the read cannot open (sealed with a
			// retired key, say) still counts and is deleted all the same;
			// with a credstore.Remover, so does a record another node
			// stored just before the delete (see CredentialStore.remove).
			t := time.Now()
			rm, err := s.opts.Store.remove(r.Context(), callerID)
			existed := rm.record
			s.obs.StoreCall("delete", time.Since(t), err)
			switch {
			case err != nil:
				e = s.internal("deleting the credential failed", err)
			default:
				if existed {
					s.log.Info("agent: credential deleted", "call_id", req.CallID, "agent", p.Subject)
				} else {
					s.log.Info("agent: delete of a caller with no credential", "call_id", req.CallID, "agent", p.Subject)
				}
				WriteJSON(w, http.StatusOK, map[string]any{"deleted": existed, "audio_deleted": rm.audio, "caller_id": callerID})
				return
			}
		}
	}
	e.write(w)
}

func (s *Server) handleStop(w http.ResponseWriter, r *http.Request, p Principal) {
	req, e := decode(w, r)
	if e != nil {
		e.write(w)
		return
	}
	if req.OperationID == "" && req.RequestID != "" {
		s.stopRequest(w, r, p, req.CallID, req.RequestID)
		return
	}
	if req.OperationID == "" {
		s.stopCall(w, r, p, req.CallID)
		return
	}
	op, err := s.ops.Get(r.Context(), req.OperationID)
	if err != nil {
		WriteError(w, http.StatusNotFound, CodeNotFound, "no such operation")
		return
	}
	if e := s.authorize(r, p, op.CallID); e != nil {
		e.write(w)
		return
	}
	if op.Owner != s.ops.Node() && !op.Done && !forwarded(r) {
		s.stopRemote(w, r, p, op)
		return
	}
	s.mu.Lock()
	rn := s.running[op.CallID]
	if rn != nil && (rn.id != op.ID || rn.finished) {
		rn = nil
	}
	s.mu.Unlock()
	if rn != nil {
		rn.cancel(errStopped)
		select {
		case <-rn.done:
		case <-r.Context().Done():
			return
		}
	}
	s.log.Info("agent: operation stop", "operation_id", op.ID, "running", rn != nil, "agent", p.Subject)
	WriteJSON(w, http.StatusOK, map[string]any{"operation_id": op.ID, "stopped": rn != nil})
}

// stopCall stops the operations running (or starting) on callID: the
// best-effort stop of a client that never got an operation id and sent
// no request_id (stopRequest is the fence). It misses a start that has
// not reserved the call yet and an operation this node does not know of
// yet. The agent must be allowed on the call as for a start
// (CallAuthorizer). With a shared Log, the nodes that own the call's
// running operations ([oplog.Log.Running]) are asked to stop theirs; a
// node that does not answer makes the answer 503 (the widget retries; a
// dead node's operations are ended by the others). It answers 200
// {"call_id","stopped"}: stopped is true when an operation was running
// and was stopped.
func (s *Server) stopCall(w http.ResponseWriter, r *http.Request, p Principal, callID string) {
	if !validCallID(callID) {
		WriteError(w, http.StatusBadRequest, CodeBadRequest, "operation_id or call_id is missing or malformed")
		return
	}
	if e := s.authorize(r, p, callID); e != nil {
		e.write(w)
		return
	}
	stopped, ok := s.stopLocal(r.Context(), callID)
	if !ok {
		return
	}
	if s.multiNode() && !forwarded(r) {
		ops, err := s.ops.Running(r.Context(), callID)
		if err != nil {
			WriteError(w, http.StatusServiceUnavailable, CodeInternal, "the call's operations could not be listed")
			s.log.Warn("agent: listing a call's operations failed", "call_id", callID, "err", err)
			return
		}
		asked := map[string]bool{s.ops.Node(): true}
		for _, op := range ops {
			if asked[op.Owner] {
				continue
			}
			asked[op.Owner] = true
			ok, err := s.sendStop(r.Context(), p, op.Owner, map[string]string{"call_id": callID})
			if err != nil {
				s.log.Warn("agent: stop not delivered to the node running the call's operation", "call_id", callID, "operation_id", op.ID, "node", op.Owner, "err", err)
				WriteError(w, http.StatusServiceUnavailable, CodeInternal, "the node running the call's operation did not answer")
				return
			}
			stopped = stopped || ok
		}
	}
	s.log.Info("agent: call stop", "call_id", callID, "running", stopped, "agent", p.Subject)
	WriteJSON(w, http.StatusOK, map[string]any{"call_id": callID, "stopped": stopped})
}

// stopLocal cancels what runs on callID on this node, starting or running
// (not an operation that already published its result), and waits for it
// to release everything. ok is false when ctx ended first.
func (s *Server) stopLocal(ctx context.Context, callID string) (stopped, ok bool) {
	s.mu.Lock()
	rn := s.running[callID]
	if rn != nil && rn.finished {
		rn = nil
	}
	s.mu.Unlock()
	if rn == nil {
		return false, true
	}
	rn.cancel(errStopped)
	select {
	case <-rn.done:
		return true, true
	case <-ctx.Done():
		return true, false
	}
}

// finishedReadTimeout bounds the event stream of an ended operation
// served after Shutdown (its records are all in the log).
const finishedReadTimeout = 5 * time.Second

// handleEvents streams one operation's events as Server-Sent Events.
// After Shutdown (a drain's grace) it still serves the events of an
// operation that has ended, from the log; one that has not is 503
// unavailable.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.PathValue("id")
	// An operation that is not in the log is answered as a token that
	// does not verify (401 after AuthFailureDelay), never 404 at once:
	// the answer must not tell a caller without a token which operation
	// ids exist.
	op, err := s.ops.Get(r.Context(), id)
	if err != nil || s.tokens.Verify(r.URL.Query().Get("token"), "events", op.ID, op.CallID) != nil {
		s.unauthenticated(w, r, start)
		return
	}
	var after uint64
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			WriteError(w, http.StatusBadRequest, CodeBadRequest, "Last-Event-ID is not an event id")
			return
		}
	}
	if op.Done && after >= op.LastSeq {
		// Nothing more will come: 204 stops EventSource reconnecting
		// (HTML Living Standard, server-sent events §9.2.3).
		w.WriteHeader(http.StatusNoContent)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	tctx, done, ok := s.streams.Start()
	switch {
	case ok:
		defer done()
		stop := context.AfterFunc(tctx, cancel)
		defer stop()
	case op.Done:
		// The server has shut down its streams (the drain's grace,
		// ResultGrace): an operation that has ended is only read from
		// the log, to its terminal record, as any stream of it would be.
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, finishedReadTimeout)
		defer stop()
	default:
		// A stream that would wait for new events: reconnect elsewhere.
		WriteError(w, http.StatusServiceUnavailable, CodeUnavailable, "server shutting down")
		return
	}
	s.obs.StreamOpened()
	defer s.obs.StreamClosed()
	cur, err := s.ops.Subscribe(ctx, id, after)
	if err != nil {
		WriteError(w, http.StatusNotFound, CodeNotFound, "no such operation")
		return
	}
	defer cur.Close()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	for {
		nctx, ncancel := context.WithTimeout(ctx, s.opts.KeepAlive)
		rec, err := cur.Next(nctx)
		ncancel()
		switch {
		case err == nil:
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
			continue
		default:
			return
		}
		if writeSSE(w, rec) != nil || rc.Flush() != nil {
			return
		}
		if !rec.Time.IsZero() {
			s.obs.EventSent(time.Since(rec.Time))
		}
		if rec.Terminal {
			return
		}
	}
}

// writeSSE writes one record as an SSE message.
func writeSSE(w io.Writer, rec oplog.Record) error {
	data := strings.ReplaceAll(string(rec.Data), "\n", "\ndata: ")
	_, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", rec.Seq, rec.Type, data)
	return err
}

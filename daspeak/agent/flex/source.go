package flex

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/twilio"
)

// Custom parameters of the streams a Source starts.
const (
	// ParamOperation carries the operation id.
	ParamOperation = "operation"
	// ParamBinding carries the signed binding (see the package doc).
	ParamBinding = "binding"
	// ParamCaller carries the caller id the binding is signed for, so
	// that another node can check the binding and take the operation
	// over (SetAdopter).
	ParamCaller = "caller"
)

// Defaults of SourceOptions.
const (
	DefaultBindingTTL   = 2 * time.Minute
	DefaultStartTimeout = 10 * time.Second
	DefaultStopTimeout  = 10 * time.Second
)

// SourceOptions configures NewSource.
type SourceOptions struct {
	// Client starts and stops streams over the Streams REST API; required.
	Client *twilio.Client
	// StreamURL is the public wss:// URL Twilio opens the Media Stream
	// WebSocket at, where the Source is served (an https:// URL is read as
	// wss://); required, no query. Twilio signs exactly this URL.
	StreamURL string
	// AuthTokens are the account's auth tokens, which sign the WebSocket
	// upgrade (both while rotating); required.
	AuthTokens []string
	// Binder signs the binding parameter; nil means a random key (streams
	// then bind only to this process: set a shared key when Twilio may
	// reach another instance).
	Binder *agent.Binder
	// BindingTTL bounds the time between starting a stream and Twilio
	// opening its WebSocket; default DefaultBindingTTL.
	BindingTTL time.Duration
	// StartTimeout bounds the wait for the start message after the
	// upgrade; default DefaultStartTimeout.
	StartTimeout time.Duration
	// StopTimeout bounds the REST call that stops a stream on Close;
	// default DefaultStopTimeout.
	StopTimeout time.Duration
	// QueueFrames is passed to twilio.AcceptOptions.
	QueueFrames int
	// Logger receives refused streams, failed stops and streams whose
	// delivery lag goes over twilio's LagBudget; nil discards them.
	Logger *slog.Logger
	// Track, when set, is called with each stream accepted, before its
	// start message; the function it returns is called once the stream
	// ended (twilio.Stream.Done). Starter servers use it to export the
	// streams' Stats (delivery lag) as metrics.
	Track func(st *twilio.Stream) (untrack func())
}

// Source gets a Twilio call's customer audio for an operation: Open starts
// a Media Stream (inbound track) on the call over REST, named
// "voicegate-<operation id>", with the operation id and a signed binding
// as custom parameters, and waits for Twilio to open the WebSocket at
// StreamURL; ServeHTTP accepts it, checks the upgrade signature and the
// binding, and hands the stream to the operation that asked for it. The
// returned Audio's Close stops the stream over REST and closes the
// WebSocket.
//
// Mount the Source at StreamURL's path. It implements agent.Source,
// agent.CallInfo (Call: the call's customer number and status, from the
// Calls REST API) and http.Handler and is safe for concurrent use. Close it at shutdown:
// streams that did not reach their operation are closed, new ones are
// refused.
type Source struct {
	o   SourceOptions
	log *slog.Logger

	mu       sync.Mutex
	pending  map[string]*pending // by operation id
	adopter  agent.Adopter
	closed   bool
	closedCh chan struct{}  // closed by Close
	conns    sync.WaitGroup // ServeHTTP calls
}

type pending struct {
	callID, callerID, name string
	ch                     chan *twilio.Stream // buffered 1, sent once
	bad                    chan error          // buffered 1: the stream came with audio it cannot give
}

// NewSource returns a Source.
func NewSource(opts *SourceOptions) (*Source, error) {
	if opts == nil || opts.Client == nil || opts.StreamURL == "" || len(opts.AuthTokens) == 0 {
		return nil, fmt.Errorf("%w: SourceOptions needs Client, StreamURL and AuthTokens", twilio.ErrInvalidArgument)
	}
	o := *opts
	o.AuthTokens = append([]string(nil), opts.AuthTokens...)
	if o.Binder == nil {
		o.Binder = agent.NewBinder(nil)
	}
	if o.BindingTTL <= 0 {
		o.BindingTTL = DefaultBindingTTL
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	return &Source{o: o, log: logger(o.Logger), pending: map[string]*pending{}, closedCh: make(chan struct{})}, nil
}

// StreamName returns the name of the stream a Source starts for an
// operation; StopStream accepts it in place of the stream SID.
func StreamName(operationID string) string { return "voicegate-" + operationID }

// Open implements agent.Source. It starts the stream and waits until
// Twilio connected it or ctx ends (then the stream is stopped over REST
// and a late WebSocket is refused). A refusal by the Streams API (call not
// found or not in progress, …) is returned wrapping agent.ErrNoCall and the
// *twilio.APIError.
func (s *Source) Open(ctx context.Context, req agent.SourceRequest) (agent.Audio, error) {
	if req.OperationID == "" || req.CallID == "" {
		return nil, fmt.Errorf("%w: operation and call ids are required", twilio.ErrInvalidArgument)
	}
	p := &pending{callID: req.CallID, callerID: req.CallerID, name: StreamName(req.OperationID), ch: make(chan *twilio.Stream, 1), bad: make(chan error, 1)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("flex: %w", agent.ErrClosed)
	}
	if _, dup := s.pending[req.OperationID]; dup {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: operation %s already waits for a stream", twilio.ErrInvalidArgument, req.OperationID)
	}
	s.pending[req.OperationID] = p
	s.mu.Unlock()

	bind := s.o.Binder.Sign(s.o.BindingTTL, req.OperationID, req.CallID, req.CallerID, p.name)
	res, err := s.o.Client.StartStream(ctx, req.CallID, &twilio.StreamParams{
		URL:   s.o.StreamURL,
		Name:  p.name,
		Track: twilio.TrackInbound,
		Parameters: []twilio.Parameter{
			{Name: ParamOperation, Value: req.OperationID},
			{Name: ParamBinding, Value: bind},
			{Name: ParamCaller, Value: req.CallerID},
		},
	})
	if err != nil {
		s.forget(req.OperationID, p)
		if _, ok := twilio.IsAPIError(err, 0); ok {
			return nil, fmt.Errorf("%w: starting a media stream on %s: %w", agent.ErrNoCall, req.CallID, err)
		}
		return nil, fmt.Errorf("flex: starting a media stream on %s: %w", req.CallID, err)
	}
	var cause error
	select {
	case st := <-p.ch:
		return &audio{src: s, st: st, callID: req.CallID, name: p.name, streamSID: res.SID}, nil
	case err := <-p.bad:
		// Its WebSocket is closed already (1003); the stream itself is
		// stopped so that Twilio does not start it again.
		s.stop(req.CallID, p.name)
		return nil, fmt.Errorf("flex: media stream on %s: %w", req.CallID, err)
	case <-ctx.Done():
		cause = ctx.Err()
	case <-s.closedCh:
		cause = agent.ErrClosed
	}
	if c := context.Cause(ctx); errors.Is(c, agent.ErrOpenedElsewhere) && s.forget(req.OperationID, p) {
		// Another node's server took the operation over with the
		// stream: it is that node's to stop.
		return nil, fmt.Errorf("flex: media stream on %s: %w", req.CallID, c)
	}
	if !s.forget(req.OperationID, p) {
		// The stream arrived meanwhile: it is ours to close (one that
		// was refused is closed already).
		select {
		case st := <-p.ch:
			st.CloseNow()
		case <-p.bad:
		}
	}
	s.stop(req.CallID, p.name)
	return nil, fmt.Errorf("flex: media stream on %s did not connect: %w", req.CallID, cause)
}

// forget removes the pending entry of op if it is still p, and reports
// whether it was.
func (s *Source) forget(op string, p *pending) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[op] == p {
		delete(s.pending, op)
		return true
	}
	return false
}

// stop stops a stream over REST, bounded by StopTimeout. A stream Twilio
// no longer knows (20404: it ended with the call) is not an error.
func (s *Source) stop(callID, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.StopTimeout)
	defer cancel()
	_, err := s.o.Client.StopStream(ctx, callID, name)
	if _, gone := twilio.IsAPIError(err, 20404); gone {
		return nil
	}
	if err != nil {
		s.log.Warn("media stream not stopped", "call", callID, "stream", name, "err", err)
	}
	return err
}

// ServeHTTP accepts a Media Streams WebSocket (the upgrade signed by
// Twilio with one of AuthTokens for StreamURL) and hands it to the waiting
// operation named by its "operation" parameter, after checking the
// "binding" parameter against that operation's call SID, caller id and
// stream name. Streams that fail a check are closed and logged (with
// ErrBinding or ErrNoOperation); they never reach an operation.
func (s *Source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.conns.Add(1)
	s.mu.Unlock()
	defer s.conns.Done()

	st, err := twilio.Accept(w, r, &twilio.AcceptOptions{
		PublicURL:   s.o.StreamURL,
		AuthTokens:  s.o.AuthTokens,
		QueueFrames: s.o.QueueFrames,
		Logger:      s.o.Logger,
	})
	if err != nil {
		s.log.Warn("media stream refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	if s.o.Track != nil {
		untrack := s.o.Track(st)
		go func() {
			<-st.Done()
			untrack()
		}()
	}
	// r.Context() is not used after the upgrade.
	ctx, cancel := context.WithTimeout(context.Background(), s.o.StartTimeout)
	start, err := st.Start(ctx)
	cancel()
	if errors.Is(err, twilio.ErrMediaFormat) && start != nil {
		// Audio no operation can read: the stream is closed (1003) and
		// the operation it is bound to ends at once with the error,
		// not at its OpenTimeout.
		s.log.Warn("media stream refused: unsupported media format", "call", start.CallSID, "stream", start.StreamSID, "err", err)
		if ferr := s.fail(start, err); ferr != nil {
			s.log.Warn("media stream with an unsupported media format reached no operation", "call", start.CallSID, "stream", start.StreamSID, "err", ferr)
		}
		st.CloseNow()
		return
	}
	if err != nil {
		s.log.Warn("media stream without start", "err", err)
		st.CloseNow()
		return
	}
	err = s.deliver(st, start)
	if errors.Is(err, ErrNoOperation) {
		err = s.adopt(st, start)
	}
	if err != nil {
		s.log.Warn("media stream refused", "call", start.CallSID, "stream", start.StreamSID, "err", err)
		st.Close()
	}
}

// SetAdopter sets who takes over the operations whose stream reaches
// this Source while another node's Source waits for it (many nodes behind
// a load balancer): the agent.Server of this node, with a shared
// operation log. The stream's binding is checked first (the nodes share
// the Binder's key); on success the stream belongs to the adopter's
// operation, which closes it.
func (s *Source) SetAdopter(a agent.Adopter) {
	s.mu.Lock()
	s.adopter = a
	s.mu.Unlock()
}

// adoptTimeout bounds the hand-over of a stream to another node's
// operation.
const adoptTimeout = 10 * time.Second

// adopt hands st to the adopter when its binding holds.
func (s *Source) adopt(st *twilio.Stream, start *twilio.Start) error {
	s.mu.Lock()
	a := s.adopter
	s.mu.Unlock()
	if a == nil {
		return ErrNoOperation
	}
	op, caller := start.CustomParameters[ParamOperation], start.CustomParameters[ParamCaller]
	name := StreamName(op)
	if err := s.o.Binder.Verify(start.CustomParameters[ParamBinding], op, start.CallSID, caller, name); err != nil {
		return fmt.Errorf("%w: %w", ErrBinding, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), adoptTimeout)
	defer cancel()
	au := &audio{src: s, st: st, callID: start.CallSID, name: name, streamSID: start.StreamSID}
	if err := a.Adopt(ctx, agent.SourceRequest{OperationID: op, CallID: start.CallSID, CallerID: caller}, au); err != nil {
		return fmt.Errorf("flex: taking over operation %s: %w", op, err)
	}
	return nil
}

// deliver hands st to the operation its parameters name, if the binding
// holds.
func (s *Source) deliver(st *twilio.Stream, start *twilio.Start) error {
	op := start.CustomParameters[ParamOperation]
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pending[op]
	if !ok || s.closed {
		return ErrNoOperation
	}
	if err := s.o.Binder.Verify(start.CustomParameters[ParamBinding], op, start.CallSID, p.callerID, p.name); err != nil {
		return fmt.Errorf("%w: %w", ErrBinding, err)
	}
	delete(s.pending, op)
	p.ch <- st
	return nil
}

// fail hands err, why the stream of start cannot be read, to the waiting
// operation the start names, once its binding holds (the same check as
// deliver's: a forged start cannot end another call's operation).
func (s *Source) fail(start *twilio.Start, err error) error {
	op := start.CustomParameters[ParamOperation]
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pending[op]
	if !ok || s.closed {
		return ErrNoOperation
	}
	if verr := s.o.Binder.Verify(start.CustomParameters[ParamBinding], op, start.CallSID, p.callerID, p.name); verr != nil {
		return fmt.Errorf("%w: %w", ErrBinding, verr)
	}
	delete(s.pending, op)
	p.bad <- err
	return nil
}

// Close refuses new streams and fails the operations still waiting for
// one; it waits for ServeHTTP calls in progress. Audio already handed out
// belongs to its operation. Close is idempotent.
func (s *Source) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.closedCh)
	}
	s.mu.Unlock()
	s.conns.Wait()
	return nil
}

// audio is one operation's Media Stream.
type audio struct {
	src       *Source
	st        *twilio.Stream
	callID    string
	name      string
	streamSID string
	once      sync.Once
	err       error
}

// ReadFrame returns the caller's audio (the inbound track, party
// voicegate.Customer), then io.EOF when the stream stops.
func (a *audio) ReadFrame(ctx context.Context) (voicegate.Frame, error) {
	return a.st.ReadFrame(ctx)
}

// FrameCounts implements agent.FrameCounter: the stream's frames dropped
// by its full queue and those that came late (twilio.Stats).
func (a *audio) FrameCounts() (dropped, late uint64) {
	st := a.st.Stats()
	return st.FramesDropped, st.FramesLate
}

// Close stops the stream over REST (so Twilio stops sending it), unless
// Twilio already ended it with a stop message, and closes the WebSocket.
// It is idempotent.
func (a *audio) Close() error {
	a.once.Do(func() {
		var err error
		// Twilio's stop message ends the stream on its side; Done closes
		// only when the reader goroutine exits (after the WebSocket
		// close), so ask for the stop message itself.
		if a.st.StopInfo() == nil {
			err = a.src.stop(a.callID, a.name)
		}
		cerr := a.st.Close()
		if errors.Is(cerr, net.ErrClosed) {
			cerr = nil
		}
		a.err = errors.Join(err, cerr)
	})
	return a.err
}

// Call implements agent.CallInfo with Twilio's Calls API (GET
// …/Calls/{CallSid}.json, twilio.Client.Call): it ties a request's
// caller_id to the call, so an agent can only act for the customer of the
// call they name.
//
// The caller is the customer's number: for an inbound call (direction
// "inbound": the customer called the contact center) the call's "from";
// for an outbound one ("outbound-api", "outbound-dial": the contact center
// called the customer, as Flex outbound dialing does) its "to". Either is
// "" when it is not a telephone number (a withheld "anonymous" caller, a
// "client:" or SIP party): the server then refuses to register, verify or
// delete on the call, since no caller can be bound to it. Use the
// customer's leg (the CallSid of the Flex task's call_sid attribute), not
// the agent's.
//
// The call is in progress when its status is "in-progress" only: a
// "queued" or "ringing" call has no customer audio yet and Twilio starts
// no Media Stream on it, and every other status is final.
//
// A callID that is not a call SID ("CA" and 32 hex digits) is unknown
// without asking Twilio; Twilio's 404 (the call does not exist or belongs
// to another account) is unknown too: both wrap agent.ErrNoCall. Other
// failures (Twilio unreachable, server credentials refused) are returned
// as they are.
func (s *Source) Call(ctx context.Context, callID string) (callerID string, inProgress bool, err error) {
	if !IsCallSID(callID) {
		return "", false, fmt.Errorf("%w: %q is not a Twilio call SID", agent.ErrNoCall, callID)
	}
	c, err := s.o.Client.Call(ctx, callID)
	if e, ok := twilio.IsAPIError(err, 0); ok && e.Status == http.StatusNotFound {
		return "", false, fmt.Errorf("%w: Twilio does not know call %s: %w", agent.ErrNoCall, callID, err)
	}
	if err != nil {
		return "", false, fmt.Errorf("flex: looking up call %s: %w", callID, err)
	}
	party := c.To
	if c.Direction == twilio.DirectionInbound {
		party = c.From
	}
	if n, err := agent.NormalizeCallerID(party); err == nil {
		callerID = n
	}
	return callerID, c.InProgress(), nil
}

// IsCallSID reports whether id has the form of a Twilio call SID: "CA"
// and 32 hexadecimal digits.
func IsCallSID(id string) bool { return isSID(id, "CA") }

var (
	_ agent.Source       = (*Source)(nil)
	_ agent.CallInfo     = (*Source)(nil)
	_ http.Handler       = (*Source)(nil)
	_ agent.FrameCounter = (*audio)(nil)
)

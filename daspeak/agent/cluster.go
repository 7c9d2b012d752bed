package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent/oplog"
)

// ErrOpenedElsewhere is the cause with which the server cancels the
// context of a [Source.Open] when the operation's audio reached another
// node, which took the operation over ([Server.Adopt]). A Source must then
// return without releasing the audio (a Twilio Media Stream must not be
// stopped): it is the other node's.
var ErrOpenedElsewhere = errors.New("agent: the call's audio reached another node")

// Adopter takes over an operation whose audio reached this node while the
// node that started it waits for it ([Server.Adopt]). A Source that can
// receive such audio (daspeak/agent/flex) is given one.
type Adopter interface {
	Adopt(ctx context.Context, req SourceRequest, audio Audio) error
}

var _ Adopter = (*Server)(nil)

// reapInterval is how often a node looks for operations of dead nodes.
const reapInterval = time.Second

// opSpec is what another node needs to run an operation (oplog.Op.Spec).
type opSpec struct {
	Kind      kind            `json:"kind"`
	Body      json.RawMessage `json:"body"`
	Subject   string          `json:"agent,omitempty"`
	AgentName string          `json:"agent_name,omitempty"`
}

// multiNode reports whether the operation log is shared with other nodes.
func (s *Server) multiNode() bool { return s.ops.Node() != oplog.MemoryNode }

// command is a request one node sends another over the log's commands.
type command struct {
	// Op is status, register, verify, reverify, delete or stop.
	Op        string          `json:"op"`
	Body      json.RawMessage `json:"body"`
	Subject   string          `json:"agent,omitempty"`
	AgentName string          `json:"agent_name,omitempty"`
	// Age is how long the request had been on the sending node when it
	// was sent (its claim must come within MaxClaimDelay of its arrival
	// there).
	Age time.Duration `json:"age,omitempty"`
}

// commandReply is the HTTP answer the other node gave.
type commandReply struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
	// RetryAfter is the answer's Retry-After header, if any.
	RetryAfter string `json:"retry_after,omitempty"`
}

// forwardedKey marks the context of a request forwarded by another node,
// which is never forwarded again. The node that received it from the agent
// authorized the agent on its call first (CallAuthorizer); the node that
// runs it binds the caller to the call (CallInfo).
type forwardedKey struct{}

// forwarded reports whether r came from another node (Command).
func forwarded(r *http.Request) bool { return r.Context().Value(forwardedKey{}) != nil }

// authorizedKey holds the call id routed authorized the request's agent on
// (a string), so the handler does not ask the CallAuthorizer again.
type authorizedKey struct{}

// lookupKey holds the *callLookup routed made, so the handler does not ask
// the CallInfo (a Twilio REST request) again.
type lookupKey struct{}

// callLookup is one CallInfo.Call answer.
type callLookup struct {
	callID   string
	callerID string
	live     bool
	err      error
}

// lookupCall asks ci about callID, or takes the answer routed got for the
// same call in this request.
func lookupCall(ctx context.Context, ci CallInfo, callID string) (string, bool, error) {
	if l, ok := ctx.Value(lookupKey{}).(*callLookup); ok && l.callID == callID {
		return l.callerID, l.live, l.err
	}
	return ci.Call(ctx, callID)
}

// Holds implements oplog.Handler: the node holds a call whose Source
// (a CallInfo) knows it.
func (s *Server) Holds(ctx context.Context, callID string) bool {
	ci, ok := s.opts.Source.(CallInfo)
	if !ok || !validCallID(callID) {
		return false
	}
	_, _, err := ci.Call(ctx, callID)
	return err == nil
}

// Command implements oplog.Handler: it runs an API request another node
// forwarded (the node holding the call's audio runs its operations) and
// answers what this node's API would have answered.
func (s *Server) Command(ctx context.Context, msg []byte) []byte {
	var c command
	rec := &recorder{h: http.Header{}}
	if err := json.Unmarshal(msg, &c); err != nil {
		WriteError(rec, http.StatusBadRequest, CodeBadRequest, "malformed command")
		return rec.reply()
	}
	h := s.handlers[c.Op]
	if h == nil {
		WriteError(rec, http.StatusBadRequest, CodeBadRequest, "unknown command "+c.Op)
		return rec.reply()
	}
	ctx = context.WithValue(ctx, arrivedKey{}, time.Now().Add(-max(c.Age, 0)))
	r, err := http.NewRequestWithContext(context.WithValue(ctx, forwardedKey{}, true), http.MethodPost, s.opts.BasePath+"/"+c.Op, bytes.NewReader(c.Body))
	if err != nil {
		WriteError(rec, http.StatusInternalServerError, CodeInternal, "command")
		return rec.reply()
	}
	h(rec, r, Principal{Subject: c.Subject, Name: c.AgentName})
	return rec.reply()
}

// recorder is the ResponseWriter of a forwarded request.
type recorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) reply() []byte {
	body := bytes.TrimSpace(r.body.Bytes())
	if !json.Valid(body) {
		body = []byte("null")
	}
	b, _ := json.Marshal(commandReply{Status: r.status, Body: body, RetryAfter: r.h.Get("Retry-After")})
	return b
}

// writeReply writes another node's answer.
func writeReply(w http.ResponseWriter, reply []byte) error {
	var rep commandReply
	if err := json.Unmarshal(reply, &rep); err != nil || rep.Status < 100 || rep.Status > 599 {
		return errors.New("agent: malformed command reply")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if _, err := strconv.ParseUint(rep.RetryAfter, 10, 32); err == nil {
		w.Header().Set("Retry-After", rep.RetryAfter)
	}
	w.WriteHeader(rep.Status)
	w.Write(append(rep.Body, '\n'))
	return nil
}

// routed forwards an API request about a call this node has no audio for
// to the node that holds it (multi-node, with a Source that implements
// CallInfo: Genesys, where the agent's click may land on any node while
// the AudioHook session lives on one). When no node holds the call the
// request is answered here.
func (s *Server) routed(op string, h func(http.ResponseWriter, *http.Request, Principal)) func(http.ResponseWriter, *http.Request, Principal) {
	return func(w http.ResponseWriter, r *http.Request, p Principal) {
		ci, ok := s.opts.Source.(CallInfo)
		if !ok || !s.multiNode() || forwarded(r) {
			h(w, r, p)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			WriteError(w, http.StatusBadRequest, CodeBadRequest, "body too large or unreadable")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var probe struct {
			CallID string `json:"call_id"`
		}
		if json.Unmarshal(body, &probe) == nil && validCallID(probe.CallID) {
			l := &callLookup{callID: probe.CallID}
			l.callerID, l.live, l.err = ci.Call(r.Context(), probe.CallID)
			r = r.WithContext(context.WithValue(r.Context(), lookupKey{}, l))
			if errors.Is(l.err, ErrNoCall) {
				// The agent is authorized on the call here, with their
				// token, before anything is forwarded: the node holding
				// the call does not get the token and does not ask again.
				// It binds the caller to the call itself (CallInfo).
				if e := s.authorize(r, p, probe.CallID); e != nil {
					e.write(w)
					return
				}
				r = r.WithContext(context.WithValue(r.Context(), authorizedKey{}, probe.CallID))
				reply, err := s.route(r, op, body, p, probe.CallID)
				switch {
				case err == nil:
					if werr := writeReply(w, reply); werr == nil {
						s.log.Info("agent: request forwarded to the node holding the call", "op", op, "call_id", probe.CallID)
						return
					}
					s.log.Warn("agent: malformed answer of the node holding the call", "op", op, "call_id", probe.CallID)
					WriteError(w, http.StatusBadGateway, CodeInternal, "the node holding the call answered badly")
					return
				case !errors.Is(err, oplog.ErrNoRoute):
					s.log.Warn("agent: forwarding to the node holding the call failed", "op", op, "call_id", probe.CallID, "err", err)
				}
			}
		}
		h(w, r, p)
	}
}

// route forwards the request op with body of p about callID to the node
// holding the call. The command's Age, from which that node times the
// request's claim (MaxClaimDelay), is taken once the node is found
// (oplog.Locator) and right before the command is sent, so it counts the
// search. With a Log that cannot find the node alone, Age is taken
// before Route, and Route is bounded by the arrival plus MaxClaimDelay:
// a start whose search outlasts that is not forwarded.
func (s *Server) route(r *http.Request, op string, body []byte, p Principal, callID string) ([]byte, error) {
	ctx := r.Context()
	arrived := arrival(r)
	msg := func() []byte {
		b, _ := json.Marshal(command{Op: op, Body: body, Subject: p.Subject, AgentName: p.Name, Age: time.Since(arrived)})
		return b
	}
	if l, ok := s.ops.(oplog.Locator); ok {
		node, err := l.Holder(ctx, callID)
		if err != nil {
			return nil, err
		}
		return s.ops.Send(ctx, node, msg())
	}
	ctx, cancel := context.WithDeadline(ctx, arrived.Add(s.maxClaimDelay))
	defer cancel()
	return s.ops.Route(ctx, callID, msg())
}

// stopRemote asks the node that owns an operation to stop it.
func (s *Server) stopRemote(w http.ResponseWriter, r *http.Request, p Principal, op oplog.Op) {
	body, _ := json.Marshal(map[string]string{"operation_id": op.ID})
	msg, _ := json.Marshal(command{Op: "stop", Body: body, Subject: p.Subject, AgentName: p.Name})
	reply, err := s.ops.Send(r.Context(), op.Owner, msg)
	if err == nil && writeReply(w, reply) == nil {
		return
	}
	// The owner is gone: its lease expires and a node ends the operation.
	s.log.Warn("agent: stop not delivered to the operation's node", "operation_id", op.ID, "node", op.Owner, "err", err)
	WriteJSON(w, http.StatusOK, map[string]any{"operation_id": op.ID, "stopped": false})
}

// Adopt runs on this node an operation another node started whose audio
// reached this one (a Twilio Media Stream that the load balancer sent
// here). audio must be the operation's: the Source checked the signed
// binding of its operation id, call and caller (req). The operation must
// not have started yet; Adopt claims it (the starting node's Source.Open
// is then cancelled with [ErrOpenedElsewhere]), publishes its started
// event and runs it. On error the caller keeps audio and must close it.
func (s *Server) Adopt(ctx context.Context, req SourceRequest, audio Audio) error {
	if !s.multiNode() {
		return ErrNotFound
	}
	op, err := s.ops.Get(ctx, req.OperationID)
	if err != nil {
		return errors.Join(ErrNotFound, err)
	}
	if op.CallID != req.CallID || op.CallerID != req.CallerID || op.LastSeq != 0 || op.Done {
		return ErrBinding
	}
	var sp opSpec
	if err := json.Unmarshal(op.Spec, &sp); err != nil || sp.Kind > kindReverify {
		return errors.Join(ErrNotFound, errors.New("agent: operation without a spec"))
	}
	var areq apiRequest
	if err := json.Unmarshal(sp.Body, &areq); err != nil {
		return errors.Join(ErrNotFound, err)
	}
	cfg, e := s.config(sp.Kind, areq)
	if e != nil {
		return e
	}
	if sp.Kind == kindRegister {
		cfg.CallerID = op.CallerID
	}
	if err := s.ops.Claim(ctx, op.ID, op.Owner); err != nil {
		return err
	}
	// The starting node checked that the call was free; here a new
	// operation replaces whatever ran on the call.
	rn, opCtx, done, e := s.reserve(ctx, kindReverify, op.CallID, op.CallerID, nil)
	if e != nil {
		// reserve fails when this node is shutting down, or when ctx
		// (the audio's) ended while the call's operation was closing.
		why, cause := "the node that got the audio is shutting down", CauseShutdown
		if e.Code != CodeUnavailable {
			why, cause = "the audio ended before the operation started", CauseNoAudio
		}
		s.abort(context.WithoutCancel(ctx), op, why, cause)
		return e
	}
	var credential string
	if sp.Kind != kindRegister {
		rec, err := s.getCredential(ctx, op.CallerID)
		if err != nil {
			s.release(op.CallID, rn)
			rn.cancel(nil)
			close(rn.done)
			done()
			why, cause := "the credential store could not be read", CauseStoreError
			if errors.Is(err, credstore.ErrNotFound) {
				why, cause = errDeleted.Error(), CauseDeleted
			}
			s.abort(context.WithoutCancel(ctx), op, why, cause)
			return err
		}
		credential = rec.Credential
	}
	o := &operation{
		s: s, id: op.ID, kind: sp.Kind.operation(), callID: op.CallID, callerID: op.CallerID,
		cfg: cfg, credential: credential, audio: audio, principal: Principal{Subject: sp.Subject, Name: sp.AgentName},
	}
	if err := o.publish(ctx, &Event{Type: EventStarted}); err != nil {
		// The starting node gave up first (its Open timed out).
		s.release(op.CallID, rn)
		rn.cancel(nil)
		close(rn.done)
		done()
		return err
	}
	s.mu.Lock()
	rn.id = op.ID
	s.mu.Unlock()
	s.launch(o, rn, opCtx, done)
	s.log.Info("agent: operation taken over with its audio", "operation_id", op.ID, "kind", o.kind, "call_id", op.CallID, "from", op.Owner)
	return nil
}

// abort ends an operation that never started (its audio did not come, or
// the node it reached could not run it) with error-cancelled, with the
// error "cancelled: "+why and cause. It returns oplog.ErrSeq (wrapped)
// when another node started it first.
func (s *Server) abort(ctx context.Context, op oplog.Op, why string, cause CancelCause) error {
	ev := Event{OperationID: op.ID, CallID: op.CallID, CallerID: op.CallerID, Kind: daspeak.Operation(op.Kind),
		Seq: 1, Type: EventErrorCancelled, Reason: ReasonCancelled, Error: "cancelled: " + why, Cause: cause, Time: time.Now()}
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return s.ops.Append(ctx, op.ID, oplog.Record{Seq: 1, Type: string(ev.Type), Terminal: true, Data: data})
}

// reap ends the operations of nodes whose lease expired (found so in two
// scans reapInterval apart): each gets error-cancelled (reason cancelled) with the error
// "cancelled: the node running the operation stopped". Of the live nodes,
// the first to append wins; the others get oplog.ErrSeq and move on.
func (s *Server) reap(ctx context.Context) {
	t := time.NewTicker(reapInterval)
	defer t.Stop()
	// An operation is ended only when two scans a reapInterval apart
	// found it orphaned: a node whose renewal was merely late (a busy
	// machine) gets that much more time.
	seen := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		orphans, err := s.ops.Orphans(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("agent: looking for operations of stopped nodes failed", "err", err)
		}
		now := map[string]bool{}
		for _, o := range orphans {
			now[o.ID] = true
		}
		prev := seen
		seen = now
		for _, o := range orphans {
			if !prev[o.ID] {
				continue
			}
			ev := Event{OperationID: o.ID, CallID: o.CallID, CallerID: o.CallerID, Kind: daspeak.Operation(o.Kind),
				Seq: o.LastSeq + 1, Type: EventErrorCancelled, Reason: ReasonCancelled,
				Error: msgNodeStopped, Cause: CauseNodeStopped, Time: time.Now()}
			data, err := json.Marshal(ev)
			if err != nil {
				continue
			}
			err = s.ops.Append(ctx, o.ID, oplog.Record{Seq: ev.Seq, Type: string(ev.Type), Terminal: true, Data: data})
			switch {
			case err == nil:
				s.obs.OperationEnded(ev.Kind, ev.Type, ev.Reason)
				s.log.Warn("agent: operation of a stopped node ended", "operation_id", o.ID, "call_id", o.CallID, "node", o.Owner, "seq", ev.Seq)
			case errors.Is(err, oplog.ErrSeq):
			default:
				if ctx.Err() == nil {
					s.log.Warn("agent: ending an operation of a stopped node failed", "operation_id", o.ID, "err", err)
				}
			}
		}
	}
}

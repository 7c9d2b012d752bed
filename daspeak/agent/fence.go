package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/voicegate/voicegate/daspeak/agent/oplog"
)

// msgBadRequestID is the message of a 400 for a malformed request_id.
const msgBadRequestID = "request_id must be 8-64 letters, digits and \"-\" (a UUID)"

// pendingStart is a start with a request id between its claim and its
// reserve (Server.pending, under Server.mu).
type pendingStart struct {
	id, reqID string // its operation id and request id
	stopped   bool   // a stop found it: reserve refuses it
	// replacing: reserve has ended the call's running operation for this
	// re-verify and waits for it to close. The start has acted, so a stop
	// no longer fences it: the stop is unsettled (503) until the start
	// holds the call and can be stopped there.
	replacing bool
}

// errFencedStart is the answer of a start fenced out by a stop.
var errFencedStart = &Error{Status: http.StatusConflict, Code: CodeFenced, Message: "stopped before it started: a stop named this request_id"}

// pend enters the start of operation id with request id reqID in
// pending; unpend takes it out if reserve did not.
func (s *Server) pend(id, reqID string) *pendingStart {
	ps := &pendingStart{id: id, reqID: reqID}
	s.mu.Lock()
	s.pending[id] = ps
	s.mu.Unlock()
	return ps
}

func (s *Server) unpend(ps *pendingStart) {
	s.mu.Lock()
	delete(s.pending, ps.id)
	s.mu.Unlock()
}

// MaxClaimDelay bounds the time from a start reaching the server (or
// the node it was forwarded to) to its request id's claim
// (oplog.Log.ClaimRequest): a start that has not claimed its id by then
// is refused (503, nothing started). With claims kept at least
// oplog.MinRequestRetain, a stop's fence holds against every start of
// its id that reaches a server within MinRequestRetain - MaxClaimDelay
// of the stop.
const MaxClaimDelay = time.Minute

// errLateStart is the answer of a start that did not claim its request
// id within MaxClaimDelay of reaching the server.
var errLateStart = &Error{Status: http.StatusServiceUnavailable, Code: CodeInternal, Message: "the request took too long to be checked: nothing was started"}

// arrivedKey holds the time.Time a request reached this node (authed,
// Command).
type arrivedKey struct{}

// arrival returns when r reached this node (now when not recorded).
func arrival(r *http.Request) time.Time {
	if t, ok := r.Context().Value(arrivedKey{}).(time.Time); ok {
		return t
	}
	return time.Now()
}

// claimStart claims a start's request id for operation id on callID
// (oplog.Log.ClaimRequest) by arrived+s.maxClaimDelay: a start whose id a
// stop claimed first is refused with 409 fenced and never runs, and a
// start that claimed too late (errLateStart) does not run either.
func (s *Server) claimStart(ctx context.Context, arrived time.Time, p Principal, reqID, callID, id string) *Error {
	deadline := arrived.Add(s.maxClaimDelay)
	cctx, cancel := context.WithDeadline(ctx, deadline)
	held, won, err := s.ops.ClaimRequest(cctx, reqID, oplog.Request{CallID: callID, OpID: id, Node: s.ops.Node(), Subject: p.Subject})
	cancel()
	late := !time.Now().Before(deadline)
	switch {
	case err == nil && won && late:
		// The claim holds (a stop of the id answers fenced: no operation
		// was created), but a fence older than MinRequestRetain may have
		// expired before it: do not run.
		s.log.Warn("agent: start refused: its request id was claimed too late", "call_id", callID, "request_id", reqID, "after", time.Since(arrived))
		return errLateStart
	case err != nil && late:
		s.log.Warn("agent: start refused: its request id could not be claimed in time", "call_id", callID, "request_id", reqID, "err", err)
		return errLateStart
	case err != nil:
		return s.claimFailed(err, callID, "a start's")
	case won:
		return nil
	case held.Fenced:
		s.log.Info("agent: start refused: stopped before it started", "call_id", callID, "request_id", reqID)
		return errFencedStart
	}
	return &Error{Status: http.StatusConflict, Code: CodeRequestUsed, Message: "request_id was used by another start"}
}

// claimFailed is the answer of a request whose request id could not be
// claimed (err from oplog.Log.ClaimRequest; what names the request in
// the log): 429 too_many_requests when the agent holds
// oplog.MaxSubjectRequests claims on its call or the call
// oplog.MaxCallRequests, else 503 (the log is full or failed), with
// Retry-After.
func (s *Server) claimFailed(err error, callID, what string) *Error {
	var le *oplog.LimitError
	switch {
	case errors.As(err, &le) && le.CallID != "":
		s.log.Warn("agent: "+what+" request id refused: too many on the call", "call_id", callID, "per_agent", le.PerSubject, "claims", le.Limit, "retry_after", le.RetryAfter)
		return &Error{Status: http.StatusTooManyRequests, Code: CodeTooManyRequests,
			Message: "too many request_ids on this call; nothing was started or stopped: retry later", RetryAfter: max(le.RetryAfter, time.Second)}
	case errors.As(err, &le):
		s.log.Error("agent: "+what+" request id refused: the operation log holds as many request ids as it keeps", "call_id", callID, "claims", le.Limit, "retry_after", le.RetryAfter)
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeInternal,
			Message: "too many request_ids in flight; nothing was started or stopped: retry later", RetryAfter: max(le.RetryAfter, time.Second)}
	}
	s.log.Error("agent: "+what+" request id could not be recorded", "call_id", callID, "err", err)
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeInternal, Message: "the request could not be recorded"}
}

// stopAnswer is the 200 answer of POST /stop with call_id and request_id.
type stopAnswer struct {
	CallID    string `json:"call_id"`
	RequestID string `json:"request_id"`
	// Fenced: the start never ran an operation and never will (the stop
	// claimed the request id first, or the start ended before creating
	// its operation).
	Fenced bool `json:"fenced"`
	// OperationID is the start's operation when the start came first.
	OperationID string `json:"operation_id,omitempty"`
	// Stopped: the operation was running (or starting) and was stopped.
	Stopped bool `json:"stopped"`
	// Result is the terminal event type the operation ended with.
	Result string `json:"result,omitempty"`
}

// stopRequest is POST /stop with call_id and request_id: the stop of a
// start whose answer was lost, and a fence. The stop claims the request
// id (oplog.Log.ClaimRequest); of it and the start, whoever claims first
// wins. When the stop wins, the start is refused whenever it comes, on
// any node (409 fenced): the answer is fenced true. When the start won,
// its operation is stopped on the node that runs it and the answer names
// it, with stopped and the terminal event type it ended with (result).
// While that cannot be settled (the operation has not ended yet, its node
// does not answer) the answer is 503: the client asks again. On a call
// the Source (a CallInfo) no longer knows, the claim already held is
// read (oplog.Log.HeldRequest) and answered the same way; with none the
// answer is 409 no_call and nothing is claimed.
func (s *Server) stopRequest(w http.ResponseWriter, r *http.Request, p Principal, callID, reqID string) {
	if !validCallID(callID) {
		WriteError(w, http.StatusBadRequest, CodeBadRequest, "operation_id or call_id is missing or malformed")
		return
	}
	if !oplog.ValidRequestID(reqID) {
		WriteError(w, http.StatusBadRequest, CodeBadRequest, msgBadRequestID)
		return
	}
	if e := s.authorize(r, p, callID); e != nil {
		e.write(w)
		return
	}
	var (
		held oplog.Request
		err  error
	)
	r, e := s.knownCall(r, callID)
	ctx := r.Context()
	switch {
	case e == errUnknownCall:
		// A call the Source no longer knows (a Genesys call is forgotten
		// with its AudioHook session) may still have had this start: its
		// claim says what became of it. Without one, nothing is claimed:
		// no start of the id ran on the call, and none can while the
		// Source does not know it.
		var ok bool
		held, ok, err = s.ops.HeldRequest(ctx, callID, reqID)
		if err == nil && !ok {
			e.write(w)
			return
		}
		if err != nil {
			s.log.Warn("agent: a stop's request id could not be read", "call_id", callID, "err", err)
			(&Error{Status: http.StatusServiceUnavailable, Code: CodeInternal, Message: "the request could not be read", RetryAfter: time.Second}).write(w)
			return
		}
	case e != nil:
		e.write(w)
		return
	default:
		held, _, err = s.ops.ClaimRequest(ctx, reqID, oplog.Request{Fenced: true, CallID: callID, Node: s.ops.Node(), Subject: p.Subject})
	}
	switch {
	case err != nil:
		s.claimFailed(err, callID, "a stop's").write(w)
		return
	case held.CallID != callID:
		WriteError(w, http.StatusConflict, CodeRequestUsed, "request_id was used on another call")
		return
	case held.Fenced:
		s.log.Info("agent: start fenced by a stop", "call_id", callID, "request_id", reqID, "agent", p.Subject)
		WriteJSON(w, http.StatusOK, stopAnswer{CallID: callID, RequestID: reqID, Fenced: true})
		return
	}
	if held.Node != s.ops.Node() && !forwarded(r) {
		body, _ := json.Marshal(map[string]string{"call_id": callID, "request_id": reqID})
		msg, _ := json.Marshal(command{Op: "stop", Body: body, Subject: p.Subject, AgentName: p.Name})
		reply, err := s.ops.Send(ctx, held.Node, msg)
		if err == nil && writeReply(w, reply) == nil {
			return
		}
		s.log.Warn("agent: stop not delivered to the node that ran the start", "call_id", callID, "operation_id", held.OpID, "node", held.Node, "err", err)
		WriteError(w, http.StatusServiceUnavailable, CodeInternal, "the node that ran the start did not answer")
		return
	}
	ans, e := s.stopStarted(ctx, p, callID, reqID, held.OpID)
	if e != nil {
		e.write(w)
		return
	}
	if ctx.Err() != nil {
		return
	}
	ans.CallID, ans.RequestID = callID, reqID
	s.log.Info("agent: start stopped by its request id", "call_id", callID, "operation_id", held.OpID, "stopped", ans.Stopped, "result", ans.Result, "agent", p.Subject)
	WriteJSON(w, http.StatusOK, ans)
}

// errUnknownCall is the answer of a start or stop naming a call the
// Source (a CallInfo) does not know: no request id is claimed for it.
var errUnknownCall = &Error{Status: http.StatusConflict, Code: CodeNoCall, Message: "no such call"}

// knownCall refuses, before any request id is claimed for it, a call
// the Source (a CallInfo) does not know (errUnknownCall; a lookup that
// failed is 503 with Retry-After), so that made-up call ids never fill
// the log with claims. A call that is known but has ended passes. The
// lookup is kept in the returned request's context (lookupKey) for the
// checks that follow. Without CallInfo every call passes: the server
// cannot tell, and only the per-agent and per-call claim budgets bound
// what is kept (with Memory, its MaxOps too).
func (s *Server) knownCall(r *http.Request, callID string) (*http.Request, *Error) {
	ci, ok := s.opts.Source.(CallInfo)
	if !ok {
		return r, nil
	}
	l := &callLookup{callID: callID}
	l.callerID, l.live, l.err = lookupCall(r.Context(), ci, callID)
	switch {
	case errors.Is(l.err, ErrNoCall):
		return r, errUnknownCall
	case l.err != nil:
		s.log.Warn("agent: call lookup failed", "call_id", callID, "err", l.err)
		return r, &Error{Status: http.StatusServiceUnavailable, Code: CodeInternal, Message: "call lookup failed", RetryAfter: time.Second}
	}
	return r.WithContext(context.WithValue(r.Context(), lookupKey{}, l)), nil
}

// errUnsettled is the 503 of a stop whose operation has not ended yet.
var errUnsettled = &Error{Status: http.StatusServiceUnavailable, Code: CodeInternal, Message: "the start's operation has not ended yet; ask again"}

// stopStarted stops, on this node (the one that claimed the request id
// reqID for it), the start whose operation is id, and reads how it ended. The
// start is in pending from before its claim until reserve moves it, under
// mu, into running, where it stays until it has released everything. A
// start found in pending is marked stopped: reserve refuses it, so it
// never runs (fenced). A start found in neither has ended: without an
// operation (none was created), or with one that ended or that a node
// that got its audio took over (Adopt), which is then stopped there.
func (s *Server) stopStarted(ctx context.Context, p Principal, callID, reqID, id string) (stopAnswer, *Error) {
	var rn *run
	stopped := false
	s.mu.Lock()
	// Only callID's run: request ids are per call, and this stop is
	// authorized for callID alone.
	if x := s.running[callID]; x != nil && x.reqID == reqID {
		rn = x
	}
	if rn != nil && !rn.finished {
		rn.cancel(errStopped)
		stopped = true
	}
	if ps := s.pending[id]; rn == nil && ps != nil {
		if ps.replacing {
			s.mu.Unlock()
			return stopAnswer{}, errUnsettled
		}
		ps.stopped = true
		s.mu.Unlock()
		return stopAnswer{Fenced: true, Stopped: true}, nil
	}
	s.mu.Unlock()
	if rn != nil {
		select {
		case <-rn.done:
		case <-ctx.Done():
			return stopAnswer{}, nil
		}
	}
	op, err := s.ops.Get(ctx, id)
	switch {
	case errors.Is(err, oplog.ErrNotFound):
		return stopAnswer{Fenced: true, Stopped: stopped}, nil
	case err != nil:
		return stopAnswer{}, &Error{Status: http.StatusServiceUnavailable, Code: CodeInternal, Message: "the operation could not be read"}
	}
	if !op.Done && op.Owner != s.ops.Node() {
		// Taken over by the node its audio reached (Adopt).
		ok, err := s.sendStop(ctx, p, op.Owner, map[string]string{"operation_id": id})
		if err != nil {
			s.log.Warn("agent: stop not delivered to the node running the operation", "operation_id", id, "node", op.Owner, "err", err)
			return stopAnswer{}, errUnsettled
		}
		stopped = stopped || ok
		if op, err = s.ops.Get(ctx, id); err != nil {
			return stopAnswer{}, errUnsettled
		}
	}
	if !op.Done {
		return stopAnswer{}, errUnsettled
	}
	result, err := s.terminalType(ctx, op)
	if err != nil {
		s.log.Warn("agent: the end of a stopped operation could not be read", "operation_id", id, "err", err)
		return stopAnswer{}, errUnsettled
	}
	return stopAnswer{OperationID: id, Stopped: stopped, Result: result}, nil
}

// terminalType reads the type of an ended operation's terminal record.
func (s *Server) terminalType(ctx context.Context, op oplog.Op) (string, error) {
	if op.LastSeq == 0 {
		return "", errors.New("agent: an ended operation without records")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cur, err := s.ops.Subscribe(ctx, op.ID, op.LastSeq-1)
	if err != nil {
		return "", err
	}
	defer cur.Close()
	rec, err := cur.Next(ctx)
	if err != nil {
		return "", err
	}
	if !rec.Terminal {
		return "", errors.New("agent: the last record of an ended operation is not terminal")
	}
	return rec.Type, nil
}

// sendStop sends a stop command with body (operation_id or call_id) to
// node, on behalf of p, and reports whether the node stopped something
// running; an error when it did not answer 200.
func (s *Server) sendStop(ctx context.Context, p Principal, node string, body map[string]string) (stopped bool, err error) {
	b, _ := json.Marshal(body)
	msg, _ := json.Marshal(command{Op: "stop", Body: b, Subject: p.Subject, AgentName: p.Name})
	reply, err := s.ops.Send(ctx, node, msg)
	if err != nil {
		return false, err
	}
	var rep commandReply
	if err := json.Unmarshal(reply, &rep); err != nil {
		return false, err
	}
	if rep.Status != http.StatusOK {
		return false, fmt.Errorf("answered %d", rep.Status)
	}
	var ans struct {
		Stopped bool `json:"stopped"`
	}
	if err := json.Unmarshal(rep.Body, &ans); err != nil {
		return false, err
	}
	return ans.Stopped, nil
}

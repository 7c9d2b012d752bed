package flex

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/voicegate/voicegate/daspeak/agent/internal/allow"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/twilio"
)

// Defaults of AssignmentOptions.
const (
	// DefaultAssignmentCacheTTL is how long an allowed (worker, call) pair
	// is remembered: the widget asks several times a minute per call.
	DefaultAssignmentCacheTTL = 5 * time.Second
	// DefaultAssignmentCacheSize bounds the remembered pairs.
	DefaultAssignmentCacheSize = 10000
)

// AssignmentOptions configures NewAssignment.
type AssignmentOptions struct {
	// Client asks TaskRouter; required. It authenticates with the
	// account's credentials (TaskRouter has no per-agent token here).
	Client *twilio.Client
	// WorkspaceSID is the Flex TaskRouter workspace ("WS" and 32 hex
	// digits; a Flex project has exactly one: Console → TaskRouter →
	// Workspaces, "Flex Task Assignment"); required.
	WorkspaceSID string
	// CacheTTL is how long an allowed (worker, call) pair is
	// remembered, and how long a worker's wrapping and completed
	// reservations (read to tell an ended call from another's, see
	// Assignment) are; default DefaultAssignmentCacheTTL, negative:
	// never. A refusal of the accepted-reservation check is never
	// remembered. Only a status read or a stop is answered from a
	// remembered allow (a status may be stale by CacheTTL); a start or a
	// delete asks TaskRouter again.
	CacheTTL time.Duration
	// CacheSize bounds the remembered pairs, and apart from them the
	// workers whose ended reservations are remembered; default
	// DefaultAssignmentCacheSize.
	CacheSize int
	// Logger receives tasks whose attributes are not JSON; nil discards.
	Logger *slog.Logger
	// Now is the clock of the cache; default time.Now.
	Now func() time.Time
}

// Assignment is an agent.CallAuthorizer that keeps Flex agents to their
// own calls: the agent of a request (agent.Principal.Subject, the
// TaskRouter worker SID of their Flex token, see Authenticator) may act on
// call callID only while they hold an accepted reservation of an assigned
// task whose "call_sid" attribute is callID. It asks TaskRouter (Twilio
// docs, https://www.twilio.com/docs/taskrouter/api/worker-reservation and
// https://www.twilio.com/docs/taskrouter/api/task):
//
//	GET https://taskrouter.twilio.com/v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Reservations?ReservationStatus=accepted
//	    → {"reservations":[{"sid":"WR…","task_sid":"WT…","reservation_status":"accepted",…}],"meta":{…}}
//	GET https://taskrouter.twilio.com/v1/Workspaces/{WorkspaceSid}/Tasks/{TaskSid}
//	    → {"sid":"WT…","assignment_status":"assigned","attributes":"{\"call_sid\":\"CA…\",…}",…}
//
// A reservation is "accepted" from the worker's accept until the call
// ends for them (then "wrapping" until wrap-up, then "completed"; the
// other statuses, "pending", "rejected", "timeout", "canceled" and
// "rescinded", are of tasks the worker never held). A worker whose
// reservation of the call's task is wrapping or completed is refused
// with agent.ErrNoCall rather than agent.ErrForbidden: their part in the
// call has ended, whether the call did or goes on with another agent (a
// transfer moves the first agent's reservation to wrapping). The
// refusal grants nothing; it only says why.
//
// Telling the two refusals apart reads the worker's wrapping
// reservations, and their completed ones when no wrapping one is on the
// call, and fetches at most maxEndedTasks (20) of their tasks. What it
// read is kept per worker for CacheTTL, so a worker's refusals cost one
// list (and the fetches of their accepted tasks) each, plus at most two
// lists and 20 task fetches per CacheTTL together: an agent posting
// call SIDs that are not theirs cannot spend the account's TaskRouter
// rate limit for every agent. A reservation that started wrapping
// within CacheTTL of that read may be refused 403 rather than 409 until
// it expires. The accepted check itself is never cached, so a
// just-assigned agent is allowed at once.
//
// TaskRouter deletes completed tasks some time after they complete
// (Twilio docs, TaskRouter resource limits,
// https://www.twilio.com/docs/taskrouter/limits, and the workspace's
// Limits page in the Console); a reservation of a deleted task, or one
// past the first 20 tasks read, is refused as another's call (403
// "forbidden"): 409 is not promised for every completed reservation.
//
// A task's attributes are a JSON string,
// sent only when one task is fetched; a voice task that <Enqueue> created
// carries the customer's call SID as "call_sid" (Twilio error 40142,
// https://www.twilio.com/docs/api/errors/40142), the leg whose audio the
// Source streams. Tasks without call_sid (outbound dialpad calls, chats)
// authorize no call.
//
// Use it through Assigned. It is safe for concurrent use.
type Assignment struct {
	o   AssignmentOptions
	log *slog.Logger

	allowed *allow.Cache // (worker, call) pairs allowed

	endedMu sync.Mutex
	ended   map[string]*endedLists // worker SID → their ended reservations
}

// NewAssignment returns an Assignment. It checks the options only; Check
// asks TaskRouter.
func NewAssignment(opts *AssignmentOptions) (*Assignment, error) {
	if opts == nil || opts.Client == nil {
		return nil, fmt.Errorf("%w: AssignmentOptions needs a Client", twilio.ErrInvalidArgument)
	}
	o := *opts
	if !isSID(o.WorkspaceSID, "WS") {
		return nil, fmt.Errorf("%w: TaskRouter workspace SID %q is not \"WS\" and 32 hex digits", twilio.ErrInvalidArgument, o.WorkspaceSID)
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = DefaultAssignmentCacheTTL
	}
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultAssignmentCacheSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Assignment{o: o, log: logger(o.Logger), allowed: allow.New(o.CacheTTL, o.CacheSize), ended: map[string]*endedLists{}}, nil
}

// Check asks TaskRouter for the workspace (GET /v1/Workspaces/{Sid}): a
// starter server calls it at start-up so that a wrong workspace SID or
// credentials fail there, not on the agents' first request. Errors are
// those of AuthorizeCall's server side (*ServerError).
func (a *Assignment) Check(ctx context.Context) error {
	return a.serverError(a.o.Client.Workspace(ctx, a.o.WorkspaceSID), "GET /v1/Workspaces/{Sid}")
}

// AuthorizeCall implements agent.CallAuthorizer (see Assignment). Errors:
//
//   - wrapping agent.ErrBadCallID (400 "bad_request"): callID is not a
//     call SID (nothing is asked);
//   - wrapping ErrCallEnded and agent.ErrNoCall (409 "no_call"): the
//     worker holds no accepted reservation of a task on callID, but a
//     "wrapping" or "completed" one: their part in the call has ended
//     (Flex moves the reservation there when they hang up or transfer
//     the call; the call may go on with another agent). The agent may
//     not act on it either; the answer only says why. Once TaskRouter
//     has deleted the completed task, the answer is 403 as below;
//   - wrapping agent.ErrForbidden and ErrNotAssigned (403 "forbidden"):
//     p.Subject is not a worker SID (a Flex
//     token without one: see IdentitySubject), the worker is not in the workspace, or none of
//     their accepted reservations is of an assigned task on callID
//     (and none of their wrapping or completed ones that were read, see
//     Assignment, is of a task on it);
//   - a *ServerError wrapping agent.ErrAuthUnavailable (503
//     "auth_unavailable") and ErrServerCredentials (Twilio refused the
//     server's credentials), ErrWorkspace (the workspace does not exist)
//     or ErrTwilioUnavailable (network, timeout, 429 or 5xx after the
//     client's retries): the agent was not judged.
//
// No error holds a token.
func (a *Assignment) AuthorizeCall(ctx context.Context, r *http.Request, p agent.Principal, callID string) error {
	if !IsCallSID(callID) {
		return fmt.Errorf("%w: %q is not a Twilio call SID", agent.ErrBadCallID, callID)
	}
	worker := p.Subject
	if !isSID(worker, "WK") {
		return fmt.Errorf("%w: %w: the Flex token names no TaskRouter worker (subject %q)", agent.ErrForbidden, ErrNotAssigned, worker)
	}
	key := sha256.Sum256([]byte(worker + "\x00" + strings.ToUpper(callID)))
	now := a.o.Now()
	// Only a status read or a stop takes a cached allow: a start or a
	// delete asks TaskRouter again, so an agent whose reservation moved
	// to wrapping (hang-up) or who lost the task is refused at once.
	if allow.ReadOnly(r) && a.allowed.Allowed(key, now) {
		return nil
	}
	if err := a.assigned(ctx, worker, callID); err != nil {
		return err
	}
	a.allowed.Grant(key, now)
	return nil
}

// assigned asks TaskRouter whether worker holds an accepted reservation of
// an assigned task on callID.
func (a *Assignment) assigned(ctx context.Context, worker, callID string) error {
	const list = "GET /v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Reservations"
	res, err := a.o.Client.WorkerReservations(ctx, a.o.WorkspaceSID, worker, twilio.ReservationAccepted)
	if e, ok := twilio.IsAPIError(err, 0); ok && e.Status == http.StatusNotFound {
		// An unknown worker, or an unknown workspace (the server's
		// fault): ask which.
		if werr := a.Check(ctx); werr != nil {
			return werr
		}
		return fmt.Errorf("%w: %w: worker %s is not in workspace %s", agent.ErrForbidden, ErrNotAssigned, worker, a.o.WorkspaceSID)
	}
	if err != nil {
		return a.serverError(err, list)
	}
	for _, rv := range res {
		if rv.Status != twilio.ReservationAccepted || rv.TaskSID == "" {
			continue
		}
		task, err := a.o.Client.Task(ctx, a.o.WorkspaceSID, rv.TaskSID)
		if e, ok := twilio.IsAPIError(err, 0); ok && e.Status == http.StatusNotFound {
			continue // deleted since
		}
		if err != nil {
			return a.serverError(err, "GET /v1/Workspaces/{WorkspaceSid}/Tasks/{TaskSid}")
		}
		if task.AssignmentStatus != twilio.TaskAssigned {
			continue
		}
		var attrs struct {
			CallSID any `json:"call_sid"`
		}
		if err := json.Unmarshal([]byte(task.Attributes), &attrs); err != nil {
			a.log.Warn("flex: task attributes are not JSON", "task_sid", task.SID, "err", err)
			continue
		}
		if sid, ok := attrs.CallSID.(string); ok && strings.EqualFold(sid, callID) {
			return nil
		}
	}
	if err := a.endedCall(ctx, worker, callID); err != nil {
		return err
	}
	return fmt.Errorf("%w: %w: worker %s has no accepted reservation of a task on call %s", agent.ErrForbidden, ErrNotAssigned, worker, callID)
}

// maxEndedTasks bounds the tasks ended fetches for a worker per
// CacheTTL: a worker's completed reservations are their history of the
// day.
const maxEndedTasks = 20

// endedStatuses are the reservation statuses of a task the worker held
// and whose call has ended for them, in the order ended reads them.
var endedStatuses = [...]string{twilio.ReservationWrapping, twilio.ReservationCompleted}

// endedLists is what ended learnt of one worker's wrapping and completed
// reservations: for each status read so far, the call SID of each
// reservation's task ("" for a task without one, or deleted since).
// mu is held while the lists are read from TaskRouter, so that the
// worker's concurrent refusals share one read.
type endedLists struct {
	mu     sync.Mutex
	exp    time.Time
	read   [len(endedStatuses)]bool
	calls  [len(endedStatuses)][]string // call SIDs of the status's tasks
	looked int                          // tasks fetched, at most maxEndedTasks
}

// endedFor returns the worker's endedLists that have not expired at now,
// new ones when there are none, or unkept ones when the cache is off.
func (a *Assignment) endedFor(worker string, now time.Time) *endedLists {
	if a.o.CacheTTL <= 0 {
		return &endedLists{}
	}
	a.endedMu.Lock()
	defer a.endedMu.Unlock()
	if e, ok := a.ended[worker]; ok && now.Before(e.exp) {
		return e
	}
	delete(a.ended, worker)
	if len(a.ended) >= a.o.CacheSize {
		for k, e := range a.ended {
			if !now.Before(e.exp) || len(a.ended) >= a.o.CacheSize {
				delete(a.ended, k)
			}
		}
	}
	e := &endedLists{exp: now.Add(a.o.CacheTTL)}
	a.ended[worker] = e
	return e
}

// endedCall returns an error wrapping ErrCallEnded (and agent.ErrNoCall)
// when worker holds a "wrapping" or "completed" reservation of a task on
// callID: the agent held the call and their part in it has ended. It
// looks at the wrapping reservations first and lists the completed ones
// only when no wrapping one is on callID, fetching at most maxEndedTasks
// tasks in all; nil when none is found. What it read is kept per worker
// for CacheTTL (at most CacheSize workers), so a worker's refusals within
// it cost no more than two lists and maxEndedTasks fetches together.
func (a *Assignment) endedCall(ctx context.Context, worker, callID string) error {
	const list = "GET /v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Reservations"
	e := a.endedFor(worker, a.o.Now())
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, status := range endedStatuses {
		if !e.read[i] {
			res, err := a.o.Client.WorkerReservations(ctx, a.o.WorkspaceSID, worker, status)
			if err != nil {
				return a.serverError(err, list)
			}
			var calls []string
			looked := e.looked
			for _, rv := range res {
				if rv.Status != status || rv.TaskSID == "" {
					continue
				}
				if looked == maxEndedTasks {
					break
				}
				looked++
				call, err := a.taskCall(ctx, rv.TaskSID)
				if err != nil {
					return err
				}
				calls = append(calls, call)
			}
			e.read[i], e.calls[i], e.looked = true, calls, looked
		}
		for _, call := range e.calls[i] {
			if call != "" && strings.EqualFold(call, callID) {
				return fmt.Errorf("%w: %w: worker %s's reservation of a task on call %s is %s", ErrCallEnded, agent.ErrNoCall, worker, callID, status)
			}
		}
	}
	return nil
}

// taskCall returns the "call_sid" attribute of task taskSID; "" for a
// task without one, or deleted since.
func (a *Assignment) taskCall(ctx context.Context, taskSID string) (string, error) {
	task, err := a.o.Client.Task(ctx, a.o.WorkspaceSID, taskSID)
	if e, ok := twilio.IsAPIError(err, 0); ok && e.Status == http.StatusNotFound {
		return "", nil
	}
	if err != nil {
		return "", a.serverError(err, "GET /v1/Workspaces/{WorkspaceSid}/Tasks/{TaskSid}")
	}
	var attrs struct {
		CallSID any `json:"call_sid"`
	}
	if err := json.Unmarshal([]byte(task.Attributes), &attrs); err != nil {
		a.log.Warn("flex: task attributes are not JSON", "task_sid", task.SID, "err", err)
		return "", nil
	}
	sid, _ := attrs.CallSID.(string)
	return sid, nil
}

// serverError classifies a failed TaskRouter request (nil stays nil).
func (a *Assignment) serverError(err error, what string) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("%s: %w", what, err)
	switch e, ok := twilio.IsAPIError(err, 0); {
	case errors.Is(err, twilio.ErrServerCredentials):
		return &ServerError{Kind: ErrServerCredentials, Err: err}
	case ok && e.Status == http.StatusNotFound:
		return &ServerError{Kind: ErrWorkspace, Err: fmt.Errorf("workspace %s: %w", a.o.WorkspaceSID, err)}
	}
	return &ServerError{Kind: ErrTwilioUnavailable, Err: err}
}

// isSID reports whether s is prefix and 32 hexadecimal digits.
func isSID(s, prefix string) bool {
	if len(s) != len(prefix)+32 || !strings.HasPrefix(s, prefix) {
		return false
	}
	for i := len(prefix); i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// AssignedAuthenticator is an Authenticator whose agents may act only on
// the calls of their accepted tasks: it implements agent.Authenticator
// (Authenticator) and agent.CallAuthorizer (Assignment), so an
// agent.Server asks both on every call-scoped request.
type AssignedAuthenticator struct {
	*Authenticator
	*Assignment
}

// Assigned returns auth, keeping its agents to their calls with as.
func Assigned(auth *Authenticator, as *Assignment) *AssignedAuthenticator {
	return &AssignedAuthenticator{Authenticator: auth, Assignment: as}
}

var (
	_ agent.CallAuthorizer = (*Assignment)(nil)
	_ agent.Authenticator  = (*AssignedAuthenticator)(nil)
	_ agent.CallAuthorizer = (*AssignedAuthenticator)(nil)
)

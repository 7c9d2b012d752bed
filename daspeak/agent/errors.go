package agent

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Sentinel errors. Check them with [errors.Is]; the package wraps them with
// detail.
var (
	// ErrNoCall reports that a call has no audio to give: the platform
	// refused to stream it, or no live session exists for it. A [Source]
	// wraps it; the HTTP API answers 409 with code "no_call".
	ErrNoCall = errors.New("agent: no audio source for the call")

	// ErrUnauthenticated reports a request whose bearer token an
	// [Authenticator] refused (401 "unauthenticated").
	ErrUnauthenticated = errors.New("agent: unauthenticated")

	// ErrAuthUnavailable reports a token check that failed on the server's
	// side, so the agent's token was never judged: the platform refused
	// the server's own credentials (Twilio: twilio.ErrServerCredentials),
	// or its identity API was unreachable or failed (network error,
	// timeout, 5xx). An [Authenticator] returns an error wrapping it; the
	// HTTP API answers 503 "auth_unavailable", after the same minimum
	// delay as a 401, and logs the cause at Error as a server fault.
	ErrAuthUnavailable = errors.New("agent: authentication unavailable")

	// ErrForbidden reports an agent who may not act on a call: a
	// [CallAuthorizer] found the call is not theirs (403 "forbidden").
	ErrForbidden = errors.New("agent: not allowed on this call")

	// ErrBadCallID reports a call id that is not one of the platform's
	// (not a Twilio call SID, not a Genesys conversation UUID): a
	// [CallAuthorizer] that checks the form first returns an error
	// wrapping it, and the HTTP API answers 400 "bad_request" without
	// the failure delay. The form alone decides: nothing is looked up,
	// so the answer says nothing about any call.
	ErrBadCallID = errors.New("agent: malformed call id")

	// ErrBinding reports a signed token ([Binder]) that is malformed,
	// forged, expired or bound to other values.
	ErrBinding = errors.New("agent: invalid binding token")

	// ErrNotRegistered reports a caller with no stored credential (404
	// "not_registered").
	ErrNotRegistered = errors.New("agent: caller not registered")

	// ErrAlreadyRegistered reports a register of a caller whose credential
	// is stored (409 "already_registered"); delete first.
	ErrAlreadyRegistered = errors.New("agent: caller already registered")

	// ErrBusy reports a register or verify on a call that already runs an
	// operation (409 "busy").
	ErrBusy = errors.New("agent: an operation is already running on the call")

	// ErrNotFound reports an unknown operation (404 "not_found").
	ErrNotFound = errors.New("agent: operation not found")

	// ErrClosed reports a call on a [Server] that is shutting down.
	ErrClosed = errors.New("agent: server closed")

	// ErrNotStored reports a register whose credential did not reach the
	// store; the operation ends with [EventErrorStore], never success.
	ErrNotStored = errors.New("agent: credential not stored")

	// ErrCallerID reports a caller id that is not a telephone number in
	// E.164 form after normalisation ([NormalizeCallerID]).
	ErrCallerID = errors.New("caller id is not an E.164 telephone number")

	// ErrAudioKey reports a [CredentialStore] that keeps enrolment audio
	// without a key of at least [MinAudioKeyLen] bytes to name its files.
	ErrAudioKey = errors.New("agent: enrolment audio needs a key")
)

// Error is an error answer of the HTTP API:
//
//	{"error":"human text","code":"machine_code"}
//
// with Status the HTTP status. Codes are listed in the package
// documentation.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"error"`
	// RetryAfter, when set, is sent as Retry-After (in whole seconds,
	// rounded up) with a 429 or 503.
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("agent: %d %s: %s", e.Status, e.Code, e.Message)
}

// write answers e (WriteError), with its Retry-After.
func (e *Error) write(w http.ResponseWriter) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	}
	WriteError(w, e.Status, e.Code, e.Message)
}

// Error codes of the HTTP API.
const (
	CodeUnauthenticated   = "unauthenticated"
	CodeAuthUnavailable   = "auth_unavailable"
	CodeForbidden         = "forbidden"
	CodeBadRequest        = "bad_request"
	CodeBadCallerID       = "bad_caller_id"
	CodeNotRegistered     = "not_registered"
	CodeAlreadyRegistered = "already_registered"
	CodeNoCall            = "no_call"
	CodeBusy              = "busy"
	CodeNotFound          = "not_found"
	CodeInternal          = "internal"
	// CodeUnavailable (503, with Retry-After): the server is shutting
	// down (draining) and did not start the request; another node, or
	// this one restarted, will.
	CodeUnavailable = "unavailable"
	// CodeFenced (409) refuses a start whose request_id a stop claimed
	// first (POST /stop with call_id and request_id): it never runs.
	CodeFenced = "fenced"
	// CodeRequestUsed (409) refuses a start whose request_id another
	// start used.
	CodeRequestUsed = "request_id_used"
	// CodeTooManyRequests (429, with Retry-After) refuses a start or a
	// stop that names a new request_id on a call where the agent already
	// holds oplog.MaxSubjectRequests of them, or the call
	// oplog.MaxCallRequests: nothing was started nor fenced.
	CodeTooManyRequests = "too_many_requests"
	// CodeMethodNotAllowed: 405, with Allow, for a method the path has
	// no route for.
	CodeMethodNotAllowed = "method_not_allowed"
	// CodeTooLarge: 413, a request body over 64 KiB.
	CodeTooLarge = "too_large"
	// CodeOriginNotAllowed: 403, a CORS preflight from an origin not in
	// Options.AllowedOrigins.
	CodeOriginNotAllowed = "origin_not_allowed"
)

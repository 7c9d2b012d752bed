package agent

import (
	"context"
	"net/http"

	"github.com/voicegate/voicegate"
)

// Source gets a call's customer audio for one operation. The platform
// adapters implement it: daspeak/agent/flex (Twilio Media Streams) and
// daspeak/agent/genesys (AudioHook). A Source is used concurrently by
// several operations on different calls.
//
// A Source should also implement [CallInfo]: it is what ties a request's
// caller_id to the call. Both adapters of this module do. WARNING: without
// CallInfo the server cannot check the caller at all: it takes the
// request's caller_id on trust, so an agent can record one call's voice
// under any number (register), test any number's credential against any
// call (verify), delete any number's credential (delete) and read whether
// any number is registered (status), and status always answers
// call_in_progress true. Use a Source without CallInfo only where every
// agent is trusted with every caller.
type Source interface {
	// Open returns the call's customer audio from now on. ctx bounds the
	// wait for audio to start (Options.OpenTimeout); it does not bound the
	// returned Audio. Errors wrapping [ErrNoCall] mean the call has no
	// audio to give (the API answers 409 "no_call"); any other error is
	// answered 502 "no_call" as well, with its text logged, not sent.
	Open(ctx context.Context, req SourceRequest) (Audio, error)
}

// SourceRequest names the operation a [Source] opens audio for.
type SourceRequest struct {
	// OperationID is the operation's id ("op_" and 32 hex digits).
	OperationID string
	// CallID is the Twilio CallSid or Genesys conversationId.
	CallID string
	// CallerID is the caller's number in E.164 form.
	CallerID string
}

// Audio is one operation's audio: frames of the call's customer from the
// moment of [Source.Open]. The operation reads it from one goroutine until
// its session ends (ReadFrame must return when its ctx ends: that is how
// stop, re-verify and shutdown interrupt it; io.EOF when the call ended),
// then calls Close once from the same goroutine. Close releases the audio
// (Twilio: stops the Media Stream) and must be idempotent.
type Audio interface {
	voicegate.FrameReader
	Close() error
}

// CallInfo is optionally implemented by a [Source] that knows its calls
// (Genesys: the AudioHook session gives the caller's ANI; Twilio: the
// Calls REST resource gives from/to and status). When the Source
// implements it, the server binds every request to the call:
//
//   - register, verify, reverify and delete need a call that exists and
//     is in progress (else 409 "no_call": nothing is started or deleted)
//     whose caller is known (else 400 "bad_caller_id"), and a caller_id
//     equal to the call's after [NormalizeCallerID] (else 400
//     "bad_caller_id"); an empty caller_id takes the call's;
//   - status answers call_in_progress from the Source (false for an
//     unknown call), and registered is true only for a caller_id that is
//     the call's caller: status cannot tell whether an arbitrary number
//     is registered. A call not in progress (or unknown) asked about
//     with an empty caller_id, whose caller the Source no longer knows,
//     is answered 200 call_in_progress false, caller_id "", registered
//     false: not 400, so a widget learns that the call ended.
type CallInfo interface {
	// Call returns the caller id of callID (the customer's number; ""
	// when the platform does not know it) and whether the call is live.
	// An error wrapping ErrNoCall means the call is unknown; any other
	// error is answered 500 "internal" and logged.
	Call(ctx context.Context, callID string) (callerID string, inProgress bool, err error)
}

// CallAuthorizer is optionally implemented by an [Authenticator] that can
// tell whether the agent of a request may act on a call (Genesys: the
// agent's own token can read the conversation; Twilio Flex, with
// flex.Assigned: the agent holds an accepted TaskRouter reservation of the
// call's task). The server calls it, after
// Authenticate and with its Principal, for every call-scoped request:
// status, register, verify, reverify, delete and stop (with the call of
// the operation), before it looks the call up or acts.
//
// An error wrapping [ErrAuthUnavailable] is answered 503
// "auth_unavailable", one wrapping [ErrUnauthenticated] 401
// "unauthenticated" (both after Options.AuthFailureDelay), one wrapping
// [ErrNoCall] 409 "no_call" (the agent's call has ended: refused, but
// the widget says the call ended rather than that the agent is not
// assigned; Flex: their reservation of the call's task is wrapping or
// completed), any other 403 "forbidden"; the error is logged, never
// sent, and must not contain the token. Without it, any authenticated agent can act on any call.
type CallAuthorizer interface {
	AuthorizeCall(ctx context.Context, r *http.Request, p Principal, callID string) error
}

// ResultNotifier is optionally implemented by an [Audio] that wants the
// operation's terminal event (Genesys: sent as an AudioHook event message).
// NotifyResult is called once, before Close, with a context bounded by a
// few seconds. Its error is logged.
type ResultNotifier interface {
	NotifyResult(ctx context.Context, ev Event) error
}

// Authenticator checks a request's bearer token ("Authorization: Bearer
// …"). It must be safe for concurrent use. An error means the request is
// refused: with 503 "auth_unavailable" when it wraps [ErrAuthUnavailable]
// (the server's side of the check failed: its own platform credentials
// were refused, or the platform's API could not be asked), logged at
// Error; otherwise with 401 "unauthenticated" (the token is the agent's
// problem), logged at Warn. The server answers after the same minimum
// delay whatever failed (Options.AuthFailureDelay) and never sends the
// error text; the error must never contain the token.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (Principal, error)
}

// AuthenticatorFunc adapts a function to [Authenticator].
type AuthenticatorFunc func(ctx context.Context, r *http.Request) (Principal, error)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(ctx context.Context, r *http.Request) (Principal, error) {
	return f(ctx, r)
}

// Principal is who an [Authenticator] let in: logged with each operation.
type Principal struct {
	// Subject is a stable id (Flex worker SID, Genesys user id).
	Subject string
	// Name is a display name; may be empty.
	Name string
}

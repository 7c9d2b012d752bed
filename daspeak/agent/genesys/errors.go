package genesys

import (
	"errors"

	"github.com/voicegate/voicegate/daspeak/agent"
)

// Sentinel errors. Compare with errors.Is.
var (
	// ErrToken reports an OAuth access token Genesys Cloud did not accept
	// (GET /api/v2/users/me answered 401 or 403), or a request without
	// one: the agent's side is at fault.
	ErrToken = errors.New("genesys: access token not valid")

	// ErrUnavailable reports that the Genesys Cloud API could not judge a
	// token (network error, timeout, 429, 5xx, an answer without a user
	// id). Errors returned for it are *ServerError values.
	ErrUnavailable = errors.New("genesys: Genesys Cloud API unavailable")

	// ErrConversation reports an agent whose token cannot read a
	// conversation (GET /api/v2/conversations/{id} answered 403 or 404):
	// they may not act on it. (An id that is not a conversation id is
	// agent.ErrBadCallID.)
	ErrConversation = errors.New("genesys: the agent cannot see the conversation")

	// ErrCallEnded reports an agent whose part in a conversation has
	// ended (Authenticator.AuthorizeCall): the conversation's endTime is
	// set, or every participant of theirs on it has disconnected (they
	// hung up, transferred it, or were only offered it and declined);
	// the conversation may go on with others. It comes with
	// agent.ErrNoCall, not agent.ErrForbidden: 409 "no_call". It grants
	// nothing.
	ErrCallEnded = errors.New("genesys: the agent's part in the call has ended")

	// ErrRegion reports a Genesys Cloud host or environment that is not a
	// known region.
	ErrRegion = errors.New("genesys: unknown Genesys Cloud region")

	// ErrDetached ends the audio of an operation whose conversation was
	// attached to by a newer operation.
	ErrDetached = errors.New("genesys: another operation took the conversation's audio")

	// ErrCallerConflict reports an AudioHook session refused because it
	// names another caller (participant ani) than the live session of its
	// conversation or, with ErrConversationEnded, than its conversation
	// that has ended (Source.Run), and an operation whose caller id is not
	// that of the conversation's live sessions (Source.Open, with
	// agent.ErrNoCall).
	ErrCallerConflict = errors.New("genesys: AudioHook session names another caller than the conversation's live session")

	// ErrConversationEnded reports an AudioHook session refused because
	// its conversation ended (its last session closed) less than
	// SourceOptions.EndedTTL ago (Source.Run), whichever caller it names:
	// Genesys Cloud does not re-establish sessions, and an ended call stays
	// ended. One naming another caller wraps ErrCallerConflict too.
	ErrConversationEnded = errors.New("genesys: AudioHook session on a conversation that has ended")

	// ErrSessionEnded ends the audio of an operation whose AudioHook
	// session ended while another session of the conversation is live:
	// the call goes on, the operation's audio does not.
	ErrSessionEnded = errors.New("genesys: the operation's AudioHook session ended; the conversation goes on")

	// ErrNoConversation reports an AudioHook session without a
	// conversation id (a connection probe cannot be attached to).
	ErrNoConversation = errors.New("genesys: AudioHook session has no conversation")
)

// ConflictInfo is the info of the disconnect "error" that refuses a
// session naming another caller than its conversation's live session.
const ConflictInfo = "conversation already monitored for another caller: session refused"

// EndedInfo is the info of the disconnect "error" that refuses a session
// on a conversation that has ended (ErrConversationEnded).
const EndedInfo = "conversation ended: session refused"

// ServerError is a failure of the server's side of a token check. Kind is
// ErrUnavailable; Err the cause. It matches Kind, agent.ErrAuthUnavailable
// (so an agent.Server answers 503 "auth_unavailable", not 401) and Err. It
// never contains the token.
type ServerError struct {
	Kind error
	Err  error
}

// Error implements error.
func (e *ServerError) Error() string { return e.Kind.Error() + ": " + e.Err.Error() }

// Unwrap returns Kind, agent.ErrAuthUnavailable and Err.
func (e *ServerError) Unwrap() []error { return []error{e.Kind, agent.ErrAuthUnavailable, e.Err} }

package flex

import (
	"errors"

	"github.com/voicegate/voicegate/daspeak/agent"
)

// Sentinel errors. Compare with errors.Is.
var (
	// ErrNoToken reports a request without a Flex token (no
	// "Authorization: Bearer" or X-Flex-Token header, no Token field). It
	// wraps twilio.ErrFlexToken: the agent's side is at fault.
	ErrNoToken = errors.New("flex: no Flex token in the request")

	// ErrServerCredentials reports that Twilio refused this server's own
	// credentials (TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN, or the API
	// key) while validating a Flex token: the server is misconfigured, the
	// agent's token was never judged. Errors returned for it are
	// *ServerError values.
	ErrServerCredentials = errors.New("flex: Twilio refused the server's credentials")

	// ErrTwilioUnavailable reports that Twilio IAM (or TaskRouter, for
	// Assignment) could not be asked (network error, timeout, an answer
	// that is not Twilio's JSON, 429 or 5xx after retries). The agent was
	// never judged.
	ErrTwilioUnavailable = errors.New("flex: Twilio IAM unavailable")

	// ErrNotAssigned reports an agent who holds no accepted reservation
	// of a task on the call (Assignment). It comes with
	// agent.ErrForbidden: the agent's side, 403 "forbidden".
	ErrNotAssigned = errors.New("flex: the agent is not assigned to the call")

	// ErrCallEnded reports an agent whose reservation of the call's task
	// is "wrapping" or "completed" (Assignment): their part in the call
	// has ended (they hung up, or transferred it and it goes on with
	// another agent). It comes with agent.ErrNoCall, not
	// agent.ErrForbidden: 409 "no_call". It grants nothing.
	ErrCallEnded = errors.New("flex: the agent's part in the call has ended")

	// ErrWorkspace reports that TaskRouter does not know the configured
	// workspace SID (Assignment): the server is misconfigured, the agent
	// was never judged. Errors returned for it are *ServerError values.
	ErrWorkspace = errors.New("flex: TaskRouter workspace not found")

	// ErrBinding reports a Media Stream whose binding parameter is missing,
	// forged, expired or made for another operation.
	ErrBinding = errors.New("flex: media stream binding refused")

	// ErrNoOperation reports a Media Stream, correctly bound, for an
	// operation that no longer waits for audio (it ended or timed out).
	ErrNoOperation = errors.New("flex: no operation waits for this media stream")
)

// ServerError is a failure of the server's side of a Flex token check
// or of a call assignment check (Assignment): it matches Kind
// (ErrServerCredentials, ErrTwilioUnavailable or ErrWorkspace),
// agent.ErrAuthUnavailable (so an agent.Server answers 503
// "auth_unavailable") and the cause Err (a *twilio.CredentialsError
// matching twilio.ErrServerCredentials, or a *twilio.APIError or transport
// error). It never contains the token.
type ServerError struct {
	// Kind is ErrServerCredentials, ErrTwilioUnavailable or ErrWorkspace.
	Kind error
	// Err is the underlying error.
	Err error
}

// Error implements error.
func (e *ServerError) Error() string { return e.Kind.Error() + ": " + e.Err.Error() }

// Unwrap returns Kind, agent.ErrAuthUnavailable and Err.
func (e *ServerError) Unwrap() []error { return []error{e.Kind, agent.ErrAuthUnavailable, e.Err} }

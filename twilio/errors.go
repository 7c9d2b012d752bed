package twilio

import (
	"errors"
	"fmt"
)

// Sentinel errors. Compare with errors.Is.
var (
	// ErrSignature reports a missing or invalid X-Twilio-Signature.
	ErrSignature = errors.New("twilio: invalid X-Twilio-Signature")
	// ErrNoAuthToken reports a configuration without any auth token to
	// validate signatures with. X-Twilio-Signature is keyed with the
	// account's auth token; an API key secret cannot validate it.
	ErrNoAuthToken = errors.New("twilio: no auth token configured: X-Twilio-Signature validation needs the account's auth token (an API key cannot validate signatures)")
	// ErrNoPublicURL reports an AcceptOptions without PublicURL or PublicOrigin.
	ErrNoPublicURL = errors.New("twilio: no public URL configured")
	// ErrIdleTimeout ends a stream that received no message for
	// AcceptOptions.IdleTimeout.
	ErrIdleTimeout = errors.New("twilio: media stream idle timeout")
	// ErrMalformed ends a stream that received a message it could not
	// parse: not JSON, a media payload that is not base64, or an event
	// without its object. The stream closes the WebSocket with status 1007
	// (invalid frame payload data, RFC 6455 section 7.4.1); the error also
	// wraps the *voicegate.CloseError sent.
	ErrMalformed = errors.New("twilio: malformed media stream message")
	// ErrNotStarted reports an outbound message sent before the start event
	// told the stream its streamSid.
	ErrNotStarted = errors.New("twilio: stream has not started")
	// ErrMediaFormat ends a stream whose start announces a mediaFormat
	// other than Twilio's {"encoding":"audio/x-mulaw","sampleRate":8000,
	// "channels":1}: its audio would be read as μ-law and judged as
	// someone's voice. The stream closes the WebSocket with status 1003
	// (unsupported data, RFC 6455 section 7.4.1) naming the format, Start
	// returns the error, and the error wraps the *voicegate.CloseError
	// sent. A field the start leaves out is taken as Twilio's value.
	ErrMediaFormat = errors.New("twilio: unsupported start.mediaFormat")
	// ErrUnsupportedAudio reports outbound audio that is not 8 kHz mono
	// μ-law, A-law or 16-bit PCM.
	ErrUnsupportedAudio = errors.New("twilio: unsupported outbound audio")
	// ErrParameterTooLong reports a <Parameter> whose name and value are
	// 500 characters or more together.
	ErrParameterTooLong = errors.New("twilio: parameter name and value must be under 500 characters")
	// ErrTooManyParameters reports more than 99 stream parameters in a REST
	// request.
	ErrTooManyParameters = errors.New("twilio: at most 99 stream parameters")
	// ErrQueryInStreamURL reports a stream URL with a query string, which
	// Twilio refuses (error 31920).
	ErrQueryInStreamURL = errors.New("twilio: stream url must not have a query string")
	// ErrTTL reports an access token lifetime outside (0, 24 h].
	ErrTTL = errors.New("twilio: access token ttl must be at most 24h")
	// ErrFlexToken reports a Flex token that Twilio did not confirm as valid.
	ErrFlexToken = errors.New("twilio: flex token not valid")
	// ErrInvalidArgument reports a missing or malformed argument.
	ErrInvalidArgument = errors.New("twilio: invalid argument")
	// ErrServerCredentials reports that Twilio refused this server's own
	// credentials (account SID and auth token, or API key): a server
	// configuration error, not a fault of the token or request being
	// checked. The error is a *CredentialsError naming the credential.
	ErrServerCredentials = errors.New("twilio: Twilio refused the server's credentials")
	// ErrCreateUncertain reports a create (StartStream, CreateWebChat) that
	// failed after the request may have reached Twilio (a 5xx answer, a
	// transport error or a timeout): the resource may exist. It wraps the
	// last failure.
	ErrCreateUncertain = errors.New("twilio: create failed after it may have taken effect")
)

// Credential names the server credential Twilio refused.
type Credential int

const (
	// CredentialAuthToken is the pair AccountSID and AuthToken.
	CredentialAuthToken Credential = iota + 1
	// CredentialAPIKey is the pair APIKeySID and APIKeySecret.
	CredentialAPIKey
	// CredentialAccountSID is the AccountSID in the request path, unknown
	// to Twilio for the credentials given (HTTP 404 on the account).
	CredentialAccountSID
)

// String returns the option names of the credential.
func (c Credential) String() string {
	switch c {
	case CredentialAuthToken:
		return "AccountSID and AuthToken"
	case CredentialAPIKey:
		return "APIKeySID and APIKeySecret"
	case CredentialAccountSID:
		return "AccountSID"
	}
	return "Credential(" + fmt.Sprint(int(c)) + ")"
}

// CredentialsError reports that Twilio answered HTTP 401 or 403 (or 404 for
// the account) to a request authenticated with this server's own
// credentials. It is a server configuration error: the agent token or
// request being checked was not evaluated. It matches ErrServerCredentials
// with errors.Is and unwraps to Twilio's *APIError. Its message names the
// credential and the fix, never a secret.
type CredentialsError struct {
	// Credential is the option pair to fix.
	Credential Credential
	// AccountSID and APIKeySID (when an API key was used) identify the
	// refused credential.
	AccountSID string
	APIKeySID  string
	// Err is Twilio's answer.
	Err *APIError
}

// Error implements error.
func (e *CredentialsError) Error() string {
	status := ""
	if e.Err != nil {
		status = fmt.Sprintf(" (HTTP %d", e.Err.Status)
		if e.Err.Code != 0 {
			status += fmt.Sprintf(", error %d", e.Err.Code)
		}
		status += ")"
	}
	const notToken = "; this is the server's configuration, not the token or request being checked"
	switch e.Credential {
	case CredentialAPIKey:
		return fmt.Sprintf("twilio: server credentials refused: Twilio rejected API key %s for account %s%s: "+
			"check APIKeySID and APIKeySecret (the key must belong to that account, not be revoked, and be allowed to call this API)%s",
			e.APIKeySID, e.AccountSID, status, notToken)
	case CredentialAccountSID:
		return fmt.Sprintf("twilio: server credentials refused: Twilio does not know account %s for these credentials%s: "+
			"check AccountSID (the AC… SID of the account that owns the credentials)%s", e.AccountSID, status, notToken)
	}
	return fmt.Sprintf("twilio: server credentials refused: Twilio rejected the auth token of account %s%s: "+
		"check AccountSID and AuthToken (the account's current primary auth token; after a token rotation the old one stops working; "+
		"an API key may replace it for REST calls and Flex token checks, but X-Twilio-Signature validation always needs the auth token)%s",
		e.AccountSID, status, notToken)
}

// Is reports whether target is ErrServerCredentials.
func (e *CredentialsError) Is(target error) bool { return target == ErrServerCredentials }

// Unwrap returns Twilio's *APIError, if any.
func (e *CredentialsError) Unwrap() error {
	if e.Err == nil {
		return nil
	}
	return e.Err
}

// APIError is an error answer from a Twilio REST API, decoded from its JSON
// error body {"code","message","more_info","status"}.
type APIError struct {
	// Status is the HTTP status code of the response.
	Status int `json:"status"`
	// Code is Twilio's error code, for example 20404.
	Code int `json:"code"`
	// Message is Twilio's error message.
	Message string `json:"message"`
	// MoreInfo is a link to the error's documentation.
	MoreInfo string `json:"more_info"`
}

// Error implements error.
func (e *APIError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("twilio: HTTP %d: error %d: %s", e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("twilio: HTTP %d: %s", e.Status, e.Message)
}

// IsAPIError reports whether err is or wraps an *APIError with the given
// Twilio error code (any code when code is 0), and returns it.
func IsAPIError(err error, code int) (*APIError, bool) {
	var e *APIError
	if errors.As(err, &e) && (code == 0 || e.Code == code) {
		return e, true
	}
	return nil, false
}

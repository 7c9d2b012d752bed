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
	// validate signatures with.
	ErrNoAuthToken = errors.New("twilio: no auth token configured")
	// ErrNoPublicURL reports an AcceptOptions without PublicURL or PublicOrigin.
	ErrNoPublicURL = errors.New("twilio: no public URL configured")
	// ErrIdleTimeout ends a stream that received no message for
	// AcceptOptions.IdleTimeout.
	ErrIdleTimeout = errors.New("twilio: media stream idle timeout")
	// ErrNotStarted reports an outbound message sent before the start event
	// told the stream its streamSid.
	ErrNotStarted = errors.New("twilio: stream has not started")
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
)

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

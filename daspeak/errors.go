package daspeak

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Exception names of the das-Peak error catalogue (the "exception" field of
// an error body).
const (
	ExceptionAudioInput               = "AudioInputException"
	ExceptionSignalNoiseRatio         = "SignalNoiseRatioException"
	ExceptionVoiceDurationIsNotEnough = "VoiceDurationIsNotEnoughException"
	ExceptionInvalidChannel           = "InvalidChannelException"
	ExceptionInsufficientQuality      = "InsufficientQuality"
	ExceptionCalibrationNotAvailable  = "CalibrationNotAvailable"
	ExceptionInvalidCredential        = "InvalidCredential"
	ExceptionUnsupportedMediaType     = "UnsupportedMediaType"
	ExceptionModelNotAvailable        = "ModelNotAvailable"
	ExceptionNoAudio                  = "NoAudioException"
	ExceptionDaspeakInternal          = "DaspeakInternalException"
)

// Sentinels matched by errors.Is against an *APIError, by exception name.
var (
	ErrAudioInput              = errors.New("daspeak: audio input rejected")
	ErrSignalNoiseRatio        = errors.New("daspeak: noise level exceeded")
	ErrNetSpeechTooShort       = errors.New("daspeak: net speech too short")
	ErrInvalidChannel          = errors.New("daspeak: invalid channel")
	ErrInsufficientQuality     = errors.New("daspeak: insufficient audio quality")
	ErrCalibrationNotAvailable = errors.New("daspeak: calibration not available")
	ErrInvalidCredential       = errors.New("daspeak: invalid credential")
	ErrUnsupportedMediaType    = errors.New("daspeak: unsupported media type")
	ErrModelNotAvailable       = errors.New("daspeak: model not available")
	ErrNoAudio                 = errors.New("daspeak: no audio")
	ErrInternal                = errors.New("daspeak: internal server error")
	ErrUnauthorized            = errors.New("daspeak: unauthorized")
)

// Finer sentinels for the kinds of AudioInputException. An *APIError that
// matches one of them also matches ErrAudioInput. They are recognised from
// the das-Peak message text, as das-Peak clients do.
var (
	// ErrTooManyChannels: "The wav has more channels than are accepted by the system".
	ErrTooManyChannels = errors.New("daspeak: too many audio channels")
	// ErrSampleRate: "The sample rate is not supported, must be 8 Khz or 16 Khz".
	ErrSampleRate = errors.New("daspeak: unsupported sample rate")
	// ErrUnsupportedCodec: "Provided audio data uses an unsupported codec. …".
	ErrUnsupportedCodec = errors.New("daspeak: unsupported audio codec")
	// ErrAudioTooLong: "The wav duration is longer than 30 seconds".
	ErrAudioTooLong = errors.New("daspeak: audio too long")
)

// Sentinels for failures of the HTTP exchange itself rather than of
// das-Peak's processing.
var (
	// ErrRateLimited matches an *APIError for HTTP 429 without a das-Peak
	// exception (the gateway's rate limiter), left after retries ran out.
	ErrRateLimited = errors.New("daspeak: rate limited")
	// ErrResponseTooLarge reports a response body beyond
	// ClientOptions.MaxResponseBytes. It is not retried.
	ErrResponseTooLarge = errors.New("daspeak: response too large")
	// ErrAudioTooLarge reports audio beyond ClientOptions.MaxAudioBytes; the
	// request is not sent.
	ErrAudioTooLarge = errors.New("daspeak: audio too large")
	// ErrMalformedResponse reports a success response whose body is not the
	// JSON das-Peak sends. It is not retried.
	ErrMalformedResponse = errors.New("daspeak: malformed response")
)

var exceptionSentinels = map[string]error{
	ExceptionAudioInput:               ErrAudioInput,
	ExceptionSignalNoiseRatio:         ErrSignalNoiseRatio,
	ExceptionVoiceDurationIsNotEnough: ErrNetSpeechTooShort,
	ExceptionInvalidChannel:           ErrInvalidChannel,
	ExceptionInsufficientQuality:      ErrInsufficientQuality,
	ExceptionCalibrationNotAvailable:  ErrCalibrationNotAvailable,
	ExceptionInvalidCredential:        ErrInvalidCredential,
	ExceptionUnsupportedMediaType:     ErrUnsupportedMediaType,
	ExceptionModelNotAvailable:        ErrModelNotAvailable,
	ExceptionNoAudio:                  ErrNoAudio,
	ExceptionDaspeakInternal:          ErrInternal,
}

// audioInputKinds maps the message substrings das-Peak clients match on to
// the finer AudioInputException sentinels.
var audioInputKinds = []struct {
	substr string
	err    error
}{
	{"more channels than", ErrTooManyChannels},
	{"sample rate", ErrSampleRate},
	{"unsupported codec", ErrUnsupportedCodec},
	{"duration is longer", ErrAudioTooLong},
}

// APIError is an error reported by das-Peak (or by an engine in das-Peak's
// terms). Branch on it with errors.Is against the sentinels above, or with
// errors.As to read the fields. The exception name decides the sentinel,
// never the HTTP status; only errors without an exception (gateway answers
// such as 401 {"message":"no Authorization header found"}, an HTML 502)
// match by status: ErrUnauthorized for 401/403, ErrRateLimited for 429.
type APIError struct {
	// Status is the HTTP status, or 0 when the error did not come over HTTP.
	Status int
	// Exception is the das-Peak exception name, e.g.
	// "VoiceDurationIsNotEnoughException"; "" for non-JSON error bodies.
	Exception string
	// Message is the human message ("error" field, or the gateway's
	// "message").
	Message string
	// Detected is the net speech in seconds das-Peak detected, parsed from a
	// VoiceDurationIsNotEnoughException message; 0 otherwise.
	Detected float64
	// Required is the net speech in seconds das-Peak asked for, parsed from
	// the same message ("… 2.55s < 3.00s" gives Detected 2.55, Required 3);
	// 0 otherwise.
	Required float64
	// Body is the raw response body (bounded), for diagnostics.
	Body []byte
}

// NewAPIError returns an *APIError for a das-Peak exception, filling
// Detected and Required from a VoiceDurationIsNotEnoughException message.
// Engines use it to report failures in das-Peak's terms; status may be 0.
func NewAPIError(status int, exception, message string) *APIError {
	e := &APIError{Status: status, Exception: exception, Message: message}
	if exception == ExceptionVoiceDurationIsNotEnough {
		e.Detected, e.Required = parseVoiceDuration(message)
	}
	return e
}

// parseVoiceDuration reads "Voice duration is not enough 2.55s < 3.00s" the
// way das-Peak clients do: the third token from the end is the detected
// duration, the last one the required duration.
func parseVoiceDuration(msg string) (detected, required float64) {
	f := strings.Fields(msg)
	if len(f) < 3 {
		return 0, 0
	}
	num := func(s string) float64 {
		v, err := strconv.ParseFloat(strings.TrimSuffix(s, "s"), 64)
		if err != nil || v < 0 || v != v || v > 1e9 {
			return 0
		}
		return v
	}
	return num(f[len(f)-3]), num(f[len(f)-1])
}

// Error returns "daspeak: <Exception> (<Status>): <Message>", or
// "daspeak: HTTP <Status>: <Message>" when there is no exception.
func (e *APIError) Error() string {
	if e.Exception != "" {
		return fmt.Sprintf("daspeak: %s (%d): %s", e.Exception, e.Status, e.Message)
	}
	return fmt.Sprintf("daspeak: HTTP %d: %s", e.Status, e.Message)
}

// Is reports whether target is the sentinel for e's exception (or, for an
// AudioInputException, for its kind).
func (e *APIError) Is(target error) bool {
	if s, ok := exceptionSentinels[e.Exception]; ok && s == target {
		return true
	}
	if e.Exception == ExceptionAudioInput {
		for _, k := range audioInputKinds {
			if k.err == target && strings.Contains(e.Message, k.substr) {
				return true
			}
		}
	}
	if e.Exception == "" {
		switch target {
		case ErrUnauthorized:
			return e.Status == 401 || e.Status == 403
		case ErrRateLimited:
			return e.Status == 429
		}
	}
	return false
}

// Calibration returns the calibration named by a CalibrationNotAvailable
// message ("The calibration <name> is not available"), or "".
func (e *APIError) Calibration() string {
	if e.Exception != ExceptionCalibrationNotAvailable {
		return ""
	}
	if f := strings.Fields(e.Message); len(f) > 2 {
		return f[2]
	}
	return ""
}

// ModelHash returns the model hash named at the end of a ModelNotAvailable
// message, or "".
func (e *APIError) ModelHash() string {
	if e.Exception != ExceptionModelNotAvailable {
		return ""
	}
	if f := strings.Fields(e.Message); len(f) > 0 {
		return f[len(f)-1]
	}
	return ""
}

// Temporary reports whether the request may succeed if sent again: HTTP 429
// and 5xx answers. The Client retries these itself.
func (e *APIError) Temporary() bool {
	return e.Status == 429 || e.Status >= 500
}

// RateLimitError reports a request that das-Peak, or the gateway in front
// of it, kept answering with HTTP 429 Too Many Requests until the Client
// gave up: after ClientOptions.MaxRetries retries, or at once when the
// answer's Retry-After was beyond ClientOptions.MaxRetryAfter. It matches
// ErrRateLimited, and errors.As finds the last answer's *APIError through
// it.
type RateLimitError struct {
	// Attempts is the number of requests sent.
	Attempts int
	// RetryAfter is the last answer's Retry-After, or 0 when it had none.
	RetryAfter time.Duration
	// Err is the last 429 answer.
	Err *APIError
}

// Error returns "daspeak: rate limited after <n> attempts (Retry-After
// <d>): <last answer>".
func (e *RateLimitError) Error() string {
	ra := ""
	if e.RetryAfter > 0 {
		ra = fmt.Sprintf(" (Retry-After %v)", e.RetryAfter)
	}
	return fmt.Sprintf("daspeak: rate limited after %d attempts%s: %v", e.Attempts, ra, e.Err)
}

// Unwrap returns the last answer's *APIError.
func (e *RateLimitError) Unwrap() error { return e.Err }

// Is reports whether target is ErrRateLimited.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// Session errors, carried by the Err field of error events and returned by
// Register and Verify for an invalid configuration.
var (
	// ErrParameters reports an invalid session configuration.
	ErrParameters = errors.New("daspeak: invalid session parameters")
	// ErrConsumerNotReady reports that no audio arrived in time.
	ErrConsumerNotReady = errors.New("daspeak: no audio received")
	// ErrAudio reports a stream that ended or failed, or audio that cannot
	// be used, before enough net speech was collected.
	ErrAudio = errors.New("daspeak: not enough usable audio")
	// ErrStore reports a register credential that Config.Store did not
	// keep within StoreRetries and StoreTimeout (the Err of an error-store
	// event). The error also wraps the store's last error.
	ErrStore = errors.New("daspeak: credential not stored")
	// ErrInvalidResult reports an engine answer with a value outside its
	// documented range: an authenticity that is neither in [0, 1] nor
	// AuthenticityNotPerformed, a score outside [0, 1] (NaN included), or
	// an empty register credential.
	// The session ends with error-das-Peak rather than judge it.
	ErrInvalidResult = errors.New("daspeak: engine result out of range")
)

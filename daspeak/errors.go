package daspeak

import (
	"errors"
	"fmt"
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

// APIError is an error reported by das-Peak (or by an engine in das-Peak's
// terms). Branch on it with errors.Is against the sentinels above, or with
// errors.As to read the fields.
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
	// Body is the raw response body (bounded), for diagnostics.
	Body []byte
}

func (e *APIError) Error() string {
	if e.Exception != "" {
		return fmt.Sprintf("daspeak: %s (%d): %s", e.Exception, e.Status, e.Message)
	}
	return fmt.Sprintf("daspeak: HTTP %d: %s", e.Status, e.Message)
}

// Is reports whether target is the sentinel for e's exception.
func (e *APIError) Is(target error) bool {
	if s, ok := exceptionSentinels[e.Exception]; ok && s == target {
		return true
	}
	if target == ErrUnauthorized && (e.Status == 401 || e.Status == 403) && e.Exception == "" {
		return true
	}
	return false
}

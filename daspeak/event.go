package daspeak

import (
	"encoding/json"
	"errors"
	"math"
	"time"
)

// EventType names a session event. The result and error names are those of
// das-Peak Streaming's agent integration (not verified against a public
// das-Peak Streaming source; see the package documentation).
type EventType string

// Event types. Every session emits zero or more EventProgress and then
// exactly one terminal event.
const (
	// EventProgress reports net speech collected so far.
	EventProgress EventType = "progress"
	// EventResultSuccess: register produced a credential; verify scored at
	// or above the score threshold. Both passed the authenticity threshold.
	EventResultSuccess EventType = "result-success"
	// EventResultFailScore: verify scored below the score threshold.
	EventResultFailScore EventType = "result-fail-score"
	// EventResultFailSpoof: the engine's authenticity was below the
	// authenticity threshold.
	EventResultFailSpoof EventType = "result-fail-spoof"
	// EventErrorConsumerNotReady: no audio arrived within NoAudioTimeout.
	EventErrorConsumerNotReady EventType = "error-consumer-not-ready"
	// EventErrorParameters: the configuration is invalid. Nothing was read.
	EventErrorParameters EventType = "error-parameters"
	// EventErrorAudio: the audio stream ended or failed, or the audio could
	// not be used, before enough net speech was collected.
	EventErrorAudio EventType = "error-audio"
	// EventErrorDasPeak: the engine failed.
	EventErrorDasPeak EventType = "error-das-Peak"
)

// IsTerminal reports whether t is one of the seven result and error types
// that end a session. Progress, the empty type and types this package does
// not define are not terminal.
func (t EventType) IsTerminal() bool {
	switch t {
	case EventResultSuccess, EventResultFailScore, EventResultFailSpoof,
		EventErrorConsumerNotReady, EventErrorParameters, EventErrorAudio, EventErrorDasPeak:
		return true
	}
	return false
}

// Operation is what a session does.
type Operation string

// Operations.
const (
	OperationRegister Operation = "register"
	OperationVerify   Operation = "verify"
)

// Event is one step of a session, as returned by [Session.Next]. Which
// fields are set depends on Type; see each field.
type Event struct {
	// Type of the event.
	Type EventType
	// Operation of the session.
	Operation Operation

	// NetSpeech is the net speech the session's voice activity detector
	// has counted so far (all events).
	NetSpeech time.Duration
	// NetSpeechNeeded is the net speech the session collects before it
	// calls the engine (all events).
	NetSpeechNeeded time.Duration
	// AudioDuration is the duration of the collected audio: the audio
	// sent to the engine, with long pauses shortened (all events).
	AudioDuration time.Duration

	// ModelHash is the model used (results and engine errors, when known).
	ModelHash string
	// EngineNetSpeech and EngineAudioDuration are the engine's own
	// figures for the audio (results).
	EngineNetSpeech     time.Duration
	EngineAudioDuration time.Duration
	// Authenticity is the engine's anti-spoofing value (results).
	Authenticity float64
	// AuthenticityThreshold is the threshold applied (results).
	AuthenticityThreshold float64
	// Score is the similarity score (verify results except
	// result-fail-spoof).
	Score float64
	// ScoreThreshold is the threshold applied (verify results).
	ScoreThreshold float64

	// Credential is the new credential (register result-success).
	Credential string
	// Audio is the collected audio as a WAV file (register
	// result-success). It is left out of JSON unless the session's
	// Config.AudioInJSON is set.
	Audio []byte
	// Stored reports that Config.Store kept the credential (register
	// result-success with a store).
	Stored bool
	// StoreErr is the last error of Config.Store when it failed after all
	// retries (register result-success): the credential is in Credential
	// and must be kept by other means.
	StoreErr error

	// Err is the cause of an error event (error-*): for error-das-Peak,
	// usually an *APIError.
	Err error
	// Exception is the das-Peak exception name of Err, when it has one.
	Exception string

	audioInJSON bool
}

// IsTerminal reports whether e ends its session.
func (e Event) IsTerminal() bool { return e.Type.IsTerminal() }

// eventJSON is the wire form of Event. Durations are seconds as JSON
// numbers, as das-Peak reports them; names are snake_case, as das-Peak's
// REST API spells its fields.
type eventJSON struct {
	Type                  EventType `json:"type"`
	Operation             Operation `json:"operation"`
	NetSpeech             float64   `json:"net_speech"`
	NetSpeechNeeded       float64   `json:"net_speech_needed"`
	AudioDuration         float64   `json:"audio_duration"`
	ModelHash             string    `json:"model_hash,omitempty"`
	EngineNetSpeech       *float64  `json:"engine_net_speech,omitempty"`
	EngineAudioDuration   *float64  `json:"engine_audio_duration,omitempty"`
	Authenticity          *float64  `json:"authenticity,omitempty"`
	AuthenticityThreshold *float64  `json:"authenticity_threshold,omitempty"`
	Score                 *float64  `json:"score,omitempty"`
	ScoreThreshold        *float64  `json:"score_threshold,omitempty"`
	Credential            string    `json:"credential,omitempty"`
	Audio                 []byte    `json:"audio,omitempty"`
	Stored                *bool     `json:"stored,omitempty"`
	StoreError            string    `json:"store_error,omitempty"`
	Error                 string    `json:"error,omitempty"`
	Exception             string    `json:"exception,omitempty"`
}

func seconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }

func ptr[T any](v T) *T { return &v }

// MarshalJSON encodes the event for user interfaces:
//
//	{"type":"result-success","operation":"verify","net_speech":3.52,
//	 "net_speech_needed":3.5,"audio_duration":5.1,"model_hash":"…",
//	 "engine_net_speech":3.4,"engine_audio_duration":5.1,
//	 "authenticity":1,"authenticity_threshold":0.8,
//	 "score":0.91,"score_threshold":0.5}
//
// Durations are in seconds with millisecond precision. Result fields appear
// only on result events (score and score_threshold only on verify),
// credential and stored on a register success, audio (base64) only when
// the session's Config.AudioInJSON is set, error and exception on error
// events, store_error when the store failed.
func (e Event) MarshalJSON() ([]byte, error) {
	j := eventJSON{
		Type:            e.Type,
		Operation:       e.Operation,
		NetSpeech:       seconds(e.NetSpeech),
		NetSpeechNeeded: seconds(e.NetSpeechNeeded),
		AudioDuration:   seconds(e.AudioDuration),
		ModelHash:       e.ModelHash,
		Credential:      e.Credential,
		Exception:       e.Exception,
	}
	switch e.Type {
	case EventResultSuccess, EventResultFailScore, EventResultFailSpoof:
		j.EngineNetSpeech = ptr(seconds(e.EngineNetSpeech))
		j.EngineAudioDuration = ptr(seconds(e.EngineAudioDuration))
		j.Authenticity = ptr(e.Authenticity)
		j.AuthenticityThreshold = ptr(e.AuthenticityThreshold)
		if e.Operation == OperationVerify {
			j.ScoreThreshold = ptr(e.ScoreThreshold)
			if e.Type != EventResultFailSpoof {
				j.Score = ptr(e.Score)
			}
		}
		if e.Operation == OperationRegister && e.Type == EventResultSuccess {
			j.Stored = ptr(e.Stored)
		}
	}
	if e.audioInJSON {
		j.Audio = e.Audio
	}
	if e.StoreErr != nil {
		j.StoreError = e.StoreErr.Error()
	}
	if e.Err != nil {
		j.Error = e.Err.Error()
	}
	return json.Marshal(j)
}

// exceptionOf returns the das-Peak exception name carried by err, if any.
func exceptionOf(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Exception
	}
	return ""
}

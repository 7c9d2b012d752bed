package daspeak

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"time"
)

// EventType names a session event. The result and error names are those of
// das-Peak Streaming's agent integration (not verified against a public
// das-Peak Streaming source; see the package documentation), except
// EventErrorStore, which is voicegate's own.
type EventType string

// Event types. Every session emits zero or more EventProgress and then
// exactly one terminal event.
const (
	// EventProgress reports net speech collected so far.
	EventProgress EventType = "progress"
	// EventResultSuccess: register produced a credential and, when
	// Config.Store is set, the store kept it; verify scored at or above the
	// score threshold. Both passed the authenticity threshold, unless the
	// engine did no anti-spoofing (Event.AntiSpoofing).
	EventResultSuccess EventType = "result-success"
	// EventResultFailScore: verify scored below the score threshold.
	EventResultFailScore EventType = "result-fail-score"
	// EventResultFailSpoof: the engine's authenticity was below the
	// authenticity threshold. Never reported when the engine did no
	// anti-spoofing.
	EventResultFailSpoof EventType = "result-fail-spoof"
	// EventErrorConsumerNotReady: no audio arrived within NoAudioTimeout.
	EventErrorConsumerNotReady EventType = "error-consumer-not-ready"
	// EventErrorParameters: the configuration is invalid. Nothing was read.
	EventErrorParameters EventType = "error-parameters"
	// EventErrorAudio: the audio stream ended or failed, or the audio could
	// not be used, before enough net speech was collected.
	EventErrorAudio EventType = "error-audio"
	// EventErrorDasPeak: the engine failed, or answered with values outside
	// their documented range (ErrInvalidResult).
	EventErrorDasPeak EventType = "error-das-Peak"
	// EventErrorStore: register made a credential that passed the
	// authenticity threshold, but Config.Store did not keep it within
	// StoreRetries and StoreTimeout. Err matches ErrStore and wraps the
	// store's last error. The event carries the credential (Credential),
	// the collected audio (Audio) and the model hash so the application
	// can keep them some other way; as on a success, neither reaches JSON
	// unless the session asked for it. This type is voicegate's addition to
	// the das-Peak Streaming names.
	EventErrorStore EventType = "error-store"
)

// IsTerminal reports whether t is one of the eight result and error types
// that end a session. Progress, the empty type and types this package does
// not define are not terminal.
func (t EventType) IsTerminal() bool {
	switch t {
	case EventResultSuccess, EventResultFailScore, EventResultFailSpoof,
		EventErrorConsumerNotReady, EventErrorParameters, EventErrorAudio, EventErrorDasPeak,
		EventErrorStore:
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

// AntiSpoofing says whether the engine checked the audio for spoofing.
type AntiSpoofing string

// AntiSpoofing values of result events (and of error-store). Other events
// carry "".
const (
	// AntiSpoofingPerformed: the engine reported an authenticity in
	// [0, 1] and the session applied AuthenticityThreshold to it.
	AntiSpoofingPerformed AntiSpoofing = "performed"
	// AntiSpoofingNotPerformed: the engine reported
	// [AuthenticityNotPerformed]; no threshold was applied and the result
	// rests on the score alone (verify) or on the credential alone
	// (register). The session never turns this into a passed check: the
	// event says so instead of giving an authenticity.
	AntiSpoofingNotPerformed AntiSpoofing = "not-performed"
)

// Event is one step of a session, as returned by [Session.Next]. Which
// fields are set depends on Type; see each field.
//
// Credential and Audio are biometric data: they stay in the Go value and
// are left out of JSON unless the session's Config.CredentialInJSON or
// Config.AudioInJSON asks for them.
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

	// ModelHash is the model used (results, engine errors when known,
	// error-store).
	ModelHash string
	// EngineNetSpeech and EngineAudioDuration are the engine's own
	// figures for the audio (results, error-store).
	EngineNetSpeech     time.Duration
	EngineAudioDuration time.Duration
	// AntiSpoofing says whether the engine checked for spoofing (results,
	// error-store); "" on other events.
	AntiSpoofing AntiSpoofing
	// Authenticity is the engine's anti-spoofing value in [0, 1] (results,
	// error-store), or [AuthenticityNotPerformed] when AntiSpoofing is
	// AntiSpoofingNotPerformed.
	Authenticity float64
	// AuthenticityThreshold is the threshold applied (results and
	// error-store where AntiSpoofing is AntiSpoofingPerformed); 0 when no
	// threshold was applied.
	AuthenticityThreshold float64
	// Score is the similarity score in [0, 1] (verify results except
	// result-fail-spoof).
	Score float64
	// ScoreThreshold is the threshold applied (verify results).
	ScoreThreshold float64

	// EngineWait is the time the session queued for a Limiter slot
	// before calling the engine (terminal events; 0 without a Limiter or
	// without a wait). In JSON only when not 0.
	EngineWait time.Duration

	// Credential is the new credential (register result-success and
	// error-store). It is left out of JSON unless the session's
	// Config.CredentialInJSON is set.
	Credential string
	// Audio is the collected audio as a WAV file (register result-success
	// and error-store). It is left out of JSON unless the session's
	// Config.AudioInJSON is set.
	Audio []byte
	// Stored reports that Config.Store kept the credential: true on every
	// register result-success of a session with a Store (a store that
	// fails gives error-store instead), false otherwise.
	Stored bool

	// Err is the cause of an error event (error-*): for error-das-Peak,
	// usually an *APIError; for error-store, an error matching ErrStore
	// that wraps the store's last error.
	Err error
	// Exception is the das-Peak exception name of Err, when it has one.
	Exception string

	audioInJSON      bool
	credentialInJSON bool
}

// IsTerminal reports whether e ends its session.
func (e Event) IsTerminal() bool { return e.Type.IsTerminal() }

// eventJSON is the wire form of Event. Durations are seconds as JSON
// numbers, as das-Peak reports them; names are snake_case, as das-Peak's
// REST API spells its fields.
type eventJSON struct {
	Type                  EventType    `json:"type"`
	Operation             Operation    `json:"operation"`
	NetSpeech             float64      `json:"net_speech"`
	NetSpeechNeeded       float64      `json:"net_speech_needed"`
	AudioDuration         float64      `json:"audio_duration"`
	ModelHash             string       `json:"model_hash,omitempty"`
	EngineNetSpeech       *float64     `json:"engine_net_speech,omitempty"`
	EngineAudioDuration   *float64     `json:"engine_audio_duration,omitempty"`
	AntiSpoofing          AntiSpoofing `json:"anti_spoofing,omitempty"`
	Authenticity          *float64     `json:"authenticity,omitempty"`
	AuthenticityThreshold *float64     `json:"authenticity_threshold,omitempty"`
	Score                 *float64     `json:"score,omitempty"`
	ScoreThreshold        *float64     `json:"score_threshold,omitempty"`
	EngineWait            *float64     `json:"engine_wait,omitempty"`
	Credential            string       `json:"credential,omitempty"`
	Audio                 []byte       `json:"audio,omitempty"`
	Stored                *bool        `json:"stored,omitempty"`
	Error                 string       `json:"error,omitempty"`
	Exception             string       `json:"exception,omitempty"`
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
// only on result events and error-store (score and score_threshold only on
// verify), stored on a register success, error and exception on error
// events. When the engine did no anti-spoofing, "anti_spoofing":
// "not-performed" takes the place of authenticity and
// authenticity_threshold:
//
//	{"type":"result-success","operation":"verify",…,
//	 "engine_audio_duration":5.1,"anti_spoofing":"not-performed",
//	 "score":0.91,"score_threshold":0.5}
//
// The credential and the audio (base64) of a register success or
// error-store appear only when the session's Config.CredentialInJSON or
// Config.AudioInJSON is set; by default the JSON is safe to show in a user
// interface or write to a log.
func (e Event) MarshalJSON() ([]byte, error) {
	j := eventJSON{
		Type:            e.Type,
		Operation:       e.Operation,
		NetSpeech:       seconds(e.NetSpeech),
		NetSpeechNeeded: seconds(e.NetSpeechNeeded),
		AudioDuration:   seconds(e.AudioDuration),
		ModelHash:       e.ModelHash,
		Exception:       e.Exception,
	}
	switch e.Type {
	case EventResultSuccess, EventResultFailScore, EventResultFailSpoof, EventErrorStore:
		j.EngineNetSpeech = ptr(seconds(e.EngineNetSpeech))
		j.EngineAudioDuration = ptr(seconds(e.EngineAudioDuration))
		if e.AntiSpoofing == AntiSpoofingNotPerformed || e.Authenticity == AuthenticityNotPerformed {
			j.AntiSpoofing = AntiSpoofingNotPerformed
		} else {
			j.Authenticity = ptr(e.Authenticity)
			j.AuthenticityThreshold = ptr(e.AuthenticityThreshold)
		}
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
	if e.EngineWait > 0 {
		j.EngineWait = ptr(seconds(e.EngineWait))
	}
	if e.credentialInJSON {
		j.Credential = e.Credential
	}
	if e.audioInJSON {
		j.Audio = e.Audio
	}
	if e.Err != nil {
		j.Error = e.Err.Error()
	}
	return json.Marshal(j)
}

// LogValue implements slog.LogValuer, so an Event given to any slog
// handler logs the fields of its default JSON and never the credential or
// the audio, whatever the session's CredentialInJSON and AudioInJSON say:
// type, operation, net_speech, net_speech_needed, then when set model_hash,
// anti_spoofing or authenticity, score, stored, error and exception.
func (e Event) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("type", string(e.Type)),
		slog.String("operation", string(e.Operation)),
		slog.Duration("net_speech", e.NetSpeech),
		slog.Duration("net_speech_needed", e.NetSpeechNeeded),
	}
	if e.ModelHash != "" {
		attrs = append(attrs, slog.String("model_hash", e.ModelHash))
	}
	switch e.Type {
	case EventResultSuccess, EventResultFailScore, EventResultFailSpoof, EventErrorStore:
		if e.AntiSpoofing == AntiSpoofingNotPerformed || e.Authenticity == AuthenticityNotPerformed {
			attrs = append(attrs, slog.String("anti_spoofing", string(AntiSpoofingNotPerformed)))
		} else {
			attrs = append(attrs, slog.Float64("authenticity", e.Authenticity))
		}
		if e.Operation == OperationVerify && e.Type != EventResultFailSpoof {
			attrs = append(attrs, slog.Float64("score", e.Score))
		}
		if e.Operation == OperationRegister && e.Type == EventResultSuccess {
			attrs = append(attrs, slog.Bool("stored", e.Stored))
		}
	}
	if e.EngineWait > 0 {
		attrs = append(attrs, slog.Duration("engine_wait", e.EngineWait))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("error", e.Err.Error()))
	}
	if e.Exception != "" {
		attrs = append(attrs, slog.String("exception", e.Exception))
	}
	return slog.GroupValue(attrs...)
}

// exceptionOf returns the das-Peak exception name carried by err, if any.
func exceptionOf(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Exception
	}
	return ""
}

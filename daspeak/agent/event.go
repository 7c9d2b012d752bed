package agent

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/voicegate/voicegate/daspeak"
)

// Event types the agent adds to the seven of daspeak (progress and the
// das-Peak terminal names).
const (
	// EventStarted is the first event of every operation: it exists and
	// its audio was opened. Not terminal.
	EventStarted daspeak.EventType = "started"
	// EventErrorStore ends a register whose credential did not reach the
	// store: the caller is not registered. Terminal. It is
	// [daspeak.EventErrorStore], which a register session with a store
	// ends with when the store fails.
	EventErrorStore = daspeak.EventErrorStore
	// EventErrorCancelled ends an operation that was stopped, replaced by
	// a re-verify or a delete, or cut by a server shutdown. Terminal.
	EventErrorCancelled daspeak.EventType = "error-cancelled"
)

// IsTerminal reports whether t ends an operation: the seven das-Peak
// terminal types, [EventErrorStore] and [EventErrorCancelled].
func IsTerminal(t daspeak.EventType) bool {
	return t.IsTerminal() || t == EventErrorCancelled
}

// Reason groups terminal events by what the agent should do, as the
// vendor's error table does.
type Reason string

// Reasons.
const (
	ReasonSuccess        Reason = "success"        // result-success
	ReasonAuthentication Reason = "authentication" // result-fail-score
	ReasonSpoof          Reason = "spoof"          // result-fail-spoof
	ReasonConfiguration  Reason = "configuration"  // error-parameters, das-Peak 4xx
	ReasonConnection     Reason = "connection"     // engine unreachable, timeout, 5xx
	ReasonSpeech         Reason = "speech"         // not enough speech, no audio
	ReasonStore          Reason = "store"          // error-store
	ReasonCancelled      Reason = "cancelled"      // error-cancelled

	// ReasonAlreadyRegistered is the reason of an error-store whose
	// register another operation beat to the store (a register of the
	// same caller on another call, started before either stored): this
	// call's voice was not stored, and the voice stored for the caller is
	// the other operation's. Its error says "another operation registered
	// the caller meanwhile: this voice was not stored".
	ReasonAlreadyRegistered Reason = "already_registered"
)

// CancelCause says why an operation ended with error-cancelled: the
// "cause" of its event, for clients to branch on (its error is the same
// in English, for people).
type CancelCause string

// Cancel causes.
const (
	CauseStopped  CancelCause = "stopped"  // a stop (the agent's, or a change of call in the widget)
	CauseReplaced CancelCause = "replaced" // a re-verify on the call started a fresh operation
	CauseDeleted  CancelCause = "deleted"  // the caller's credential was deleted
	CauseShutdown CancelCause = "shutdown" // the server shut down or drained
	// CauseNodeStopped: the node running the operation died, and another
	// ended it (see the package documentation, Many nodes).
	CauseNodeStopped CancelCause = "node_stopped"
	// CauseNoAudio: the operation never started: its audio did not come
	// (or its start request ended first).
	CauseNoAudio CancelCause = "no_audio"
	// CauseStoreError: the operation never started: the node its audio
	// reached could not read the caller's credential.
	CauseStoreError CancelCause = "store_error"
)

// CancelCauses are the causes of error-cancelled events, in the order
// above.
var CancelCauses = []CancelCause{CauseStopped, CauseReplaced, CauseDeleted, CauseShutdown, CauseNodeStopped, CauseNoAudio, CauseStoreError}

// Event is one event of an operation, as its event stream sends it. Every
// event carries the operation, call and caller it belongs to and its
// sequence number in the operation (1-based, gap-free).
//
// Its JSON (see MarshalJSON) never holds a credential or audio.
type Event struct {
	OperationID string
	CallID      string
	CallerID    string
	// Kind is register or verify (a re-verify is a verify).
	Kind daspeak.Operation
	// Seq is the event's number in its operation, from 1.
	Seq uint64
	// Type is started, progress or a terminal type (see [IsTerminal]).
	Type daspeak.EventType
	// Reason is set on terminal events.
	Reason Reason
	// Session is the daspeak session event behind a progress or terminal
	// event (zero for started and error-cancelled). Its Credential and
	// Audio are always empty: they stay in the store.
	Session daspeak.Event
	// Error is the human text of error-cancelled and error-store.
	Error string
	// Cause is set on error-cancelled: why it was cancelled.
	Cause CancelCause
	// Time is set on terminal events: when the operation ended (the
	// server's clock), sent as "time" in RFC 3339, UTC, whole seconds.
	Time time.Time
}

// IsTerminal reports whether e ends its operation.
func (e Event) IsTerminal() bool { return IsTerminal(e.Type) }

// MarshalJSON encodes the event for the event stream:
//
//	{"call_id":"CA…","caller_id":"+34…","kind":"verify","net_speech":1.2,
//	 "net_speech_needed":3.5,"operation_id":"op_…","seq":3,"type":"progress",…}
//
// The session's fields are those of daspeak.Event's JSON (seconds,
// snake_case: score, score_threshold, authenticity, authenticity_threshold,
// model_hash, error, exception…) except operation (it is kind), credential,
// audio and stored, which are never sent. A result whose engine did no
// anti-spoofing has "anti_spoofing":"not-performed" and neither
// authenticity nor authenticity_threshold (as daspeak.Event's JSON).
// Terminal events have "reason" and "time" (when the operation ended,
// RFC 3339 in UTC: "2026-11-29T22:54:07Z"), so that a client that reads
// the event later (after a reconnect) can say when it happened;
// error-cancelled also has "cause" (a [CancelCause]). Keys are sorted.
func (e Event) MarshalJSON() ([]byte, error) {
	m := map[string]json.RawMessage{}
	if e.Session.Type != "" {
		s := e.Session
		s.Credential, s.Audio = "", nil
		b, err := json.Marshal(s)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		for _, k := range []string{"operation", "credential", "audio", "stored"} {
			delete(m, k)
		}
	}
	set := func(k string, v any) error {
		b, err := json.Marshal(v)
		m[k] = b
		return err
	}
	errs := []error{
		set("operation_id", e.OperationID),
		set("call_id", e.CallID),
		set("caller_id", e.CallerID),
		set("kind", e.Kind),
		set("seq", e.Seq),
		set("type", e.Type),
	}
	if e.Reason != "" {
		errs = append(errs, set("reason", e.Reason))
	}
	if e.Error != "" {
		errs = append(errs, set("error", e.Error))
	}
	if e.Cause != "" {
		errs = append(errs, set("cause", e.Cause))
	}
	if !e.Time.IsZero() {
		errs = append(errs, set("time", e.Time.UTC().Format(time.RFC3339)))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// ReasonOf returns the reason of a terminal event type; err is the
// session's error, which tells a das-Peak configuration error (HTTP 4xx)
// from a connection error (network, timeout, 5xx). It returns "" for
// types that are not terminal.
func ReasonOf(t daspeak.EventType, err error) Reason {
	switch t {
	case daspeak.EventResultSuccess:
		return ReasonSuccess
	case daspeak.EventResultFailScore:
		return ReasonAuthentication
	case daspeak.EventResultFailSpoof:
		return ReasonSpoof
	case daspeak.EventErrorParameters:
		return ReasonConfiguration
	case daspeak.EventErrorConsumerNotReady, daspeak.EventErrorAudio:
		return ReasonSpeech
	case EventErrorStore:
		if errors.Is(err, ErrAlreadyRegistered) {
			return ReasonAlreadyRegistered
		}
		return ReasonStore
	case EventErrorCancelled:
		return ReasonCancelled
	case daspeak.EventErrorDasPeak:
		var ae *daspeak.APIError
		if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != 408 && ae.Status != 429 {
			if errors.Is(err, daspeak.ErrNetSpeechTooShort) || errors.Is(err, daspeak.ErrNoAudio) ||
				errors.Is(err, daspeak.ErrAudioInput) || errors.Is(err, daspeak.ErrSignalNoiseRatio) ||
				errors.Is(err, daspeak.ErrInsufficientQuality) {
				return ReasonSpeech
			}
			return ReasonConfiguration
		}
		return ReasonConnection
	}
	return ""
}

package agent

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak"
)

// TestEventJSON checks the exact wire form of events.
func TestEventJSON(t *testing.T) {
	ids := Event{OperationID: "op_1", CallID: "CA1", CallerID: "+34911234567", Kind: daspeak.OperationVerify, Seq: 3}
	with := func(e Event) Event {
		e.OperationID, e.CallID, e.CallerID, e.Kind, e.Seq = ids.OperationID, ids.CallID, ids.CallerID, ids.Kind, ids.Seq
		return e
	}
	for _, c := range []struct {
		name string
		ev   Event
		want string
	}{
		{"started", with(Event{Type: EventStarted}),
			`{"call_id":"CA1","caller_id":"+34911234567","kind":"verify","operation_id":"op_1","seq":3,"type":"started"}`},
		{"progress", with(Event{Type: daspeak.EventProgress, Session: daspeak.Event{Type: daspeak.EventProgress, Operation: daspeak.OperationVerify,
			NetSpeech: 1200 * time.Millisecond, NetSpeechNeeded: 3500 * time.Millisecond, AudioDuration: 2 * time.Second}}),
			`{"audio_duration":2,"call_id":"CA1","caller_id":"+34911234567","kind":"verify","net_speech":1.2,"net_speech_needed":3.5,"operation_id":"op_1","seq":3,"type":"progress"}`},
		{"success", with(Event{Type: daspeak.EventResultSuccess, Reason: ReasonSuccess, Session: daspeak.Event{Type: daspeak.EventResultSuccess, Operation: daspeak.OperationVerify,
			ModelHash: "m", Authenticity: 0.9, AuthenticityThreshold: 0.8, Score: 0.91, ScoreThreshold: 0.5, Credential: "SECRET", Audio: []byte("RIFF")}}),
			`{"audio_duration":0,"authenticity":0.9,"authenticity_threshold":0.8,"call_id":"CA1","caller_id":"+34911234567","engine_audio_duration":0,"engine_net_speech":0,"kind":"verify","model_hash":"m","net_speech":0,"net_speech_needed":0,"operation_id":"op_1","reason":"success","score":0.91,"score_threshold":0.5,"seq":3,"type":"result-success"}`},
		{"no anti-spoofing", with(Event{Type: daspeak.EventResultFailScore, Reason: ReasonAuthentication, Session: daspeak.Event{Type: daspeak.EventResultFailScore, Operation: daspeak.OperationVerify,
			Authenticity: daspeak.AuthenticityNotPerformed, AuthenticityThreshold: 0.8, Score: 0.2, ScoreThreshold: 0.5}}),
			`{"anti_spoofing":"not-performed","audio_duration":0,"call_id":"CA1","caller_id":"+34911234567","engine_audio_duration":0,"engine_net_speech":0,"kind":"verify","net_speech":0,"net_speech_needed":0,"operation_id":"op_1","reason":"authentication","score":0.2,"score_threshold":0.5,"seq":3,"type":"result-fail-score"}`},
		{"register success never shows credential, audio or stored", with(Event{Type: daspeak.EventResultSuccess, Reason: ReasonSuccess, Session: daspeak.Event{Type: daspeak.EventResultSuccess, Operation: daspeak.OperationRegister,
			Authenticity: 1, AuthenticityThreshold: 0.8, Credential: "SECRET", Audio: []byte("RIFF"), Stored: true}}),
			`{"audio_duration":0,"authenticity":1,"authenticity_threshold":0.8,"call_id":"CA1","caller_id":"+34911234567","engine_audio_duration":0,"engine_net_speech":0,"kind":"verify","net_speech":0,"net_speech_needed":0,"operation_id":"op_1","reason":"success","seq":3,"type":"result-success"}`},
		{"error-store never shows credential or audio", with(Event{Type: EventErrorStore, Reason: ReasonStore, Error: "not stored", Session: daspeak.Event{Type: daspeak.EventErrorStore, Operation: daspeak.OperationRegister,
			AntiSpoofing: daspeak.AntiSpoofingPerformed, Authenticity: 1, AuthenticityThreshold: 0.8, Credential: "SECRET", Audio: []byte("RIFF"), Err: ErrNotStored}}),
			`{"audio_duration":0,"authenticity":1,"authenticity_threshold":0.8,"call_id":"CA1","caller_id":"+34911234567","engine_audio_duration":0,"engine_net_speech":0,"error":"not stored","kind":"verify","net_speech":0,"net_speech_needed":0,"operation_id":"op_1","reason":"store","seq":3,"type":"error-store"}`},
		{"cancelled", with(Event{Type: EventErrorCancelled, Reason: ReasonCancelled, Error: "cancelled: stopped"}),
			`{"call_id":"CA1","caller_id":"+34911234567","error":"cancelled: stopped","kind":"verify","operation_id":"op_1","reason":"cancelled","seq":3,"type":"error-cancelled"}`},
		{"time in UTC, whole seconds", with(Event{Type: EventErrorCancelled, Reason: ReasonCancelled, Error: "cancelled: stopped",
			Time: time.Date(2026, 11, 29, 23, 54, 7, 900e6, time.FixedZone("CET", 3600))}),
			`{"call_id":"CA1","caller_id":"+34911234567","error":"cancelled: stopped","kind":"verify","operation_id":"op_1","reason":"cancelled","seq":3,"time":"2026-11-29T22:54:07Z","type":"error-cancelled"}`},
	} {
		b, err := json.Marshal(c.ev)
		if err != nil || string(b) != c.want {
			t.Errorf("%s:\n got %s %v\nwant %s", c.name, b, err, c.want)
		}
	}
}

func TestReasonOf(t *testing.T) {
	for _, c := range []struct {
		t    daspeak.EventType
		err  error
		want Reason
	}{
		{daspeak.EventResultSuccess, nil, ReasonSuccess},
		{daspeak.EventResultFailScore, nil, ReasonAuthentication},
		{daspeak.EventResultFailSpoof, nil, ReasonSpoof},
		{daspeak.EventErrorParameters, nil, ReasonConfiguration},
		{daspeak.EventErrorConsumerNotReady, nil, ReasonSpeech},
		{daspeak.EventErrorAudio, nil, ReasonSpeech},
		{EventErrorStore, nil, ReasonStore},
		{EventErrorCancelled, nil, ReasonCancelled},
		{daspeak.EventErrorDasPeak, &daspeak.APIError{Status: 404, Exception: daspeak.ExceptionModelNotAvailable}, ReasonConfiguration},
		{daspeak.EventErrorDasPeak, &daspeak.APIError{Status: 401}, ReasonConfiguration},
		{daspeak.EventErrorDasPeak, &daspeak.APIError{Status: 400, Exception: daspeak.ExceptionVoiceDurationIsNotEnough}, ReasonSpeech},
		{daspeak.EventErrorDasPeak, &daspeak.APIError{Status: 503}, ReasonConnection},
		{daspeak.EventErrorDasPeak, &daspeak.APIError{Status: 429}, ReasonConnection},
		{daspeak.EventErrorDasPeak, fmt.Errorf("dial tcp: connection refused"), ReasonConnection},
		{daspeak.EventProgress, nil, ""},
		{EventStarted, nil, ""},
	} {
		if got := ReasonOf(c.t, c.err); got != c.want {
			t.Errorf("ReasonOf(%s, %v) = %q, want %q", c.t, c.err, got, c.want)
		}
	}
	if !IsTerminal(EventErrorStore) || !IsTerminal(EventErrorCancelled) || !IsTerminal(daspeak.EventErrorAudio) || IsTerminal(EventStarted) || IsTerminal(daspeak.EventProgress) {
		t.Fatal("IsTerminal")
	}
}

// TestTerminalEventTime: the terminal event of an operation says when it
// ended, by the server's clock; no other event carries a time.
func TestTerminalEventTime(t *testing.T) {
	e := newEnv(t, nil)
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}})
	before := time.Now().Truncate(time.Second)
	op := e.start("/register", callA, callerA, nil)
	_, msgs := e.events(op["events_url"].(string), "")
	after := time.Now()
	last := checkStream(t, msgs, op)
	at, err := time.Parse(time.RFC3339, fmt.Sprint(last.Data["time"]))
	if last.Event != "result-success" || err != nil || at.Location() != time.UTC || at.Before(before) || at.After(after) {
		t.Fatalf("terminal event %s: time %v %v, want between %v and %v", last.Raw, at, err, before, after)
	}
	for _, m := range msgs[:len(msgs)-1] {
		if _, ok := m.Data["time"]; ok {
			t.Fatalf("%s event has a time: %s", m.Event, m.Raw)
		}
	}
}

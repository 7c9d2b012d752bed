package agent

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak"
)

// BenchmarkEventMarshal measures encoding one verify result for the event
// stream.
func BenchmarkEventMarshal(b *testing.B) {
	ev := Event{OperationID: "op_0123456789abcdef0123456789abcdef", CallID: callA, CallerID: callerA, Kind: daspeak.OperationVerify, Seq: 12,
		Type: daspeak.EventResultSuccess, Reason: ReasonSuccess, Session: daspeak.Event{Type: daspeak.EventResultSuccess, Operation: daspeak.OperationVerify,
			NetSpeech: 4 * time.Second, NetSpeechNeeded: 4 * time.Second, ModelHash: "m", Authenticity: 0.9, AuthenticityThreshold: 0.8, Score: 0.9, ScoreThreshold: 0.5}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyOperation measures a whole verify through the API with
// the offline engine: start call, 4 s of net speech played at full speed,
// event stream read to its result.
func BenchmarkVerifyOperation(b *testing.B) {
	e := newEnv(b, nil)
	e.register(callA, callerA, "voices/slt_1.wav", "voices/slt_2.wav")
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_3.wav"}})
	b.ReportAllocs()
	for b.Loop() {
		op := e.start("/verify", callA, callerA, nil)
		_, msgs := e.events(op["events_url"].(string), "")
		if last := msgs[len(msgs)-1]; last.Event != "result-success" {
			b.Fatal(last.Raw)
		}
	}
}

package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/twilio/twiliotest"
)

// TestTwilioMediaFormatLogged: a Twilio stream whose start announces audio
// the demo cannot read (Opus, 48 kHz stereo) is refused, and the log says
// so with the call and the format, not "no start message".
func TestTwilioMediaFormatLogged(t *testing.T) {
	var logs syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := start(ctx, options{Fast: true, Addr: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "m.db"), Out: &syncBuffer{},
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	const call = "CA00000000000000000000000000000077"
	msgs := `{"event":"connected","protocol":"Call","version":"1.0.0"}` + "\n" +
		`{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC00000000000000000000000000000000","streamSid":"MZ00000000000000000000000000000077","callSid":"` + call +
		`","tracks":["inbound"],"mediaFormat":{"encoding":"audio/opus","sampleRate":48000,"channels":2},"customParameters":{"callerId":"+14155550177","operation":"verify"}},"streamSid":"MZ00000000000000000000000000000077"}` + "\n"
	res, err := twiliotest.PlayJSONL(ctx, d.srv.twilioURL, strings.NewReader(msgs), &twiliotest.Options{AuthToken: d.srv.twilioToken, HoldOpen: make(chan struct{})})
	if err != nil && res == nil {
		t.Fatal(err)
	}
	if !res.ServerClosed {
		t.Errorf("the stream was not closed by the server: %+v", res)
	}
	want := []string{`msg="twilio: stream refused: unsupported media format"`, "call=" + call, `unsupported mediaFormat \"audio/opus\" 48000 Hz 2 channels`}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got := logs.String()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(got, w)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log does not say %q:\n%s", want, got)
		}
	}
	if strings.Contains(logs.String(), "no start message") {
		t.Errorf("the log says no start message:\n%s", logs.String())
	}
}

package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

// TestMalformedStreamMessage: on a signed stream that started, a message
// that is not JSON, or a media payload that is not base64, ends the stream
// at once with close 1007 and the session with error-audio, the socket
// still open on the caller's side.
func TestMalformedStreamMessage(t *testing.T) {
	for _, tc := range []struct {
		name, msg, reason string
	}{
		{"not json", `{not json`, "message is not valid JSON"},
		{"payload not base64", `{"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"2","timestamp":"40","payload":"!!!notbase64"},"streamSid":"MZ1"}`, "media payload is not base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			call := twiliotest.SID("CA")
			code, d := e.do(http.MethodPost, "/register?caller=%2B34600000031&call="+call, "", nil)
			if code != http.StatusAccepted {
				t.Fatalf("create: %d", code)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ws := "ws" + strings.TrimPrefix(e.http.URL, "http") + mediaPath
			h := http.Header{twilio.SignatureHeader: {twilio.ComputeSignature(authToken, "wss://ivr.example.com"+mediaPath, nil)}}
			c, _, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPHeader: h})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			params, _ := json.Marshal(d.Parameters)
			frame := base64.StdEncoding.EncodeToString(make([]byte, 160))
			for _, m := range []string{
				`{"event":"connected","protocol":"Call","version":"1.0.0"}`,
				`{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"` + call +
					`","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":` + string(params) + `},"streamSid":"MZ1"}`,
				`{"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"` + frame + `"},"streamSid":"MZ1"}`,
				tc.msg,
			} {
				if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
					t.Fatal(err)
				}
			}
			for {
				_, _, err := c.Read(ctx)
				if err == nil {
					continue
				}
				var ce websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != websocket.StatusInvalidFramePayloadData || ce.Reason != tc.reason {
					t.Fatalf("stream ended with %v, want close 1007 %q", err, tc.reason)
				}
				break
			}
			got := e.poll("/register/" + d.ID)
			if got.Status != statusError || eventType(got) != string(daspeak.EventErrorAudio) || !strings.Contains(string(got.Event), "malformed") {
				t.Fatalf("session after a malformed message: %+v %s", got, got.Event)
			}
		})
	}
}

// TestUnsupportedMediaFormat: a signed start whose mediaFormat is not
// Twilio's 8 kHz mono μ-law is refused at start (close 1003 naming the
// format) and the session it names ends with error-audio at once, instead
// of the stream being held open until the peer closes it. The event says
// how much net speech the session would have needed (the configured
// value), as a session's own error-audio does, not 0.
func TestUnsupportedMediaFormat(t *testing.T) {
	e := newEnv(t, func(c *config) { c.Session.AudioTotalDuration = 7 * time.Second })
	call := twiliotest.SID("CA")
	code, d := e.do(http.MethodPost, "/register?caller=%2B34600000032&call="+call, "", nil)
	if code != http.StatusAccepted {
		t.Fatalf("create: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws := "ws" + strings.TrimPrefix(e.http.URL, "http") + mediaPath
	h := http.Header{twilio.SignatureHeader: {twilio.ComputeSignature(authToken, "wss://ivr.example.com"+mediaPath, nil)}}
	c, _, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	params, _ := json.Marshal(d.Parameters)
	for _, m := range []string{
		`{"event":"connected","protocol":"Call","version":"1.0.0"}`,
		`{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"` + call +
			`","tracks":["inbound"],"mediaFormat":{"encoding":"audio/opus","sampleRate":48000,"channels":2},"customParameters":` + string(params) + `},"streamSid":"MZ1"}`,
	} {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	const reason = `unsupported mediaFormat "audio/opus" 48000 Hz 2 channels; want "audio/x-mulaw" 8000 Hz 1 channel`
	_, _, err = c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusUnsupportedData || ce.Reason != reason {
		t.Fatalf("stream ended with %v, want close 1003 %q", err, reason)
	}
	got := e.poll("/register/" + d.ID)
	if got.Status != statusError || eventType(got) != string(daspeak.EventErrorAudio) || !strings.Contains(string(got.Event), "mediaFormat") {
		t.Fatalf("session after an opus start: %+v %s", got, got.Event)
	}
	var ev struct {
		NetSpeechNeeded *float64 `json:"net_speech_needed"`
	}
	if err := json.Unmarshal(got.Event, &ev); err != nil || ev.NetSpeechNeeded == nil || *ev.NetSpeechNeeded != 7 {
		t.Fatalf("session after an opus start: %s, want net_speech_needed 7", got.Event)
	}
}

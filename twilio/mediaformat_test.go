package twilio_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/twilio"
)

// TestStartMediaFormat: a signed start announcing audio other than
// Twilio's 8 kHz mono μ-law is refused at once (close 1003 naming the
// format, Start returns ErrMediaFormat) instead of being held open and
// read as μ-law.
func TestStartMediaFormat(t *testing.T) {
	t.Parallel()
	const head = `{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],`
	const tail = `"customParameters":{}},"streamSid":"MZ1"}`
	for _, tc := range []struct {
		name, format string
		reason       string // "" when accepted
	}{
		{"opus stereo", `"mediaFormat":{"encoding":"audio/opus","sampleRate":48000,"channels":2},`,
			`unsupported mediaFormat "audio/opus" 48000 Hz 2 channels; want "audio/x-mulaw" 8000 Hz 1 channel`},
		{"mulaw 16 kHz", `"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":16000,"channels":1},`,
			`unsupported mediaFormat "audio/x-mulaw" 16000 Hz 1 channel; want "audio/x-mulaw" 8000 Hz 1 channel`},
		{"mulaw stereo", `"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":2},`,
			`unsupported mediaFormat "audio/x-mulaw" 8000 Hz 2 channels; want "audio/x-mulaw" 8000 Hz 1 channel`},
		{"rate not a number", `"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":"8k","channels":1},`,
			`unsupported mediaFormat "audio/x-mulaw" "8k" Hz 1 channel; want "audio/x-mulaw" 8000 Hz 1 channel`},
		{"one channel as a string", `"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":"16000","channels":"1"},`,
			`unsupported mediaFormat "audio/x-mulaw" 16000 Hz 1 channel; want "audio/x-mulaw" 8000 Hz 1 channel`},
		{"channels not a number", `"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":"one"},`,
			`unsupported mediaFormat "audio/x-mulaw" 8000 Hz "one" channels; want "audio/x-mulaw" 8000 Hz 1 channel`},
		{"twilio", `"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},`, ""},
		{"numbers as strings", `"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":"8000","channels":"1"},`, ""},
		{"no mediaFormat", ``, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := newMediaServer(t, &twilio.AcceptOptions{AuthTokens: []string{testToken}})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			h := http.Header{twilio.SignatureHeader: {twilio.ComputeSignature(testToken, ms.URL, nil)}}
			c, _, err := websocket.Dial(ctx, ms.URL, &websocket.DialOptions{HTTPHeader: h})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			s := ms.next(t)
			defer s.CloseNow()
			c.Write(ctx, websocket.MessageText, []byte(`{"event":"connected","protocol":"Call","version":"1.0.0"}`))
			c.Write(ctx, websocket.MessageText, []byte(head+tc.format+tail))
			// The peer reads while Start runs, as Twilio does: a refusal's
			// close is answered at once, and Start does not wait for it
			// until its close timeout.
			peer := make(chan error, 1)
			go func() {
				_, _, err := c.Read(ctx)
				peer <- err
			}()
			st, err := s.Start(ctx)
			if tc.reason == "" {
				if err != nil || st.StreamSID != "MZ1" {
					t.Fatalf("Start: %+v, %v", st, err)
				}
				return
			}
			var ce *voicegate.CloseError
			if st == nil || st.CallSID != "CA1" || !errors.Is(err, twilio.ErrMediaFormat) || !errors.As(err, &ce) || !ce.Sent || ce.Code != 1003 || ce.Reason != tc.reason {
				t.Fatalf("Start: %+v, %v; want ErrMediaFormat wrapping the close 1003 %q sent", st, err, tc.reason)
			}
			// The peer is told at once, without sending anything more.
			err = <-peer
			var wce websocket.CloseError
			if !errors.As(err, &wce) || wce.Code != websocket.StatusUnsupportedData || wce.Reason != tc.reason {
				t.Errorf("peer saw %v, want close 1003 %q", err, tc.reason)
			}
		})
	}
}

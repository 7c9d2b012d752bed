package flex

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

// TestSourceMediaFormat: a stream whose signed, bound start announces
// audio other than 8 kHz mono μ-law (here Opus, 48 kHz stereo) ends the
// operation waiting for it at once with twilio.ErrMediaFormat, not at its
// own timeout; the stream is closed 1003 and stopped over REST. A start
// with another operation's name but no valid binding does not end it.
func TestSourceMediaFormat(t *testing.T) {
	for _, c := range []struct {
		name  string
		bound bool
	}{{"bound", true}, {"binding forged", false}} {
		t.Run(c.name, func(t *testing.T) {
			played := make(chan *twiliotest.Result, 1)
			mux := http.NewServeMux()
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/twilio/media"
			fake := newFake(t, &twiliotest.ServerOptions{OnStreamStart: func(cs twiliotest.CreatedStream) {
				params := map[string]string{}
				for k, v := range cs.Parameters {
					params[k] = v
				}
				if !c.bound {
					params[ParamBinding] = "9999999999.AAAA"
				}
				p, _ := json.Marshal(params)
				start := `{"event":"connected","protocol":"Call","version":"1.0.0"}` + "\n" +
					`{"event":"start","sequenceNumber":"1","start":{"accountSid":"` + cs.AccountSID + `","streamSid":"` + cs.SID + `","callSid":"` + cs.CallSID +
					`","tracks":["inbound"],"mediaFormat":{"encoding":"audio/opus","sampleRate":48000,"channels":2},"customParameters":` + string(p) + `},"streamSid":"` + cs.SID + `"}` + "\n"
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				res, _ := twiliotest.PlayJSONL(ctx, cs.URL, strings.NewReader(start), &twiliotest.Options{AuthToken: twiliotest.DefaultAuthToken, HoldOpen: make(chan struct{})})
				played <- res
			}})
			cl, err := twilio.NewClient(&twilio.ClientOptions{AccountSID: fake.AccountSID(), AuthToken: fake.AuthToken(), BaseURL: fake.URL})
			if err != nil {
				t.Fatal(err)
			}
			src, err := NewSource(&SourceOptions{Client: cl, StreamURL: url, AuthTokens: []string{fake.AuthToken()}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { src.Close() })
			mux.Handle("/twilio/media", src)

			call := twiliotest.SID("CA")
			op := "op_0123456789abcdef0123456789abcdef"
			wait := 3 * time.Second
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			t0 := time.Now()
			a, err := src.Open(ctx, agent.SourceRequest{OperationID: op, CallID: call, CallerID: "+34600000000"})
			took := time.Since(t0)
			if err == nil {
				a.Close()
				t.Fatal("a stream of Opus audio fed the operation")
			}
			if c.bound {
				if !errors.Is(err, twilio.ErrMediaFormat) || took > wait/2 {
					t.Fatalf("Open: %v after %v; want twilio.ErrMediaFormat at once", err, took.Round(time.Millisecond))
				}
			} else if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, twilio.ErrMediaFormat) {
				t.Fatalf("Open with a forged binding: %v; want the operation's own timeout", err)
			}
			stopped := 0
			for _, r := range fake.Requests() {
				if strings.Contains(r.Path, "/Calls/"+call+"/Streams/") && r.Form.Get("Status") == "stopped" {
					stopped++
				}
			}
			if stopped != 1 {
				t.Errorf("%d REST stops of the stream, want 1", stopped)
			}
			if res := <-played; res == nil || !res.ServerClosed {
				t.Errorf("the stream was not closed by the server: %+v", res)
			}
		})
	}
}

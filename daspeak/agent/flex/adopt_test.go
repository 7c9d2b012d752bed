package flex

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

// fakeAdopter records the operations handed to it and cancels the
// starting node's Open as the agent server does.
type fakeAdopter struct {
	cancel context.CancelCauseFunc
	got    chan agent.SourceRequest
	audio  chan agent.Audio
	err    error
}

func (a *fakeAdopter) Adopt(ctx context.Context, req agent.SourceRequest, au agent.Audio) error {
	if a.err != nil {
		return a.err
	}
	a.got <- req
	a.audio <- au
	a.cancel(agent.ErrOpenedElsewhere)
	return nil
}

// TestSourceAdopt checks a stream started by node a's Source that reaches
// node b's (a load balancer): b checks the binding and hands the stream to
// its adopter; a's Open returns ErrOpenedElsewhere without stopping the
// stream; the adopted audio plays to its end and closes. A
// stream whose caller parameter was forged is refused.
func TestSourceAdopt(t *testing.T) {
	for _, c := range []struct {
		name   string
		forge  bool
		adopts bool
	}{{"bound", false, true}, {"forged caller", true, false}} {
		t.Run(c.name, func(t *testing.T) {
			key := []byte("0123456789abcdef0123456789abcdef")
			mux := http.NewServeMux()
			srvB := httptest.NewServer(mux)
			defer srvB.Close()
			url := "ws" + strings.TrimPrefix(srvB.URL, "http") + "/twilio/media"
			wav := voice(t)
			played := make(chan struct{}, 1)
			fake := newFake(t, &twiliotest.ServerOptions{OnStreamStart: func(cs twiliotest.CreatedStream) {
				params := map[string]string{}
				for k, v := range cs.Parameters {
					params[k] = v
				}
				if c.forge {
					params[ParamCaller] = "+34699999999"
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				twiliotest.PlayWAV(ctx, cs.URL, wav, &twiliotest.Options{
					AuthToken: twiliotest.DefaultAuthToken, CallSID: cs.CallSID, StreamSID: cs.SID,
					AccountSID: cs.AccountSID, CustomParameters: params, Pace: twiliotest.AsFastAsPossible,
				})
				played <- struct{}{}
			}})
			cl, err := twilio.NewClient(&twilio.ClientOptions{AccountSID: fake.AccountSID(), AuthToken: fake.AuthToken(), BaseURL: fake.URL})
			if err != nil {
				t.Fatal(err)
			}
			newSrc := func() *Source {
				// The simulator plays as fast as possible and the test reads only
				// after the adoption: a queue for the whole clip keeps every frame.
				s, err := NewSource(&SourceOptions{Client: cl, StreamURL: url, AuthTokens: []string{fake.AuthToken()}, Binder: agent.NewBinder(key), QueueFrames: 2000})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			a, b := newSrc(), newSrc()
			mux.Handle("/twilio/media", b)
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			ctx, cancelT := context.WithTimeout(ctx, 3*time.Second)
			defer cancelT()
			ad := &fakeAdopter{cancel: cancel, got: make(chan agent.SourceRequest, 1), audio: make(chan agent.Audio, 1)}
			b.SetAdopter(ad)
			call := twiliotest.SID("CA")
			req := agent.SourceRequest{OperationID: "op_0123456789abcdef0123456789abcdef", CallID: call, CallerID: "+34600000000"}
			_, err = a.Open(ctx, req)
			if !c.adopts {
				if err == nil || errors.Is(err, agent.ErrOpenedElsewhere) {
					t.Fatalf("forged stream: Open %v", err)
				}
				if len(ad.got) != 0 {
					t.Fatal("a forged stream was adopted")
				}
				return
			}
			if !errors.Is(err, agent.ErrOpenedElsewhere) {
				t.Fatalf("Open: %v", err)
			}
			if got := <-ad.got; got != req {
				t.Fatalf("adopted %+v", got)
			}
			au := <-ad.audio
			n := 0
			for {
				_, err := au.ReadFrame(context.Background())
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				n++
			}
			if n == 0 {
				t.Fatal("no audio")
			}
			stops := func() int {
				k := 0
				for _, r := range fake.Requests() {
					if strings.Contains(r.Path, "/Calls/"+call+"/Streams/") && r.Form.Get("Status") == "stopped" {
						k++
					}
				}
				return k
			}
			if k := stops(); k != 0 {
				t.Fatalf("the starting node stopped the adopted stream (%d stops)", k)
			}
			if fc, ok := au.(agent.FrameCounter); !ok {
				t.Fatal("no FrameCounter")
			} else if d, l := fc.FrameCounts(); d != 0 || l != 0 {
				t.Fatalf("dropped %d late %d", d, l)
			}
			// Twilio ended the stream (stop message): Close needs no REST
			// stop.
			if err := au.Close(); err != nil {
				t.Fatal(err)
			}
			<-played
		})
	}
}

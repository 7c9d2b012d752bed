package twilio_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

// A Media Streams endpoint: validate the upgrade, read the start metadata,
// then pull frames until the call's stream ends. Here the simulator plays
// one second of audio the way Twilio would.
func ExampleAccept() {
	const token = "your-auth-token"
	frames := make(chan int, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := twilio.Accept(w, r, &twilio.AcceptOptions{
			// In production: the wss:// URL in your <Stream url>.
			PublicURL:  "ws://" + r.Host + "/media",
			AuthTokens: []string{token},
			FillGaps:   true,
		})
		if err != nil {
			return // Accept has answered 403 (bad signature) or 500
		}
		defer s.Close()
		// Never use r.Context() after the upgrade.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start, err := s.Start(ctx)
		if err != nil {
			return
		}
		fmt.Println("session:", start.CustomParameters["session"])
		n := 0
		for {
			f, err := s.ReadFrame(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				log.Print(err)
				break
			}
			_ = f.Payload // 160 bytes of μ-law, valid until the next ReadFrame
			n++
		}
		frames <- n
	}))
	defer srv.Close()

	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/media"
	audio := make([]byte, 8000) // one second of μ-law
	_, err := twiliotest.PlayAudio(context.Background(), url, audio, nil, &twiliotest.Options{
		AuthToken:        token,
		CustomParameters: map[string]string{"session": "s-42"},
		Pace:             twiliotest.AsFastAsPossible,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("frames:", <-frames)
	// Output:
	// session: s-42
	// frames: 50
}

// TwiML that forks the caller's audio to the SDK while the call goes on.
func ExampleNewTwiML() {
	doc, err := twilio.NewTwiML().
		StartStream(twilio.StreamNoun{
			Name:       "vb",
			URL:        "wss://vb.example.com/twilio/media",
			Track:      twilio.TrackInbound,
			Parameters: []twilio.Parameter{{Name: "session", Value: "s-42"}},
		}).
		Say("Please state your passphrase.").
		Pause(10).
		String()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(doc)
	// Output:
	// <?xml version="1.0" encoding="UTF-8"?><Response><Start><Stream name="vb" url="wss://vb.example.com/twilio/media" track="inbound_track"><Parameter name="session" value="s-42"/></Stream></Start><Say>Please state your passphrase.</Say><Pause length="10"/></Response>
}

// Start a stream on a call in progress, then stop it by name. The fake
// server stands in for api.twilio.com.
func ExampleClient_StartStream() {
	fake := twiliotest.NewServer(nil)
	defer fake.Close()
	c, err := twilio.NewClient(&twilio.ClientOptions{
		AccountSID: fake.AccountSID(),
		AuthToken:  fake.AuthToken(),
		BaseURL:    fake.URL, // leave empty for api.twilio.com; or set Region and Edge
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	st, err := c.StartStream(ctx, "CA00000000000000000000000000000001", &twilio.StreamParams{
		URL:        "wss://vb.example.com/twilio/media",
		Name:       "vb",
		Parameters: []twilio.Parameter{{Name: "session", Value: "s-42"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Name, st.Status)
	st, err = c.StopStream(ctx, "CA00000000000000000000000000000001", "vb")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.SID, st.Status)
	// Output:
	// vb in-progress
	// vb stopped
}

// A token for a browser softphone (Voice JS SDK) that may receive calls and
// place them through a TwiML App.
func ExampleAccessToken() {
	identity, err := twilio.ClientIdentity("ext_", "alice")
	if err != nil {
		log.Fatal(err)
	}
	tok := &twilio.AccessToken{
		AccountSID:   "ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		APIKeySID:    "SKxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		APIKeySecret: "secret",
		Identity:     identity,
		TTL:          15 * time.Minute,
		Voice:        &twilio.VoiceGrant{IncomingAllow: true, OutgoingApplicationSID: "APxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
	}
	jwt, err := tok.Sign(time.Now())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.Count(jwt, "."), identity)
	// Output: 2 ext_alice
}

// Validate a Flex agent's token (sent by a Flex plugin) before trusting
// the agent's identity.
func ExampleFlexValidator() {
	fake := twiliotest.NewServer(nil)
	defer fake.Close()
	fake.AddFlexToken("flex-token", twilio.FlexIdentity{Identity: "jane", WorkerSID: "WK1", Roles: []string{"agent"},
		Expiration: time.Now().Add(time.Hour)})
	v, err := twilio.NewFlexValidator(&twilio.FlexValidatorOptions{
		AccountSID: fake.AccountSID(), AuthToken: fake.AuthToken(), BaseURL: fake.URL,
	})
	if err != nil {
		log.Fatal(err)
	}
	id, err := v.Validate(context.Background(), "flex-token")
	if err != nil {
		log.Fatal(err) // fail closed: answer 403
	}
	fmt.Println(id.Identity, id.WorkerSID, id.HasRole("agent"))
	// Output: jane WK1 true
}

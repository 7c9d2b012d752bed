package twiliotest_test

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

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

// Play a WAV file into a Media Streams endpoint the way Twilio would: a
// signed upgrade, connected, start with custom parameters, one media
// message per 20 ms frame, stop. Faults (loss, duplicates, reordering,
// jitter, a missing stop) are switched on in Options.
func ExamplePlayWAV() {
	const token = "your-auth-token"
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := twilio.Accept(w, r, &twilio.AcceptOptions{
			PublicURL:  "ws://" + r.Host + "/media",
			AuthTokens: []string{token},
			FillGaps:   true,
		})
		if err != nil {
			return
		}
		defer s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var media time.Duration
		for {
			f, err := s.ReadFrame(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				log.Print(err)
				break
			}
			media = f.End()
		}
		st := s.Stats()
		got <- fmt.Sprintf("media time %v, %d gaps, %d silence frames", media, st.Gaps, st.SilenceFrames)
	}))
	defer srv.Close()

	// Two seconds of μ-law silence as a WAV file.
	ulaw := make([]byte, 16000)
	for i := range ulaw {
		ulaw[i] = codec.ULawSilence
	}
	wav, err := codec.EncodeWAV(nil, codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}, ulaw)
	if err != nil {
		log.Fatal(err)
	}
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/media"
	res, err := twiliotest.PlayWAV(context.Background(), url, wav, &twiliotest.Options{
		AuthToken: token,
		Pace:      twiliotest.AsFastAsPossible, // RealTime (the default) sends every 20 ms
		LossRate:  0.1,
		Seed:      1,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("frames sent:", res.MediaSent, "of", res.MediaSent+res.Lost)
	fmt.Println(<-got)
	// Output:
	// frames sent: 88 of 100
	// media time 2s, 12 gaps, 12 silence frames
}

// A fake Twilio REST server for the SDK's REST client: it keeps the streams
// started on each call and answers with Twilio's bodies and error format.
func ExampleNewServer() {
	fake := twiliotest.NewServer(nil)
	defer fake.Close()

	c, err := twilio.NewClient(&twilio.ClientOptions{
		AccountSID: fake.AccountSID(),
		AuthToken:  fake.AuthToken(),
		BaseURL:    fake.URL,
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.StartStream(ctx, "CA0123", &twilio.StreamParams{URL: "wss://vb.example.com/media", Name: "vb"}); err != nil {
		log.Fatal(err)
	}
	st, err := c.StopStream(ctx, "CA0123", "vb")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Status, len(fake.Streams("CA0123")))

	fake.SetFaults(twiliotest.Fault{PathPrefix: "/2010-04-01/", Status: 503, Code: 20503, Message: "Service unavailable"})
	_, err = c.StartStream(ctx, "CA0123", &twilio.StreamParams{URL: "wss://vb.example.com/media"})
	var apiErr *twilio.APIError
	fmt.Println(errors.As(err, &apiErr), apiErr.Status, apiErr.Code)
	// Output:
	// stopped 1
	// true 503 20503
}

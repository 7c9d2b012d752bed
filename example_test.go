package voicegate_test

import (
	"context"
	"net/http"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/offline"
	"github.com/voicegate/voicegate/twilio"
)

// This is the shape of a Media Streams endpoint that verifies the caller
// against a stored credential. Swap offline.New for daspeak.NewClient to use
// Veridas das-Peak.
func Example_twilioVerify() {
	const authToken = "your auth token"
	store := credstore.NewMemory()
	var engine daspeak.Engine = offline.New(nil)
	publish := func(daspeak.Event) {}

	http.HandleFunc("/media", func(w http.ResponseWriter, r *http.Request) {
		stream, err := twilio.Accept(w, r, &twilio.AcceptOptions{
			PublicURL:  "wss://vb.example.com/media", // exactly as in <Stream url>
			AuthTokens: []string{authToken},
		})
		if err != nil {
			return // Accept answered 403 on a bad X-Twilio-Signature
		}
		go func() { // never use r.Context() after the upgrade
			defer stream.Close()
			ctx := context.Background()
			start, err := stream.Start(ctx)
			if err != nil {
				return
			}
			rec, err := store.Get(ctx, start.CustomParameters["caller"])
			if err != nil {
				return
			}
			sess, _ := daspeak.Verify(stream, engine, rec.Credential, nil)
			for {
				ev, err := sess.Next(ctx)
				if err != nil {
					return // io.EOF after the terminal event
				}
				publish(ev) // progress…, then result-success / result-fail-score / error-…
			}
		}()
	})
}

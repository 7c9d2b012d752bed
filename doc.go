// Package voicegate puts voice biometrics (caller registration and
// verification) into contact-center backends written in Go.
//
// It takes live call audio from Twilio Media Streams and Genesys Cloud
// AudioHook, turns both into one stream of audio [Frame] values, measures net
// speech, and drives register and verify sessions against a biometric engine:
// the Veridas das-Peak REST service or an embedded offline engine. Results come
// back as typed events; credentials go into a pluggable store.
//
// This package holds only the shared vocabulary: [Frame], [FrameReader],
// [Encoding] and [Party]. The work happens in the sub-packages.
//
// # Data flow
//
//	Twilio WS  ──► twilio.Stream ──────┐
//	                                   ├─► voicegate.Frame ─► daspeak.Session ─► Event
//	AudioHook WS ► audiohook.Session ──┘      (ReadFrame)      │
//	                                                           ├─► daspeak.Client (das-Peak REST)
//	                                                           └─► offline engine (in process)
//
// Protocol packages know nothing of biometrics, daspeak knows nothing of
// Twilio or Genesys, and credstore knows nothing of audio.
//
// # Where to start
//
//   - github.com/voicegate/voicegate/twilio: accept a Twilio Media Stream
//     (twilio.Accept), plus REST, Flex, TwiML and access-token helpers.
//   - github.com/voicegate/voicegate/audiohook: accept a Genesys AudioHook
//     session (audiohook.Accept); audiohooktest.Dial dials one as Genesys
//     does.
//   - github.com/voicegate/voicegate/daspeak: register or verify a caller over
//     any FrameReader, against the das-Peak REST API or the offline engine.
//   - github.com/voicegate/voicegate/credstore: keep credentials (memory, SQL,
//     encrypted at rest).
//   - github.com/voicegate/voicegate/codec: G.711, PCM helpers, resampling and
//     WAV files, allocation-free.
//
// # Example
//
// A Twilio Media Streams handler that verifies the caller (the whole program
// is Example_twilioVerify):
//
//	stream, err := twilio.Accept(w, r, &twilio.AcceptOptions{
//		PublicURL:  "wss://vb.example.com/media", // exactly as in <Stream url>
//		AuthTokens: []string{authToken},
//	})
//	if err != nil {
//		return // Accept answered 403 on a bad X-Twilio-Signature
//	}
//	go func() { // never use r.Context() after the upgrade
//		defer stream.Close()
//		start, err := stream.Start(ctx)
//		...
//		rec, err := store.Get(ctx, start.CustomParameters["caller"])
//		...
//		sess, err := daspeak.Verify(stream, engine, rec.Credential, nil)
//		...
//		for {
//			ev, err := sess.Next(ctx) // progress…, then one result or error event
//			if err != nil {
//				return // io.EOF after the terminal event
//			}
//			publish(ev)
//		}
//	}()
//
// engine is a das-Peak REST client (daspeak.NewClient) or the embedded
// offline engine (offline.New); store is any credstore.Store. The same
// session runs over an AudioHook session or any other FrameReader.
//
// `go run ./examples/demo` runs all of it offline on one machine.
//
// # Frames
//
// A [FrameReader] is pulled: ReadFrame(ctx) returns the next frame, or io.EOF
// at a clean end of stream. The frame payload is borrowed and valid only until
// the next call to ReadFrame; use [Frame.Clone] to keep it. Cancelling the ctx
// of one ReadFrame call returns ctx.Err() and leaves the stream usable; ending
// the stream is the job of its Close method.
package voicegate

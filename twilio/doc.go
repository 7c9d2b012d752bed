// Package twilio connects voicegate to Twilio Programmable Voice and Flex:
// the server side of Media Streams, webhook signatures, the Streams REST
// API, Flex token validation and web chat, access tokens and TwiML.
//
// # Media Streams
//
// Twilio streams call audio to a WebSocket server: one connection per
// stream, JSON text messages connected, start, media (20 ms of 8 kHz μ-law,
// base64), dtmf, mark and stop. Accept checks the upgrade's
// X-Twilio-Signature, upgrades the request and returns a Stream, a
// voicegate.FrameReader:
//
//	s, err := twilio.Accept(w, r, &twilio.AcceptOptions{
//		PublicURL:  "wss://vb.example.com/twilio/media",
//		AuthTokens: []string{primary, secondary},
//	})
//	if err != nil {
//		return // Accept answered 403 or 500
//	}
//	defer s.Close()
//	start, err := s.Start(ctx)  // account, call, customParameters
//	f, err := s.ReadFrame(ctx)  // until io.EOF
//
// The Stream parses messages leniently (numbers as strings or numbers, any
// field order, unknown fields and events ignored) and never panics on peer
// input; Stats counts what it ignored. With both_tracks it tags inbound
// frames voicegate.Customer and outbound ones voicegate.Agent.
//
// # Media time
//
// Frame.Timestamp comes from media.timestamp, relative to the first one of
// the stream (Twilio starts at an arbitrary value such as 155 ms; see
// Stream.FirstTimestamp), never from arrival time. A jump of half a frame
// or more between consecutive frames of a track is a gap: it is counted in
// Stats.Gaps and Stats.GapTime, and with AcceptOptions.FillGaps it is
// filled with μ-law silence (up to voicegate.MaxGapFill) so the audio read
// keeps the call's timeline. Duplicates and frames arriving after a later
// one of the same track are dropped and counted as late; each track has
// its own cut-off.
//
// # End of stream
//
// Stream is a voicegate.Stream: the contract of ReadFrame, Done, Err,
// Close and CloseNow is the one written in package voicegate, shared with
// audiohook.Session. The stop event is the clean end (io.EOF); a stream
// that ends any other way ends with a *voicegate.StreamError whose cause
// tells why (a *voicegate.CloseError, ErrIdleTimeout, a network error).
//
// # Slow readers
//
// Audio waits in a bounded queue shared by the tracks (by default 200
// frames: 2 s per track with both_tracks, 4 s with one track); when it is
// full, the oldest frame is dropped and counted. Control events are
// handled by the Stream's own goroutine at once, whatever the reader does.
//
// # Bidirectional streams
//
// On a <Connect><Stream>, SendAudio plays μ-law (or a WAV file) to the
// caller in 160-byte frames, SendMark asks for an echo once the audio sent
// so far has played, and Clear drops buffered audio. Twilio echoes pending
// marks on Clear too, so ReadEvent reports each echo as MarkPlayed or
// MarkCleared. DTMF arrives through ReadEvent.
//
// # Signatures
//
// Twilio signs every webhook and the WebSocket upgrade with HMAC-SHA1 of
// the URL (plus sorted POST parameters) keyed with the account's auth
// token. The URL Twilio signs is the one it was configured with: for Media
// Streams the wss:// URL, which the server behind a TLS proxy sees as
// https:// or http://. Configure the public URL explicitly; Validator then
// accepts exactly the URL variants twilio-node's validateRequest accepts
// (pinned by testdata/signature_vectors.json), under several tokens for
// rotation. The key is the auth token: an API key secret authenticates REST
// calls but cannot validate signatures.
//
// # REST, Flex and tokens
//
// Client starts and stops streams on a call and creates Flex web chats.
// FlexValidator checks a Flex agent's token with Twilio IAM and caches the
// identity, worker SID and roles until the token expires. AccessToken signs
// JWTs for the Voice and Conversations SDKs, and TwiML writes <Start>,
// <Connect> and <Stop> stream documents. (The Flex UI 1.x web chat on
// Programmable Chat, v1 WebChannels, reached end of life on June 1, 2026
// and is not offered.)
//
// Client and FlexValidator retry rate-limited (429) and failed (5xx,
// transport) calls with backoff when a repeat is safe; see
// ClientOptions.MaxRetries. When Twilio refuses the server's own
// credentials they return a *CredentialsError (ErrServerCredentials) naming
// the option to fix, never an "invalid token" error for the agent.
//
// The package depends on the standard library only. The Media Streams
// server side reads each message in place, without allocating. Package twiliotest holds a Media Streams
// simulator and a fake Twilio REST server for tests.
package twilio

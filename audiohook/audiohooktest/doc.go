// Package audiohooktest is a Genesys Cloud AudioHook client for tests and
// for probing AudioHook endpoints, as package twiliotest is for Twilio
// Media Streams.
//
// Dial signs the upgrade as Genesys does (HTTP message signature over the
// Audiohook-* headers and X-API-KEY), offers media (GenesysOffer by
// default), and checks opened. Client.Stream sends audio from any
// voicegate.FrameReader (ToneSource, WAVSource, a Session of another call)
// in 20–200 ms chunks, in real time or fast, skipping the audio up to
// opened's discardTo as Genesys does; Ping measures the round-trip time;
// pause, resume and disconnect are honoured as the Genesys client does,
// reconnect is only reported (Genesys logs it); Next returns the server's
// events and requests; Close runs the close transaction, whose timeout runs
// from when close was sent. Violations by the server are answered with an
// error message and close "error" and returned as *audiohook.ProtocolError.
package audiohooktest

// Package audiohook speaks the Genesys Cloud AudioHook protocol, version 2:
// a server that receives call audio from Genesys (Accept → *Session, a
// voicegate.FrameReader), HTTP message signatures, a pluggable key store
// and a session recorder. The message format (envelope, parameters, media
// formats, event entities) is in package audiohook/wire; a client that
// behaves like Genesys, for tests and for probing your own AudioHook
// endpoints, is in package audiohook/audiohooktest.
//
// # Server
//
// Accept checks the Audiohook-* headers, authenticates X-API-KEY and the
// HTTP message signature (hmac-sha256 over @request-target, @authority,
// audiohook-organization-id, audiohook-session-id, audiohook-correlation-id
// and x-api-key; clock window, nonce rules, constant-time compare) against a
// KeyStore (StaticKeys, KeysFromJSON, KeysFromEnv with the reference
// server's STATIC_API_KEY_MAP format), and upgrades the connection. A failed
// authentication is answered with HTTP 401 (AuthReject, the default) or with
// disconnect "unauthorized" in answer to open (AuthDisconnect), in both
// cases no sooner than AuthFailureDelay (500 ms) after verification started,
// whatever failed. Keys whose secret is empty may connect unsigned; a
// signature they carry must still verify. A NonceCache rejects replays; the
// in-memory one (MemoryNonces) keeps each nonce only while its request
// could pass the clock checks and, when full of live nonces, refuses new
// connections rather than forget one.
//
// One goroutine owned by the session holds its state and runs the
// protocol (application calls reach it as messages): it answers open with
// opened (media chosen by ServerOptions.Media preference, supportedLanguages,
// startPaused, the OnOpen hook), ping with pong at once, close with closed,
// update with updated; tracks paused/resumed/discarded gaps in the media
// position; records client error messages; and answers every violation
// (sequence numbers, session id, malformed JSON or parameters, messages in
// the wrong state, audio before opened or while paused, text over 64 KiB,
// wrong organization) with disconnect "error" or "unauthorized" while still
// completing the close/closed transaction. Accept returns before open
// arrives; Session.Open waits for it.
//
// # Frames
//
// Binary audio frames become voicegate.Frames: PCMU or L16 (little-endian),
// 8000 Hz, one or two channels with Parties from the negotiated channels
// (external = voicegate.Customer, internal = voicegate.Agent), Seq counting
// frames and Timestamp the media position of the first sample, including
// discarded and paused gaps (filled with silence up to
// voicegate.MaxGapFill with ServerOptions.FillGaps). Frames wait in a
// bounded buffer (2 s by default) that drops the oldest frame when the
// application falls behind; Stats counts the drops. A connection probe
// (null conversation id) is answered with opened and yields no frames.
//
// Session is a voicegate.Stream: the contract of ReadFrame, Done, Err,
// Close and CloseNow is the one written in package voicegate, shared with
// twilio.Stream. The close/closed transaction is the clean end (io.EOF);
// any other end is a *voicegate.StreamError wrapping a *ProtocolError,
// ErrIdleTimeout (no message for ServerOptions.IdleTimeout: a half-open
// connection) or ErrConnectionLost.
//
// # Recording
//
// With ServerOptions.Recorder set (DirSink for a local directory), each
// session is written as a WAV file in the negotiated format plus a JSON
// sidecar (Sidecar) listing every text message in both directions with
// its time. The files are written by the recorder's own goroutine, never on
// the protocol path; gaps in the media position up to voicegate.MaxGapFill
// are filled with silence.
//
// # Caveats
//
// Genesys only connects to wss:// endpoints with publicly trusted
// certificates. Behind a proxy, the Host header must reach the server
// unchanged, or signatures fail (@authority is signed). Do not use
// r.Context() after Accept: the session outlives the handler's request
// context only through its own context.
package audiohook

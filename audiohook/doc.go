// Package audiohook is a server for the Genesys Cloud AudioHook protocol,
// version 2. Accept authenticates an upgrade request from Genesys (X-API-KEY
// and HTTP message signature against a KeyStore such as StaticKeys, replays
// refused by a NonceCache such as MemoryNonces) and returns a *Session, a
// voicegate.Stream of the call's audio that answers the protocol on its own
// and lets the application send events, pause and disconnect. With
// ServerOptions.Recorder (DirSink) each session is recorded as WAV + JSON.
//
// The message format (envelope, parameters, media formats, event entities,
// header names) is in package audiohook/wire. A client that behaves like
// Genesys, for tests and for probing your own AudioHook endpoints, is in
// package audiohook/audiohooktest.
//
// # Caveats
//
// Genesys only connects to wss:// endpoints with publicly trusted
// certificates. Behind a proxy, the Host header must reach the server
// unchanged, or signatures fail (@authority is signed). Do not use
// r.Context() after Accept: the session outlives the handler's request
// context only through its own context.
package audiohook

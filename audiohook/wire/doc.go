// Package wire is the message format of the Genesys Cloud AudioHook
// protocol, version 2, shared by the server in package audiohook and the
// Genesys-like client in package audiohooktest: the text messages' envelope
// (Message, ParseClientMessage, ParseServerMessage), the parameters of each
// message type, media formats, event entities (transcript, agentassist),
// AudioHook durations and the header names of the upgrade request.
//
// The parsers check the envelope (version "2", a UUID id, integer sequence
// numbers, a parameters object, at most MaxTextMessage bytes) and the
// parameters they parse; their errors wrap ErrBadMessage. Binary frames (the audio) carry no envelope and
// are not parsed here.
package wire

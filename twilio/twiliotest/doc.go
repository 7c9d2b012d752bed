// Package twiliotest helps test code built on package twilio without
// Twilio: a Media Streams client simulator and a fake Twilio REST server.
//
// # Simulator
//
// PlayWAV, PlayAudio and PlayJSONL connect to any Media Streams server as
// Twilio does: a signed WebSocket upgrade (X-Twilio-Signature), then
// connected, start with customParameters, media every 20 ms (or as fast as
// possible) and stop. Options inject network trouble: jitter, loss,
// duplicated and out-of-order frames, a missing stop. The simulator also
// plays the server's outbound audio in real time and echoes marks the way
// Twilio does, including on clear, and reports all of it in a Result.
// Randomness comes from Options.Seed, and a FakeClock runs a real-time
// schedule instantly.
//
// # Fake REST server
//
// NewServer starts an HTTP server on 127.0.0.1 that implements the Calls
// fetch of the calls a test adds (AddCall, SetCallStatus), the Streams
// subresource (create, stop by SID or name), IAM Tokens/validate for Flex
// tokens, Flex v2 WebChats and TaskRouter's workspace, task and worker
// reservations fetches (AddWorkspace, AddTask, SetReservation), with Basic auth,
// Twilio's error bodies and injectable faults: an error status with an
// optional Retry-After, a delay, a dropped connection, a request that takes
// effect but loses its answer, for every or only the first few requests.
package twiliotest

// Package daspeak registers and verifies callers by voice against a
// biometric [Engine]: the Veridas das-Peak REST service ([Client]) or the
// embedded offline engine (package daspeak/offline).
//
// # Sessions
//
// A [Session] does in process what das-Peak Streaming does in the cloud. It
// reads call audio from any voicegate.FrameReader (a Twilio Media Stream, an
// AudioHook session, a WAV file), keeps the configured party's channel,
// decodes it (μ-law, A-law or 16-bit PCM; 8 or 16 kHz; mono or stereo),
// measures net speech with an energy voice activity detector, and, once
// enough net speech is collected, makes one engine call: a credential from
// the audio ([Register]) or a score of the audio against a credential
// ([Verify]). It then applies the authenticity and score thresholds and
// ends with exactly one terminal event:
//
//	result-success            register: credential made; verify: score ≥ threshold
//	result-fail-score         verify: score below ScoreThreshold
//	result-fail-spoof         authenticity below AuthenticityThreshold
//	error-parameters          invalid Config (nothing is read)
//	error-consumer-not-ready  no audio of the party within NoAudioTimeout
//	error-audio               the stream ended (or failed) before enough speech
//	error-das-Peak            the engine failed; Err and Exception say why
//
// Before it, "progress" events report the net speech collected so far and
// the net speech needed. Events are pulled with [Session.Next], which does
// all the work in the caller's goroutine; after the terminal event Next
// returns io.EOF.
//
//	s, err := daspeak.Register(stream, engine, &daspeak.Config{Store: store, CallerID: ani})
//	for {
//		ev, err := s.Next(ctx)
//		if err != nil { … }          // ctx ended; Next may be called again
//		send(ev)                     // json.Marshal(ev) for a UI
//		if ev.IsTerminal() { break }
//	}
//
// The collected audio keeps speech and at most MaxPause of each pause, is
// capped below das-Peak's 30 s (MaxTotalAudio) and goes to the engine as a
// mono WAV file in the stream's encoding. A register success carries the
// credential, the authenticity, the net speech and that WAV file; with
// Config.Store the session hands the credential to the store, retrying
// with backoff, and if the store still fails the success event carries
// the credential and StoreErr so the caller can keep it some other way.
//
// Net speech is counted by the session's detector, which may disagree with
// the engine's by 5–15%: the session waits for at least 3 s plus
// NetSpeechMargin (default 3.5 s) and reports the engine's own figure in
// results (EngineNetSpeech).
//
// # Event names and JSON
//
// The event type names are those of das-Peak Streaming's agent
// integration; they could not be checked against a public das-Peak
// Streaming source. Event.MarshalJSON writes snake_case keys, the spelling
// of das-Peak's REST API ("net_speech", "score_threshold", …), with
// durations in seconds; the integration's camelCase spelling is not used
// because no public source confirms it.
package daspeak

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
// ([Verify]). It then applies the authenticity and score thresholds, hands
// a register credential to Config.Store if one is set, and ends with
// exactly one terminal event:
//
//	result-success            register: credential made and, with a Store, stored;
//	                          verify: score ≥ ScoreThreshold
//	result-fail-score         verify: score below ScoreThreshold
//	result-fail-spoof         authenticity below AuthenticityThreshold
//	error-parameters          invalid Config (nothing is read)
//	error-consumer-not-ready  no audio of the party within NoAudioTimeout
//	error-audio               the stream ended (or failed) before enough speech
//	error-das-Peak            the engine failed; Err and Exception say why
//	error-store               register: credential made but the Store did not
//	                          keep it; the event carries it (voicegate's addition)
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
//		send(ev)                     // json.Marshal(ev) for a UI: no credential, no audio
//		if ev.Type == daspeak.EventErrorStore {
//			keep(ani, ev.Credential, ev.ModelHash, ev.Audio) // the store failed
//		}
//		if ev.IsTerminal() { break }
//	}
//
// The collected audio keeps speech and at most MaxPause of each pause, is
// capped below das-Peak's 30 s (MaxTotalAudio) and goes to the engine as a
// mono WAV file in the stream's encoding. A register result carries the
// credential, the authenticity, the net speech and that WAV file.
//
// # Storing credentials
//
// With Config.Store, a register result-success means the credential is
// stored: the session hands it to the store, retrying with backoff
// (StoreRetries, StoreBackoff), and only then reports success. If the
// store still fails, the session ends with error-store instead, whose Err
// matches ErrStore and which carries the credential, the model hash and
// the audio so the application can keep them some other way. The whole
// store step runs under context.WithoutCancel of Next's ctx bounded by
// Config.StoreTimeout (default 10 s): cancelling ctx, as a shutdown does,
// does not cut off a store in progress, and Next returns the terminal
// event once the step ends.
//
// # Bounding engine calls
//
// A [Limiter] shared by a server's sessions (Config.Limiter) bounds the
// engine calls in progress and queues the others in arrival order. The
// offline engine's calls are CPU-bound, and NewLimiter(0) gives one slot a
// core (GOMAXPROCS). When many sessions reach enough speech at once, the
// Limiter serves them in the order they came, each result after the calls
// before it. Without it every call competes for the cores and all the
// results come late together. The wait is reported in
// SessionStats.EngineWait and Event.EngineWait.
//
// BenchmarkBurst measures a burst. 1,000 verify sessions get their last
// frame at the same moment and call the offline engine:
//
//	go test -run '^$' -bench Burst -benchtime 1x -v ./daspeak/
//
// The goal is that every result comes within the engine calls' own CPU
// time divided among the cores plus 100 ms, in arrival order. On 2 cores
// (GOMAXPROCS 2) shared with other jobs (load average 12–16), eight runs
// gave these figures with the Limiter:
//
//   - The engine calls took 2.99–3.63 s of CPU, measured on each call's
//     thread. That is 3.0–3.6 ms a call, for a bound of 1.60–1.92 s.
//   - Every call was admitted in arrival order (0 out of order).
//   - The median result came at 0.81–1.25 s and the last at 1.62–2.14 s,
//     both on the process's clock. That clock is the process's CPU time
//     plus the time its scheduler was idle or stopped for a garbage
//     collection, divided among the cores: the wall time of a machine
//     running nothing else.
//   - So the last result was 5–288 ms past the bound: the goal was not met
//     on this machine. On the CPU clock alone, which leaves out the idle
//     and pause time, the last result came between 30 ms within the bound
//     and 31 ms past it.
//   - The process spent 140–263 ms of CPU outside the engine calls, or
//     70–132 ms a core, against the 100 ms allowance. That CPU went to the
//     garbage collector's background work (15 cycles in the burst, driven
//     by the engine's allocations of about 0.9 MB a call), the WAV files,
//     the sessions' last frames and the results. Idle and pause time added
//     another 57–513 ms, or 29–257 ms a core. It grows with the machine's
//     load, because a collection's pause lasts until every one of the
//     process's threads is back on a core.
//   - Results came at most 3–28 places out of arrival order, because a
//     call on one core can finish after later calls on the other. On the
//     wall clock the last result came at 3.7–12.6 s, because the other
//     jobs had the cores.
//
// The sessions stay referenced until the burst ends, because their calls
// go on after the result. With -burst.keep=false each session is dropped
// at its result. The heap then shrinks with every result and the
// collector runs about three times as often (42–44 cycles), which cost
// 284–343 ms of CPU outside the engine calls in two runs.
//
// Without the Limiter the last result came at about the same time
// (1.54–2.03 s on the process's clock), but in scheduler order: up to
// 580–964 places out of order, with results up to 0.95–1.64 s past their
// fair share. The Limiter gains order and a bound, not speed.
//
// # Anti-spoofing
//
// das-Peak reports an authenticity in [0, 1] with every result; the
// session fails results below AuthenticityThreshold with
// result-fail-spoof. An engine that does no anti-spoofing reports
// [AuthenticityNotPerformed] (-1) instead: the session then applies no
// authenticity threshold, decides on the score alone (the credential alone
// for register), and says so in the event: Event.AntiSpoofing is
// AntiSpoofingNotPerformed, and the JSON has "anti_spoofing":
// "not-performed" and no "authenticity". An authenticity or score outside
// its range ends the session with error-das-Peak (ErrInvalidResult).
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
// Streaming source; error-store is voicegate's own. Event.MarshalJSON
// writes snake_case keys, the spelling of das-Peak's REST API
// ("net_speech", "score_threshold", …), with durations in seconds; the
// integration's camelCase spelling is not used because no public source
// confirms it.
//
// An event's JSON is meant for user interfaces and logs: it never holds
// the credential or the audio unless the session's Config.CredentialInJSON
// or Config.AudioInJSON asks for them. The Go fields Event.Credential and
// Event.Audio always hold them.
package daspeak

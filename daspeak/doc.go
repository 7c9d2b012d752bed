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
// (GOMAXPROCS 2) shared with other jobs (load average 6.5–9.9 over one
// minute, 9.4–10.3 over five), eight runs gave these figures with the
// Limiter:
//
//   - The engine calls took 3.00–3.81 s of CPU, measured on each call's
//     thread. That is 3.0–3.8 ms a call, for a bound of 1.60–2.01 s.
//   - Every call was admitted in arrival order (0 out of order).
//   - The median result came at 0.75–0.96 s and the last at 1.52–2.02 s,
//     both on the process's clock. That clock is the process's CPU time
//     plus the time its scheduler was idle or stopped for a garbage
//     collection, divided among the cores: the wall time of a machine
//     running nothing else.
//   - So the last result came between 87 ms within the bound and 13 ms
//     past it; it was past the bound in one run of eight, the run with
//     the most idle time (92 ms). On the CPU clock alone, which leaves out
//     the idle and pause time, it came 33–88 ms within the bound.
//   - The process spent 24–135 ms of CPU outside the engine calls, or
//     12–68 ms a core, against the 100 ms allowance, with 432–715 page
//     faults in the burst and 3–306 ms of system time. The garbage
//     collector did not run (0 cycles): the offline engine reuses its
//     buffers from call to call, and verify sessions reuse their WAV
//     files' buffers (about 40 KB each) from a pool, about one a Limiter
//     slot. Idle and pause time added 1–92 ms; it varied with the other
//     jobs' load.
//   - Results came at most 3–30 places out of arrival order, because a
//     call on one core can finish after later calls on the other. On the
//     wall clock the last result came at 1.5–5.9 s, because the other
//     jobs had the cores.
//
// Building a new WAV file for every call, as sessions did before, cost
// page faults: eight runs of that build, interleaved with the eight above
// under the same load, had 12,458–12,794 page faults, 61–175 ms of CPU
// outside the engine calls (more than the runs with the pool in each of
// the eight pairs, by 2–100 ms, 38 ms at the median) and the last result
// between 69 ms within the bound and 13 ms past it, past it in three runs.
// Under a heavier load (load average 11–15), ten earlier runs of that
// build had the last result 17–360 ms past the bound, with 73–127 ms a
// core of CPU outside the engine calls.
//
// Before the offline engine reused its buffers it allocated about 0.9 MB
// a call. Ten runs of that engine, interleaved with those ten, had 13–14
// collections in the burst, 2.98–3.14 s of engine CPU (the collector's
// assists included), 207–256 ms of CPU outside the engine calls, 227 ms
// to 1.08 s of idle and pause time, and the last result 135–567 ms past
// the bound.
//
// The rest of this section was measured with a new WAV file a call
// unless it says otherwise. The sessions stay referenced until the burst
// ends, because their calls go on after the result. With
// -burst.keep=false each session is dropped at its result. With the old engine the heap then shrank with every
// result and the collector ran about three times as often (40 cycles),
// which cost 250–258 ms of CPU outside the engine calls in two runs; with
// the buffers reused it ran 0 times and the CPU outside the engine calls
// was 129–178 ms in two runs interleaved with those, the last result
// 24 ms within and 218 ms past the bound.
//
// Without the Limiter the last result came at about the same time
// (1.57–1.64 s on the process's clock in two runs), but in scheduler
// order: up to 827–833 places out of order, with results up to
// 1.28–1.33 s past their fair share. All the calls then run at once, each
// with its own buffers, and the collector ran 1–2 times. So the pool of
// WAV buffers helps little there: with it, two runs without the Limiter
// had 12,831–20,517 page faults, against 14,774–26,737 in two runs
// building a new file a call, interleaved. The Limiter gains order and a
// bound, not speed.
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

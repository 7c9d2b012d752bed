// Package vad detects speech in telephone audio and measures net speech: the
// duration of the frames that hold speech, without pauses, silence or the
// hangover that keeps a segment open across short gaps.
//
// [Energy] is a pure-Go adaptive energy detector. Each 20 ms frame is
// high-passed at 100 Hz (one biquad, removing DC and mains hum), its level is
// measured in dBFS, and the level is compared with a tracked noise floor that
// falls quickly and rises slowly. A segment opens when two of the last three
// frames are at least OnsetDB above the floor (and above MinLevel), and
// reaches back over up to 200 ms of frames at least HoldDB above the floor
// that led up to the onset. It stays open while frames are at least HoldDB
// above the floor, and closes after Hangover quiet frames. Quiet runs of at
// most FillGap inside a segment count as speech when speech resumes (weak
// sounds between syllables); the hangover never counts. Segments holding
// less than MinSegment of speech are discarded.
//
// Net speech is checked against labels taken from the clean signal (frames
// within 35 dB of the loudest) on streams of utterances joined by 0.3–1.5 s
// pauses, with white noise added and a μ-law round trip
// (TestNetSpeechOnRealSpeech). On Asterisk prompts of six real speakers the
// mean absolute error is 4.5% at 30 dB SNR and 3.4% at 20 dB; on the
// committed clips 6.2% and 4.0%; every stream is within 10%. Without noise
// (digital-silence pauses) it counts quiet word endings the labels leave
// out and overestimates by 7–10% on average, up to 16%. It is weak below
// 10 dB SNR (about 20% under), counts music as speech, and after a long
// stretch of digital silence its noise floor needs time to rise to a new
// noise level.
//
// An Energy is not safe for concurrent use; use one per stream. Process does
// not allocate.
package vad

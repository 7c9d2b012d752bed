package daspeak

import "context"

// DefaultCalibration is the calibration das-Peak uses when none is given.
const DefaultCalibration = "telephone-channel"

// Engine turns audio into voice credentials and scores audio against them.
// The das-Peak REST [Client] and the embedded engine in package
// daspeak/offline implement it, so sessions, the emulator and applications
// work with either.
//
// Audio is a complete WAV file (8 or 16 kHz; 16-bit PCM, μ-law or A-law; one
// or two channels), as das-Peak accepts it. Implementations must be safe for
// concurrent use. Errors that das-Peak would report carry an [*APIError]
// with the das-Peak exception name, so callers branch on them the same way
// whatever the engine.
//
// An implementation must not modify the audio. A verify [Session] reuses
// the audio's buffer for later engine calls only when the Engine is an
// [AudioReleaser] that reports so.
type Engine interface {
	// GenerateCredential creates a credential for the voice in audio with
	// the model identified by hash (das-Peak endpoint
	// POST /models/{hash}/credential/wav).
	GenerateCredential(ctx context.Context, hash string, audio []byte, opts *AudioOptions) (*CredentialResult, error)
	// CompareCredentialToAudio scores the voice in audio against a
	// credential (POST /similarity/credential2wav).
	CompareCredentialToAudio(ctx context.Context, credential string, audio []byte, opts *AudioOptions) (*CompareResult, error)
}

// CredentialComparer is implemented by engines that can score one credential
// against another without audio (POST /similarity/credential2credential).
type CredentialComparer interface {
	CompareCredentials(ctx context.Context, reference, toEvaluate, calibration string) (*CompareResult, error)
}

// ModelLister is implemented by engines that publish their model hashes
// (GET /models); the last one is the newest.
type ModelLister interface {
	Models(ctx context.Context) ([]string, error)
}

// AudioOptions are the per-request audio parameters of das-Peak. The zero
// value means channel 1 and calibration "telephone-channel".
type AudioOptions struct {
	// Channel is the 1-based channel of a stereo file to use (das-Peak
	// form field "channel"). 0 means 1.
	Channel int
	// Calibration names the score calibration (form field "calibration").
	// "" means DefaultCalibration.
	Calibration string
}

// AuthenticityNotPerformed is the Authenticity an engine reports when it did
// no anti-spoofing check (the embedded offline engine). It is voicegate's
// sentinel, outside das-Peak's documented range [0, 1]: a session never
// judges it against AuthenticityThreshold (neither a passed nor a failed
// check); its events set Event.AntiSpoofing to AntiSpoofingNotPerformed and
// carry "anti_spoofing":"not-performed" in JSON instead of an authenticity
// value. The daspeaktest emulator sends it to REST clients as -1.
const AuthenticityNotPerformed = -1.0

// Model identifies the model that produced a result.
type Model struct {
	// Hash is the model hash, as listed by GET /models.
	Hash string `json:"hash"`
	// Mode is das-Peak's "mode" of the model. Its values are not
	// documented; treat it as an opaque label.
	Mode string `json:"mode,omitempty"`
}

// CredentialResult is the outcome of GenerateCredential.
type CredentialResult struct {
	// Model is the model that made the credential.
	Model Model `json:"model"`
	// Credential is opaque; store it with the model hash.
	Credential string `json:"credential"`
	// Authenticity is the anti-spoofing value in [0, 1]; higher is more
	// likely a live human voice. [AuthenticityNotPerformed] when the
	// engine did no anti-spoofing (over REST, only from the daspeaktest
	// emulator: a voicegate extension; das-Peak documents [0, 1]).
	Authenticity float64 `json:"authenticity"`
	// InputAudioDuration and NetSpeechDuration are in seconds, as das-Peak
	// reports them.
	InputAudioDuration float64 `json:"input_audio_duration"`
	NetSpeechDuration  float64 `json:"net_speech_duration"`
}

// CompareResult is the outcome of a similarity call.
type CompareResult struct {
	// Model is the model that scored, when the engine reports it.
	Model Model `json:"model"`
	// Calibration is the score calibration applied.
	Calibration string `json:"calibration"`
	// Score is in [0, 1]; higher means more likely the same speaker.
	// das-Peak makes no decision: the caller applies a threshold.
	Score float64 `json:"score"`
	// Authenticity of the evaluated audio, when audio was evaluated;
	// [AuthenticityNotPerformed] when the engine did no anti-spoofing
	// (a voicegate extension, as for CredentialResult.Authenticity).
	Authenticity float64 `json:"authenticity_to_evaluate"`
	// Durations of the evaluated audio in seconds, when audio was evaluated.
	InputAudioDuration float64 `json:"input_audio_duration_to_evaluate"`
	NetSpeechDuration  float64 `json:"net_speech_duration_to_evaluate"`
}

// AudioReleaser is implemented by an Engine that is done with the audio it
// was given when a call returns, even when ctx ended first: it neither keeps
// the slice nor reads it afterwards, as p belongs to the caller of an
// io.Writer. A verify [Session] reuses its WAV buffers between engine calls
// only when its Engine's ReleasesAudio reports true; with any other Engine
// it builds a new file for each call, so an Engine that still reads the
// audio after returning (a goroutine racing two endpoints, say) never sees
// a later caller's voice. [*Client] and the offline engine implement it.
type AudioReleaser interface {
	ReleasesAudio() bool
}

// releasesAudio reports whether e is an AudioReleaser done with the audio
// when a call returns.
func releasesAudio(e Engine) bool {
	r, ok := e.(AudioReleaser)
	return ok && r.ReleasesAudio()
}

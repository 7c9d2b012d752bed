package offline

import (
	"context"
	"fmt"
	"slices"

	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/daspeak"
)

// ModelHash identifies the one model of this engine. Credentials carry it;
// it is also what Models returns. It changes whenever a change to the
// front end, the background model or the compensation makes old
// credentials incomparable.
const ModelHash = "offline-mfcc-v4"

// PreviousModelHashes are the model hashes of earlier versions of this
// engine. Their credentials are refused with a *StaleCredentialError.
var PreviousModelHashes = []string{"offline-mfcc-v1", "offline-mfcc-v2", "offline-mfcc-v3"}

// SecurityWarning is the warning an application that serves callers with
// this engine should log at start: the engine is a demonstration and test
// engine, not a security control.
const SecurityWarning = "the offline speaker verification engine is a demonstration and test engine, NOT a security control: " +
	"its error rates are far above a commercial engine's and it does no anti-spoofing (authenticity is reported as " +
	"daspeak.AuthenticityNotPerformed, -1), so a recording or a synthetic voice passes; do not use it to protect anything"

// ModelMode is reported in results as the model's mode.
const ModelMode = "mfcc-stats"

// Limits the engine applies, as das-Peak does.
const (
	// MinNetSpeech is the least net speech, in seconds, that a request
	// must hold.
	MinNetSpeech = 3.0
	// MaxDuration is the longest audio, in seconds, a request may hold.
	MaxDuration = 30.0
)

// DefaultScoreThreshold is the score at which the engine's calibration
// puts the highest normalised score that 2% of impostors exceeded in any
// of five sets of fit trials (random channels, and four kinds of channel
// shared by both sides; see "What a score means" in the package
// documentation): a threshold that holds the false-accept rate across
// channels, not one where false accepts and false rejects balance.
const DefaultScoreThreshold = 0.5

// Engine is the offline speaker verification engine. It implements
// daspeak.Engine, daspeak.CredentialComparer and daspeak.ModelLister.
// The zero value is not usable; call New. An Engine is safe for concurrent
// use and holds no per-request state.
type Engine struct {
	calibrations []string
}

// Options configure an Engine. The zero value is the default.
type Options struct {
	// Calibrations are the calibration names the engine accepts. The
	// engine has one calibration and ignores the name; the list only
	// decides which names are valid (others give
	// CalibrationNotAvailable). Default: daspeak.DefaultCalibration only.
	Calibrations []string
}

// New returns an offline engine.
func New(opts *Options) *Engine {
	e := &Engine{calibrations: []string{daspeak.DefaultCalibration}}
	if opts != nil && len(opts.Calibrations) > 0 {
		e.calibrations = append([]string(nil), opts.Calibrations...)
	}
	return e
}

var (
	_ daspeak.Engine             = (*Engine)(nil)
	_ daspeak.CredentialComparer = (*Engine)(nil)
	_ daspeak.ModelLister        = (*Engine)(nil)
)

// Models returns the engine's only model hash.
func (e *Engine) Models(ctx context.Context) ([]string, error) {
	return []string{ModelHash}, nil
}

// Calibrations returns the calibration names the engine accepts.
func (e *Engine) Calibrations(ctx context.Context, hash string) ([]string, error) {
	if hash != ModelHash {
		return nil, modelNotAvailable(hash)
	}
	return append([]string(nil), e.calibrations...), nil
}

// GenerateCredential implements daspeak.Engine. Authenticity is always
// daspeak.AuthenticityNotPerformed: the engine does no anti-spoofing.
func (e *Engine) GenerateCredential(ctx context.Context, hash string, audio []byte, opts *daspeak.AudioOptions) (*daspeak.CredentialResult, error) {
	if hash != ModelHash {
		return nil, modelNotAvailable(hash)
	}
	ws := workspaces.Get().(*workspace)
	defer workspaces.Put(ws)
	emb, a, err := e.analyseAudio(ctx, ws, audio, opts)
	if err != nil {
		return nil, err
	}
	return &daspeak.CredentialResult{
		Model:              daspeak.Model{Hash: ModelHash, Mode: ModelMode},
		Credential:         ws.encodeCredential(ModelHash, emb),
		Authenticity:       daspeak.AuthenticityNotPerformed,
		InputAudioDuration: round3(a.duration),
		NetSpeechDuration:  round3(a.netSpeech),
	}, nil
}

// CompareCredentialToAudio implements daspeak.Engine. Authenticity is
// always daspeak.AuthenticityNotPerformed. A credential of an earlier model
// version gives a *StaleCredentialError.
func (e *Engine) CompareCredentialToAudio(ctx context.Context, credential string, audio []byte, opts *daspeak.AudioOptions) (*daspeak.CompareResult, error) {
	ws := workspaces.Get().(*workspace)
	defer workspaces.Put(ws)
	ref, err := ws.parseCredential(credential)
	if err != nil {
		return nil, err
	}
	emb, a, err := e.analyseAudio(ctx, ws, audio, opts)
	if err != nil {
		return nil, err
	}
	return &daspeak.CompareResult{
		Model:              daspeak.Model{Hash: ModelHash, Mode: ModelMode},
		Calibration:        calibrationName(opts),
		Score:              ws.score(ref, emb),
		Authenticity:       daspeak.AuthenticityNotPerformed,
		InputAudioDuration: round3(a.duration),
		NetSpeechDuration:  round3(a.netSpeech),
	}, nil
}

// CompareCredentials implements daspeak.CredentialComparer. A credential
// of an earlier model version gives a *StaleCredentialError.
func (e *Engine) CompareCredentials(ctx context.Context, reference, toEvaluate, calibration string) (*daspeak.CompareResult, error) {
	if err := e.checkCalibration(calibration); err != nil {
		return nil, err
	}
	a, err := parseCredential(reference)
	if err != nil {
		return nil, err
	}
	b, err := parseCredential(toEvaluate)
	if err != nil {
		return nil, err
	}
	if calibration == "" {
		calibration = daspeak.DefaultCalibration
	}
	return &daspeak.CompareResult{
		Model:       daspeak.Model{Hash: ModelHash, Mode: ModelMode},
		Calibration: calibration,
		Score:       score(a, b),
	}, nil
}

// CredentialModel returns the model hash a credential was made with, or an
// InvalidCredential error.
func CredentialModel(credential string) (string, error) {
	hash, _, ok := decodeCredential(credential)
	if !ok {
		return "", invalidCredential()
	}
	return hash, nil
}

func parseCredential(s string) ([]float32, error) {
	return new(workspace).parseCredential(s)
}

// parseCredential is parseCredential with ws's buffers: the embedding is
// ws's until its next decodeCredential.
func (ws *workspace) parseCredential(s string) ([]float32, error) {
	hash, emb, ok := ws.decodeCredential(s)
	if !ok {
		return nil, invalidCredential()
	}
	if slices.Contains(PreviousModelHashes, hash) {
		return nil, &StaleCredentialError{Model: hash}
	}
	if hash != ModelHash {
		return nil, modelNotAvailable(hash)
	}
	if len(emb) != embedDim {
		return nil, invalidCredential()
	}
	return emb, nil
}

func (e *Engine) checkCalibration(c string) error {
	if c == "" {
		return nil
	}
	for _, ok := range e.calibrations {
		if c == ok {
			return nil
		}
	}
	return &daspeak.APIError{Status: 400, Exception: daspeak.ExceptionCalibrationNotAvailable,
		Message: fmt.Sprintf("The calibration %s is not available", c)}
}

func calibrationName(opts *daspeak.AudioOptions) string {
	if opts == nil || opts.Calibration == "" {
		return daspeak.DefaultCalibration
	}
	return opts.Calibration
}

// analyseAudio validates and decodes a WAV request and returns its
// embedding and analysis, both in ws's buffers.
func (e *Engine) analyseAudio(ctx context.Context, ws *workspace, audio []byte, opts *daspeak.AudioOptions) ([]float32, analysis, error) {
	if err := ctx.Err(); err != nil {
		return nil, analysis{}, err
	}
	var o daspeak.AudioOptions
	if opts != nil {
		o = *opts
	}
	if o.Channel == 0 {
		o.Channel = 1
	}
	if o.Channel != 1 && o.Channel != 2 {
		return nil, analysis{}, &daspeak.APIError{Status: 400, Exception: daspeak.ExceptionInvalidChannel, Message: "Invalid specified channel/s"}
	}
	if err := e.checkCalibration(o.Calibration); err != nil {
		return nil, analysis{}, err
	}
	if len(audio) == 0 {
		return nil, analysis{}, &daspeak.APIError{Status: 400, Exception: daspeak.ExceptionNoAudio, Message: "No audio input"}
	}
	w, err := codec.ParseWAV(audio)
	if err != nil {
		return nil, analysis{}, wavError(err)
	}
	if w.Source.Float() {
		// codec converts float files; das-Peak takes PCM_16, ULAW and ALAW.
		return nil, analysis{}, wavError(fmt.Errorf("%w: IEEE float", codec.ErrUnsupportedWAV))
	}
	f := w.Format
	switch {
	case f.Channels > 2:
		return nil, analysis{}, audioInput("The wav has more channels than are accepted by the system")
	case f.SampleRate != 8000 && f.SampleRate != 16000:
		return nil, analysis{}, audioInput("The sample rate is not supported, must be 8 Khz or 16 Khz")
	case w.Duration().Seconds() >= MaxDuration:
		return nil, analysis{}, audioInput("The wav duration is longer than 30 seconds")
	case o.Channel > f.Channels:
		return nil, analysis{}, &daspeak.APIError{Status: 400, Exception: daspeak.ExceptionInvalidChannel, Message: "Invalid specified channel/s"}
	}
	// w.Mono(o.Channel-1), in ws's buffers.
	ws.pcm = w.PCM(ws.pcm[:0])
	pcm := ws.pcm
	if f.Channels != 1 {
		ws.mono = grow(ws.mono, len(pcm)/f.Channels)
		pcm = ws.mono
		if codec.ExtractChannel(pcm, ws.pcm, f.Channels, o.Channel-1) == 0 && len(pcm) > 0 {
			pcm = nil
		}
	}
	a := ws.analyse(pcm, f.SampleRate, 0)
	if a.netSpeech < MinNetSpeech {
		return nil, a, &daspeak.APIError{Status: 400, Exception: daspeak.ExceptionVoiceDurationIsNotEnough,
			Message:  fmt.Sprintf("Voice duration is not enough %.2fs < %.2fs", floor2(a.netSpeech), MinNetSpeech),
			Detected: floor2(a.netSpeech)}
	}
	if err := ctx.Err(); err != nil {
		return nil, analysis{}, err
	}
	emb := ws.embedding(a)
	if emb == nil {
		return nil, a, &daspeak.APIError{Status: 400, Exception: daspeak.ExceptionInsufficientQuality, Message: "The audio quality is not good enough"}
	}
	return emb, a, nil
}

func wavError(err error) error {
	return &daspeak.APIError{Status: 400, Exception: daspeak.ExceptionAudioInput,
		Message: "Provided audio data uses an unsupported codec. Supported codecs are: PCM_16, ULAW, ALAW (" + err.Error() + ")"}
}

func audioInput(msg string) error {
	return &daspeak.APIError{Status: 400, Exception: daspeak.ExceptionAudioInput, Message: msg}
}

func invalidCredential() error {
	return &daspeak.APIError{Status: 400, Exception: daspeak.ExceptionInvalidCredential, Message: "Decryption error"}
}

func modelNotAvailable(hash string) error {
	return &daspeak.APIError{Status: 404, Exception: daspeak.ExceptionModelNotAvailable,
		Message: "The model is not available: " + hash}
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }
func floor2(x float64) float64 { return float64(int64(x*100)) / 100 }

// ReleasesAudio reports true: every call decodes the WAV file into its own
// buffers and keeps nothing of it when it returns. It makes the Engine a
// daspeak.AudioReleaser.
func (e *Engine) ReleasesAudio() bool { return true }

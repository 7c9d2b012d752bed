package daspeaktest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"

	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/daspeak"
)

// FakeModel is the only model hash of FakeEngine.
const FakeModel = "fake-model-0001"

// Scores given by FakeEngine.
const (
	FakeMatchScore    = 0.99
	FakeMismatchScore = 0.05
	FakeAuthenticity  = 0.99
)

// FakeEngine is a deterministic daspeak.Engine for tests. It does no
// biometrics: a credential is base64(JSON {"m": model hash, "v": voiceprint})
// where the voiceprint is a SHA-256 of the selected channel's decoded
// samples, so only the same audio (whatever its G.711 or PCM encoding
// rounds to) scores FakeMatchScore; anything else scores FakeMismatchScore.
// Net speech is measured with NetSpeech. It also implements
// daspeak.CredentialComparer, daspeak.ModelLister and CredentialModeler.
// The zero value is ready to use.
type FakeEngine struct{}

var (
	_ daspeak.Engine             = FakeEngine{}
	_ daspeak.CredentialComparer = FakeEngine{}
	_ daspeak.ModelLister        = FakeEngine{}
	_ CredentialModeler          = FakeEngine{}
)

type fakeCredential struct {
	M string `json:"m"`
	V string `json:"v"`
}

type fakeVoice struct {
	print    string
	duration float64
	net      float64
}

func fakeAnalyse(audio []byte, opts *daspeak.AudioOptions) (*fakeVoice, error) {
	w, err := codec.ParseWAV(audio)
	if err != nil {
		return nil, daspeak.NewAPIError(0, daspeak.ExceptionAudioInput, msgNotWAV)
	}
	ch := 1
	if opts != nil && opts.Channel != 0 {
		ch = opts.Channel
	}
	if ch < 1 || ch > w.Format.Channels {
		return nil, daspeak.NewAPIError(0, daspeak.ExceptionInvalidChannel, msgInvalidChannel)
	}
	pcm := w.Mono(ch - 1)
	h := sha256.New()
	var b [2]byte
	for _, s := range pcm {
		binary.LittleEndian.PutUint16(b[:], uint16(s))
		h.Write(b[:])
	}
	return &fakeVoice{
		print:    hex.EncodeToString(h.Sum(nil)[:16]),
		duration: wavDuration(w),
		net:      NetSpeech(pcm, w.Format.SampleRate),
	}, nil
}

func fakeDecode(credential string) (*fakeCredential, error) {
	b, err := base64.StdEncoding.DecodeString(credential)
	var c fakeCredential
	if err != nil || json.Unmarshal(b, &c) != nil || c.M == "" || c.V == "" {
		return nil, daspeak.NewAPIError(0, daspeak.ExceptionInvalidCredential, msgDecryption)
	}
	return &c, nil
}

func fakeScore(a, b string) float64 {
	if a == b {
		return FakeMatchScore
	}
	return FakeMismatchScore
}

func calibrationOf(opts *daspeak.AudioOptions) string {
	if opts == nil || opts.Calibration == "" {
		return daspeak.DefaultCalibration
	}
	return opts.Calibration
}

// Models implements daspeak.ModelLister: [FakeModel].
func (FakeEngine) Models(context.Context) ([]string, error) {
	return []string{FakeModel}, nil
}

// GenerateCredential implements daspeak.Engine.
func (FakeEngine) GenerateCredential(ctx context.Context, hash string, audio []byte, opts *daspeak.AudioOptions) (*daspeak.CredentialResult, error) {
	if hash != FakeModel {
		return nil, daspeak.NewAPIError(0, daspeak.ExceptionModelNotAvailable, "The requested model is not available: "+hash)
	}
	v, err := fakeAnalyse(audio, opts)
	if err != nil {
		return nil, err
	}
	cred, _ := json.Marshal(fakeCredential{M: hash, V: v.print})
	return &daspeak.CredentialResult{
		Model:              daspeak.Model{Hash: hash, Mode: "fake"},
		Credential:         base64.StdEncoding.EncodeToString(cred),
		Authenticity:       FakeAuthenticity,
		InputAudioDuration: v.duration,
		NetSpeechDuration:  v.net,
	}, nil
}

// CompareCredentialToAudio implements daspeak.Engine.
func (FakeEngine) CompareCredentialToAudio(ctx context.Context, credential string, audio []byte, opts *daspeak.AudioOptions) (*daspeak.CompareResult, error) {
	c, err := fakeDecode(credential)
	if err != nil {
		return nil, err
	}
	v, err := fakeAnalyse(audio, opts)
	if err != nil {
		return nil, err
	}
	return &daspeak.CompareResult{
		Model:              daspeak.Model{Hash: c.M, Mode: "fake"},
		Calibration:        calibrationOf(opts),
		Score:              fakeScore(c.V, v.print),
		Authenticity:       FakeAuthenticity,
		InputAudioDuration: v.duration,
		NetSpeechDuration:  v.net,
	}, nil
}

// CompareCredentials implements daspeak.CredentialComparer.
func (FakeEngine) CompareCredentials(ctx context.Context, reference, toEvaluate, calibration string) (*daspeak.CompareResult, error) {
	r, err := fakeDecode(reference)
	if err != nil {
		return nil, err
	}
	e, err := fakeDecode(toEvaluate)
	if err != nil {
		return nil, err
	}
	if calibration == "" {
		calibration = daspeak.DefaultCalibration
	}
	return &daspeak.CompareResult{
		Model:       daspeak.Model{Hash: r.M, Mode: "fake"},
		Calibration: calibration,
		Score:       fakeScore(r.V, e.V),
	}, nil
}

// CredentialModel implements CredentialModeler.
func (FakeEngine) CredentialModel(ctx context.Context, credential string) (string, error) {
	c, err := fakeDecode(credential)
	if err != nil {
		return "", err
	}
	return c.M, nil
}

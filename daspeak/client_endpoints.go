package daspeak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
)

// Metadata describes a model. das-Peak documents Hash and Description; any
// other keys it sends are kept in Extra.
type Metadata struct {
	// Hash is the model hash.
	Hash string
	// Description is das-Peak's description of the model.
	Description string
	// Extra holds the keys other than "hash" and "description", as sent.
	Extra map[string]json.RawMessage
}

// UnmarshalJSON implements json.Unmarshaler.
func (m *Metadata) UnmarshalJSON(b []byte) error {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	*m = Metadata{}
	for k, v := range all {
		switch k {
		case "hash":
			m.Hash = jsonText(v)
		case "description":
			m.Description = jsonText(v)
		default:
			if m.Extra == nil {
				m.Extra = make(map[string]json.RawMessage)
			}
			m.Extra[k] = bytes.Clone(v)
		}
	}
	return nil
}

// MarshalJSON implements json.Marshaler: the das-Peak object, Extra keys
// included.
func (m Metadata) MarshalJSON() ([]byte, error) {
	all := make(map[string]json.RawMessage, len(m.Extra)+2)
	for k, v := range m.Extra {
		all[k] = v
	}
	h, _ := json.Marshal(m.Hash)
	d, _ := json.Marshal(m.Description)
	all["hash"], all["description"] = h, d
	return json.Marshal(all)
}

// Candidate is one enrolled voice of an identification list (an element of
// the das-Peak form field "credential_list").
type Candidate struct {
	// ID is the application's identifier of the voice ("id").
	ID string `json:"id"`
	// Credential is the voice's credential ("credential").
	Credential string `json:"credential"`
}

// CandidateScore is the score of one candidate.
type CandidateScore struct {
	// ID is the candidate's ID.
	ID string `json:"id"`
	// Score is in [0, 1]; higher means more likely the same speaker.
	Score float64 `json:"score"`
}

// IdentifyResult is the outcome of IdentifyAudio and IdentifyCredential.
type IdentifyResult struct {
	// Model is set by IdentifyAudio (das-Peak omits it when identifying a
	// credential).
	Model Model `json:"model"`
	// Calibration is the score calibration applied.
	Calibration string `json:"calibration"`
	// Scores holds one score per candidate.
	Scores []CandidateScore `json:"scores"`
	// Best is the best-scoring candidate (das-Peak field "result"). As with
	// every das-Peak score, deciding whether it is a match is the caller's
	// job.
	Best CandidateScore `json:"result"`
	// Authenticity and durations of the evaluated audio (IdentifyAudio
	// only). Authenticity is AuthenticityNotPerformed (-1) when the
	// emulator's engine did no anti-spoofing (a voicegate extension).
	Authenticity       float64 `json:"authenticity_to_evaluate"`
	InputAudioDuration float64 `json:"input_audio_duration_to_evaluate"`
	NetSpeechDuration  float64 `json:"net_speech_duration_to_evaluate"`
}

// AudioPairOptions are the audio parameters of CompareAudioToAudio. The zero
// value means channel 1 for both files and calibration "telephone-channel".
type AudioPairOptions struct {
	// ReferenceChannel and EvaluateChannel are the 1-based channels to use
	// (form fields "channel_reference" and "channel_to_evaluate"); 0 means 1.
	ReferenceChannel int
	EvaluateChannel  int
	// Calibration; "" means DefaultCalibration.
	Calibration string
}

// AudioCompareResult is the outcome of CompareAudioToAudio.
type AudioCompareResult struct {
	// Model is the model that scored.
	Model Model `json:"model"`
	// Calibration is the score calibration applied.
	Calibration string `json:"calibration"`
	// Score is in [0, 1]; higher means more likely the same speaker.
	Score float64 `json:"score"`

	// Authenticity (anti-spoofing value) and durations in seconds of the
	// reference audio and of the audio to evaluate, as das-Peak reports
	// them. An authenticity is AuthenticityNotPerformed (-1) when the
	// emulator's engine did no anti-spoofing (a voicegate extension).
	AuthenticityReference        float64 `json:"authenticity_reference"`
	AuthenticityToEvaluate       float64 `json:"authenticity_to_evaluate"`
	InputAudioDurationReference  float64 `json:"input_audio_duration_reference"`
	InputAudioDurationToEvaluate float64 `json:"input_audio_duration_to_evaluate"`
	NetSpeechDurationReference   float64 `json:"net_speech_duration_reference"`
	NetSpeechDurationToEvaluate  float64 `json:"net_speech_duration_to_evaluate"`
}

func formChannel(ch int) string {
	if ch == 0 {
		ch = 1
	}
	return strconv.Itoa(ch)
}

func formCalibration(c string) string {
	if c == "" {
		return DefaultCalibration
	}
	return c
}

func clientAudioOptions(o *AudioOptions) AudioOptions {
	if o == nil {
		return AudioOptions{}
	}
	return *o
}

func formCandidateList(cands []Candidate) (string, error) {
	if cands == nil {
		cands = []Candidate{}
	}
	b, err := json.Marshal(cands)
	if err != nil {
		return "", fmt.Errorf("daspeak: encode credential_list: %w", err)
	}
	return string(b), nil
}

// Alive checks that das-Peak is up (GET /alive). It returns nil on HTTP 200.
func (c *Client) Alive(ctx context.Context) error {
	return c.call(ctx, "/alive", nil, nil)
}

// Models lists the hashes of the available models (GET /models). The last
// one is the newest.
func (c *Client) Models(ctx context.Context) ([]string, error) {
	var r struct {
		Models []string `json:"models"`
	}
	if err := c.call(ctx, "/models", nil, &r); err != nil {
		return nil, err
	}
	if r.Models == nil {
		return nil, fmt.Errorf("%w: GET /models: no \"models\" field", ErrMalformedResponse)
	}
	return r.Models, nil
}

// ModelMetadata describes the model with the given hash
// (POST /models/metadata).
func (c *Client) ModelMetadata(ctx context.Context, hash string) (*Metadata, error) {
	return c.metadata(ctx, "/models/metadata", formField("hash", hash))
}

// ModelMetadataFromCredential describes the model that generated a
// credential (POST /models/metadata/from-credential).
func (c *Client) ModelMetadataFromCredential(ctx context.Context, credential string) (*Metadata, error) {
	return c.metadata(ctx, "/models/metadata/from-credential", formField("credential", credential))
}

func (c *Client) metadata(ctx context.Context, path string, p formPart) (*Metadata, error) {
	var r struct {
		Metadata *Metadata `json:"metadata"`
	}
	if err := c.call(ctx, path, []formPart{p}, &r); err != nil {
		return nil, err
	}
	if r.Metadata == nil {
		return nil, fmt.Errorf("%w: POST %s: no \"metadata\" object", ErrMalformedResponse, path)
	}
	return r.Metadata, nil
}

// ModelCalibrations lists the calibrations a model supports
// (POST /models/calibration), for example "telephone-channel".
func (c *Client) ModelCalibrations(ctx context.Context, hash string) ([]string, error) {
	var r struct {
		Calibrations []string `json:"calibrations"`
	}
	if err := c.call(ctx, "/models/calibration", []formPart{formField("hash", hash)}, &r); err != nil {
		return nil, err
	}
	if r.Calibrations == nil {
		return nil, fmt.Errorf("%w: POST /models/calibration: no \"calibrations\" field", ErrMalformedResponse)
	}
	return r.Calibrations, nil
}

// GenerateCredential creates a credential from a WAV file with the model
// identified by hash (POST /models/{hash}/credential/wav). Audio with less
// than 3 s of net speech fails with an *APIError matching
// ErrNetSpeechTooShort, whose Detected field holds the net speech found.
func (c *Client) GenerateCredential(ctx context.Context, hash string, audio []byte, opts *AudioOptions) (*CredentialResult, error) {
	o := clientAudioOptions(opts)
	var r CredentialResult
	path := "/models/" + url.PathEscape(hash) + "/credential/wav"
	err := c.call(ctx, path, []formPart{
		wavFile("audio", audio),
		formField("channel", formChannel(o.Channel)),
		formField("calibration", formCalibration(o.Calibration)),
	}, &r)
	if err != nil {
		return nil, err
	}
	if r.Credential == "" {
		return nil, fmt.Errorf("%w: POST %s: no credential", ErrMalformedResponse, path)
	}
	return &r, nil
}

// CompareCredentials scores one credential against another
// (POST /similarity/credential2credential). calibration "" means
// DefaultCalibration. Only Model (when sent), Calibration and Score are set
// in the result.
func (c *Client) CompareCredentials(ctx context.Context, reference, toEvaluate, calibration string) (*CompareResult, error) {
	var r CompareResult
	err := c.call(ctx, "/similarity/credential2credential", []formPart{
		formField("credential_reference", reference),
		formField("credential_to_evaluate", toEvaluate),
		formField("calibration", formCalibration(calibration)),
	}, &r)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// CompareCredentialToAudio scores the voice in a WAV file against a
// credential (POST /similarity/credential2wav).
func (c *Client) CompareCredentialToAudio(ctx context.Context, credential string, audio []byte, opts *AudioOptions) (*CompareResult, error) {
	o := clientAudioOptions(opts)
	var r CompareResult
	err := c.call(ctx, "/similarity/credential2wav", []formPart{
		wavFile("audio_to_evaluate", audio),
		formField("credential_reference", credential),
		formField("channel", formChannel(o.Channel)),
		formField("calibration", formCalibration(o.Calibration)),
	}, &r)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// CompareAudioToAudio scores the voices of two WAV files against each other
// (POST /similarity/wav2wav).
func (c *Client) CompareAudioToAudio(ctx context.Context, reference, toEvaluate []byte, opts *AudioPairOptions) (*AudioCompareResult, error) {
	var o AudioPairOptions
	if opts != nil {
		o = *opts
	}
	var r AudioCompareResult
	err := c.call(ctx, "/similarity/wav2wav", []formPart{
		wavFile("audio_reference", reference),
		wavFile("audio_to_evaluate", toEvaluate),
		formField("channel_reference", formChannel(o.ReferenceChannel)),
		formField("channel_to_evaluate", formChannel(o.EvaluateChannel)),
		formField("calibration", formCalibration(o.Calibration)),
	}, &r)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// IdentifyAudio scores the voice in a WAV file against each candidate
// (POST /identification/wav2credentials).
func (c *Client) IdentifyAudio(ctx context.Context, audio []byte, candidates []Candidate, opts *AudioOptions) (*IdentifyResult, error) {
	o := clientAudioOptions(opts)
	list, err := formCandidateList(candidates)
	if err != nil {
		return nil, err
	}
	var r IdentifyResult
	err = c.call(ctx, "/identification/wav2credentials", []formPart{
		wavFile("audio_to_evaluate", audio),
		formField("credential_list", list),
		formField("channel", formChannel(o.Channel)),
		formField("calibration", formCalibration(o.Calibration)),
	}, &r)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// IdentifyCredential scores a credential against each candidate
// (POST /identification/credential2credentials). calibration "" means
// DefaultCalibration.
func (c *Client) IdentifyCredential(ctx context.Context, credential string, candidates []Candidate, calibration string) (*IdentifyResult, error) {
	list, err := formCandidateList(candidates)
	if err != nil {
		return nil, err
	}
	var r IdentifyResult
	err = c.call(ctx, "/identification/credential2credentials", []formPart{
		formField("credential_to_evaluate", credential),
		formField("credential_list", list),
		formField("calibration", formCalibration(calibration)),
	}, &r)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

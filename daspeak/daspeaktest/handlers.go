package daspeaktest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"

	"github.com/voicegate/voicegate/daspeak"
)

// CredentialModeler is implemented by engines that can tell which model
// generated a credential. The emulator needs it for
// POST /models/metadata/from-credential; FakeEngine implements it.
type CredentialModeler interface {
	CredentialModel(ctx context.Context, credential string) (hash string, err error)
}

func (e *Emulator) routes() {
	m := http.NewServeMux()
	p := daspeak.ServicePath
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// Kong's answer to a path no route matches.
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "no Route matched with those values"})
	})
	m.HandleFunc("GET "+p+"/alive", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	m.HandleFunc("GET "+p+"/models", e.handleModels)
	m.HandleFunc("POST "+p+"/models/metadata", e.form(e.handleMetadata))
	m.HandleFunc("POST "+p+"/models/calibration", e.form(e.handleCalibration))
	m.HandleFunc("POST "+p+"/models/metadata/from-credential", e.form(e.handleMetadataFromCredential))
	m.HandleFunc("POST "+p+"/models/{hash}/credential/wav", e.form(e.handleCredential))
	m.HandleFunc("POST "+p+"/similarity/credential2credential", e.form(e.handleCred2Cred))
	m.HandleFunc("POST "+p+"/similarity/credential2wav", e.form(e.handleCred2Wav))
	m.HandleFunc("POST "+p+"/similarity/wav2wav", e.form(e.handleWav2Wav))
	m.HandleFunc("POST "+p+"/identification/wav2credentials", e.form(e.handleIdentifyWav))
	m.HandleFunc("POST "+p+"/identification/credential2credentials", e.form(e.handleIdentifyCred))
	e.mux = m
}

// request is a parsed multipart das-Peak request.
type request struct {
	r *http.Request
}

func (q request) value(name string) string { return q.r.FormValue(name) }

// file returns the content of the file part name, or nil when absent.
func (q request) file(name string) ([]byte, error) {
	fhs := q.r.MultipartForm.File[name]
	if len(fhs) == 0 {
		return nil, nil
	}
	f, err := fhs[0].Open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// form checks that the request is multipart/form-data, as das-Peak requires
// on every POST, parses it and calls h. h returns a success body or an
// error.
func (e *Emulator) form(h func(ctx context.Context, q request) (map[string]any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "multipart/form-data" {
			e.writeError(w, apiError(daspeak.ExceptionUnsupportedMediaType, msgUnsupportedType))
			return
		}
		if err := r.ParseMultipartForm(e.opts.MaxRequestBytes); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"message": "Request size limit exceeded"})
				return
			}
			// A multipart body that does not parse gets the same answer as
			// a non-multipart one (emulator-defined).
			e.writeError(w, apiError(daspeak.ExceptionUnsupportedMediaType, msgUnsupportedType))
			return
		}
		defer r.MultipartForm.RemoveAll()
		out, err := h(r.Context(), request{r: r})
		if err != nil {
			e.writeError(w, toAPIError(err))
			return
		}
		e.writeOK(w, out)
	}
}

// toAPIError keeps an engine's *APIError and turns anything else into
// DaspeakInternalException.
func toAPIError(err error) *daspeak.APIError {
	var ae *daspeak.APIError
	if errors.As(err, &ae) && ae.Exception != "" {
		return ae
	}
	return apiError(daspeak.ExceptionDaspeakInternal, msgInternal)
}

// models returns the served model hashes: the engine's when it lists them,
// else Options.Models.
func (e *Emulator) models(ctx context.Context) ([]string, error) {
	if ml, ok := e.engine.(daspeak.ModelLister); ok {
		return ml.Models(ctx)
	}
	return e.opts.Models, nil
}

// checkModel reports ModelNotAvailable for a hash outside a non-empty model
// list. The message ends with the hash, as das-Peak's does; its wording is
// emulator-defined.
func (e *Emulator) checkModel(ctx context.Context, hash string) error {
	ms, err := e.models(ctx)
	if err != nil {
		return err
	}
	if len(ms) == 0 && hash != "" {
		return nil
	}
	if !slices.Contains(ms, hash) {
		return apiError(daspeak.ExceptionModelNotAvailable, "The requested model is not available: "+hash)
	}
	return nil
}

// calibration reads and checks the "calibration" field ("" means
// telephone-channel).
func (e *Emulator) calibration(q request) (string, error) {
	c := q.value("calibration")
	if c == "" {
		c = daspeak.DefaultCalibration
	}
	if !slices.Contains(e.opts.Calibrations, c) {
		return "", apiError(daspeak.ExceptionCalibrationNotAvailable, "The calibration "+c+" is not available")
	}
	return c, nil
}

// audioField reads a WAV file part, its channel field, and checks both.
func (e *Emulator) audioField(q request, fileName, channelField string) ([]byte, int, *audio, error) {
	ch, ae := parseChannel(q.value(channelField))
	if ae != nil {
		return nil, 0, nil, ae
	}
	b, err := q.file(fileName)
	if err != nil {
		return nil, 0, nil, err
	}
	a, ae := e.checkAudio(b, ch)
	if ae != nil {
		return nil, 0, nil, ae
	}
	return b, ch, a, nil
}

func modelJSON(m daspeak.Model) map[string]any {
	return map[string]any{"hash": m.Hash, "mode": m.Mode}
}

func (e *Emulator) handleModels(w http.ResponseWriter, r *http.Request) {
	ms, err := e.models(r.Context())
	if err != nil {
		e.writeError(w, toAPIError(err))
		return
	}
	if ms == nil {
		ms = []string{}
	}
	e.writeOK(w, map[string]any{"models": ms})
}

// metadataJSON is the metadata object of a model. Keys beyond hash and
// description are emulator-defined.
func metadataJSON(hash string) map[string]any {
	return map[string]any{"hash": hash, "description": "emulated model", "mode": "default"}
}

func (e *Emulator) handleMetadata(ctx context.Context, q request) (map[string]any, error) {
	hash := q.value("hash")
	if err := e.checkModel(ctx, hash); err != nil {
		return nil, err
	}
	return map[string]any{"metadata": metadataJSON(hash)}, nil
}

func (e *Emulator) handleCalibration(ctx context.Context, q request) (map[string]any, error) {
	hash := q.value("hash")
	if err := e.checkModel(ctx, hash); err != nil {
		return nil, err
	}
	return map[string]any{"calibrations": e.opts.Calibrations}, nil
}

func (e *Emulator) handleMetadataFromCredential(ctx context.Context, q request) (map[string]any, error) {
	cred := q.value("credential")
	if cred == "" {
		return nil, apiError(daspeak.ExceptionInvalidCredential, msgDecryption)
	}
	var (
		hash string
		err  error
	)
	if e.opts.CredentialModel != nil {
		hash, err = e.opts.CredentialModel(cred)
	} else if cm, ok := e.engine.(CredentialModeler); ok {
		hash, err = cm.CredentialModel(ctx, cred)
	} else {
		return nil, apiError(daspeak.ExceptionDaspeakInternal, msgInternal)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"metadata": metadataJSON(hash)}, nil
}

func (e *Emulator) handleCredential(ctx context.Context, q request) (map[string]any, error) {
	hash := q.r.PathValue("hash")
	if err := e.checkModel(ctx, hash); err != nil {
		return nil, err
	}
	b, ch, a, err := e.audioField(q, "audio", "channel")
	if err != nil {
		return nil, err
	}
	cal, err := e.calibration(q)
	if err != nil {
		return nil, err
	}
	res, err := e.engine.GenerateCredential(ctx, hash, b, &daspeak.AudioOptions{Channel: ch, Calibration: cal})
	if err != nil {
		return nil, err
	}
	net, ae := e.checkNetSpeech(res.NetSpeechDuration, a)
	if ae != nil {
		return nil, ae
	}
	return map[string]any{
		"model":                modelJSON(res.Model),
		"credential":           res.Credential,
		"authenticity":         res.Authenticity,
		"input_audio_duration": orDuration(res.InputAudioDuration, a),
		"net_speech_duration":  net,
	}, nil
}

func (e *Emulator) comparer() (daspeak.CredentialComparer, error) {
	cc, ok := e.engine.(daspeak.CredentialComparer)
	if !ok {
		return nil, apiError(daspeak.ExceptionDaspeakInternal, msgInternal)
	}
	return cc, nil
}

func (e *Emulator) handleCred2Cred(ctx context.Context, q request) (map[string]any, error) {
	ref, eval := q.value("credential_reference"), q.value("credential_to_evaluate")
	if ref == "" || eval == "" {
		return nil, apiError(daspeak.ExceptionInvalidCredential, msgDecryption)
	}
	cal, err := e.calibration(q)
	if err != nil {
		return nil, err
	}
	cc, err := e.comparer()
	if err != nil {
		return nil, err
	}
	res, err := cc.CompareCredentials(ctx, ref, eval, cal)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"score": res.Score, "calibration": cal}
	if res.Model.Hash != "" {
		out["model"] = modelJSON(res.Model)
	}
	return out, nil
}

func (e *Emulator) handleCred2Wav(ctx context.Context, q request) (map[string]any, error) {
	b, ch, a, err := e.audioField(q, "audio_to_evaluate", "channel")
	if err != nil {
		return nil, err
	}
	ref := q.value("credential_reference")
	if ref == "" {
		return nil, apiError(daspeak.ExceptionInvalidCredential, msgDecryption)
	}
	cal, err := e.calibration(q)
	if err != nil {
		return nil, err
	}
	res, err := e.engine.CompareCredentialToAudio(ctx, ref, b, &daspeak.AudioOptions{Channel: ch, Calibration: cal})
	if err != nil {
		return nil, err
	}
	net, ae := e.checkNetSpeech(res.NetSpeechDuration, a)
	if ae != nil {
		return nil, ae
	}
	return map[string]any{
		"score":                            res.Score,
		"model":                            modelJSON(res.Model),
		"calibration":                      cal,
		"authenticity_to_evaluate":         res.Authenticity,
		"input_audio_duration_to_evaluate": orDuration(res.InputAudioDuration, a),
		"net_speech_duration_to_evaluate":  net,
	}, nil
}

func (e *Emulator) handleWav2Wav(ctx context.Context, q request) (map[string]any, error) {
	rb, rch, ra, err := e.audioField(q, "audio_reference", "channel_reference")
	if err != nil {
		return nil, err
	}
	eb, ech, ea, err := e.audioField(q, "audio_to_evaluate", "channel_to_evaluate")
	if err != nil {
		return nil, err
	}
	cal, err := e.calibration(q)
	if err != nil {
		return nil, err
	}
	hash := ""
	if ms, err := e.models(ctx); err == nil && len(ms) > 0 {
		hash = ms[len(ms)-1]
	}
	cr, err := e.engine.GenerateCredential(ctx, hash, rb, &daspeak.AudioOptions{Channel: rch, Calibration: cal})
	if err != nil {
		return nil, err
	}
	rnet, ae := e.checkNetSpeech(cr.NetSpeechDuration, ra)
	if ae != nil {
		return nil, ae
	}
	res, err := e.engine.CompareCredentialToAudio(ctx, cr.Credential, eb, &daspeak.AudioOptions{Channel: ech, Calibration: cal})
	if err != nil {
		return nil, err
	}
	enet, ae := e.checkNetSpeech(res.NetSpeechDuration, ea)
	if ae != nil {
		return nil, ae
	}
	model := res.Model
	if model.Hash == "" {
		model = cr.Model
	}
	return map[string]any{
		"score":                            res.Score,
		"model":                            modelJSON(model),
		"calibration":                      cal,
		"authenticity_reference":           cr.Authenticity,
		"authenticity_to_evaluate":         res.Authenticity,
		"input_audio_duration_reference":   orDuration(cr.InputAudioDuration, ra),
		"input_audio_duration_to_evaluate": orDuration(res.InputAudioDuration, ea),
		"net_speech_duration_reference":    rnet,
		"net_speech_duration_to_evaluate":  enet,
	}, nil
}

// candidates parses the "credential_list" field, a JSON string
// [{"id":…,"credential":…},…]. A list that does not parse gets
// InvalidCredential "Decryption error" (emulator-defined).
func candidates(q request) ([]daspeak.Candidate, error) {
	var list []daspeak.Candidate
	if err := json.Unmarshal([]byte(q.value("credential_list")), &list); err != nil {
		return nil, apiError(daspeak.ExceptionInvalidCredential, msgDecryption)
	}
	for _, c := range list {
		if c.Credential == "" {
			return nil, apiError(daspeak.ExceptionInvalidCredential, msgDecryption)
		}
	}
	return list, nil
}

// ranking builds "scores" and "result" (the best score). An empty list
// gives "scores": [] and "result": null (emulator-defined).
func ranking(ids []string, scores []float64) (list []map[string]any, best any) {
	list = make([]map[string]any, len(ids))
	bi := -1
	for i := range ids {
		list[i] = map[string]any{"id": ids[i], "score": scores[i]}
		if bi < 0 || scores[i] > scores[bi] {
			bi = i
		}
	}
	if bi >= 0 {
		best = list[bi]
	}
	return list, best
}

func (e *Emulator) handleIdentifyWav(ctx context.Context, q request) (map[string]any, error) {
	b, ch, a, err := e.audioField(q, "audio_to_evaluate", "channel")
	if err != nil {
		return nil, err
	}
	list, err := candidates(q)
	if err != nil {
		return nil, err
	}
	cal, err := e.calibration(q)
	if err != nil {
		return nil, err
	}
	var (
		ids    = make([]string, len(list))
		scores = make([]float64, len(list))
		first  *daspeak.CompareResult
	)
	opts := &daspeak.AudioOptions{Channel: ch, Calibration: cal}
	for i, c := range list {
		res, err := e.engine.CompareCredentialToAudio(ctx, c.Credential, b, opts)
		if err != nil {
			return nil, err
		}
		if first == nil {
			first = res
		}
		ids[i], scores[i] = c.ID, res.Score
	}
	if first == nil {
		first = &daspeak.CompareResult{}
	}
	net, ae := e.checkNetSpeech(first.NetSpeechDuration, a)
	if ae != nil {
		return nil, ae
	}
	sl, best := ranking(ids, scores)
	return map[string]any{
		"model":                            modelJSON(first.Model),
		"calibration":                      cal,
		"scores":                           sl,
		"result":                           best,
		"authenticity_to_evaluate":         first.Authenticity,
		"input_audio_duration_to_evaluate": orDuration(first.InputAudioDuration, a),
		"net_speech_duration_to_evaluate":  net,
	}, nil
}

func (e *Emulator) handleIdentifyCred(ctx context.Context, q request) (map[string]any, error) {
	eval := q.value("credential_to_evaluate")
	if eval == "" {
		return nil, apiError(daspeak.ExceptionInvalidCredential, msgDecryption)
	}
	list, err := candidates(q)
	if err != nil {
		return nil, err
	}
	cal, err := e.calibration(q)
	if err != nil {
		return nil, err
	}
	cc, err := e.comparer()
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(list))
	scores := make([]float64, len(list))
	for i, c := range list {
		res, err := cc.CompareCredentials(ctx, c.Credential, eval, cal)
		if err != nil {
			return nil, err
		}
		ids[i], scores[i] = c.ID, res.Score
	}
	sl, best := ranking(ids, scores)
	return map[string]any{"calibration": cal, "scores": sl, "result": best}, nil
}

var urlUnescape = url.QueryUnescape

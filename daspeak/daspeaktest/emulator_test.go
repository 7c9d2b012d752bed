package daspeaktest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/daspeaktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const model = daspeaktest.FakeModel

func newServer(t *testing.T, engine daspeak.Engine, opts *daspeaktest.Options) *daspeaktest.Server {
	t.Helper()
	srv := daspeaktest.NewServer(engine, opts)
	t.Cleanup(srv.Close)
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	return srv
}

func wantError(t *testing.T, r response, status int, exception, message string) {
	t.Helper()
	require.Equal(t, status, r.status, "body %s", r.body)
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	m := r.json(t)
	assert.Equal(t, map[string]any{"exception": exception, "error": message}, m)
}

func TestAuth(t *testing.T) {
	srv := newServer(t, nil, &daspeaktest.Options{APIKey: "k3y", OAuthClientID: "id", OAuthClientSecret: "s3cret"})
	tok := postForm(t, srv.TokenURL(), url.Values{"grant_type": {"client_credentials"}, "client_id": {"id"}, "client_secret": {"s3cret"}}, nil)
	require.Equal(t, 200, tok.status, "%s", tok.body)
	access := tok.json(t)["access_token"].(string)

	tests := []struct {
		name    string
		hdr     http.Header
		status  int
		message string
	}{
		{"no header", nil, 401, "no Authorization header found"},
		{"wrong key", http.Header{"Apikey": {"nope"}}, 401, "Invalid authentication credentials"},
		{"right key", http.Header{"Apikey": {"k3y"}}, 200, ""},
		{"bearer", http.Header{"Authorization": {"Bearer " + access}}, 200, ""},
		{"wrong bearer", http.Header{"Authorization": {"Bearer 00"}}, 401, "Invalid authentication credentials"},
		{"basic", http.Header{"Authorization": {"Basic aWQ6czNjcmV0"}}, 401, "Invalid authentication credentials"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, srv.URL(), "/alive", tc.hdr)
			require.Equal(t, tc.status, r.status)
			if tc.message != "" {
				assert.Equal(t, map[string]any{"message": tc.message}, r.json(t))
			}
		})
	}
	st := srv.Stats()
	assert.EqualValues(t, 4, st.Unauthorized)
	assert.EqualValues(t, 6, st.Endpoints["/alive"])
	assert.EqualValues(t, 1, st.TokensIssued)
	assert.EqualValues(t, 7, st.Requests)
}

func TestNoAuthConfigured(t *testing.T) {
	srv := newServer(t, nil, nil)
	assert.Equal(t, 200, get(t, srv.URL(), "/alive", nil).status)
	// Without OAuth configured there is no token endpoint.
	r := postForm(t, srv.TokenURL(), url.Values{"grant_type": {"client_credentials"}}, nil)
	assert.Equal(t, 404, r.status)
}

func TestTokenEndpoint(t *testing.T) {
	srv := newServer(t, nil, &daspeaktest.Options{OAuthClientID: "my id", OAuthClientSecret: "p&ss", TokenLifetime: 90 * time.Second})
	tests := []struct {
		name   string
		form   url.Values
		basic  [2]string
		status int
		errStr string
	}{
		{"form", url.Values{"grant_type": {"client_credentials"}, "client_id": {"my id"}, "client_secret": {"p&ss"}}, [2]string{}, 200, ""},
		{"basic, form-encoded", url.Values{"grant_type": {"client_credentials"}}, [2]string{"my+id", "p%26ss"}, 200, ""},
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {"my id"}, "client_secret": {"x"}}, [2]string{}, 401, "invalid_client"},
		{"wrong grant", url.Values{"grant_type": {"password"}, "client_id": {"my id"}, "client_secret": {"p&ss"}}, [2]string{}, 400, "unsupported_grant_type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := http.Header{}
			if tc.basic[0] != "" {
				req, _ := http.NewRequest("POST", "/", nil)
				req.SetBasicAuth(tc.basic[0], tc.basic[1])
				hdr.Set("Authorization", req.Header.Get("Authorization"))
			}
			r := postForm(t, srv.TokenURL(), tc.form, hdr)
			require.Equal(t, tc.status, r.status, "%s", r.body)
			m := r.json(t)
			if tc.errStr != "" {
				assert.Equal(t, tc.errStr, m["error"])
				return
			}
			assert.Equal(t, "Bearer", m["token_type"])
			assert.EqualValues(t, 90, m["expires_in"])
			assert.Len(t, m["access_token"], 32)
			// The token opens das-Peak endpoints.
			a := get(t, srv.URL(), "/models", http.Header{"Authorization": {"Bearer " + m["access_token"].(string)}})
			assert.Equal(t, 200, a.status)
		})
	}
	assert.Equal(t, 405, get(t, srv.RootURL(), "/oauth/token", nil).status)
}

func TestRouting(t *testing.T) {
	srv := newServer(t, nil, nil)
	r := get(t, srv.URL(), "/nothing", nil)
	assert.Equal(t, 404, r.status)
	assert.Equal(t, map[string]any{"message": "no Route matched with those values"}, r.json(t))
	// A POST route asked with GET matches no route either.
	assert.Equal(t, 404, get(t, srv.URL(), "/models/metadata", nil).status)
	assert.EqualValues(t, 2, srv.Requests(""))

	// das-Peak wants multipart/form-data on every request.
	f := postForm(t, srv.URL()+"/models/metadata", url.Values{"hash": {model}}, nil)
	wantError(t, f, 415, "UnsupportedMediaType", "415 Unsupported Media Type: The server does not support the media type transmitted in the request")
}

func TestEndpoints(t *testing.T) {
	for _, wrap := range []bool{false, true} {
		t.Run(map[bool]string{false: "flat", true: "data"}[wrap], func(t *testing.T) {
			srv := newServer(t, nil, &daspeaktest.Options{WrapData: wrap})
			body := func(r response) map[string]any {
				t.Helper()
				require.Equal(t, 200, r.status, "%s", r.body)
				m := r.json(t)
				if wrap {
					require.Len(t, m, 1)
					m = m["data"].(map[string]any)
				}
				assert.Equal(t, "1", m["version"])
				return m
			}
			alice, bob := voice(t, 300), voice(t, 450)

			assert.Equal(t, []any{model}, body(get(t, srv.URL(), "/models", nil))["models"])
			md := body(post(t, srv.URL(), "/models/metadata", nil, fields("hash", model)...))["metadata"].(map[string]any)
			assert.Equal(t, model, md["hash"])
			assert.NotEmpty(t, md["description"])
			cals := body(post(t, srv.URL(), "/models/calibration", nil, fields("hash", model)...))["calibrations"]
			assert.Equal(t, []any{"telephone-channel"}, cals)

			gen := body(post(t, srv.URL(), "/models/"+model+"/credential/wav", nil,
				fileP("audio", alice), part{name: "channel", value: "1"}, part{name: "calibration", value: "telephone-channel"}))
			assert.Equal(t, map[string]any{"hash": model, "mode": "fake"}, gen["model"])
			assert.Equal(t, 0.99, gen["authenticity"])
			assert.Equal(t, 6.0, gen["input_audio_duration"])
			assert.Equal(t, 5.0, gen["net_speech_duration"])
			credA := gen["credential"].(string)
			credB := body(post(t, srv.URL(), "/models/"+model+"/credential/wav", nil, fileP("audio", bob)))["credential"].(string)

			md = body(post(t, srv.URL(), "/models/metadata/from-credential", nil, fields("credential", credA)...))["metadata"].(map[string]any)
			assert.Equal(t, model, md["hash"])

			c2c := body(post(t, srv.URL(), "/similarity/credential2credential", nil,
				fields("credential_reference", credA, "credential_to_evaluate", credA, "calibration", "telephone-channel")...))
			assert.Equal(t, 0.99, c2c["score"])
			assert.Equal(t, "telephone-channel", c2c["calibration"])
			c2c = body(post(t, srv.URL(), "/similarity/credential2credential", nil,
				fields("credential_reference", credA, "credential_to_evaluate", credB)...))
			assert.Equal(t, 0.05, c2c["score"])

			c2w := body(post(t, srv.URL(), "/similarity/credential2wav", nil,
				fileP("audio_to_evaluate", alice), part{name: "credential_reference", value: credA}, part{name: "channel", value: "1"}))
			assert.Equal(t, 0.99, c2w["score"])
			for _, k := range []string{"model", "calibration", "authenticity_to_evaluate", "input_audio_duration_to_evaluate", "net_speech_duration_to_evaluate"} {
				assert.Contains(t, c2w, k)
			}

			w2w := body(post(t, srv.URL(), "/similarity/wav2wav", nil,
				fileP("audio_reference", alice), fileP("audio_to_evaluate", bob),
				part{name: "channel_reference", value: "1"}, part{name: "channel_to_evaluate", value: "1"}))
			assert.Equal(t, 0.05, w2w["score"])
			for _, k := range []string{"authenticity_reference", "authenticity_to_evaluate", "input_audio_duration_reference",
				"input_audio_duration_to_evaluate", "net_speech_duration_reference", "net_speech_duration_to_evaluate"} {
				assert.Contains(t, w2w, k)
			}

			list, _ := json.Marshal([]daspeak.Candidate{{ID: "bob", Credential: credB}, {ID: "alice", Credential: credA}})
			idw := body(post(t, srv.URL(), "/identification/wav2credentials", nil,
				fileP("audio_to_evaluate", alice), part{name: "credential_list", value: string(list)}))
			assert.Equal(t, []any{map[string]any{"id": "bob", "score": 0.05}, map[string]any{"id": "alice", "score": 0.99}}, idw["scores"])
			assert.Equal(t, map[string]any{"id": "alice", "score": 0.99}, idw["result"])
			assert.Contains(t, idw, "net_speech_duration_to_evaluate")

			idc := body(post(t, srv.URL(), "/identification/credential2credentials", nil,
				fields("credential_to_evaluate", credB, "credential_list", string(list))...))
			assert.Equal(t, map[string]any{"id": "bob", "score": 0.99}, idc["result"])
			assert.NotContains(t, idc, "model")

			assert.EqualValues(t, 2, srv.Requests("/models/{hash}/credential/wav"))
			assert.EqualValues(t, 2, srv.Requests("/similarity/credential2credential"))
		})
	}
}

func TestCatalogue(t *testing.T) {
	srv := newServer(t, nil, nil)
	good := voice(t, 300)
	gen := "/models/" + model + "/credential/wav"
	long := tone(t, voicegate.PCMU, 8000, 1, 300, 25, 5)
	short := tone(t, voicegate.PCMU, 8000, 1, 300, 2.5, 3)
	tests := []struct {
		name      string
		path      string
		parts     []part
		status    int
		exception string
		message   string
	}{
		{"three channels", gen, []part{fileP("audio", rawWAV(1, 3, 8000, 16, 48000))}, 400, "AudioInputException", "The wav has more channels than are accepted by the system"},
		{"44.1 kHz", gen, []part{fileP("audio", tone(t, voicegate.L16, 44100, 1, 300, 4, 0))}, 400, "AudioInputException", "The sample rate is not supported, must be 8 Khz or 16 Khz"},
		{"24-bit PCM", gen, []part{fileP("audio", rawWAV(1, 1, 8000, 24, 24000*4))}, 400, "AudioInputException", "Provided audio data uses an unsupported codec. Supported codecs are: PCM_16, ULAW, ALAW"},
		{"32-bit float", gen, []part{fileP("audio", rawWAV(3, 1, 8000, 32, 32000*4))}, 400, "AudioInputException", "Provided audio data uses an unsupported codec. Supported codecs are: PCM_16, ULAW, ALAW"},
		{"float at 22 kHz", gen, []part{fileP("audio", rawWAV(3, 1, 22050, 32, 4000))}, 400, "AudioInputException", "The sample rate is not supported, must be 8 Khz or 16 Khz"},
		{"30 s", gen, []part{fileP("audio", long)}, 400, "AudioInputException", "The wav duration is longer than 30 seconds"},
		{"2.5 s of speech", gen, []part{fileP("audio", short)}, 400, "VoiceDurationIsNotEnoughException", "Voice duration is not enough 2.50s < 3.00s"},
		{"silence", gen, []part{fileP("audio", tone(t, voicegate.PCMA, 16000, 1, 300, 0, 5))}, 400, "VoiceDurationIsNotEnoughException", "Voice duration is not enough 0.00s < 3.00s"},
		{"not a wav", gen, []part{fileP("audio", []byte("ID3 mp3 data"))}, 400, "AudioInputException", "The audio could not be read as a wav file"},
		{"no audio part", gen, fields("channel", "1"), 400, "NoAudioException", "No audio input"},
		{"empty audio", gen, []part{fileP("audio", []byte{})}, 400, "NoAudioException", "No audio input"},
		{"channel 3", gen, []part{fileP("audio", good), {name: "channel", value: "3"}}, 400, "InvalidChannelException", "Invalid specified channel/s"},
		{"channel 2 of mono", gen, []part{fileP("audio", good), {name: "channel", value: "2"}}, 400, "InvalidChannelException", "Invalid specified channel/s"},
		{"calibration", gen, []part{fileP("audio", good), {name: "calibration", value: "studio"}}, 400, "CalibrationNotAvailable", "The calibration studio is not available"},
		{"model", "/models/abc123/credential/wav", []part{fileP("audio", good)}, 404, "ModelNotAvailable", "The requested model is not available: abc123"},
		{"metadata model", "/models/metadata", fields("hash", "abc123"), 404, "ModelNotAvailable", "The requested model is not available: abc123"},
		{"calibration model", "/models/calibration", fields("hash", ""), 404, "ModelNotAvailable", "The requested model is not available: "},
		{"bad credential", "/similarity/credential2wav", []part{fileP("audio_to_evaluate", good), {name: "credential_reference", value: "garbage"}}, 400, "InvalidCredential", "Decryption error"},
		{"bad credential c2c", "/similarity/credential2credential", fields("credential_reference", "x", "credential_to_evaluate", "y"), 400, "InvalidCredential", "Decryption error"},
		{"bad from-credential", "/models/metadata/from-credential", fields("credential", "eyJ9"), 400, "InvalidCredential", "Decryption error"},
		{"bad list", "/identification/credential2credentials", fields("credential_to_evaluate", "x", "credential_list", "[{"), 400, "InvalidCredential", "Decryption error"},
		{"wav2wav second file short", "/similarity/wav2wav", []part{fileP("audio_reference", good), fileP("audio_to_evaluate", short)}, 400, "VoiceDurationIsNotEnoughException", "Voice duration is not enough 2.50s < 3.00s"},
		{"wav2wav channel", "/similarity/wav2wav", []part{fileP("audio_reference", good), fileP("audio_to_evaluate", good), {name: "channel_to_evaluate", value: "0"}}, 400, "InvalidChannelException", "Invalid specified channel/s"},
		{"identify no audio", "/identification/wav2credentials", fields("credential_list", "[]"), 400, "NoAudioException", "No audio input"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, post(t, srv.URL(), tc.path, nil, tc.parts...), tc.status, tc.exception, tc.message)
		})
	}
	assert.EqualValues(t, len(tests), srv.Stats().Errors)
}

func TestStereoChannels(t *testing.T) {
	srv := newServer(t, nil, nil)
	st := tone(t, voicegate.L16, 16000, 2, 200, 4, 0)
	gen := func(ch string) string {
		r := post(t, srv.URL(), "/models/"+model+"/credential/wav", nil, fileP("audio", st), part{name: "channel", value: ch})
		require.Equal(t, 200, r.status, "%s", r.body)
		return r.json(t)["credential"].(string)
	}
	c1, c2 := gen("1"), gen("2")
	assert.NotEqual(t, c1, c2, "channels 1 and 2 hold different tones")
	assert.Equal(t, c1, gen(""), "channel defaults to 1")
}

// minimalEngine hides FakeEngine's optional interfaces.
type minimalEngine struct{ e daspeaktest.FakeEngine }

func (m minimalEngine) GenerateCredential(ctx context.Context, h string, a []byte, o *daspeak.AudioOptions) (*daspeak.CredentialResult, error) {
	return m.e.GenerateCredential(ctx, daspeaktest.FakeModel, a, o)
}

func (m minimalEngine) CompareCredentialToAudio(ctx context.Context, c string, a []byte, o *daspeak.AudioOptions) (*daspeak.CompareResult, error) {
	return m.e.CompareCredentialToAudio(ctx, c, a, o)
}

func TestMinimalEngine(t *testing.T) {
	srv := newServer(t, minimalEngine{}, nil)
	m := get(t, srv.URL(), "/models", nil)
	assert.Equal(t, []any{}, m.json(t)["models"])
	// Without a model list, any hash is accepted.
	r := post(t, srv.URL(), "/models/any-hash/credential/wav", nil, fileP("audio", voice(t, 300)))
	require.Equal(t, 200, r.status, "%s", r.body)
	cred := r.json(t)["credential"].(string)
	wantError(t, post(t, srv.URL(), "/similarity/credential2credential", nil, fields("credential_reference", cred, "credential_to_evaluate", cred)...),
		500, "DaspeakInternalException", "An internal server error occured")
	wantError(t, post(t, srv.URL(), "/models/metadata/from-credential", nil, fields("credential", cred)...),
		500, "DaspeakInternalException", "An internal server error occured")
	r = post(t, srv.URL(), "/similarity/wav2wav", nil, fileP("audio_reference", voice(t, 300)), fileP("audio_to_evaluate", voice(t, 300)))
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.Equal(t, 0.99, r.json(t)["score"])

	srv2 := newServer(t, minimalEngine{}, &daspeaktest.Options{Models: []string{"m1", "m2"}})
	assert.Equal(t, []any{"m1", "m2"}, get(t, srv2.URL(), "/models", nil).json(t)["models"])
	assert.Equal(t, 404, post(t, srv2.URL(), "/models/m3/credential/wav", nil, fileP("audio", voice(t, 300))).status)
}

// scriptedEngine answers with fixed results or errors.
type scriptedEngine struct {
	err error
	net float64
}

func (s scriptedEngine) GenerateCredential(ctx context.Context, h string, a []byte, o *daspeak.AudioOptions) (*daspeak.CredentialResult, error) {
	if s.err != nil {
		return nil, s.err
	}
	return &daspeak.CredentialResult{Credential: "c", NetSpeechDuration: s.net, Model: daspeak.Model{Hash: h}}, nil
}

func (s scriptedEngine) CompareCredentialToAudio(ctx context.Context, c string, a []byte, o *daspeak.AudioOptions) (*daspeak.CompareResult, error) {
	if s.err != nil {
		return nil, s.err
	}
	return &daspeak.CompareResult{Score: 0.5, NetSpeechDuration: s.net}, nil
}

func TestEngineErrors(t *testing.T) {
	tests := []struct {
		name      string
		engine    scriptedEngine
		status    int
		exception string
		message   string
	}{
		{"api error", scriptedEngine{err: daspeak.NewAPIError(0, "SignalNoiseRatioException", "Noise level exceeded")}, 400, "SignalNoiseRatioException", "Noise level exceeded"},
		{"api error with status", scriptedEngine{err: daspeak.NewAPIError(503, "DaspeakInternalException", "busy")}, 503, "DaspeakInternalException", "busy"},
		{"wrapped api error", scriptedEngine{err: errors.Join(errors.New("ctx"), daspeak.NewAPIError(0, "InsufficientQuality", "The audio quality is not good enough"))}, 400, "InsufficientQuality", "The audio quality is not good enough"},
		{"plain error", scriptedEngine{err: errors.New("boom")}, 500, "DaspeakInternalException", "An internal server error occured"},
		{"engine net speech", scriptedEngine{net: 2.004}, 400, "VoiceDurationIsNotEnoughException", "Voice duration is not enough 2.00s < 3.00s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, tc.engine, nil)
			wantError(t, post(t, srv.URL(), "/models/h/credential/wav", nil, fileP("audio", voice(t, 300))), tc.status, tc.exception, tc.message)
			wantError(t, post(t, srv.URL(), "/similarity/credential2wav", nil, fileP("audio_to_evaluate", voice(t, 300)), part{name: "credential_reference", value: "c"}), tc.status, tc.exception, tc.message)
		})
	}
	// The engine's net speech is trusted when it reports one.
	srv := newServer(t, scriptedEngine{net: 3.5}, &daspeaktest.Options{MinNetSpeech: 3.4})
	r := post(t, srv.URL(), "/models/h/credential/wav", nil, fileP("audio", tone(t, voicegate.PCMU, 8000, 1, 300, 1, 1)))
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.Equal(t, 3.5, r.json(t)["net_speech_duration"])
}

func TestFaults(t *testing.T) {
	srv := newServer(t, nil, nil)
	srv.Inject(daspeaktest.Fault{Endpoint: "/models", Times: 2, Status: 429, Body: `{"message":"API rate limit exceeded"}`, RetryAfter: "7"})
	srv.Inject(daspeaktest.Fault{Endpoint: "/alive", Exception: "SignalNoiseRatioException"})
	srv.Inject(daspeaktest.Fault{Endpoint: "/alive", Status: 502, Body: "<html><body><h1>502 Bad Gateway</h1></body></html>"})

	r := get(t, srv.URL(), "/alive", nil)
	wantError(t, r, 400, "SignalNoiseRatioException", "Noise level exceeded")
	r = get(t, srv.URL(), "/alive", nil)
	assert.Equal(t, 502, r.status)
	assert.Equal(t, "text/html; charset=utf-8", r.header.Get("Content-Type"))
	assert.Contains(t, string(r.body), "Bad Gateway")
	assert.Equal(t, 200, get(t, srv.URL(), "/alive", nil).status)

	for range 2 {
		r = get(t, srv.URL(), "/models", nil)
		assert.Equal(t, 429, r.status)
		assert.Equal(t, "7", r.header.Get("Retry-After"))
		assert.Equal(t, map[string]any{"message": "API rate limit exceeded"}, r.json(t))
	}
	assert.Equal(t, 200, get(t, srv.URL(), "/models", nil).status)
	assert.EqualValues(t, 4, srv.Stats().Faults)

	// Status alone gives a DaspeakInternalException body with that status.
	srv.Inject(daspeaktest.Fault{Status: 503})
	wantError(t, get(t, srv.URL(), "/models", nil), 503, "DaspeakInternalException", "An internal server error occured")

	// ClearFaults drops what is queued.
	srv.Inject(daspeaktest.Fault{Status: 500, Times: 10})
	srv.ClearFaults()
	assert.Equal(t, 200, get(t, srv.URL(), "/alive", nil).status)
}

func TestFaultDropAndTruncate(t *testing.T) {
	srv := newServer(t, nil, nil)
	srv.Inject(daspeaktest.Fault{Drop: true})
	_, err := http.Get(srv.URL() + "/models")
	require.Error(t, err)

	srv.Inject(daspeaktest.Fault{Truncate: true})
	resp, err := http.Get(srv.URL() + "/models")
	require.NoError(t, err)
	defer resp.Body.Close()
	buf := make([]byte, 1024)
	var n int
	for err == nil {
		var k int
		k, err = resp.Body.Read(buf[n:])
		n += k
	}
	assert.ErrorIs(t, err, errUnexpectedEOF())
	assert.Greater(t, n, 0)
	assert.Equal(t, 200, get(t, srv.URL(), "/models", nil).status)
}

func TestFaultDelay(t *testing.T) {
	srv := newServer(t, nil, nil)
	// A delay-only fault answers normally afterwards.
	srv.Inject(daspeaktest.Fault{Delay: time.Millisecond})
	assert.Equal(t, 200, get(t, srv.URL(), "/alive", nil).status)

	// A client that gives up ends the wait.
	srv.Inject(daspeaktest.Fault{Delay: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL()+"/alive", nil)
	go func() {
		for srv.Requests("/alive") < 2 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := http.DefaultClient.Do(req)
	assert.ErrorIs(t, err, context.Canceled)

	// Close releases a pending delayed answer.
	srv2 := daspeaktest.NewServer(nil, nil)
	srv2.Inject(daspeaktest.Fault{Delay: time.Hour})
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(srv2.URL() + "/alive")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	for srv2.Requests("/alive") < 1 {
		time.Sleep(time.Millisecond)
	}
	srv2.Close()
	srv2.Close() // idempotent
	<-done
}

func TestRequestTooLarge(t *testing.T) {
	srv := newServer(t, nil, &daspeaktest.Options{MaxRequestBytes: 10 << 10})
	r := post(t, srv.URL(), "/models/"+model+"/credential/wav", nil, fileP("audio", voice(t, 300)))
	assert.Equal(t, 413, r.status)
	assert.Equal(t, map[string]any{"message": "Request size limit exceeded"}, r.json(t))
}

func TestNetSpeech(t *testing.T) {
	pcm := make([]int16, 8000*2)
	for i := range 8000 {
		pcm[i] = 5000
		if i%2 == 1 {
			pcm[i] = -5000
		}
	}
	assert.Equal(t, 1.0, daspeaktest.NetSpeech(pcm, 8000))
	assert.Equal(t, 0.0, daspeaktest.NetSpeech(pcm[8000:], 8000))
	assert.Equal(t, 0.0, daspeaktest.NetSpeech(pcm, 0))
	assert.Equal(t, 0.0, daspeaktest.NetSpeech(pcm[:10], 8000))
}

func TestCredentialModelOption(t *testing.T) {
	srv := newServer(t, minimalEngine{}, &daspeaktest.Options{CredentialModel: func(c string) (string, error) {
		if c == "good" {
			return "m-7", nil
		}
		return "", daspeak.NewAPIError(0, daspeak.ExceptionInvalidCredential, "Decryption error")
	}})
	r := post(t, srv.URL(), "/models/metadata/from-credential", nil, fields("credential", "good")...)
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.Equal(t, "m-7", r.json(t)["metadata"].(map[string]any)["hash"])
	wantError(t, post(t, srv.URL(), "/models/metadata/from-credential", nil, fields("credential", "bad")...), 400, "InvalidCredential", "Decryption error")
}

// noAntiSpoofing is FakeEngine reporting daspeak.AuthenticityNotPerformed,
// as an engine without anti-spoofing does.
type noAntiSpoofing struct{ daspeaktest.FakeEngine }

func (n noAntiSpoofing) GenerateCredential(ctx context.Context, h string, a []byte, o *daspeak.AudioOptions) (*daspeak.CredentialResult, error) {
	r, err := n.FakeEngine.GenerateCredential(ctx, h, a, o)
	if r != nil {
		r.Authenticity = daspeak.AuthenticityNotPerformed
	}
	return r, err
}

func (n noAntiSpoofing) CompareCredentialToAudio(ctx context.Context, c string, a []byte, o *daspeak.AudioOptions) (*daspeak.CompareResult, error) {
	r, err := n.FakeEngine.CompareCredentialToAudio(ctx, c, a, o)
	if r != nil {
		r.Authenticity = daspeak.AuthenticityNotPerformed
	}
	return r, err
}

// TestAuthenticityNotPerformed: the emulator passes an engine's
// AuthenticityNotPerformed through as -1 in every authenticity field (a
// voicegate extension; das-Peak documents [0, 1]).
func TestAuthenticityNotPerformed(t *testing.T) {
	srv := newServer(t, noAntiSpoofing{}, nil)
	alice := voice(t, 300)
	r := post(t, srv.URL(), "/models/"+model+"/credential/wav", nil, fileP("audio", alice))
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.Contains(t, string(r.body), `"authenticity":-1,`)
	cred := r.json(t)["credential"].(string)

	for _, tc := range []struct {
		path  string
		parts []part
		keys  []string
	}{
		{"/similarity/credential2wav", []part{fileP("audio_to_evaluate", alice), {name: "credential_reference", value: cred}},
			[]string{"authenticity_to_evaluate"}},
		{"/similarity/wav2wav", []part{fileP("audio_reference", alice), fileP("audio_to_evaluate", alice)},
			[]string{"authenticity_reference", "authenticity_to_evaluate"}},
		{"/identification/wav2credentials", []part{fileP("audio_to_evaluate", alice), {name: "credential_list", value: `[{"id":"a","credential":"` + cred + `"}]`}},
			[]string{"authenticity_to_evaluate"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := post(t, srv.URL(), tc.path, nil, tc.parts...)
			require.Equal(t, 200, r.status, "%s", r.body)
			for _, k := range tc.keys {
				assert.Contains(t, string(r.body), `"`+k+`":-1,`)
			}
		})
	}
}

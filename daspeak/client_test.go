package daspeak_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/daspeaktest"
	"github.com/voicegate/voicegate/internal/fixtures"
)

const restModel = daspeaktest.FakeModel

func TestClientEnvironment(t *testing.T) {
	tests := []struct {
		env  daspeak.Environment
		url  string
		name string
	}{
		{daspeak.SandboxEU, "https://api-work.eu.veri-das.com/daspeak/v1", "sandbox-eu"},
		{daspeak.SandboxUS, "https://api-work.us.veri-das.com/daspeak/v1", "sandbox-us"},
		{daspeak.ProductionEU, "https://api.eu.veri-das.com/daspeak/v1", "production-eu"},
		{daspeak.ProductionUS, "https://api.us.veri-das.com/daspeak/v1", "production-us"},
		{daspeak.Environment(9), "", "Environment(9)"},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.url, tc.env.BaseURL())
		assert.Equal(t, tc.name, tc.env.String())
	}
	c, err := daspeak.NewClient(nil)
	require.NoError(t, err)
	assert.Equal(t, "https://api-work.eu.veri-das.com/daspeak/v1", c.BaseURL(), "sandbox EU is the default")
	c, err = daspeak.NewClient(&daspeak.ClientOptions{Environment: daspeak.ProductionUS})
	require.NoError(t, err)
	assert.Equal(t, "https://api.us.veri-das.com/daspeak/v1", c.BaseURL())
	c, err = daspeak.NewClient(&daspeak.ClientOptions{Environment: daspeak.ProductionUS, BaseURL: "http://10.0.0.1:8080/daspeak/v1/"})
	require.NoError(t, err)
	assert.Equal(t, "http://10.0.0.1:8080/daspeak/v1", c.BaseURL(), "BaseURL wins over Environment")
}

func TestNewClientErrors(t *testing.T) {
	tests := []struct {
		name string
		opts daspeak.ClientOptions
		want string
	}{
		{"unknown environment", daspeak.ClientOptions{Environment: 7}, "unknown environment"},
		{"relative URL", daspeak.ClientOptions{BaseURL: "/daspeak/v1"}, "absolute"},
		{"ftp URL", daspeak.ClientOptions{BaseURL: "ftp://host/daspeak/v1"}, "absolute"},
		{"query", daspeak.ClientOptions{BaseURL: "https://host/daspeak/v1?x=1"}, "query"},
		{"bad URL", daspeak.ClientOptions{BaseURL: "http://[::1"}, "base URL"},
		{"two token sources", daspeak.ClientOptions{
			TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "a"}),
			OAuth2:      &clientcredentials.Config{TokenURL: "https://x/token"},
		}, "not both"},
		{"no token URL", daspeak.ClientOptions{OAuth2: &clientcredentials.Config{ClientID: "a"}}, "TokenURL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := daspeak.NewClient(&tc.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestClientEndpoints(t *testing.T) {
	for _, wrap := range []bool{false, true} {
		t.Run(map[bool]string{false: "flat", true: "data"}[wrap], func(t *testing.T) {
			srv := restServer(t, &daspeaktest.Options{WrapData: wrap, APIKey: "key"})
			c := restClient(t, srv, &daspeak.ClientOptions{APIKey: "key"})
			ctx := context.Background()
			alice, bob := restVoice(t, 300), restVoice(t, 420)

			require.NoError(t, c.Alive(ctx))

			models, err := c.Models(ctx)
			require.NoError(t, err)
			assert.Equal(t, []string{restModel}, models)

			md, err := c.ModelMetadata(ctx, restModel)
			require.NoError(t, err)
			assert.Equal(t, restModel, md.Hash)
			assert.Equal(t, "emulated model", md.Description)
			assert.JSONEq(t, `"default"`, string(md.Extra["mode"]))

			cals, err := c.ModelCalibrations(ctx, restModel)
			require.NoError(t, err)
			assert.Contains(t, cals, "telephone-channel")

			credA, err := c.GenerateCredential(ctx, restModel, alice, nil)
			require.NoError(t, err)
			assert.Equal(t, daspeak.Model{Hash: restModel, Mode: "fake"}, credA.Model)
			assert.NotEmpty(t, credA.Credential)
			assert.Equal(t, 0.99, credA.Authenticity)
			assert.Equal(t, 6.0, credA.InputAudioDuration)
			assert.Equal(t, 5.0, credA.NetSpeechDuration)
			credB, err := c.GenerateCredential(ctx, restModel, bob, &daspeak.AudioOptions{Channel: 1, Calibration: "telephone-channel"})
			require.NoError(t, err)

			md, err = c.ModelMetadataFromCredential(ctx, credA.Credential)
			require.NoError(t, err)
			assert.Equal(t, restModel, md.Hash)

			same, err := c.CompareCredentials(ctx, credA.Credential, credA.Credential, "")
			require.NoError(t, err)
			assert.Equal(t, 0.99, same.Score)
			assert.Equal(t, "telephone-channel", same.Calibration)
			diff, err := c.CompareCredentials(ctx, credA.Credential, credB.Credential, "telephone-channel")
			require.NoError(t, err)
			assert.Equal(t, 0.05, diff.Score)

			cmp, err := c.CompareCredentialToAudio(ctx, credA.Credential, alice, nil)
			require.NoError(t, err)
			assert.Equal(t, daspeak.CompareResult{
				Model: daspeak.Model{Hash: restModel, Mode: "fake"}, Calibration: "telephone-channel",
				Score: 0.99, Authenticity: 0.99, InputAudioDuration: 6, NetSpeechDuration: 5,
			}, *cmp)

			w2w, err := c.CompareAudioToAudio(ctx, alice, bob, nil)
			require.NoError(t, err)
			assert.Equal(t, 0.05, w2w.Score)
			assert.Equal(t, 5.0, w2w.NetSpeechDurationReference)
			assert.Equal(t, 6.0, w2w.InputAudioDurationToEvaluate)
			assert.Equal(t, 0.99, w2w.AuthenticityReference)
			w2w, err = c.CompareAudioToAudio(ctx, alice, alice, &daspeak.AudioPairOptions{ReferenceChannel: 1, EvaluateChannel: 1})
			require.NoError(t, err)
			assert.Equal(t, 0.99, w2w.Score)

			cands := []daspeak.Candidate{{ID: "alice", Credential: credA.Credential}, {ID: "bob", Credential: credB.Credential}}
			ida, err := c.IdentifyAudio(ctx, bob, cands, nil)
			require.NoError(t, err)
			assert.Equal(t, []daspeak.CandidateScore{{ID: "alice", Score: 0.05}, {ID: "bob", Score: 0.99}}, ida.Scores)
			assert.Equal(t, daspeak.CandidateScore{ID: "bob", Score: 0.99}, ida.Best)
			assert.Equal(t, 5.0, ida.NetSpeechDuration)
			assert.Equal(t, restModel, ida.Model.Hash)

			idc, err := c.IdentifyCredential(ctx, credA.Credential, cands, "")
			require.NoError(t, err)
			assert.Equal(t, daspeak.CandidateScore{ID: "alice", Score: 0.99}, idc.Best)
			assert.Len(t, idc.Scores, 2)

			st := srv.Stats()
			for _, ep := range []string{"/alive", "/models", "/models/metadata", "/models/calibration",
				"/models/metadata/from-credential", "/similarity/credential2wav",
				"/identification/wav2credentials", "/identification/credential2credentials"} {
				assert.EqualValues(t, 1, st.Endpoints[ep], ep)
			}
			assert.EqualValues(t, 2, st.Endpoints["/models/{hash}/credential/wav"])
			assert.EqualValues(t, 2, st.Endpoints["/similarity/credential2credential"])
			assert.EqualValues(t, 2, st.Endpoints["/similarity/wav2wav"])
			assert.Zero(t, st.Unauthorized)
			assert.Zero(t, st.Errors)
		})
	}
}

func TestClientStereo(t *testing.T) {
	srv := restServer(t, nil)
	c := restClient(t, srv, nil)
	ctx := context.Background()
	st := restTone(t, voicegate.L16, 16000, 2, 200, 4, 0)
	ch1, err := c.GenerateCredential(ctx, restModel, st, &daspeak.AudioOptions{Channel: 1})
	require.NoError(t, err)
	ch2, err := c.GenerateCredential(ctx, restModel, st, &daspeak.AudioOptions{Channel: 2})
	require.NoError(t, err)
	r, err := c.CompareCredentialToAudio(ctx, ch2.Credential, st, &daspeak.AudioOptions{Channel: 2})
	require.NoError(t, err)
	assert.Equal(t, 0.99, r.Score)
	r, err = c.CompareCredentials(ctx, ch1.Credential, ch2.Credential, "")
	require.NoError(t, err)
	assert.Equal(t, 0.05, r.Score)
	w, err := c.CompareAudioToAudio(ctx, st, st, &daspeak.AudioPairOptions{ReferenceChannel: 1, EvaluateChannel: 2})
	require.NoError(t, err)
	assert.Equal(t, 0.05, w.Score)
}

func TestClientCatalogueErrors(t *testing.T) {
	srv := restServer(t, nil)
	c := restClient(t, srv, nil)
	ctx := context.Background()
	good := restVoice(t, 300)
	cred, err := c.GenerateCredential(ctx, restModel, good, nil)
	require.NoError(t, err)
	gen := func(audio []byte, o *daspeak.AudioOptions) error {
		_, err := c.GenerateCredential(ctx, restModel, audio, o)
		return err
	}
	threeChannels := restTone(t, voicegate.L16, 8000, 2, 300, 4, 0)
	threeChannels[22] = 3 // channel count in the fmt chunk
	tests := []struct {
		name      string
		call      func() error
		sentinels []error
		status    int
		exception string
		message   string
	}{
		{"channels", func() error { return gen(threeChannels, nil) },
			[]error{daspeak.ErrAudioInput, daspeak.ErrTooManyChannels}, 400, "AudioInputException", "The wav has more channels than are accepted by the system"},
		{"rate", func() error { return gen(restTone(t, voicegate.L16, 11025, 1, 300, 4, 0), nil) },
			[]error{daspeak.ErrAudioInput, daspeak.ErrSampleRate}, 400, "AudioInputException", "The sample rate is not supported, must be 8 Khz or 16 Khz"},
		{"codec", func() error {
			b := restTone(t, voicegate.L16, 8000, 1, 300, 4, 0)
			b[20] = 2 // format tag 2: MS ADPCM
			return gen(b, nil)
		}, []error{daspeak.ErrAudioInput, daspeak.ErrUnsupportedCodec}, 400, "AudioInputException", "Provided audio data uses an unsupported codec. Supported codecs are: PCM_16, ULAW, ALAW"},
		{"too long", func() error { return gen(restTone(t, voicegate.PCMA, 8000, 1, 300, 10, 21), nil) },
			[]error{daspeak.ErrAudioInput, daspeak.ErrAudioTooLong}, 400, "AudioInputException", "The wav duration is longer than 30 seconds"},
		{"net speech", func() error { return gen(restTone(t, voicegate.PCMU, 8000, 1, 300, 2.5, 4), nil) },
			[]error{daspeak.ErrNetSpeechTooShort}, 400, "VoiceDurationIsNotEnoughException", "Voice duration is not enough 2.50s < 3.00s"},
		{"net speech on compare", func() error {
			_, err := c.CompareCredentialToAudio(ctx, cred.Credential, restTone(t, voicegate.PCMU, 8000, 1, 300, 1.2, 4), nil)
			return err
		}, []error{daspeak.ErrNetSpeechTooShort}, 400, "VoiceDurationIsNotEnoughException", "Voice duration is not enough 1.20s < 3.00s"},
		{"channel", func() error { return gen(good, &daspeak.AudioOptions{Channel: 3}) },
			[]error{daspeak.ErrInvalidChannel}, 400, "InvalidChannelException", "Invalid specified channel/s"},
		{"calibration", func() error { return gen(good, &daspeak.AudioOptions{Calibration: "studio-mic"}) },
			[]error{daspeak.ErrCalibrationNotAvailable}, 400, "CalibrationNotAvailable", "The calibration studio-mic is not available"},
		{"model", func() error { _, err := c.GenerateCredential(ctx, "0badc0de", good, nil); return err },
			[]error{daspeak.ErrModelNotAvailable}, 404, "ModelNotAvailable", "The requested model is not available: 0badc0de"},
		{"model metadata", func() error { _, err := c.ModelMetadata(ctx, "0badc0de"); return err },
			[]error{daspeak.ErrModelNotAvailable}, 404, "ModelNotAvailable", "The requested model is not available: 0badc0de"},
		{"model calibrations", func() error { _, err := c.ModelCalibrations(ctx, "0badc0de"); return err },
			[]error{daspeak.ErrModelNotAvailable}, 404, "ModelNotAvailable", "The requested model is not available: 0badc0de"},
		{"credential", func() error { _, err := c.CompareCredentialToAudio(ctx, "not-a-credential", good, nil); return err },
			[]error{daspeak.ErrInvalidCredential}, 400, "InvalidCredential", "Decryption error"},
		{"credential pair", func() error { _, err := c.CompareCredentials(ctx, cred.Credential, "x", ""); return err },
			[]error{daspeak.ErrInvalidCredential}, 400, "InvalidCredential", "Decryption error"},
		{"credential metadata", func() error { _, err := c.ModelMetadataFromCredential(ctx, "x"); return err },
			[]error{daspeak.ErrInvalidCredential}, 400, "InvalidCredential", "Decryption error"},
		{"identify credential", func() error {
			_, err := c.IdentifyCredential(ctx, cred.Credential, []daspeak.Candidate{{ID: "a", Credential: "x"}}, "")
			return err
		}, []error{daspeak.ErrInvalidCredential}, 400, "InvalidCredential", "Decryption error"},
		{"identify audio", func() error {
			_, err := c.IdentifyAudio(ctx, good, []daspeak.Candidate{{ID: "a", Credential: cred.Credential}}, &daspeak.AudioOptions{Calibration: "x"})
			return err
		}, []error{daspeak.ErrCalibrationNotAvailable}, 400, "CalibrationNotAvailable", "The calibration x is not available"},
		{"no audio", func() error { return gen(nil, nil) },
			[]error{daspeak.ErrNoAudio}, 400, "NoAudioException", "No audio input"},
		{"no audio wav2wav", func() error { _, err := c.CompareAudioToAudio(ctx, good, []byte{}, nil); return err },
			[]error{daspeak.ErrNoAudio}, 400, "NoAudioException", "No audio input"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Stats().Requests
			err := tc.call()
			require.Error(t, err)
			for _, s := range tc.sentinels {
				assert.ErrorIs(t, err, s)
			}
			assert.NotErrorIs(t, err, daspeak.ErrInternal)
			var ae *daspeak.APIError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, tc.status, ae.Status)
			assert.Equal(t, tc.exception, ae.Exception)
			assert.Equal(t, tc.message, ae.Message)
			assert.EqualValues(t, 1, srv.Stats().Requests-before, "das-Peak errors are not retried")
		})
	}

	// Details parsed from the messages.
	var ae *daspeak.APIError
	require.ErrorAs(t, tests[4].call(), &ae)
	assert.Equal(t, 2.5, ae.Detected)
	assert.Equal(t, 3.0, ae.Required)
	require.ErrorAs(t, tests[7].call(), &ae)
	assert.Equal(t, "studio-mic", ae.Calibration())
	require.ErrorAs(t, tests[8].call(), &ae)
	assert.Equal(t, "0badc0de", ae.ModelHash())
}

func TestClientInjectedExceptions(t *testing.T) {
	// Exceptions the emulator does not produce from audio, injected with
	// the emulator's catalogue text and status, and mapped by name
	// whatever the status.
	tests := []struct {
		fault    daspeaktest.Fault
		sentinel error
		status   int
		message  string
	}{
		{daspeaktest.Fault{Exception: "SignalNoiseRatioException"}, daspeak.ErrSignalNoiseRatio, 400, "Noise level exceeded"},
		{daspeaktest.Fault{Exception: "InsufficientQuality"}, daspeak.ErrInsufficientQuality, 400, "The audio quality is not good enough"},
		{daspeaktest.Fault{Exception: "UnsupportedMediaType"}, daspeak.ErrUnsupportedMediaType, 415,
			"415 Unsupported Media Type: The server does not support the media type transmitted in the request"},
		{daspeaktest.Fault{Exception: "DaspeakInternalException", Status: 500}, daspeak.ErrInternal, 500, "An internal server error occured"},
		{daspeaktest.Fault{Exception: "InvalidCredential", Status: 422}, daspeak.ErrInvalidCredential, 422, "Decryption error"},
		{daspeaktest.Fault{Exception: "ModelNotAvailable", Status: 400}, daspeak.ErrModelNotAvailable, 400, "The requested model is not available: unknown"},
		{daspeaktest.Fault{Exception: "VoiceDurationIsNotEnoughException", Status: 200}, daspeak.ErrNetSpeechTooShort, 200, "Voice duration is not enough 2.55s < 3.00s"},
		{daspeaktest.Fault{Exception: "NoAudioException", Status: 404}, daspeak.ErrNoAudio, 404, "No audio input"},
		{daspeaktest.Fault{Status: 401, Body: `{"message":"no Authorization header found"}`}, daspeak.ErrUnauthorized, 401, "no Authorization header found"},
		{daspeaktest.Fault{Status: 403, Body: `{"message":"You cannot consume this service"}`}, daspeak.ErrUnauthorized, 403, "You cannot consume this service"},
	}
	for _, tc := range tests {
		name := tc.fault.Exception
		if name == "" {
			name = tc.fault.Body
		}
		t.Run(name, func(t *testing.T) {
			srv := restServer(t, nil)
			c := restClient(t, srv, &daspeak.ClientOptions{MaxRetries: -1})
			srv.Inject(tc.fault)
			_, err := c.GenerateCredential(context.Background(), restModel, restVoice(t, 300), nil)
			assert.ErrorIs(t, err, tc.sentinel)
			var ae *daspeak.APIError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, tc.status, ae.Status)
			assert.Equal(t, tc.fault.Exception, ae.Exception)
			assert.Equal(t, tc.message, ae.Message)
			for _, other := range []error{daspeak.ErrSignalNoiseRatio, daspeak.ErrInsufficientQuality, daspeak.ErrUnsupportedMediaType,
				daspeak.ErrInternal, daspeak.ErrInvalidCredential, daspeak.ErrModelNotAvailable, daspeak.ErrNetSpeechTooShort,
				daspeak.ErrNoAudio, daspeak.ErrUnauthorized, daspeak.ErrAudioInput, daspeak.ErrInvalidChannel,
				daspeak.ErrCalibrationNotAvailable, daspeak.ErrRateLimited} {
				if other != tc.sentinel {
					assert.NotErrorIs(t, err, other)
				}
			}
		})
	}
}

func TestClientAuth(t *testing.T) {
	srv := restServer(t, &daspeaktest.Options{APIKey: "s3cret"})
	ctx := context.Background()

	rec, hc := newHeaderRecorder(t)
	c := restClient(t, srv, &daspeak.ClientOptions{APIKey: "s3cret", HTTPClient: hc})
	require.NoError(t, c.Alive(ctx))
	h := rec.all()[0]
	assert.Equal(t, "s3cret", h.Get("apikey"))
	assert.Empty(t, h.Get("Authorization"))
	assert.Equal(t, "application/json", h.Get("Accept"))
	assert.Equal(t, "voicegate-daspeak", h.Get("User-Agent"))

	for _, tc := range []struct{ key, msg string }{
		{"", "no Authorization header found"},
		{"wrong", "Invalid authentication credentials"},
	} {
		c := restClient(t, srv, &daspeak.ClientOptions{APIKey: tc.key})
		_, err := c.Models(ctx)
		require.ErrorIs(t, err, daspeak.ErrUnauthorized)
		var ae *daspeak.APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, 401, ae.Status)
		assert.Empty(t, ae.Exception)
		assert.Equal(t, tc.msg, ae.Message)
	}
	assert.EqualValues(t, 2, srv.Stats().Unauthorized, "401 is not retried")

	// Self-hosted: no key, no apikey header.
	open := restServer(t, nil)
	rec, hc = newHeaderRecorder(t)
	c = restClient(t, open, &daspeak.ClientOptions{HTTPClient: hc})
	require.NoError(t, c.Alive(ctx))
	_, sent := rec.all()[0]["Apikey"]
	assert.False(t, sent)
}

func TestClientOAuth2ClientCredentials(t *testing.T) {
	srv := restServer(t, &daspeaktest.Options{OAuthClientID: "client", OAuthClientSecret: "secret"})
	rec, hc := newHeaderRecorder(t)
	c := restClient(t, srv, &daspeak.ClientOptions{HTTPClient: hc, OAuth2: &clientcredentials.Config{
		ClientID: "client", ClientSecret: "secret", TokenURL: srv.TokenURL(),
	}})
	ctx := context.Background()
	for range 3 {
		_, err := c.Models(ctx)
		require.NoError(t, err)
	}
	st := srv.Stats()
	assert.EqualValues(t, 1, st.TokensIssued, "the token is reused")
	assert.EqualValues(t, 3, st.Endpoints["/models"])
	assert.Zero(t, st.Unauthorized)
	hs := rec.all()
	require.Len(t, hs, 4, "one token request through the same transport, three das-Peak requests")
	for _, h := range hs[1:] {
		assert.True(t, strings.HasPrefix(h.Get("Authorization"), "Bearer "))
		assert.Empty(t, h.Get("apikey"))
	}
}

func TestClientOAuth2RefreshAfterRequestContextEnds(t *testing.T) {
	// Tokens expiring at once make every request fetch a new one: the
	// token source must not be tied to the first request's context.
	srv := restServer(t, &daspeaktest.Options{OAuthClientID: "client", OAuthClientSecret: "secret", TokenLifetime: time.Second})
	c := restClient(t, srv, &daspeak.ClientOptions{OAuth2: &clientcredentials.Config{
		ClientID: "client", ClientSecret: "secret", TokenURL: srv.TokenURL(),
	}})
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, c.Alive(ctx))
	cancel()
	require.NoError(t, c.Alive(context.Background()))
	assert.EqualValues(t, 2, srv.Stats().TokensIssued)
}

func TestClientOAuth2BadCredentials(t *testing.T) {
	srv := restServer(t, &daspeaktest.Options{OAuthClientID: "client", OAuthClientSecret: "secret"})
	c := restClient(t, srv, &daspeak.ClientOptions{OAuth2: &clientcredentials.Config{
		ClientID: "client", ClientSecret: "wrong", TokenURL: srv.TokenURL(),
	}})
	_, err := c.Models(context.Background())
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "invalid_client", re.ErrorCode)
	assert.Zero(t, srv.Requests("/models"), "no das-Peak request without a token")
}

func TestClientTokenSource(t *testing.T) {
	srv := restServer(t, nil)
	rec, hc := newHeaderRecorder(t)
	c := restClient(t, srv, &daspeak.ClientOptions{HTTPClient: hc, APIKey: "k",
		TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok", TokenType: "Bearer"})})
	require.NoError(t, c.Alive(context.Background()))
	h := rec.all()[0]
	assert.Equal(t, "Bearer tok", h.Get("Authorization"))
	assert.Equal(t, "k", h.Get("apikey"), "an API key is sent as well when both are set")
}

func TestClientRetry(t *testing.T) {
	ctx := context.Background()
	const genPath = "/models/{hash}/credential/wav"
	tests := []struct {
		name     string
		faults   []daspeaktest.Fault
		opts     daspeak.ClientOptions
		requests int64
		check    func(t *testing.T, err error)
	}{
		{"429 then success", []daspeaktest.Fault{{Status: 429, Body: `{"message":"API rate limit exceeded"}`, RetryAfter: "1"}}, daspeak.ClientOptions{}, 2,
			func(t *testing.T, err error) { require.NoError(t, err) }},
		{"429 Retry-After beyond MaxRetryAfter", []daspeaktest.Fault{{Status: 429, Body: `{"message":"API rate limit exceeded"}`, RetryAfter: "7"}},
			daspeak.ClientOptions{MaxRetryAfter: time.Second}, 1,
			func(t *testing.T, err error) {
				assert.ErrorIs(t, err, daspeak.ErrRateLimited)
				var ae *daspeak.APIError
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, "API rate limit exceeded", ae.Message)
			}},
		{"500 then success", []daspeaktest.Fault{{Status: 500, Exception: "DaspeakInternalException"}}, daspeak.ClientOptions{}, 2,
			func(t *testing.T, err error) { require.NoError(t, err) }},
		{"two 503 then success", []daspeaktest.Fault{{Status: 503, Times: 2}}, daspeak.ClientOptions{}, 3,
			func(t *testing.T, err error) { require.NoError(t, err) }},
		{"transport error then success", []daspeaktest.Fault{{Drop: true}}, daspeak.ClientOptions{}, 2,
			func(t *testing.T, err error) { require.NoError(t, err) }},
		{"truncated then success", []daspeaktest.Fault{{Truncate: true}}, daspeak.ClientOptions{}, 2,
			func(t *testing.T, err error) { require.NoError(t, err) }},
		{"exhausted", []daspeaktest.Fault{{Status: 503, Times: 10}}, daspeak.ClientOptions{MaxRetries: 2}, 3,
			func(t *testing.T, err error) {
				assert.ErrorIs(t, err, daspeak.ErrInternal)
				var ae *daspeak.APIError
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, 503, ae.Status)
			}},
		{"no retries", []daspeaktest.Fault{{Status: 500, Times: 10}}, daspeak.ClientOptions{MaxRetries: -1}, 1,
			func(t *testing.T, err error) { assert.ErrorIs(t, err, daspeak.ErrInternal) }},
		{"gateway HTML 502", []daspeaktest.Fault{{Status: 502, Times: 10, Body: "<html>\n<head><title>502 Bad Gateway</title></head>\n<body><center><h1>502 Bad Gateway</h1></center></body></html>"}},
			daspeak.ClientOptions{MaxRetries: 1}, 2,
			func(t *testing.T, err error) {
				var ae *daspeak.APIError
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, 502, ae.Status)
				assert.Empty(t, ae.Exception)
				assert.Equal(t, "Bad Gateway: 502 Bad Gateway 502 Bad Gateway", ae.Message)
				assert.Contains(t, string(ae.Body), "<title>")
				assert.NotErrorIs(t, err, daspeak.ErrInternal)
				assert.NotErrorIs(t, err, daspeak.ErrUnauthorized)
			}},
		{"transport errors exhausted", []daspeaktest.Fault{{Drop: true, Times: 10}}, daspeak.ClientOptions{MaxRetries: 1}, 2,
			func(t *testing.T, err error) {
				require.Error(t, err)
				var ae *daspeak.APIError
				assert.False(t, errors.As(err, &ae))
				assert.Contains(t, err.Error(), "POST /models/"+restModel+"/credential/wav")
			}},
		{"truncated exhausted", []daspeaktest.Fault{{Truncate: true, Times: 10}}, daspeak.ClientOptions{MaxRetries: 1}, 2,
			func(t *testing.T, err error) { assert.ErrorIs(t, err, io.ErrUnexpectedEOF) }},
		{"slow response", []daspeaktest.Fault{{Delay: time.Hour, Times: 10}}, daspeak.ClientOptions{MaxRetries: 1, Timeout: 50 * time.Millisecond}, 2,
			func(t *testing.T, err error) { assert.ErrorIs(t, err, context.DeadlineExceeded) }},
		{"slow then fast", []daspeaktest.Fault{{Delay: time.Hour}}, daspeak.ClientOptions{Timeout: time.Second}, 2,
			func(t *testing.T, err error) { require.NoError(t, err) }},
		{"oversized response", []daspeaktest.Fault{{Body: `{"credential":"` + strings.Repeat("A", 2<<10) + `"}`}}, daspeak.ClientOptions{MaxResponseBytes: 1 << 10}, 1,
			func(t *testing.T, err error) { assert.ErrorIs(t, err, daspeak.ErrResponseTooLarge) }},
		{"malformed success", []daspeaktest.Fault{{Body: `{"credential": 12`}}, daspeak.ClientOptions{}, 1,
			func(t *testing.T, err error) { assert.ErrorIs(t, err, daspeak.ErrMalformedResponse) }},
		{"success without credential", []daspeaktest.Fault{{Body: `{"version":"1"}`}}, daspeak.ClientOptions{}, 1,
			func(t *testing.T, err error) { assert.ErrorIs(t, err, daspeak.ErrMalformedResponse) }},
		{"HTML success", []daspeaktest.Fault{{Body: `<html>maintenance</html>`}}, daspeak.ClientOptions{}, 1,
			func(t *testing.T, err error) { assert.ErrorIs(t, err, daspeak.ErrMalformedResponse) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := restServer(t, nil)
			for _, f := range tc.faults {
				srv.Inject(f)
			}
			c := restClient(t, srv, &tc.opts)
			res, err := c.GenerateCredential(ctx, restModel, restVoice(t, 300), nil)
			tc.check(t, err)
			if err == nil {
				// The retried multipart body arrived whole.
				assert.Equal(t, 5.0, res.NetSpeechDuration)
			}
			assert.Equal(t, tc.requests, srv.Requests(genPath))
		})
	}
}

func TestClientRetryGET(t *testing.T) {
	srv := restServer(t, nil)
	srv.Inject(daspeaktest.Fault{Status: 500, Endpoint: "/models"})
	srv.Inject(daspeaktest.Fault{Truncate: true, Endpoint: "/models"})
	c := restClient(t, srv, nil)
	ms, err := c.Models(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{restModel}, ms)
	assert.EqualValues(t, 3, srv.Requests("/models"))
}

func TestClientCancelDuringBackoff(t *testing.T) {
	srv := restServer(t, nil)
	srv.Inject(daspeaktest.Fault{Status: 429, RetryAfter: "30", Times: 5, Body: `{"message":"API rate limit exceeded"}`})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel once the client has read the whole 429 answer, so the
	// cancellation lands between the attempt and the retry, whatever the
	// scheduling.
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := tr.RoundTrip(r)
		if err == nil {
			resp.Body = cancelOnClose{resp.Body, cancel}
		}
		return resp, err
	})}
	c := restClient(t, srv, &daspeak.ClientOptions{MaxRetryAfter: time.Minute, HTTPClient: hc})
	_, err := c.Models(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, daspeak.ErrRateLimited, "the last answer is kept")
	assert.EqualValues(t, 1, srv.Requests("/models"))
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

func TestClientCancelBeforeCall(t *testing.T) {
	srv := restServer(t, nil)
	c := restClient(t, srv, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := c.Alive(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, srv.Stats().Requests)
}

func TestClientAudioTooLarge(t *testing.T) {
	srv := restServer(t, nil)
	c := restClient(t, srv, &daspeak.ClientOptions{MaxAudioBytes: 1000})
	_, err := c.GenerateCredential(context.Background(), restModel, restVoice(t, 300), nil)
	assert.ErrorIs(t, err, daspeak.ErrAudioTooLarge)
	_, err = c.CompareAudioToAudio(context.Background(), make([]byte, 10), restVoice(t, 300), nil)
	assert.ErrorIs(t, err, daspeak.ErrAudioTooLarge)
	assert.Zero(t, srv.Stats().Requests)
}

func TestClientConcurrentUse(t *testing.T) {
	srv := restServer(t, nil)
	srv.Inject(daspeaktest.Fault{Status: 503, Times: 4})
	c := restClient(t, srv, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			audio := restVoice(t, float64(200+40*i))
			r, err := c.GenerateCredential(ctx, restModel, audio, nil)
			if err != nil {
				errs <- err
				return
			}
			s, err := c.CompareCredentialToAudio(ctx, r.Credential, audio, nil)
			if err == nil && s.Score != daspeaktest.FakeMatchScore {
				err = errors.New("no match")
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestClientAsEngine puts the Client behind a second emulator: das-Peak
// answers, errors included, pass through unchanged.
func TestClientAsEngine(t *testing.T) {
	inner := restServer(t, nil)
	var engine daspeak.Engine = restClient(t, inner, nil)
	outer := daspeaktest.NewServer(engine, nil)
	t.Cleanup(outer.Close)
	c := restClient(t, outer, nil)
	ctx := context.Background()

	ms, err := c.Models(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{restModel}, ms, "the Client is a ModelLister")
	r, err := c.GenerateCredential(ctx, restModel, restVoice(t, 300), nil)
	require.NoError(t, err)
	s, err := c.CompareCredentials(ctx, r.Credential, r.Credential, "")
	require.NoError(t, err, "the Client is a CredentialComparer")
	assert.Equal(t, 0.99, s.Score)

	_, err = c.GenerateCredential(ctx, restModel, restTone(t, voicegate.PCMU, 8000, 1, 300, 2, 2), nil)
	var ae *daspeak.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "Voice duration is not enough 2.00s < 3.00s", ae.Message)
	assert.Equal(t, 2.0, ae.Detected)
}

// TestClientRecordedSpeech sends the recorded telephone clips of
// testdata/voices through the client and the emulator.
func TestClientRecordedSpeech(t *testing.T) {
	srv := restServer(t, nil)
	c := restClient(t, srv, nil)
	ctx := context.Background()
	for _, v := range fixtures.Voices() {
		names := fixtures.Utterances(v)
		require.NotEmpty(t, names)
		audio, err := os.ReadFile(fixtures.Path(names[0]))
		require.NoError(t, err)
		w := fixtures.LoadWAV(t, names[0])
		r, err := c.GenerateCredential(ctx, restModel, audio, nil)
		require.NoError(t, err, names[0])
		assert.InDelta(t, w.Duration().Seconds(), r.InputAudioDuration, 1e-9)
		assert.GreaterOrEqual(t, r.NetSpeechDuration, 3.0)
		assert.Less(t, r.NetSpeechDuration, r.InputAudioDuration)
		s, err := c.CompareCredentialToAudio(ctx, r.Credential, audio, nil)
		require.NoError(t, err)
		assert.Equal(t, daspeaktest.FakeMatchScore, s.Score)
	}
}

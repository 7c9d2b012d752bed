package offline

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/internal/fixtures"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixtures.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFixtureVoices enrols every committed voice from one utterance and
// scores it against the other utterances of every voice.
func TestFixtureVoices(t *testing.T) {
	ctx := context.Background()
	e := New(nil)
	creds := map[string]string{}
	for _, v := range fixtures.Voices() {
		r, err := e.GenerateCredential(ctx, ModelHash, readFixture(t, fixtures.Utterances(v)[0]), nil)
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if r.Authenticity != daspeak.AuthenticityNotPerformed || r.Model.Hash != ModelHash || r.NetSpeechDuration < MinNetSpeech || r.InputAudioDuration < r.NetSpeechDuration {
			t.Fatalf("%s: result %+v", v, r)
		}
		creds[v] = r.Credential
	}
	for _, ref := range fixtures.Voices() {
		for _, v := range fixtures.Voices() {
			for _, u := range fixtures.Utterances(v)[1:] {
				r, err := e.CompareCredentialToAudio(ctx, creds[ref], readFixture(t, u), nil)
				if err != nil {
					t.Fatal(err)
				}
				same := ref == v
				t.Logf("%-8s vs %-18s score %.3f", ref, u, r.Score)
				if same != (r.Score >= DefaultScoreThreshold) {
					t.Errorf("credential of %s vs %s: score %.3f, same speaker %v, threshold %.2f", ref, u, r.Score, same, DefaultScoreThreshold)
				}
				if r.Calibration != daspeak.DefaultCalibration || r.Authenticity != daspeak.AuthenticityNotPerformed {
					t.Errorf("result %+v", r)
				}
			}
		}
	}
}

func TestDeterministicAndSymmetric(t *testing.T) {
	ctx := context.Background()
	e := New(nil)
	a := readFixture(t, fixtures.Utterances("slt")[0])
	b := readFixture(t, fixtures.Utterances("awb")[0])
	r1, err := e.GenerateCredential(ctx, ModelHash, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := e.GenerateCredential(ctx, ModelHash, a, nil)
	if r1.Credential != r2.Credential {
		t.Fatal("credentials of the same audio differ")
	}
	if !strings.HasPrefix(r1.Credential, "vgo1.") {
		t.Fatalf("credential %q", r1.Credential[:10])
	}
	rb, _ := e.GenerateCredential(ctx, ModelHash, b, nil)
	s1, err := e.CompareCredentials(ctx, r1.Credential, rb.Credential, "")
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := e.CompareCredentials(ctx, rb.Credential, r1.Credential, daspeak.DefaultCalibration)
	if s1.Score != s2.Score {
		t.Fatalf("asymmetric: %v vs %v", s1.Score, s2.Score)
	}
	self, _ := e.CompareCredentials(ctx, r1.Credential, r1.Credential, "")
	if self.Score < 0.99 {
		t.Fatalf("self score %v", self.Score)
	}
	// Credential vs its own audio equals credential vs credential.
	ca, _ := e.CompareCredentialToAudio(ctx, rb.Credential, a, nil)
	if d := ca.Score - s1.Score; d > 1e-6 || d < -1e-6 {
		t.Fatalf("credential2wav %v != credential2credential %v", ca.Score, s1.Score)
	}
	if m, err := CredentialModel(r1.Credential); err != nil || m != ModelHash {
		t.Fatalf("CredentialModel = %q, %v", m, err)
	}
	ms, _ := e.Models(ctx)
	if len(ms) != 1 || ms[0] != ModelHash {
		t.Fatalf("Models = %v", ms)
	}
	if cs, err := e.Calibrations(ctx, ModelHash); err != nil || len(cs) != 1 || cs[0] != daspeak.DefaultCalibration {
		t.Fatalf("Calibrations = %v, %v", cs, err)
	}
	if _, err := e.Calibrations(ctx, "x"); !errors.Is(err, daspeak.ErrModelNotAvailable) {
		t.Fatalf("Calibrations of an unknown model: %v", err)
	}
	custom := New(&Options{Calibrations: []string{"lab"}})
	if _, err := custom.CompareCredentials(ctx, r1.Credential, rb.Credential, "lab"); err != nil {
		t.Fatalf("custom calibration: %v", err)
	}
	if _, err := custom.CompareCredentials(ctx, r1.Credential, rb.Credential, daspeak.DefaultCalibration); !errors.Is(err, daspeak.ErrCalibrationNotAvailable) {
		t.Fatalf("calibration outside the list: %v", err)
	}
}

func wavOf(t *testing.T, f codec.WAVFormat, pcm []int16) []byte {
	t.Helper()
	var data []byte
	switch f.Encoding {
	case voicegate.PCMU:
		data = make([]byte, len(pcm))
		codec.EncodeULaw(data, pcm)
	default:
		data = make([]byte, 2*len(pcm))
		codec.Int16ToBytes(data, pcm)
	}
	b, err := codec.EncodeWAV(nil, f, data)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	e := New(nil)
	speech := fixtures.LoadWAV(t, fixtures.Utterances("rms")[0]).Mono(0)
	good := wavOf(t, codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}, speech)
	cred, err := e.GenerateCredential(ctx, ModelHash, good, nil)
	if err != nil {
		t.Fatal(err)
	}
	short := wavOf(t, codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}, speech[:8000*2])
	long := wavOf(t, codec.WAVFormat{Encoding: voicegate.L16, SampleRate: 8000, Channels: 1}, make([]int16, 8000*31))
	odd := wavOf(t, codec.WAVFormat{Encoding: voicegate.L16, SampleRate: 11025, Channels: 1}, speech)
	stereo := make([]int16, 2*len(speech))
	codec.Interleave(stereo, make([]int16, len(speech)), speech)
	st := wavOf(t, codec.WAVFormat{Encoding: voicegate.L16, SampleRate: 8000, Channels: 2}, stereo)
	bad := []byte(cred.Credential)
	bad[len(bad)-3] ^= 1
	otherModel := encodeCredential("some-other-model", make([]float32, embedDim))

	cases := []struct {
		name      string
		call      func() error
		exception string
		sentinel  error
		message   string
	}{
		{"short speech", func() error { _, err := e.GenerateCredential(ctx, ModelHash, short, nil); return err },
			daspeak.ExceptionVoiceDurationIsNotEnough, daspeak.ErrNetSpeechTooShort, "Voice duration is not enough "},
		{"too long", func() error { _, err := e.GenerateCredential(ctx, ModelHash, long, nil); return err },
			daspeak.ExceptionAudioInput, daspeak.ErrAudioInput, "The wav duration is longer than 30 seconds"},
		{"rate", func() error { _, err := e.GenerateCredential(ctx, ModelHash, odd, nil); return err },
			daspeak.ExceptionAudioInput, daspeak.ErrAudioInput, "The sample rate is not supported, must be 8 Khz or 16 Khz"},
		{"not wav", func() error { _, err := e.GenerateCredential(ctx, ModelHash, []byte("hello"), nil); return err },
			daspeak.ExceptionAudioInput, daspeak.ErrAudioInput, "unsupported codec"},
		{"float", func() error {
			b := append([]byte{}, good...)
			// Format tag 3 with 32-bit samples: IEEE float, which codec reads
			// but das-Peak does not take.
			binary.LittleEndian.PutUint16(b[20:], 3)
			binary.LittleEndian.PutUint16(b[32:], 4)
			binary.LittleEndian.PutUint16(b[34:], 32)
			_, err := e.GenerateCredential(ctx, ModelHash, b, nil)
			return err
		}, daspeak.ExceptionAudioInput, daspeak.ErrAudioInput, "unsupported codec"},
		{"empty", func() error { _, err := e.GenerateCredential(ctx, ModelHash, nil, nil); return err },
			daspeak.ExceptionNoAudio, daspeak.ErrNoAudio, "No audio input"},
		{"channel 3", func() error {
			_, err := e.GenerateCredential(ctx, ModelHash, good, &daspeak.AudioOptions{Channel: 3})
			return err
		}, daspeak.ExceptionInvalidChannel, daspeak.ErrInvalidChannel, "Invalid specified channel/s"},
		{"channel 2 of mono", func() error {
			_, err := e.GenerateCredential(ctx, ModelHash, good, &daspeak.AudioOptions{Channel: 2})
			return err
		}, daspeak.ExceptionInvalidChannel, daspeak.ErrInvalidChannel, "Invalid specified channel/s"},
		{"silent channel 1 of stereo", func() error { _, err := e.GenerateCredential(ctx, ModelHash, st, nil); return err },
			daspeak.ExceptionVoiceDurationIsNotEnough, daspeak.ErrNetSpeechTooShort, "Voice duration is not enough 0.00s < 3.00s"},
		{"calibration", func() error {
			_, err := e.GenerateCredential(ctx, ModelHash, good, &daspeak.AudioOptions{Calibration: "satellite"})
			return err
		}, daspeak.ExceptionCalibrationNotAvailable, daspeak.ErrCalibrationNotAvailable, "The calibration satellite is not available"},
		{"model", func() error { _, err := e.GenerateCredential(ctx, "nope", good, nil); return err },
			daspeak.ExceptionModelNotAvailable, daspeak.ErrModelNotAvailable, "nope"},
		{"bad credential", func() error { _, err := e.CompareCredentialToAudio(ctx, string(bad), good, nil); return err },
			daspeak.ExceptionInvalidCredential, daspeak.ErrInvalidCredential, "Decryption error"},
		{"garbage credential", func() error { _, err := e.CompareCredentials(ctx, "xyz", cred.Credential, ""); return err },
			daspeak.ExceptionInvalidCredential, daspeak.ErrInvalidCredential, "Decryption error"},
		{"other model credential", func() error { _, err := e.CompareCredentialToAudio(ctx, otherModel, good, nil); return err },
			daspeak.ExceptionModelNotAvailable, daspeak.ErrModelNotAvailable, "some-other-model"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			var ae *daspeak.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v is not an *APIError", err)
			}
			if ae.Exception != c.exception || !errors.Is(err, c.sentinel) || !strings.Contains(ae.Message, c.message) {
				t.Fatalf("error %+v, want %s %q", ae, c.exception, c.message)
			}
		})
	}
	// The stereo file's second channel holds the speech.
	if _, err := e.GenerateCredential(ctx, ModelHash, st, &daspeak.AudioOptions{Channel: 2}); err != nil {
		t.Fatalf("channel 2: %v", err)
	}
	// Short speech reports what was detected, like das-Peak.
	_, err = e.GenerateCredential(ctx, ModelHash, short, nil)
	var ae *daspeak.APIError
	errors.As(err, &ae)
	if ae.Detected <= 0 || ae.Detected >= MinNetSpeech || ae.Message != fmt.Sprintf("Voice duration is not enough %.2fs < 3.00s", ae.Detected) {
		t.Fatalf("short: %+v", ae)
	}
	// A cancelled context stops the request.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.GenerateCredential(cctx, ModelHash, good, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestSixteenKHz(t *testing.T) {
	// 16 kHz input: the same speech upsampled by repeating samples (crude,
	// but the front end works in Hz and must accept it).
	ctx := context.Background()
	e := New(nil)
	pcm := fixtures.LoadWAV(t, fixtures.Utterances("kal")[0]).Mono(0)
	up := make([]int16, 2*len(pcm))
	for i, s := range pcm {
		up[2*i], up[2*i+1] = s, s
	}
	r, err := e.GenerateCredential(ctx, ModelHash, wavOf(t, codec.WAVFormat{Encoding: voicegate.L16, SampleRate: 16000, Channels: 1}, up), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.CompareCredentialToAudio(ctx, r.Credential, readFixture(t, fixtures.Utterances("kal")[1]), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("16 kHz enrolment vs 8 kHz verification: score %.3f", c.Score)
}

func TestCredentialRoundTrip(t *testing.T) {
	emb := make([]float32, embedDim)
	for i := range emb {
		emb[i] = float32(i) / 100
	}
	s := encodeCredential(ModelHash, emb)
	h, got, ok := decodeCredential(s)
	if !ok || h != ModelHash || len(got) != len(emb) {
		t.Fatalf("decode: %v %q %d", ok, h, len(got))
	}
	for i := range emb {
		if got[i] != emb[i] {
			t.Fatalf("value %d: %v != %v", i, got[i], emb[i])
		}
	}
	for _, bad := range []string{"", "vgo1.", "vgo2." + s[5:], s[:len(s)-2], s + "AA", "vgo1.!!!!", strings.Replace(s, "vgo1.", "", 1)} {
		if _, _, ok := decodeCredential(bad); ok {
			t.Errorf("decoded %q", bad)
		}
	}
}

func FuzzDecodeCredential(f *testing.F) {
	f.Add(encodeCredential(ModelHash, make([]float32, embedDim)))
	f.Add(encodeCredential("", []float32{1}))
	f.Add("vgo1.AQ")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		h, emb, ok := decodeCredential(s)
		if !ok {
			return
		}
		if again := encodeCredential(h, emb); again != s {
			t.Fatalf("re-encoding %q gives %q", s, again)
		}
	})
}

// TestStaleCredential: credentials made by earlier model versions
// (testdata: slt_1.wav enrolled by offline-mfcc-v1, -v2 and -v3)
// are refused with a *StaleCredentialError that says to re-enrol, in every
// call that takes a credential; they are never scored.
func TestStaleCredential(t *testing.T) {
	ctx := context.Background()
	e := New(nil)
	audio := readFixture(t, fixtures.Utterances("slt")[0])
	cur, err := e.GenerateCredential(ctx, ModelHash, audio, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, model := range []string{"offline-mfcc-v1", "offline-mfcc-v2", "offline-mfcc-v3"} {
		if !slices.Contains(PreviousModelHashes, model) {
			t.Errorf("PreviousModelHashes %v lacks %s", PreviousModelHashes, model)
		}
		b, err := os.ReadFile("testdata/slt_1." + model + ".cred")
		if err != nil {
			t.Fatal(err)
		}
		old := strings.TrimSpace(string(b))
		if m, err := CredentialModel(old); err != nil || m != model {
			t.Fatalf("CredentialModel = %q, %v; want %s", m, err, model)
		}
		calls := map[string]func() error{
			"credential to audio": func() error { _, err := e.CompareCredentialToAudio(ctx, old, audio, nil); return err },
			"reference":           func() error { _, err := e.CompareCredentials(ctx, old, cur.Credential, ""); return err },
			"to evaluate":         func() error { _, err := e.CompareCredentials(ctx, cur.Credential, old, ""); return err },
		}
		for name, call := range calls {
			t.Run(model+"/"+name, func(t *testing.T) {
				err := call()
				var se *StaleCredentialError
				if !errors.As(err, &se) || se.Model != model {
					t.Fatalf("error %v (%T), want *StaleCredentialError", err, err)
				}
				if !errors.Is(err, ErrReenrol) || !errors.Is(err, daspeak.ErrModelNotAvailable) || !strings.Contains(err.Error(), "re-enrol") {
					t.Fatalf("error %q does not match ErrReenrol and ErrModelNotAvailable", err)
				}
				var ae *daspeak.APIError
				if !errors.As(err, &ae) || ae.Status != 404 || ae.Exception != daspeak.ExceptionModelNotAvailable || !strings.Contains(ae.Message, "re-enrol") {
					t.Fatalf("APIError %+v", ae)
				}
			})
		}
	}
	// A model hash that was never this engine's is not stale, just unknown.
	other := encodeCredential("some-other-model", make([]float32, embedDim))
	_, err = e.CompareCredentials(ctx, other, cur.Credential, "")
	var se *StaleCredentialError
	if errors.As(err, &se) || !errors.Is(err, daspeak.ErrModelNotAvailable) {
		t.Fatalf("unknown model: %v", err)
	}
}

func TestSecurityWarning(t *testing.T) {
	for _, want := range []string{"NOT a security control", "anti-spoofing", "-1"} {
		if !strings.Contains(SecurityWarning, want) {
			t.Errorf("SecurityWarning %q lacks %q", SecurityWarning, want)
		}
	}
}

// TestModelFile checks the embedded model.bin and that the loader refuses
// damaged copies.
func TestModelFile(t *testing.T) {
	c, err := loadCompensation(modelFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.nap) == 0 || len(c.cohort) == 0 || len(c.speaker) != len(c.cohort) {
		t.Fatalf("model.bin: %d directions, %d cohort rows, %d speakers", len(c.nap), len(c.cohort), len(c.speaker))
	}
	for i, s := range c.speaker {
		if int(s) >= len(cohortSpeakers) {
			t.Fatalf("cohort row %d: speaker %d of %d", i, s, len(cohortSpeakers))
		}
	}
	if again := encodeCompensation(c); !bytes.Equal(again, modelFile) {
		t.Fatal("model.bin does not re-encode to itself")
	}
	flip := bytes.Clone(modelFile)
	flip[100] ^= 1
	short := modelFile[:len(modelFile)-8]
	for name, b := range map[string][]byte{"empty": nil, "magic": append([]byte("XXXX"), modelFile[4:]...), "bit flip": flip, "truncated": short} {
		if _, err := loadCompensation(b); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

package daspeak_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/daspeaktest"
	"github.com/voicegate/voicegate/daspeak/offline"
	"github.com/voicegate/voicegate/internal/fixtures"
)

// run pulls events until the terminal one and checks the session contract:
// progress events only before it, non-decreasing net speech, io.EOF after.
func run(t *testing.T, s *daspeak.Session) (daspeak.Event, []daspeak.Event) {
	t.Helper()
	ctx := context.Background()
	var progress []daspeak.Event
	var last time.Duration
	for i := 0; ; i++ {
		ev, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("Next %d: %v", i, err)
		}
		if ev.Operation != s.Operation() {
			t.Fatalf("event operation %q, session %q", ev.Operation, s.Operation())
		}
		if ev.NetSpeech < last {
			t.Fatalf("net speech went back from %v to %v", last, ev.NetSpeech)
		}
		last = ev.NetSpeech
		if ev.IsTerminal() {
			if _, err := s.Next(ctx); err != io.EOF {
				t.Fatalf("Next after the terminal event: %v, want io.EOF", err)
			}
			return ev, progress
		}
		if ev.Type != daspeak.EventProgress {
			t.Fatalf("non-terminal event %q", ev.Type)
		}
		progress = append(progress, ev)
	}
}

func wavReader(t testing.TB, name string) *codec.WAVFrameReader {
	return codec.NewWAVFrameReader(fixtures.LoadWAV(t, name), 20*time.Millisecond)
}

func register(t *testing.T, e daspeak.Engine, name string, cfg *daspeak.Config) daspeak.Event {
	t.Helper()
	s, err := daspeak.Register(wavReader(t, name), e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ev, progress := run(t, s)
	if ev.Type != daspeak.EventResultSuccess {
		t.Fatalf("register %s: %s (%v)", name, ev.Type, ev.Err)
	}
	if len(progress) < 5 {
		t.Errorf("register %s: %d progress events", name, len(progress))
	}
	return ev
}

func verify(t *testing.T, e daspeak.Engine, cred, name string, cfg *daspeak.Config) daspeak.Event {
	t.Helper()
	s, err := daspeak.Verify(wavReader(t, name), e, cred, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := run(t, s)
	return ev
}

// offlineAntiSpoofing reports whether ev carries the offline engine's
// anti-spoofing answer consistently: an authenticity of 1 judged against
// the default threshold, or AuthenticityNotPerformed with no threshold.
func offlineAntiSpoofing(ev daspeak.Event) bool {
	switch ev.AntiSpoofing {
	case daspeak.AntiSpoofingPerformed:
		return ev.Authenticity == 1 && ev.AuthenticityThreshold == 0.8
	case daspeak.AntiSpoofingNotPerformed:
		return ev.Authenticity == daspeak.AuthenticityNotPerformed && ev.AuthenticityThreshold == 0
	}
	return false
}

// TestRegisterVerifyFixtures registers every committed voice from its
// first utterance and verifies its second utterance (result-success) and
// the second utterance of another voice (result-fail-score) with the
// offline engine and default thresholds.
func TestRegisterVerifyFixtures(t *testing.T) {
	e := offline.New(nil)
	voices := fixtures.Voices()
	for i, v := range voices {
		t.Run(v, func(t *testing.T) {
			reg := register(t, e, fixtures.Utterances(v)[0], nil)
			if reg.Credential == "" || reg.ModelHash != offline.ModelHash || reg.NetSpeech < reg.NetSpeechNeeded ||
				reg.NetSpeechNeeded != 5*time.Second || !offlineAntiSpoofing(reg) {
				t.Fatalf("register event %+v", reg)
			}
			w, err := codec.ParseWAV(reg.Audio)
			if err != nil || w.Format.Encoding != voicegate.PCMU || w.Format.SampleRate != 8000 || w.Duration() != reg.AudioDuration {
				t.Fatalf("register audio: %v %+v %v / %v", err, w.Format, w.Duration(), reg.AudioDuration)
			}
			same := verify(t, e, reg.Credential, fixtures.Utterances(v)[1], nil)
			other := voices[(i+1)%len(voices)]
			diff := verify(t, e, reg.Credential, fixtures.Utterances(other)[1], nil)
			t.Logf("%s: same %.3f, %s %.3f", v, same.Score, other, diff.Score)
			if same.Type != daspeak.EventResultSuccess || same.Score < same.ScoreThreshold || same.ScoreThreshold != 0.5 {
				t.Errorf("same voice: %s score %.3f", same.Type, same.Score)
			}
			if diff.Type != daspeak.EventResultFailScore || diff.Score >= diff.ScoreThreshold {
				t.Errorf("voice %s: %s score %.3f", other, diff.Type, diff.Score)
			}
		})
	}
}

// TestRegisterStoreVerify registers into credstore's memory store, reads
// the credential back and verifies with it.
func TestRegisterStoreVerify(t *testing.T) {
	ctx := context.Background()
	e := offline.New(nil)
	mem := credstore.NewMemory()
	store := daspeak.StoreFunc(func(ctx context.Context, id, cred, hash string, audio []byte) error {
		return mem.Put(ctx, id, credstore.Record{Credential: cred, ModelHash: hash, AudioRef: fmt.Sprintf("wav:%d", len(audio))})
	})
	reg := register(t, e, fixtures.Utterances("rms")[0], &daspeak.Config{Store: store, CallerID: "+34600000001"})
	if !reg.Stored || reg.Err != nil {
		t.Fatalf("not stored: %+v", reg)
	}
	rec, err := mem.Get(ctx, "+34600000001")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Credential != reg.Credential || rec.ModelHash != offline.ModelHash || rec.AudioRef != fmt.Sprintf("wav:%d", len(reg.Audio)) {
		t.Fatalf("stored %+v", rec)
	}
	if ev := verify(t, e, rec.Credential, fixtures.Utterances("rms")[2], nil); ev.Type != daspeak.EventResultSuccess {
		t.Fatalf("verify same caller: %s %.3f", ev.Type, ev.Score)
	}
	if ev := verify(t, e, rec.Credential, fixtures.Utterances("armelle")[2], nil); ev.Type != daspeak.EventResultFailScore {
		t.Fatalf("verify impostor: %s %.3f", ev.Type, ev.Score)
	}
}

// fakeEngine returns fixed results and counts calls.
type fakeEngine struct {
	mu           sync.Mutex
	authenticity float64
	score        float64
	err          error
	calls        int
	audio        []byte
	block        bool // wait for ctx
	noCred       bool // answer register with an empty credential
}

func (f *fakeEngine) call(ctx context.Context, audio []byte) error {
	f.mu.Lock()
	f.calls++
	f.audio = bytes.Clone(audio) // the session may reuse audio after the call
	block := f.block
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	return f.err
}

func (f *fakeEngine) GenerateCredential(ctx context.Context, hash string, audio []byte, opts *daspeak.AudioOptions) (*daspeak.CredentialResult, error) {
	if err := f.call(ctx, audio); err != nil {
		return nil, err
	}
	cred := "cred-" + hash
	if f.noCred {
		cred = ""
	}
	return &daspeak.CredentialResult{Model: daspeak.Model{Hash: hash}, Credential: cred, Authenticity: f.authenticity, NetSpeechDuration: 4.2, InputAudioDuration: 6.1}, nil
}

func (f *fakeEngine) CompareCredentialToAudio(ctx context.Context, credential string, audio []byte, opts *daspeak.AudioOptions) (*daspeak.CompareResult, error) {
	if err := f.call(ctx, audio); err != nil {
		return nil, err
	}
	return &daspeak.CompareResult{Model: daspeak.Model{Hash: "m1"}, Score: f.score, Authenticity: f.authenticity, NetSpeechDuration: 4.2, InputAudioDuration: 6.1}, nil
}

func TestThresholds(t *testing.T) {
	speech := fixtures.Utterances("kal")[0]
	cases := []struct {
		name         string
		op           daspeak.Operation
		authenticity float64
		score        float64
		cfg          daspeak.Config
		want         daspeak.EventType
	}{
		{"register ok", daspeak.OperationRegister, 0.9, 0, daspeak.Config{}, daspeak.EventResultSuccess},
		{"register at threshold", daspeak.OperationRegister, 0.8, 0, daspeak.Config{}, daspeak.EventResultSuccess},
		{"register spoof", daspeak.OperationRegister, 0.79, 0, daspeak.Config{}, daspeak.EventResultFailSpoof},
		{"register custom authenticity", daspeak.OperationRegister, 0.5, 0, daspeak.Config{AuthenticityThreshold: 0.4}, daspeak.EventResultSuccess},
		{"verify ok", daspeak.OperationVerify, 0.9, 0.7, daspeak.Config{}, daspeak.EventResultSuccess},
		{"verify at score threshold", daspeak.OperationVerify, 0.9, 0.5, daspeak.Config{}, daspeak.EventResultSuccess},
		{"verify low score", daspeak.OperationVerify, 0.9, 0.49, daspeak.Config{}, daspeak.EventResultFailScore},
		{"verify custom score", daspeak.OperationVerify, 0.9, 0.7, daspeak.Config{ScoreThreshold: 0.75}, daspeak.EventResultFailScore},
		{"verify spoof wins over score", daspeak.OperationVerify, 0.1, 0.1, daspeak.Config{}, daspeak.EventResultFailSpoof},
		{"verify spoof with good score", daspeak.OperationVerify, 0.1, 0.99, daspeak.Config{}, daspeak.EventResultFailSpoof},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := &fakeEngine{authenticity: c.authenticity, score: c.score}
			cfg := c.cfg
			cfg.ModelHash = "m1"
			var s *daspeak.Session
			var err error
			if c.op == daspeak.OperationRegister {
				s, err = daspeak.Register(wavReader(t, speech), e, &cfg)
			} else {
				s, err = daspeak.Verify(wavReader(t, speech), e, "cred", &cfg)
			}
			if err != nil {
				t.Fatal(err)
			}
			ev, _ := run(t, s)
			if ev.Type != c.want {
				t.Fatalf("got %s, want %s", ev.Type, c.want)
			}
			if e.calls != 1 {
				t.Fatalf("%d engine calls", e.calls)
			}
			if ev.Authenticity != c.authenticity || ev.EngineNetSpeech != 4200*time.Millisecond || ev.ModelHash != "m1" {
				t.Fatalf("event %+v", ev)
			}
			if c.op == daspeak.OperationVerify && ev.Type != daspeak.EventResultFailSpoof && ev.Score != c.score {
				t.Fatalf("score %v", ev.Score)
			}
			if (ev.Credential != "") != (c.op == daspeak.OperationRegister && c.want == daspeak.EventResultSuccess) {
				t.Fatalf("credential %q on %s %s", ev.Credential, c.op, ev.Type)
			}
			if _, err := codec.ParseWAV(e.audio); err != nil {
				t.Fatalf("engine got a bad WAV: %v", err)
			}
		})
	}
}

// countingReader counts ReadFrame calls.
type countingReader struct {
	voicegate.FrameReader
	n int
}

func (r *countingReader) ReadFrame(ctx context.Context) (voicegate.Frame, error) {
	r.n++
	return r.FrameReader.ReadFrame(ctx)
}

func TestInvalidConfiguration(t *testing.T) {
	type start func(src voicegate.FrameReader, e daspeak.Engine) (*daspeak.Session, error)
	reg := func(cfg daspeak.Config) start {
		return func(src voicegate.FrameReader, e daspeak.Engine) (*daspeak.Session, error) {
			return daspeak.Register(src, e, &cfg)
		}
	}
	ver := func(cred string, cfg daspeak.Config) start {
		return func(src voicegate.FrameReader, e daspeak.Engine) (*daspeak.Session, error) {
			return daspeak.Verify(src, e, cred, &cfg)
		}
	}
	store := daspeak.StoreFunc(func(context.Context, string, string, string, []byte) error { return nil })
	cases := []struct {
		name  string
		start start
	}{
		{"duration over 30s", reg(daspeak.Config{AudioTotalDuration: 31 * time.Second})},
		{"negative duration", reg(daspeak.Config{AudioTotalDuration: -time.Second})},
		{"authenticity over 1", reg(daspeak.Config{AuthenticityThreshold: 1.5})},
		{"negative authenticity", reg(daspeak.Config{AuthenticityThreshold: -0.1})},
		{"score over 1", ver("c", daspeak.Config{ScoreThreshold: 2})},
		{"negative score", ver("c", daspeak.Config{ScoreThreshold: -1})},
		{"bad party", reg(daspeak.Config{Party: voicegate.Party(9)})},
		{"negative margin", reg(daspeak.Config{NetSpeechMargin: -time.Second})},
		{"total audio 30s", reg(daspeak.Config{MaxTotalAudio: 30 * time.Second})},
		{"total audio 2s", reg(daspeak.Config{MaxTotalAudio: 2 * time.Second})},
		{"negative timeout", reg(daspeak.Config{NoAudioTimeout: -time.Second})},
		{"store without caller id", reg(daspeak.Config{Store: store})},
		{"store on verify", ver("c", daspeak.Config{Store: store, CallerID: "x"})},
		{"negative store timeout", reg(daspeak.Config{ModelHash: "m1", Store: store, CallerID: "x", StoreTimeout: -time.Second})},
		{"negative store backoff", reg(daspeak.Config{ModelHash: "m1", Store: store, CallerID: "x", StoreBackoff: -time.Second})},
		{"empty credential", ver("", daspeak.Config{})},
		{"no model, no lister", reg(daspeak.Config{})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := &countingReader{FrameReader: wavReader(t, fixtures.Utterances("slt")[0])}
			s, err := c.start(src, &fakeEngine{authenticity: 1, score: 1})
			if s == nil {
				t.Fatal("nil session")
			}
			if err != nil && !errors.Is(err, daspeak.ErrParameters) {
				t.Fatalf("error %v", err)
			}
			ev, _ := run(t, s)
			if ev.Type != daspeak.EventErrorParameters || !errors.Is(ev.Err, daspeak.ErrParameters) {
				t.Fatalf("event %s (%v)", ev.Type, ev.Err)
			}
			if src.n != 0 {
				t.Fatalf("%d frames read", src.n)
			}
		})
	}
	if _, err := daspeak.Register(nil, offline.New(nil), nil); !errors.Is(err, daspeak.ErrParameters) {
		t.Fatalf("nil reader: %v", err)
	}
	if _, err := daspeak.Verify(wavReader(t, fixtures.Utterances("slt")[0]), nil, "c", nil); !errors.Is(err, daspeak.ErrParameters) {
		t.Fatalf("nil engine: %v", err)
	}
}

// blockingReader returns its frames, then blocks until ctx is done.
type blockingReader struct{ frames []voicegate.Frame }

func (r *blockingReader) ReadFrame(ctx context.Context) (voicegate.Frame, error) {
	if len(r.frames) > 0 {
		f := r.frames[0]
		r.frames = r.frames[1:]
		return f, nil
	}
	<-ctx.Done()
	return voicegate.Frame{}, ctx.Err()
}

func TestNoAudio(t *testing.T) {
	agent := voicegate.Frame{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1, Parties: [2]voicegate.Party{voicegate.Agent}, Payload: make([]byte, 160)}
	for _, c := range []struct {
		name   string
		frames []voicegate.Frame
	}{
		{"nothing", nil},
		{"only the agent", []voicegate.Frame{agent, agent, agent}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := daspeak.Verify(&blockingReader{frames: c.frames}, offline.New(nil), "c", &daspeak.Config{NoAudioTimeout: 30 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			ev, _ := run(t, s)
			if ev.Type != daspeak.EventErrorConsumerNotReady || !errors.Is(ev.Err, daspeak.ErrConsumerNotReady) {
				t.Fatalf("event %s (%v)", ev.Type, ev.Err)
			}
			if st := s.Stats(); st.OtherParty != int64(len(c.frames)) {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// clip returns the first d of a fixture as frames.
func clip(t *testing.T, name string, d time.Duration) voicegate.FrameReader {
	w := fixtures.LoadWAV(t, name)
	w.Data = w.Data[:int(d.Seconds()*8000)]
	return codec.NewWAVFrameReader(w, 20*time.Millisecond)
}

func TestEarlyEnd(t *testing.T) {
	e := &fakeEngine{authenticity: 1, score: 1}
	s, _ := daspeak.Register(clip(t, fixtures.Utterances("awb")[0], 2500*time.Millisecond), e, &daspeak.Config{ModelHash: "m1"})
	ev, _ := run(t, s)
	if ev.Type != daspeak.EventErrorAudio || !errors.Is(ev.Err, daspeak.ErrAudio) {
		t.Fatalf("event %s (%v)", ev.Type, ev.Err)
	}
	if ev.NetSpeech <= time.Second || ev.NetSpeech >= ev.NetSpeechNeeded || !strings.Contains(ev.Err.Error(), "net speech") {
		t.Fatalf("net speech %v of %v: %v", ev.NetSpeech, ev.NetSpeechNeeded, ev.Err)
	}
	if e.calls != 0 {
		t.Fatal("engine called")
	}
}

func TestEngineErrors(t *testing.T) {
	apiErr := &daspeak.APIError{Status: 400, Exception: daspeak.ExceptionVoiceDurationIsNotEnough, Message: "Voice duration is not enough 2.55s < 3.00s", Detected: 2.55}
	e := &fakeEngine{err: apiErr}
	s, _ := daspeak.Register(wavReader(t, fixtures.Utterances("slt")[0]), e, &daspeak.Config{ModelHash: "m1"})
	ev, _ := run(t, s)
	if ev.Type != daspeak.EventErrorDasPeak || ev.Exception != daspeak.ExceptionVoiceDurationIsNotEnough || !errors.Is(ev.Err, daspeak.ErrNetSpeechTooShort) {
		t.Fatalf("event %+v", ev)
	}
	// The offline engine rejects a malformed credential.
	s, _ = daspeak.Verify(wavReader(t, fixtures.Utterances("slt")[0]), offline.New(nil), "not-a-credential", nil)
	ev, _ = run(t, s)
	if ev.Type != daspeak.EventErrorDasPeak || ev.Exception != daspeak.ExceptionInvalidCredential {
		t.Fatalf("event %+v", ev)
	}
	b, _ := json.Marshal(ev)
	if !strings.Contains(string(b), `"exception":"InvalidCredential"`) || !strings.Contains(string(b), `"error":"daspeak: InvalidCredential`) {
		t.Fatalf("json %s", b)
	}
}

func TestModelFromLister(t *testing.T) {
	ev := register(t, offline.New(nil), fixtures.Utterances("slt")[0], &daspeak.Config{ModelHash: ""})
	if ev.ModelHash != offline.ModelHash {
		t.Fatalf("model %q", ev.ModelHash)
	}
	s, _ := daspeak.Register(wavReader(t, fixtures.Utterances("slt")[0]), offline.New(nil), &daspeak.Config{ModelHash: "unknown"})
	ev, _ = run(t, s)
	if ev.Type != daspeak.EventErrorDasPeak || ev.Exception != daspeak.ExceptionModelNotAvailable {
		t.Fatalf("event %+v", ev)
	}
}

// TestStoreAlreadyStored: a store that refuses to replace the caller's
// credential (ErrAlreadyStored) is asked once, not retried, and the
// error-store event's Err says why.
func TestStoreAlreadyStored(t *testing.T) {
	n := 0
	store := daspeak.StoreFunc(func(ctx context.Context, id, cred, hash string, audio []byte) error {
		n++
		return fmt.Errorf("register once: %w", daspeak.ErrAlreadyStored)
	})
	s, _ := daspeak.Register(wavReader(t, fixtures.Utterances("slt")[0]), &fakeEngine{authenticity: 1},
		&daspeak.Config{ModelHash: "m1", Store: store, CallerID: "caller-1", StoreBackoff: 200 * time.Millisecond})
	ev, _ := run(t, s)
	if ev.Type != daspeak.EventErrorStore || ev.Stored || !errors.Is(ev.Err, daspeak.ErrStore) || !errors.Is(ev.Err, daspeak.ErrAlreadyStored) {
		t.Fatalf("event %s stored %v err %v", ev.Type, ev.Stored, ev.Err)
	}
	if n != 1 || s.Stats().StoreAttempts != 1 {
		t.Fatalf("%d attempts (stats %d), want 1: the error is permanent", n, s.Stats().StoreAttempts)
	}
}

func TestStoreRetries(t *testing.T) {
	boom := errors.New("database is down")
	for _, c := range []struct {
		name     string
		failures int
		stored   bool
		attempts int
	}{
		{"first try", 0, true, 1},
		{"after two failures", 2, true, 3},
		{"never", 100, false, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := 0
			store := daspeak.StoreFunc(func(ctx context.Context, id, cred, hash string, audio []byte) error {
				n++
				if id != "caller-1" || cred != "cred-m1" || hash != "m1" || len(audio) == 0 {
					t.Errorf("store got %q %q %q %d", id, cred, hash, len(audio))
				}
				if n <= c.failures {
					return boom
				}
				return nil
			})
			e := &fakeEngine{authenticity: 1}
			s, _ := daspeak.Register(wavReader(t, fixtures.Utterances("slt")[0]), e,
				&daspeak.Config{ModelHash: "m1", Store: store, CallerID: "caller-1", StoreBackoff: time.Millisecond})
			ev, _ := run(t, s)
			if ev.Credential != "cred-m1" || len(ev.Audio) == 0 || ev.ModelHash != "m1" || ev.Stored != c.stored {
				t.Fatalf("event %s stored %v credential %q audio %d bytes", ev.Type, ev.Stored, ev.Credential, len(ev.Audio))
			}
			if n != c.attempts || s.Stats().StoreAttempts != c.attempts {
				t.Fatalf("%d attempts (stats %d), want %d", n, s.Stats().StoreAttempts, c.attempts)
			}
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			head := fmt.Sprintf(`{"type":%q,"operation":"register","net_speech":%s,"net_speech_needed":5,"audio_duration":%s,"model_hash":"m1",`+
				`"engine_net_speech":4.2,"engine_audio_duration":6.1,"authenticity":1,"authenticity_threshold":0.8`,
				ev.Type, jsonSeconds(ev.NetSpeech), jsonSeconds(ev.AudioDuration))
			if c.stored {
				if ev.Type != daspeak.EventResultSuccess || ev.Err != nil {
					t.Fatalf("event %s (%v)", ev.Type, ev.Err)
				}
				if want := head + `,"stored":true}`; string(b) != want {
					t.Fatalf("json\n%s\nwant\n%s", b, want)
				}
				return
			}
			// A credential that was not stored is not a success.
			if ev.Type != daspeak.EventErrorStore || !ev.IsTerminal() || !errors.Is(ev.Err, daspeak.ErrStore) || !errors.Is(ev.Err, boom) {
				t.Fatalf("event %s (%v)", ev.Type, ev.Err)
			}
			if want := head + `,"error":` + jsonString(ev.Err.Error()) + `}`; string(b) != want {
				t.Fatalf("json\n%s\nwant\n%s", b, want)
			}
			if !strings.Contains(ev.Err.Error(), `caller "caller-1", 4 attempts`) {
				t.Fatalf("error %q", ev.Err)
			}
		})
	}
}

// jsonSeconds formats d as Event.MarshalJSON does: seconds with
// millisecond precision.
func jsonSeconds(d time.Duration) string {
	b, _ := json.Marshal(math.Round(d.Seconds()*1000) / 1000)
	return string(b)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestStoreOutlivesNextContext cancels Next's ctx while the store is
// working: the store's ctx is not cancelled, the credential is stored, and
// Next returns the terminal event instead of ctx's error. A store that
// never returns is bounded by StoreTimeout and gives error-store.
func TestStoreOutlivesNextContext(t *testing.T) {
	type key struct{}
	for _, c := range []struct {
		name    string
		hang    bool // the store waits for its ctx to end
		want    daspeak.EventType
		timeout time.Duration
	}{
		{"store finishes after the cancel", false, daspeak.EventResultSuccess, 0},
		{"store hangs until StoreTimeout", true, daspeak.EventErrorStore, 150 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "request-id"))
			defer cancel()
			var (
				storeErr     error
				deadlineLeft time.Duration
				value        any
				calls        int
			)
			store := daspeak.StoreFunc(func(sctx context.Context, id, cred, hash string, audio []byte) error {
				calls++
				value = sctx.Value(key{})
				if d, ok := sctx.Deadline(); ok {
					deadlineLeft = time.Until(d)
				}
				cancel() // a shutdown cancels the session while the store works
				if c.hang {
					<-sctx.Done()
					return sctx.Err()
				}
				select {
				case <-sctx.Done():
					storeErr = sctx.Err()
					return storeErr
				case <-time.After(50 * time.Millisecond): // the write completes
				}
				return nil
			})
			e := &fakeEngine{authenticity: 1}
			s, _ := daspeak.Register(wavReader(t, fixtures.Utterances("slt")[0]), e,
				&daspeak.Config{ModelHash: "m1", Store: store, CallerID: "c", StoreTimeout: c.timeout, StoreBackoff: time.Millisecond})
			var ev daspeak.Event
			var err error
			began := time.Now()
			for {
				ev, err = s.Next(ctx)
				if err != nil || ev.IsTerminal() {
					break
				}
				began = time.Now()
			}
			took := time.Since(began)
			if err != nil {
				t.Fatalf("Next returned %v, want the terminal event", err)
			}
			if ev.Type != c.want || storeErr != nil || value != "request-id" {
				t.Fatalf("event %s (%v), store ctx error %v, value %v", ev.Type, ev.Err, storeErr, value)
			}
			if ev.Credential != "cred-m1" {
				t.Fatalf("credential %q", ev.Credential)
			}
			if _, err := s.Next(context.Background()); err != io.EOF {
				t.Fatalf("Next after the terminal event: %v", err)
			}
			wantLeft := c.timeout
			if wantLeft == 0 {
				wantLeft = 10 * time.Second // the documented default
			}
			if deadlineLeft <= wantLeft-time.Second/2 || deadlineLeft > wantLeft {
				t.Fatalf("store deadline %v ahead, want about %v", deadlineLeft, wantLeft)
			}
			if !c.hang {
				if !ev.Stored || ev.Err != nil || calls != 1 {
					t.Fatalf("stored %v err %v, %d calls", ev.Stored, ev.Err, calls)
				}
				return
			}
			if ev.Stored || !errors.Is(ev.Err, daspeak.ErrStore) || !errors.Is(ev.Err, context.DeadlineExceeded) ||
				!strings.Contains(ev.Err.Error(), "context ended meanwhile") || calls != 1 {
				t.Fatalf("stored %v err %v, %d calls", ev.Stored, ev.Err, calls)
			}
			if took < c.timeout || took > c.timeout+2*time.Second {
				t.Fatalf("Next took %v with StoreTimeout %v", took, c.timeout)
			}
		})
	}
}

// TestStoreTimeoutCoversRetries: the retries and their backoff share one
// StoreTimeout; the error keeps the store's last error.
func TestStoreTimeoutCoversRetries(t *testing.T) {
	boom := errors.New("database is down")
	calls := 0
	store := daspeak.StoreFunc(func(ctx context.Context, id, cred, hash string, audio []byte) error {
		calls++
		return boom
	})
	s, _ := daspeak.Register(wavReader(t, fixtures.Utterances("slt")[0]), &fakeEngine{authenticity: 1},
		&daspeak.Config{ModelHash: "m1", Store: store, CallerID: "c", StoreRetries: 10, StoreBackoff: 40 * time.Millisecond, StoreTimeout: 100 * time.Millisecond})
	ev, _ := run(t, s)
	// Attempts at 0 and 40 ms; the wait for the third ends past the
	// timeout (under load the first wait may already).
	if ev.Type != daspeak.EventErrorStore || !errors.Is(ev.Err, boom) || !errors.Is(ev.Err, context.DeadlineExceeded) || calls < 1 || calls > 2 {
		t.Fatalf("event %s (%v), %d calls", ev.Type, ev.Err, calls)
	}
	if strings.Contains(ev.Err.Error(), "context ended meanwhile") {
		t.Fatalf("error %q blames the session's context", ev.Err)
	}
}

// TestResume cancels Next while the engine is busy and checks that a
// later Next carries on without losing anything.
func TestResume(t *testing.T) {
	e := &fakeEngine{authenticity: 1, block: true}
	var storeCalls int
	store := daspeak.StoreFunc(func(ctx context.Context, id, cred, hash string, audio []byte) error {
		storeCalls++
		return nil
	})
	s, _ := daspeak.Register(wavReader(t, fixtures.Utterances("awb")[0]), e, &daspeak.Config{ModelHash: "m1", Store: store, CallerID: "c"})

	// Pull progress until the engine blocks; cancel it.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			e.mu.Lock()
			c := e.calls
			e.mu.Unlock()
			if c > 0 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for {
		ev, err := s.Next(ctx)
		if errors.Is(err, context.Canceled) {
			break
		}
		if err != nil || ev.IsTerminal() {
			t.Fatalf("Next: %v %s", err, ev.Type)
		}
	}
	if storeCalls != 0 {
		t.Fatalf("%d store calls before the engine answered", storeCalls)
	}
	// Resume: the engine answers and the store keeps the credential.
	e.mu.Lock()
	e.block = false
	e.mu.Unlock()
	ev, err := s.Next(context.Background())
	if err != nil || ev.Type != daspeak.EventResultSuccess || !ev.Stored || e.calls != 2 || storeCalls != 1 {
		t.Fatalf("after resume: %v %s stored %v, %d engine calls, %d store calls", err, ev.Type, ev.Stored, e.calls, storeCalls)
	}
}

// frames returns the fixture's audio as 20 ms frames of the given format.
func frames(t *testing.T, name string, enc voicegate.Encoding, channels, speechCh int, parties [2]voicegate.Party) []voicegate.Frame {
	pcm := fixtures.LoadWAV(t, name).Mono(0)
	var out []voicegate.Frame
	for i, seq := 0, uint64(1); i+160 <= len(pcm); i, seq = i+160, seq+1 {
		ch := make([][]int16, 2)
		ch[0], ch[1] = make([]int16, 160), make([]int16, 160)
		copy(ch[speechCh], pcm[i:i+160])
		samples := ch[0]
		if channels == 2 {
			samples = make([]int16, 320)
			codec.Interleave(samples, ch[0], ch[1])
		}
		var payload []byte
		switch enc {
		case voicegate.PCMU:
			payload = make([]byte, len(samples))
			codec.EncodeULaw(payload, samples)
		case voicegate.PCMA:
			payload = make([]byte, len(samples))
			codec.EncodeALaw(payload, samples)
		case voicegate.L16:
			payload = make([]byte, 2*len(samples))
			codec.Int16ToBytes(payload, samples)
		}
		out = append(out, voicegate.Frame{Encoding: enc, SampleRate: 8000, Channels: channels, Parties: parties, Seq: seq,
			Timestamp: time.Duration(i) * time.Second / 8000, Payload: payload})
	}
	return out
}

func TestFormatsAndParties(t *testing.T) {
	name := fixtures.Utterances("armelle")[0]
	cust, agent := voicegate.Customer, voicegate.Agent
	both := [2]voicegate.Party{cust, agent}
	cases := []struct {
		name   string
		frames []voicegate.Frame
		party  voicegate.Party
		want   daspeak.EventType
		enc    voicegate.Encoding
	}{
		{"PCMU mono", frames(t, name, voicegate.PCMU, 1, 0, [2]voicegate.Party{cust}), cust, daspeak.EventResultSuccess, voicegate.PCMU},
		{"PCMA mono", frames(t, name, voicegate.PCMA, 1, 0, [2]voicegate.Party{cust}), cust, daspeak.EventResultSuccess, voicegate.PCMA},
		{"L16 mono unknown party", frames(t, name, voicegate.L16, 1, 0, [2]voicegate.Party{}), cust, daspeak.EventResultSuccess, voicegate.L16},
		{"stereo customer speaks", frames(t, name, voicegate.PCMU, 2, 0, both), cust, daspeak.EventResultSuccess, voicegate.PCMU},
		{"stereo agent speaks, listen to agent", frames(t, name, voicegate.L16, 2, 1, both), agent, daspeak.EventResultSuccess, voicegate.L16},
		{"stereo agent speaks, listen to customer", frames(t, name, voicegate.L16, 2, 1, both), cust, daspeak.EventErrorAudio, 0},
		{"stereo swapped parties", frames(t, name, voicegate.PCMU, 2, 1, [2]voicegate.Party{agent, cust}), cust, daspeak.EventResultSuccess, voicegate.PCMU},
	}
	// Twilio both_tracks: mono frames of both parties interleaved; the
	// customer speaks.
	var tracks []voicegate.Frame
	for _, f := range frames(t, name, voicegate.PCMU, 1, 0, [2]voicegate.Party{cust}) {
		silent := f
		silent.Parties = [2]voicegate.Party{agent}
		silent.Payload = make([]byte, len(f.Payload))
		tracks = append(tracks, f, silent)
	}
	cases = append(cases, struct {
		name   string
		frames []voicegate.Frame
		party  voicegate.Party
		want   daspeak.EventType
		enc    voicegate.Encoding
	}{"both tracks", tracks, cust, daspeak.EventResultSuccess, voicegate.PCMU})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := &fakeEngine{authenticity: 1}
			s, _ := daspeak.Register(voicegate.NewSliceReader(c.frames), e, &daspeak.Config{ModelHash: "m1", Party: c.party})
			ev, _ := run(t, s)
			if ev.Type != c.want {
				t.Fatalf("event %s (%v), net speech %v", ev.Type, ev.Err, ev.NetSpeech)
			}
			if c.want != daspeak.EventResultSuccess {
				return
			}
			w, err := codec.ParseWAV(e.audio)
			if err != nil || w.Format.Encoding != c.enc || w.Format.Channels != 1 {
				t.Fatalf("engine audio %v %+v", err, w.Format)
			}
			if c.name == "both tracks" && s.Stats().OtherParty == 0 {
				t.Fatal("agent frames not skipped")
			}
		})
	}
}

func TestGapsAndBadFrames(t *testing.T) {
	name := fixtures.Utterances("slt")[0]
	all := frames(t, name, voicegate.PCMU, 1, 0, [2]voicegate.Party{voicegate.Customer})
	var fs []voicegate.Frame
	for i, f := range all {
		if i%10 == 5 { // lose every tenth frame
			continue
		}
		fs = append(fs, f)
		if i == 20 {
			fs = append(fs, voicegate.Frame{Encoding: voicegate.L16, SampleRate: 8000, Channels: 1, Payload: []byte{1, 2, 3}}) // odd L16 payload
			fs = append(fs, voicegate.Frame{SampleRate: 8000, Channels: 1, Payload: []byte{1}})                                // no encoding
		}
	}
	for _, fill := range []bool{false, true} {
		e := &fakeEngine{authenticity: 1}
		s, _ := daspeak.Register(voicegate.NewSliceReader(fs), e, &daspeak.Config{ModelHash: "m1", FillGaps: fill})
		ev, _ := run(t, s)
		st := s.Stats()
		if ev.Type != daspeak.EventResultSuccess || st.Invalid != 2 || st.Lost == 0 {
			t.Fatalf("fill %v: %s, stats %+v", fill, ev.Type, st)
		}
		if fill != (st.Filled > 0) || (fill && st.Filled != time.Duration(st.Lost)*20*time.Millisecond) {
			t.Fatalf("fill %v: stats %+v", fill, st)
		}
	}
	// One cap for every reader: a gap up to voicegate.MaxGapFill is filled
	// whole, a longer one not at all.
	for _, tc := range []struct {
		gap, filled time.Duration
	}{
		{1500 * time.Millisecond, 1500 * time.Millisecond},
		{voicegate.MaxGapFill, voicegate.MaxGapFill},
		{voicegate.MaxGapFill + 20*time.Millisecond, 0},
	} {
		gapped := make([]voicegate.Frame, 0, len(all))
		for i, f := range all {
			if i >= 10 {
				f.Timestamp += tc.gap
			}
			gapped = append(gapped, f)
		}
		s, _ := daspeak.Register(voicegate.NewSliceReader(gapped), &fakeEngine{authenticity: 1}, &daspeak.Config{ModelHash: "m1", FillGaps: true})
		run(t, s)
		if st := s.Stats(); st.Filled != tc.filled {
			t.Errorf("gap %v: filled %v, want %v", tc.gap, st.Filled, tc.filled)
		}
	}
	// A rate the engine cannot take, and a rate change.
	bad := all[:3]
	for i := range bad {
		bad[i].SampleRate = 48000
	}
	s, _ := daspeak.Verify(voicegate.NewSliceReader(bad), &fakeEngine{}, "c", nil)
	if ev, _ := run(t, s); ev.Type != daspeak.EventErrorAudio || !strings.Contains(ev.Err.Error(), "48000") {
		t.Fatalf("48 kHz: %s %v", ev.Type, ev.Err)
	}
	mixed := frames(t, name, voicegate.PCMU, 1, 0, [2]voicegate.Party{})[:20]
	mixed[10].SampleRate = 16000
	mixed[10].Payload = mixed[10].Payload[:80]
	s, _ = daspeak.Verify(voicegate.NewSliceReader(mixed), &fakeEngine{}, "c", nil)
	if ev, _ := run(t, s); ev.Type != daspeak.EventErrorAudio || !strings.Contains(ev.Err.Error(), "changed") {
		t.Fatalf("rate change: %s %v", ev.Type, ev.Err)
	}
}

func TestSixteenKHz(t *testing.T) {
	pcm := fixtures.LoadWAV(t, fixtures.Utterances("kal")[0]).Mono(0)
	var fs []voicegate.Frame
	for i := 0; i+160 <= len(pcm); i += 160 {
		up := make([]int16, 320)
		for j := range 160 {
			up[2*j], up[2*j+1] = pcm[i+j], pcm[i+j]
		}
		b := make([]byte, 640)
		codec.Int16ToBytes(b, up)
		fs = append(fs, voicegate.Frame{Encoding: voicegate.L16, SampleRate: 16000, Channels: 1, Payload: b})
	}
	e := &fakeEngine{authenticity: 1}
	s, _ := daspeak.Register(voicegate.NewSliceReader(fs), e, &daspeak.Config{ModelHash: "m1"})
	if ev, _ := run(t, s); ev.Type != daspeak.EventResultSuccess {
		t.Fatalf("%s %v", ev.Type, ev.Err)
	}
	if w, err := codec.ParseWAV(e.audio); err != nil || w.Format.SampleRate != 16000 {
		t.Fatalf("%v %+v", err, w.Format)
	}
}

func TestTotalAudioCap(t *testing.T) {
	// 12 s of speech wanted, 8 s of audio allowed: the session submits at
	// the cap.
	var fs []voicegate.Frame
	for _, u := range fixtures.Utterances("rms") {
		fs = append(fs, frames(t, u, voicegate.PCMU, 1, 0, [2]voicegate.Party{})...)
	}
	e := &fakeEngine{authenticity: 1}
	s, _ := daspeak.Register(voicegate.NewSliceReader(fs), e, &daspeak.Config{ModelHash: "m1", AudioTotalDuration: 12 * time.Second, MaxTotalAudio: 8 * time.Second})
	ev, _ := run(t, s)
	w, err := codec.ParseWAV(e.audio)
	if ev.Type != daspeak.EventResultSuccess || err != nil || w.Duration() != 8*time.Second || ev.NetSpeech >= 12*time.Second {
		t.Fatalf("%s %v, audio %v, net speech %v", ev.Type, err, w.Duration(), ev.NetSpeech)
	}
}

func TestPausesShortened(t *testing.T) {
	// Speech, 5 s of silence, speech: the collected audio keeps 1 s of the
	// pause.
	a := frames(t, fixtures.Utterances("slt")[0], voicegate.PCMU, 1, 0, [2]voicegate.Party{})
	b := frames(t, fixtures.Utterances("slt")[1], voicegate.PCMU, 1, 0, [2]voicegate.Party{})
	silence := voicegate.Frame{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1, Payload: make([]byte, 160)}
	for i := range silence.Payload {
		silence.Payload[i] = codec.ULawSilence
	}
	fs := append([]voicegate.Frame{}, a[:150]...)
	for range 250 {
		fs = append(fs, silence)
	}
	fs = append(fs, b...)
	e := &fakeEngine{authenticity: 1}
	s, _ := daspeak.Register(voicegate.NewSliceReader(fs), e, &daspeak.Config{ModelHash: "m1"})
	ev, _ := run(t, s)
	st := s.Stats()
	if ev.Type != daspeak.EventResultSuccess || st.Dropped < 4*time.Second || ev.AudioDuration+st.Dropped > st.Received {
		t.Fatalf("%s audio %v, stats %+v", ev.Type, ev.AudioDuration, st)
	}
}

func TestEventJSON(t *testing.T) {
	ev := daspeak.Event{Type: daspeak.EventResultSuccess, Operation: daspeak.OperationVerify, NetSpeech: 3520 * time.Millisecond,
		NetSpeechNeeded: 3500 * time.Millisecond, AudioDuration: 5100 * time.Millisecond, ModelHash: "h",
		EngineNetSpeech: 3400 * time.Millisecond, EngineAudioDuration: 5100 * time.Millisecond, Authenticity: 1,
		AuthenticityThreshold: 0.8, Score: 0.91, ScoreThreshold: 0.5, Audio: []byte("RIFF")}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"result-success","operation":"verify","net_speech":3.52,"net_speech_needed":3.5,"audio_duration":5.1,"model_hash":"h",` +
		`"engine_net_speech":3.4,"engine_audio_duration":5.1,"authenticity":1,"authenticity_threshold":0.8,"score":0.91,"score_threshold":0.5}`
	if string(b) != want {
		t.Fatalf("json\n%s\nwant\n%s", b, want)
	}
	p := daspeak.Event{Type: daspeak.EventProgress, Operation: daspeak.OperationRegister, NetSpeech: time.Second, NetSpeechNeeded: 5 * time.Second}
	b, _ = json.Marshal(p)
	if string(b) != `{"type":"progress","operation":"register","net_speech":1,"net_speech_needed":5,"audio_duration":0}` {
		t.Fatalf("progress json %s", b)
	}
	// Audio appears only when the session asks for it.
	for _, in := range []bool{false, true} {
		s, _ := daspeak.Register(wavReader(t, fixtures.Utterances("awb")[0]), offline.New(nil), &daspeak.Config{AudioInJSON: in})
		ev, _ := run(t, s)
		b, _ := json.Marshal(ev)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		_, hasAudio := m["audio"]
		_, hasCred := m["credential"]
		if hasAudio != in || hasCred || ev.Credential == "" || m["stored"] != false {
			t.Fatalf("AudioInJSON %v: keys %v", in, m)
		}
	}
}

func TestCancelledNextKeepsSession(t *testing.T) {
	s, _ := daspeak.Register(wavReader(t, fixtures.Utterances("kal")[0]), offline.New(nil), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Next: %v", err)
	}
	if ev, _ := run(t, s); ev.Type != daspeak.EventResultSuccess {
		t.Fatalf("after cancel: %s %v", ev.Type, ev.Err)
	}
}

// TestNetSpeechTarget checks when the session calls the engine: once its
// net speech reaches max(AudioTotalDuration, 3 s + NetSpeechMargin), and
// not much later.
func TestNetSpeechTarget(t *testing.T) {
	var fs []voicegate.Frame
	for _, u := range fixtures.Utterances("rms") {
		fs = append(fs, frames(t, u, voicegate.PCMU, 1, 0, [2]voicegate.Party{})...)
	}
	for _, c := range []struct {
		total, margin, want time.Duration
	}{
		{3 * time.Second, 0, 3500 * time.Millisecond},
		{3 * time.Second, time.Second, 4 * time.Second},
		{4 * time.Second, 2 * time.Second, 5 * time.Second},
		{8 * time.Second, 0, 8 * time.Second},
		{8 * time.Second, 2 * time.Second, 8 * time.Second},
	} {
		t.Run(fmt.Sprintf("%v+%v", c.total, c.margin), func(t *testing.T) {
			e := &fakeEngine{authenticity: 1}
			s, err := daspeak.Register(voicegate.NewSliceReader(fs), e, &daspeak.Config{ModelHash: "m1", AudioTotalDuration: c.total, NetSpeechMargin: c.margin})
			if err != nil {
				t.Fatal(err)
			}
			ev, progress := run(t, s)
			if ev.Type != daspeak.EventResultSuccess || e.calls != 1 {
				t.Fatalf("%s (%v), %d engine calls", ev.Type, ev.Err, e.calls)
			}
			if ev.NetSpeechNeeded != c.want || ev.NetSpeech < c.want || ev.NetSpeech > c.want+300*time.Millisecond {
				t.Fatalf("net speech %v, needed %v, want the call at %v", ev.NetSpeech, ev.NetSpeechNeeded, c.want)
			}
			for _, p := range progress {
				if p.NetSpeechNeeded != c.want || p.NetSpeech >= c.want {
					t.Fatalf("progress %v of %v, want below %v", p.NetSpeech, p.NetSpeechNeeded, c.want)
				}
			}
		})
	}
}

func TestEventTypeIsTerminal(t *testing.T) {
	terminal := []daspeak.EventType{daspeak.EventResultSuccess, daspeak.EventResultFailScore, daspeak.EventResultFailSpoof,
		daspeak.EventErrorConsumerNotReady, daspeak.EventErrorParameters, daspeak.EventErrorAudio, daspeak.EventErrorDasPeak,
		daspeak.EventErrorStore}
	for _, typ := range terminal {
		if !typ.IsTerminal() {
			t.Errorf("%s is not terminal", typ)
		}
	}
	if string(daspeak.EventErrorStore) != "error-store" {
		t.Errorf("EventErrorStore is %q", daspeak.EventErrorStore)
	}
	for _, typ := range []daspeak.EventType{daspeak.EventProgress, "", "result-maybe", "error-not-registered"} {
		if typ.IsTerminal() {
			t.Errorf("%q is terminal", typ)
		}
	}
}

// TestAntiSpoofingNotPerformed: an engine that reports
// AuthenticityNotPerformed gets no authenticity threshold applied; the
// result rests on the score (verify) and the event says anti-spoofing was
// not performed.
func TestAntiSpoofingNotPerformed(t *testing.T) {
	const np = daspeak.AuthenticityNotPerformed
	cases := []struct {
		name         string
		op           daspeak.Operation
		authenticity float64
		score        float64
		cfg          daspeak.Config
		want         daspeak.EventType
		anti         daspeak.AntiSpoofing
		tail         string // JSON after "engine_audio_duration":6.1
	}{
		{"register", daspeak.OperationRegister, np, 0, daspeak.Config{}, daspeak.EventResultSuccess, daspeak.AntiSpoofingNotPerformed,
			`,"anti_spoofing":"not-performed","stored":false}`},
		{"register strict threshold", daspeak.OperationRegister, np, 0, daspeak.Config{AuthenticityThreshold: 1}, daspeak.EventResultSuccess, daspeak.AntiSpoofingNotPerformed,
			`,"anti_spoofing":"not-performed","stored":false}`},
		{"verify good score", daspeak.OperationVerify, np, 0.7, daspeak.Config{}, daspeak.EventResultSuccess, daspeak.AntiSpoofingNotPerformed,
			`,"anti_spoofing":"not-performed","score":0.7,"score_threshold":0.5}`},
		{"verify strict threshold", daspeak.OperationVerify, np, 0.7, daspeak.Config{AuthenticityThreshold: 1}, daspeak.EventResultSuccess, daspeak.AntiSpoofingNotPerformed,
			`,"anti_spoofing":"not-performed","score":0.7,"score_threshold":0.5}`},
		{"verify low score", daspeak.OperationVerify, np, 0.3, daspeak.Config{}, daspeak.EventResultFailScore, daspeak.AntiSpoofingNotPerformed,
			`,"anti_spoofing":"not-performed","score":0.3,"score_threshold":0.5}`},
		{"performed, verify", daspeak.OperationVerify, 0.9, 0.7, daspeak.Config{}, daspeak.EventResultSuccess, daspeak.AntiSpoofingPerformed,
			`,"authenticity":0.9,"authenticity_threshold":0.8,"score":0.7,"score_threshold":0.5}`},
		{"performed, spoof", daspeak.OperationVerify, 0, 0.7, daspeak.Config{}, daspeak.EventResultFailSpoof, daspeak.AntiSpoofingPerformed,
			`,"authenticity":0,"authenticity_threshold":0.8,"score_threshold":0.5}`},
		{"performed, register", daspeak.OperationRegister, 1, 0, daspeak.Config{}, daspeak.EventResultSuccess, daspeak.AntiSpoofingPerformed,
			`,"authenticity":1,"authenticity_threshold":0.8,"stored":false}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := &fakeEngine{authenticity: c.authenticity, score: c.score}
			cfg := c.cfg
			cfg.ModelHash = "m1"
			var s *daspeak.Session
			if c.op == daspeak.OperationRegister {
				s, _ = daspeak.Register(wavReader(t, fixtures.Utterances("kal")[0]), e, &cfg)
			} else {
				s, _ = daspeak.Verify(wavReader(t, fixtures.Utterances("kal")[0]), e, "cred", &cfg)
			}
			ev, _ := run(t, s)
			if ev.Type != c.want || ev.AntiSpoofing != c.anti || ev.Authenticity != c.authenticity {
				t.Fatalf("event %s anti-spoofing %q authenticity %v", ev.Type, ev.AntiSpoofing, ev.Authenticity)
			}
			wantThreshold := 0.0
			if c.anti == daspeak.AntiSpoofingPerformed {
				wantThreshold = 0.8
			}
			if ev.AuthenticityThreshold != wantThreshold {
				t.Fatalf("authenticity threshold %v, want %v", ev.AuthenticityThreshold, wantThreshold)
			}
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf(`{"type":%q,"operation":%q,"net_speech":%s,"net_speech_needed":5,"audio_duration":%s,"model_hash":"m1",`+
				`"engine_net_speech":4.2,"engine_audio_duration":6.1`, c.want, c.op, jsonSeconds(ev.NetSpeech), jsonSeconds(ev.AudioDuration)) + c.tail
			if string(b) != want {
				t.Fatalf("json\n%s\nwant\n%s", b, want)
			}
		})
	}
}

// TestInvalidEngineValues: an authenticity or score outside its range, or
// an empty credential, is not judged; the session ends with error-das-Peak
// (ErrInvalidResult).
func TestInvalidEngineValues(t *testing.T) {
	for _, c := range []struct {
		name                string
		op                  daspeak.Operation
		authenticity, score float64
		noCred              bool
	}{
		{"register empty credential", daspeak.OperationRegister, 1, 0, true},
		{"register NaN authenticity", daspeak.OperationRegister, math.NaN(), 0, false},
		{"register authenticity over 1", daspeak.OperationRegister, 1.5, 0, false},
		{"register negative authenticity", daspeak.OperationRegister, -0.5, 0, false},
		{"register infinite authenticity", daspeak.OperationRegister, math.Inf(1), 0, false},
		{"verify NaN authenticity", daspeak.OperationVerify, math.NaN(), 0.9, false},
		{"verify NaN score", daspeak.OperationVerify, 1, math.NaN(), false},
		{"verify NaN score, no anti-spoofing", daspeak.OperationVerify, daspeak.AuthenticityNotPerformed, math.NaN(), false},
		{"verify score over 1", daspeak.OperationVerify, 1, 1.01, false},
		{"verify negative score", daspeak.OperationVerify, 1, -0.1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := &fakeEngine{authenticity: c.authenticity, score: c.score, noCred: c.noCred}
			var s *daspeak.Session
			if c.op == daspeak.OperationRegister {
				s, _ = daspeak.Register(wavReader(t, fixtures.Utterances("kal")[0]), e, &daspeak.Config{ModelHash: "m1"})
			} else {
				s, _ = daspeak.Verify(wavReader(t, fixtures.Utterances("kal")[0]), e, "cred", &daspeak.Config{ModelHash: "m1"})
			}
			ev, _ := run(t, s)
			if ev.Type != daspeak.EventErrorDasPeak || !errors.Is(ev.Err, daspeak.ErrInvalidResult) || ev.Credential != "" || e.calls != 1 {
				t.Fatalf("event %s (%v) credential %q, %d engine calls", ev.Type, ev.Err, ev.Credential, e.calls)
			}
			if _, err := json.Marshal(ev); err != nil {
				t.Fatalf("json: %v", err)
			}
		})
	}
}

// TestCredentialJSON: the credential reaches an event's JSON only when the
// session asks for it with Config.CredentialInJSON, on a success and on
// error-store alike.
func TestCredentialJSON(t *testing.T) {
	failing := daspeak.StoreFunc(func(context.Context, string, string, string, []byte) error { return errors.New("down") })
	for _, c := range []struct {
		name  string
		cfg   daspeak.Config
		want  daspeak.EventType
		cred  bool
		audio bool
	}{
		{"success, default", daspeak.Config{}, daspeak.EventResultSuccess, false, false},
		{"success, CredentialInJSON", daspeak.Config{CredentialInJSON: true}, daspeak.EventResultSuccess, true, false},
		{"success, both", daspeak.Config{CredentialInJSON: true, AudioInJSON: true}, daspeak.EventResultSuccess, true, true},
		{"error-store, default", daspeak.Config{Store: failing, CallerID: "c", StoreRetries: -1}, daspeak.EventErrorStore, false, false},
		{"error-store, CredentialInJSON", daspeak.Config{Store: failing, CallerID: "c", StoreRetries: -1, CredentialInJSON: true}, daspeak.EventErrorStore, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.ModelHash = "m1"
			s, _ := daspeak.Register(wavReader(t, fixtures.Utterances("slt")[0]), &fakeEngine{authenticity: 1}, &cfg)
			ev, _ := run(t, s)
			if ev.Type != c.want || ev.Credential != "cred-m1" || len(ev.Audio) == 0 {
				t.Fatalf("event %s credential %q audio %d bytes", ev.Type, ev.Credential, len(ev.Audio))
			}
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(b), "cred-m1"); got != c.cred {
				t.Fatalf("credential in JSON %v, want %v: %s", got, c.cred, b)
			}
			if got := strings.Contains(string(b), `"audio":`); got != c.audio {
				t.Fatalf("audio in JSON %v, want %v", got, c.audio)
			}
			var tail string
			switch {
			case c.want == daspeak.EventErrorStore && c.cred:
				tail = `,"credential":"cred-m1","error":` + jsonString(ev.Err.Error()) + `}`
			case c.want == daspeak.EventErrorStore:
				tail = `,"error":` + jsonString(ev.Err.Error()) + `}`
			case c.cred && !c.audio:
				tail = `,"credential":"cred-m1","stored":false}`
			}
			if tail != "" {
				want := fmt.Sprintf(`{"type":%q,"operation":"register","net_speech":%s,"net_speech_needed":5,"audio_duration":%s,"model_hash":"m1",`+
					`"engine_net_speech":4.2,"engine_audio_duration":6.1,"authenticity":1,"authenticity_threshold":0.8`,
					c.want, jsonSeconds(ev.NetSpeech), jsonSeconds(ev.AudioDuration)) + tail
				if string(b) != want {
					t.Fatalf("json\n%s\nwant\n%s", b, want)
				}
			}
		})
	}
	// A hand-built event has no session asking for the credential.
	b, _ := json.Marshal(daspeak.Event{Type: daspeak.EventResultSuccess, Operation: daspeak.OperationRegister, Credential: "secret", Audio: []byte("RIFF"), Authenticity: 1, AuthenticityThreshold: 0.8, Stored: true})
	want := `{"type":"result-success","operation":"register","net_speech":0,"net_speech_needed":0,"audio_duration":0,` +
		`"engine_net_speech":0,"engine_audio_duration":0,"authenticity":1,"authenticity_threshold":0.8,"stored":true}`
	if string(b) != want {
		t.Fatalf("json\n%s\nwant\n%s", b, want)
	}
}

// noAntiSpoofing is the emulator's FakeEngine reporting
// AuthenticityNotPerformed, as an engine without anti-spoofing does.
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

// TestAntiSpoofingNotPerformedOverREST: behind the emulator, an engine
// without anti-spoofing reaches the REST client as
// AuthenticityNotPerformed, and sessions over the client say anti-spoofing
// was not performed.
func TestAntiSpoofingNotPerformedOverREST(t *testing.T) {
	srv := daspeaktest.NewServer(noAntiSpoofing{}, nil)
	t.Cleanup(srv.Close)
	c := restClient(t, srv, nil)
	ctx := context.Background()
	audio := restVoice(t, 300)

	cr, err := c.GenerateCredential(ctx, daspeaktest.FakeModel, audio, nil)
	if err != nil || cr.Authenticity != daspeak.AuthenticityNotPerformed {
		t.Fatalf("GenerateCredential: %v, authenticity %v", err, cr)
	}
	cmp, err := c.CompareCredentialToAudio(ctx, cr.Credential, audio, nil)
	if err != nil || cmp.Authenticity != daspeak.AuthenticityNotPerformed || cmp.Score != daspeaktest.FakeMatchScore {
		t.Fatalf("CompareCredentialToAudio: %v %+v", err, cmp)
	}

	reader := func() voicegate.FrameReader { return wavReader(t, fixtures.Utterances("slt")[0]) }
	s, _ := daspeak.Register(reader(), c, &daspeak.Config{AuthenticityThreshold: 1})
	reg, _ := run(t, s)
	if reg.Type != daspeak.EventResultSuccess || reg.AntiSpoofing != daspeak.AntiSpoofingNotPerformed || reg.Authenticity != daspeak.AuthenticityNotPerformed {
		t.Fatalf("register %s (%v) anti-spoofing %q authenticity %v", reg.Type, reg.Err, reg.AntiSpoofing, reg.Authenticity)
	}
	s, _ = daspeak.Verify(reader(), c, reg.Credential, &daspeak.Config{AuthenticityThreshold: 1})
	ver, _ := run(t, s)
	if ver.Type != daspeak.EventResultSuccess || ver.AntiSpoofing != daspeak.AntiSpoofingNotPerformed || ver.Score != daspeaktest.FakeMatchScore {
		t.Fatalf("verify %s (%v) anti-spoofing %q score %v", ver.Type, ver.Err, ver.AntiSpoofing, ver.Score)
	}
	b, _ := json.Marshal(ver)
	if !strings.Contains(string(b), `"anti_spoofing":"not-performed","score":0.99,"score_threshold":0.5}`) || strings.Contains(string(b), "authenticity") {
		t.Fatalf("json %s", b)
	}
}

// TestEventLogValue: an Event logged with slog, by any handler, never
// shows the credential or the audio, even when the session puts them in
// its JSON.
func TestEventLogValue(t *testing.T) {
	s, _ := daspeak.Register(wavReader(t, fixtures.Utterances("slt")[0]), &fakeEngine{authenticity: daspeak.AuthenticityNotPerformed},
		&daspeak.Config{ModelHash: "m1", CredentialInJSON: true, AudioInJSON: true})
	ev, _ := run(t, s)
	if ev.Credential != "cred-m1" {
		t.Fatalf("credential %q", ev.Credential)
	}
	for _, h := range []func(io.Writer) slog.Handler{
		func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) },
		func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) },
	} {
		var b strings.Builder
		slog.New(h(&b)).Info("session ended", "event", ev)
		out := b.String()
		if strings.Contains(out, "cred-m1") || strings.Contains(out, "RIFF") || strings.Contains(out, "UklGR") {
			t.Fatalf("log line holds biometric data: %s", out)
		}
		for _, want := range []string{"result-success", "anti_spoofing", "not-performed", "stored"} {
			if !strings.Contains(out, want) {
				t.Fatalf("log line without %q: %s", want, out)
			}
		}
	}
}

// holdEngine holds the audio of every odd call until the next call has
// been made, and checks that the audio did not change meanwhile and that
// the two calls' audio do not share storage.
type holdEngine struct {
	mu      sync.Mutex
	calls   int
	held    []byte
	release chan struct{}
	errs    []string
}

// ReleasesAudio makes holdEngine a daspeak.AudioReleaser, so its verify
// sessions use pooled WAV buffers: it reads the audio only during a call.
func (e *holdEngine) ReleasesAudio() bool { return true }

func (e *holdEngine) fail(format string, args ...any) {
	e.mu.Lock()
	e.errs = append(e.errs, fmt.Sprintf(format, args...))
	e.mu.Unlock()
}

func (e *holdEngine) GenerateCredential(ctx context.Context, hash string, audio []byte, opts *daspeak.AudioOptions) (*daspeak.CredentialResult, error) {
	return &daspeak.CredentialResult{Model: daspeak.Model{Hash: hash}, Credential: "cred", Authenticity: 1, NetSpeechDuration: 4}, nil
}

func (e *holdEngine) CompareCredentialToAudio(ctx context.Context, credential string, audio []byte, opts *daspeak.AudioOptions) (*daspeak.CompareResult, error) {
	e.mu.Lock()
	e.calls++
	first := e.calls%2 == 1
	if first {
		e.held = audio
		e.release = make(chan struct{})
	}
	held, release, n := e.held, e.release, e.calls
	e.mu.Unlock()
	if first {
		snap := bytes.Clone(audio)
		<-release // the next call has its WAV file by now
		if !bytes.Equal(audio, snap) {
			e.fail("call %d: its audio changed during the next call", n)
		}
	} else {
		if sameStorage(held, audio) {
			e.fail("two calls in progress share audio storage")
		}
		close(release)
	}
	return &daspeak.CompareResult{Model: daspeak.Model{Hash: "m1"}, Score: 0.9, Authenticity: 1, NetSpeechDuration: 4}, nil
}

// sameStorage reports whether a and b start at the same byte, as two
// WAV files in one reused buffer do.
func sameStorage(a, b []byte) bool {
	return cap(a) > 0 && cap(b) > 0 && &a[:1][0] == &b[:1][0]
}

// TestSessionWAVNotReusedWhileHeld: verify sessions reuse WAV buffers from
// call to call, but never one an engine call in progress still holds, and
// a register result's audio is never reused.
func TestSessionWAVNotReusedWhileHeld(t *testing.T) {
	e := &holdEngine{}
	lim := daspeak.NewLimiter(2)
	utt := fixtures.Utterances("kal")
	a := frames(t, utt[0], voicegate.PCMU, 1, 0, [2]voicegate.Party{})
	b := frames(t, utt[1], voicegate.PCMU, 1, 0, [2]voicegate.Party{})
	// A longer register file than the verify ones: a reused buffer would
	// hold them.
	var long []voicegate.Frame
	for _, u := range fixtures.Utterances("rms") {
		long = append(long, frames(t, u, voicegate.PCMU, 1, 0, [2]voicegate.Party{})...)
	}
	rs, _ := daspeak.Register(voicegate.NewSliceReader(long), e, &daspeak.Config{ModelHash: "m1", Limiter: lim, AudioTotalDuration: 8 * time.Second})
	reg, _ := run(t, rs)
	if reg.Type != daspeak.EventResultSuccess || len(reg.Audio) == 0 {
		t.Fatalf("register: %s %v, %d bytes of audio", reg.Type, reg.Err, len(reg.Audio))
	}
	regAudio := bytes.Clone(reg.Audio)
	for round := range 20 {
		var wg sync.WaitGroup
		for i, fs := range [][]voicegate.Frame{a, b} {
			if round%2 == 1 {
				fs = [][]voicegate.Frame{b, a}[i]
			}
			s, _ := daspeak.Verify(voicegate.NewSliceReader(fs), e, "cred", &daspeak.Config{ModelHash: "m1", Limiter: lim})
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					ev, err := s.Next(context.Background())
					if err != nil {
						e.fail("verify: %v", err)
						return
					}
					if ev.IsTerminal() {
						if ev.Type != daspeak.EventResultSuccess {
							e.fail("verify: %s %v", ev.Type, ev.Err)
						}
						return
					}
				}
			}()
			if i == 0 {
				// The second session calls the engine while the first
				// holds its audio.
				for {
					e.mu.Lock()
					n := e.calls
					e.mu.Unlock()
					if n == 2*round+1 {
						break
					}
					time.Sleep(time.Millisecond)
				}
			}
		}
		wg.Wait()
	}
	if len(e.errs) > 0 {
		t.Fatal(strings.Join(e.errs, "; "))
	}
	if !bytes.Equal(reg.Audio, regAudio) {
		t.Fatal("a register result's audio changed in later sessions")
	}
}

// lateTransport answers no request: RoundTrip returns when the request's
// context ends, handing the request body, not yet read, to the test, as
// an HTTP transport may still be writing it after Do returned.
type lateTransport struct {
	sent chan lateBody
}

type lateBody struct {
	body io.ReadCloser
	want []byte // the body as it was when the request was sent
}

func (lt *lateTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rc, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	want, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	lt.sent <- lateBody{body: req.Body, want: want}
	<-req.Context().Done()
	return nil, req.Context().Err()
}

// TestSessionWAVClientCancelled: a verify session whose REST call is
// cancelled puts its WAV buffer back while the HTTP transport may still
// read the request body; later sessions reuse the buffer, and the body
// must not change.
func TestSessionWAVClientCancelled(t *testing.T) {
	lt := &lateTransport{sent: make(chan lateBody, 1)}
	c, err := daspeak.NewClient(&daspeak.ClientOptions{BaseURL: "http://daspeak.invalid", HTTPClient: &http.Client{Transport: lt}, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	utt := fixtures.Utterances("kal")
	a := frames(t, utt[0], voicegate.PCMU, 1, 0, [2]voicegate.Party{})
	s, _ := daspeak.Verify(voicegate.NewSliceReader(a), c, "cred", &daspeak.Config{ModelHash: "m1"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := s.Next(ctx); err != nil {
				done <- err
				return
			}
		}
	}()
	sent := <-lt.sent
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Next: %v, want context.Canceled", err)
	}
	// Later verify sessions, with other audio, reuse WAV buffers.
	for i := range 4 {
		e := &fakeEngine{authenticity: 1, score: 0.9}
		fs := frames(t, utt[1+i%2], voicegate.PCMU, 1, 0, [2]voicegate.Party{})
		v, _ := daspeak.Verify(voicegate.NewSliceReader(fs), e, "cred", &daspeak.Config{ModelHash: "m1"})
		if ev, _ := run(t, v); ev.Type != daspeak.EventResultSuccess {
			t.Fatalf("verify: %s %v", ev.Type, ev.Err)
		}
	}
	got, err := io.ReadAll(sent.body)
	sent.body.Close()
	if err != nil || !bytes.Equal(got, sent.want) {
		t.Fatalf("the cancelled request's body changed after Do returned (%v)", err)
	}
	if !bytes.Contains(got, []byte("RIFF")) {
		t.Fatal("the request body holds no WAV file")
	}
}

// TestConfigNetSpeechNeeded: Config.NetSpeechNeeded is what a session with
// the same configuration puts in its events, defaults included, and 0 for
// a configuration no session starts with.
func TestConfigNetSpeechNeeded(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  *daspeak.Config
		want time.Duration
	}{
		{"nil", nil, 5 * time.Second},
		{"defaults", &daspeak.Config{}, 5 * time.Second},
		{"longer", &daspeak.Config{AudioTotalDuration: 7 * time.Second}, 7 * time.Second},
		{"short, with the margin", &daspeak.Config{AudioTotalDuration: 2 * time.Second, NetSpeechMargin: time.Second}, 4 * time.Second},
		{"store without caller id", &daspeak.Config{AudioTotalDuration: 6 * time.Second, Store: daspeak.StoreFunc(func(context.Context, string, string, string, []byte) error { return nil })}, 6 * time.Second},
		{"invalid", &daspeak.Config{AudioTotalDuration: time.Minute}, 0},
	} {
		if got := c.cfg.NetSpeechNeeded(); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
		if c.want == 0 || c.cfg != nil && c.cfg.Store != nil {
			continue
		}
		e := &fakeEngine{authenticity: 1, score: 1}
		var cfg daspeak.Config
		if c.cfg != nil {
			cfg = *c.cfg
		}
		cfg.ModelHash = "m1"
		s, err := daspeak.Register(clip(t, fixtures.Utterances("awb")[0], 1500*time.Millisecond), e, &cfg)
		if err != nil {
			t.Fatal(err)
		}
		if ev, _ := run(t, s); ev.NetSpeechNeeded != c.want {
			t.Errorf("%s: the session's %s event needs %v, want %v", c.name, ev.Type, ev.NetSpeechNeeded, c.want)
		}
	}
}

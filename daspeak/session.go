package daspeak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/internal/streamcore"
	"github.com/voicegate/voicegate/internal/vad"
)

// Limits of das-Peak that sessions respect.
const (
	// MinNetSpeech is the least net speech das-Peak accepts.
	MinNetSpeech = 3 * time.Second
	// MaxAudioDuration is the length das-Peak's audio must stay under.
	MaxAudioDuration = 30 * time.Second
)

// Config configures a register or verify session, as the das-Peak Streaming
// agent integration does. The zero value of every field selects the
// documented default; nil means all defaults.
type Config struct {
	// AudioTotalDuration is the net speech to collect before calling the
	// engine (das-Peak Streaming's audio_total_duration). Default 5 s; it
	// must be at most 30 s. The session waits for at least MinNetSpeech +
	// NetSpeechMargin whatever this says.
	AudioTotalDuration time.Duration
	// NetSpeechMargin is added to MinNetSpeech to give the least net speech
	// the session collects, because the engine's speech detector may count
	// less than the session's. Default 500 ms; negative is invalid.
	NetSpeechMargin time.Duration
	// AuthenticityThreshold in [0, 1]: an authenticity below it gives
	// result-fail-spoof. Default 0.8, the value of das-Peak Streaming's
	// example. Zero selects the default; use a tiny positive value to
	// accept everything. It is not applied when the engine reports
	// AuthenticityNotPerformed: the event then says anti-spoofing was not
	// performed (Event.AntiSpoofing) and the result rests on the score.
	AuthenticityThreshold float64
	// ScoreThreshold in [0, 1]: a verify score below it gives
	// result-fail-score. Default 0.5. Zero selects the default.
	ScoreThreshold float64
	// ModelHash is the engine model. "" asks the engine for its newest
	// model when it implements ModelLister; otherwise the session ends
	// with error-parameters.
	ModelHash string
	// Calibration is passed to the engine; "" means the engine's default
	// ("telephone-channel").
	Calibration string
	// Party is whose voice the session listens to. Default
	// voicegate.Customer. Mono frames of another party are skipped; the
	// party's channel is taken from stereo frames.
	Party voicegate.Party
	// NoAudioTimeout bounds the wait for the first frame of the party,
	// counted from the first call to Next: error-consumer-not-ready when
	// it passes. Default 10 s.
	NoAudioTimeout time.Duration
	// ProgressInterval is the net speech between progress events. Default
	// 500 ms; negative disables progress events.
	ProgressInterval time.Duration
	// MaxTotalAudio caps the collected audio sent to the engine, which must
	// stay under 30 s. Pauses longer than MaxPause are shortened before
	// they count. Default 29 s; it must be in (MinNetSpeech, 30 s).
	MaxTotalAudio time.Duration
	// MaxPause is the longest stretch of non-speech kept in the collected
	// audio; longer pauses keep only their last MaxPause. Default 1 s.
	MaxPause time.Duration
	// FillGaps inserts silence for media time lost between frames (by
	// frame timestamps), up to voicegate.MaxGapFill (2 s) per gap, as the
	// protocol readers do; a longer gap is not filled. Lost frames are
	// counted either way.
	FillGaps bool

	// Limiter, when set, bounds the engine calls in progress across the
	// sessions (and Clients) that share it: the session queues for a slot,
	// in arrival order, before it calls the engine and gives it back as
	// the engine answers (before storing). The wait is reported in
	// SessionStats.EngineWait and in the result's Event.EngineWait. When
	// ctx ends while queued, Next returns ctx's error and the session can
	// be resumed. Default nil: no bound.
	Limiter *Limiter

	// Store, for register sessions, keeps the new credential under
	// CallerID. Optional. With a Store, result-success means the store
	// kept the credential; when it did not, the session ends with
	// error-store, which carries the credential.
	Store CredentialStore
	// CallerID is the id the credential is stored under; required with
	// Store.
	CallerID string
	// StoreRetries is how many times a failed Store call is retried.
	// Default 3; negative means none.
	StoreRetries int
	// StoreBackoff is the wait before the first retry; it doubles after
	// each. Default 200 ms.
	StoreBackoff time.Duration
	// StoreTimeout bounds the whole store step: every attempt and every
	// backoff. The step runs under context.WithoutCancel of Next's ctx
	// with this timeout, so a shutdown that cancels Next's ctx does not
	// cut off the storing of a credential the engine already made; Next
	// returns when the store step ends, at most StoreTimeout after the
	// engine answered. Default 10 s; negative is invalid.
	StoreTimeout time.Duration

	// CredentialInJSON makes Event.MarshalJSON include the credential of a
	// register result-success or error-store ("credential"). Leave it off
	// for events shown in a user interface or written to a log; set it
	// only where the JSON goes to a trusted backend that keeps the
	// credential.
	CredentialInJSON bool
	// AudioInJSON makes Event.MarshalJSON include the collected audio
	// (base64, "audio") of a register result-success or error-store. The
	// same caution applies as for CredentialInJSON.
	AudioInJSON bool
}

// defaults returns a copy of c with defaults filled in, or an error naming
// the first invalid field.
func (c *Config) defaults(op Operation) (Config, error) {
	var o Config
	if c != nil {
		o = *c
	}
	bad := func(format string, args ...any) (Config, error) {
		return o, fmt.Errorf("%w: "+format, append([]any{ErrParameters}, args...)...)
	}
	if o.AudioTotalDuration == 0 {
		o.AudioTotalDuration = 5 * time.Second
	}
	if o.AudioTotalDuration < 0 || o.AudioTotalDuration > MaxAudioDuration {
		return bad("AudioTotalDuration %v not in (0, 30s]", o.AudioTotalDuration)
	}
	if o.NetSpeechMargin == 0 {
		o.NetSpeechMargin = 500 * time.Millisecond
	}
	if o.NetSpeechMargin < 0 {
		return bad("NetSpeechMargin %v is negative", o.NetSpeechMargin)
	}
	if o.AuthenticityThreshold == 0 {
		o.AuthenticityThreshold = 0.8
	}
	if !(o.AuthenticityThreshold >= 0 && o.AuthenticityThreshold <= 1) {
		return bad("AuthenticityThreshold %v not in [0, 1]", o.AuthenticityThreshold)
	}
	if o.ScoreThreshold == 0 {
		o.ScoreThreshold = 0.5
	}
	if !(o.ScoreThreshold >= 0 && o.ScoreThreshold <= 1) {
		return bad("ScoreThreshold %v not in [0, 1]", o.ScoreThreshold)
	}
	switch o.Party {
	case voicegate.PartyUnknown:
		o.Party = voicegate.Customer
	case voicegate.Customer, voicegate.Agent:
	default:
		return bad("Party %v", o.Party)
	}
	if o.NoAudioTimeout == 0 {
		o.NoAudioTimeout = 10 * time.Second
	}
	if o.NoAudioTimeout < 0 {
		return bad("NoAudioTimeout %v is negative", o.NoAudioTimeout)
	}
	if o.ProgressInterval == 0 {
		o.ProgressInterval = 500 * time.Millisecond
	}
	if o.MaxTotalAudio == 0 {
		o.MaxTotalAudio = 29 * time.Second
	}
	if o.MaxTotalAudio <= MinNetSpeech || o.MaxTotalAudio >= MaxAudioDuration {
		return bad("MaxTotalAudio %v not in (3s, 30s)", o.MaxTotalAudio)
	}
	if o.MaxPause == 0 {
		o.MaxPause = time.Second
	}
	if o.MaxPause < 0 {
		return bad("MaxPause %v is negative", o.MaxPause)
	}
	if o.StoreRetries == 0 {
		o.StoreRetries = 3
	}
	o.StoreRetries = max(o.StoreRetries, 0)
	if o.StoreBackoff == 0 {
		o.StoreBackoff = 200 * time.Millisecond
	}
	if o.StoreBackoff < 0 {
		return bad("StoreBackoff %v is negative", o.StoreBackoff)
	}
	if o.StoreTimeout == 0 {
		o.StoreTimeout = 10 * time.Second
	}
	if o.StoreTimeout < 0 {
		return bad("StoreTimeout %v is negative", o.StoreTimeout)
	}
	if op == OperationRegister && o.Store != nil && o.CallerID == "" {
		return bad("CallerID is required with Store")
	}
	if op == OperationVerify && o.Store != nil {
		return bad("Store is for register sessions")
	}
	return o, nil
}

// NetSpeechNeeded returns the net speech a session with c collects before
// its biometric call, the NetSpeechNeeded of its events, with c's zero
// fields taken as their defaults (a nil c is all defaults). It is 0 when c
// is invalid: no session starts with it. An application that ends an
// operation before any session ran (its audio could not be read) gives its
// own event this value, as the session's events would have had.
func (c *Config) NetSpeechNeeded() time.Duration {
	var o Config
	if c != nil {
		o = *c
	}
	o.Store = nil // Store and CallerID do not change what is needed
	d, err := o.defaults(OperationVerify)
	if err != nil {
		return 0
	}
	return d.needed()
}

// needed returns the net speech the session collects.
func (c *Config) needed() time.Duration {
	return max(c.AudioTotalDuration, MinNetSpeech+c.NetSpeechMargin)
}

// SessionStats are counters of a session.
type SessionStats struct {
	// Frames is the number of frames read from the source.
	Frames int64
	// OtherParty counts mono frames of another party, skipped.
	OtherParty int64
	// Invalid counts frames whose format is inconsistent, skipped.
	Invalid int64
	// Lost counts frames missing according to sequence numbers.
	Lost int64
	// Filled is the silence inserted for gaps (Config.FillGaps).
	Filled time.Duration
	// Received is the media time of the party's audio processed.
	Received time.Duration
	// Dropped is the pause audio left out of the collected audio
	// (Config.MaxPause).
	Dropped time.Duration
	// StoreAttempts counts calls to Config.Store.
	StoreAttempts int
	// EngineWait is the time the session queued for a slot of
	// Config.Limiter (or of its Client's ClientOptions.Limiter) before
	// calling the engine.
	EngineWait time.Duration
}

type sessionState uint8

const (
	stateStart   sessionState = iota // parameters not yet resolved
	stateCollect                     // reading audio
	stateSubmit                      // calling the engine (and the store)
	stateDone                        // terminal event returned
)

// Session registers or verifies one caller's voice from a stream of frames.
// Create it with [Register] or [Verify] and call [Session.Next] until it
// returns a terminal event; after that Next returns io.EOF.
//
// Next does all the work in the caller's goroutine: it reads frames from
// the source, decodes them, runs the voice activity detector, calls the
// engine and the store. A Session starts no goroutine and needs no Close.
// Next must not be called concurrently; Stats may be called at any time.
//
// When the ctx given to Next ends, Next returns ctx's error and the session
// stays where it was: a later Next resumes (reading, or calling the engine
// again). Storing is the exception: once the engine has made a register
// credential, Next hands it to Config.Store under a context that ctx
// cannot cancel, bounded by Config.StoreTimeout, and returns the terminal
// event (result-success or error-store) even when ctx ended meanwhile, so a
// shutdown does not drop the credential. The session never closes its
// source.
type Session struct {
	op     Operation
	src    voicegate.FrameReader
	engine Engine
	cred   string // verify
	cfg    Config
	cfgErr error
	need   time.Duration
	start  time.Time

	state sessionState
	hash  string

	det      *vad.Energy
	rate     int
	enc      voicegate.Encoding
	got      bool // a frame of the party arrived
	lastSeq  uint64
	clock    streamcore.Track // media time of the party's frames
	gapc     streamcore.GapCounters
	bps      int      // bytes per collected sample: 1 for PCMU and PCMA, 2 for L16
	pcm      []int16  // scratch for one decoded frame
	mono     []int16  // scratch for one channel
	one      []byte   // scratch for one channel in the collected encoding
	zeros    []int16  // 20 ms of silence, decoded (gap filling)
	silence  []byte   // 20 ms of silence, encoded (gap filling)
	wavHdr   [64]byte // scratch for the WAV header's size
	audio    clip     // collected audio
	pause    ring     // the current pause (last MaxPause)
	nextProg time.Duration

	mu    sync.Mutex
	stats SessionStats
}

// Register starts a register session: it collects the party's speech from
// src, asks engine for a credential and, with Config.Store, stores it.
//
// An invalid configuration gives a session whose only event is
// error-parameters, together with an error matching ErrParameters, so a
// caller may check either.
func Register(src voicegate.FrameReader, engine Engine, cfg *Config) (*Session, error) {
	return newSession(OperationRegister, src, engine, "", cfg)
}

// Verify starts a verify session: it collects the party's speech from src
// and scores it against credential with engine. Errors are as for
// Register.
func Verify(src voicegate.FrameReader, engine Engine, credential string, cfg *Config) (*Session, error) {
	return newSession(OperationVerify, src, engine, credential, cfg)
}

func newSession(op Operation, src voicegate.FrameReader, engine Engine, credential string, cfg *Config) (*Session, error) {
	s := &Session{op: op, src: src, engine: engine, cred: credential}
	s.cfg, s.cfgErr = cfg.defaults(op)
	switch {
	case s.cfgErr != nil:
	case src == nil:
		s.cfgErr = fmt.Errorf("%w: nil FrameReader", ErrParameters)
	case engine == nil:
		s.cfgErr = fmt.Errorf("%w: nil Engine", ErrParameters)
	case op == OperationVerify && credential == "":
		s.cfgErr = fmt.Errorf("%w: empty credential", ErrParameters)
	}
	s.need = s.cfg.needed()
	s.hash = s.cfg.ModelHash
	if s.cfg.ProgressInterval > 0 {
		s.nextProg = s.cfg.ProgressInterval
	}
	return s, s.cfgErr
}

// Stats returns the session's counters. It is safe to call concurrently
// with Next.
func (s *Session) Stats() SessionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Operation returns what the session does.
func (s *Session) Operation() Operation { return s.op }

// Next advances the session to its next event. It returns io.EOF after the
// terminal event, and ctx's error, leaving the session resumable, when ctx
// ends first.
func (s *Session) Next(ctx context.Context) (Event, error) {
	for {
		switch s.state {
		case stateDone:
			return Event{}, io.EOF
		case stateStart:
			if s.start.IsZero() {
				s.start = time.Now()
			}
			if s.cfgErr != nil {
				return s.finish(Event{Type: EventErrorParameters, Err: s.cfgErr}), nil
			}
			if s.hash == "" && s.op == OperationRegister {
				ev, ok, err := s.resolveModel(ctx)
				if err != nil {
					return Event{}, err
				}
				if !ok {
					return s.finish(ev), nil
				}
			}
			s.state = stateCollect
		case stateCollect:
			ev, ok, err := s.collect(ctx)
			if err != nil || ok {
				return ev, err
			}
			s.state = stateSubmit
		case stateSubmit:
			return s.submit(ctx)
		}
	}
}

// finish marks ev as the terminal event and fills the common fields.
func (s *Session) finish(ev Event) Event {
	s.state = stateDone
	return s.fill(ev)
}

func (s *Session) fill(ev Event) Event {
	ev.Operation = s.op
	ev.NetSpeechNeeded = s.need
	if s.det != nil {
		ev.NetSpeech = s.det.NetSpeech()
	}
	ev.AudioDuration = s.audioDuration()
	if ev.Exception == "" && ev.Err != nil {
		ev.Exception = exceptionOf(ev.Err)
	}
	if ev.Type.IsTerminal() {
		s.mu.Lock()
		ev.EngineWait = s.stats.EngineWait
		s.mu.Unlock()
	}
	ev.audioInJSON = s.cfg.AudioInJSON
	ev.credentialInJSON = s.cfg.CredentialInJSON
	return ev
}

// resolveModel asks a ModelLister engine for its newest model. ok is false
// when the session must end with ev.
func (s *Session) resolveModel(ctx context.Context) (ev Event, ok bool, err error) {
	ml, isLister := s.engine.(ModelLister)
	if !isLister {
		return Event{Type: EventErrorParameters, Err: fmt.Errorf("%w: no ModelHash and the engine lists no models", ErrParameters)}, false, nil
	}
	models, err := ml.Models(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return Event{}, false, ctx.Err()
		}
		return Event{Type: EventErrorDasPeak, Err: fmt.Errorf("daspeak: listing models: %w", err)}, false, nil
	}
	if len(models) == 0 {
		return Event{Type: EventErrorParameters, Err: fmt.Errorf("%w: no ModelHash and the engine has no models", ErrParameters)}, false, nil
	}
	s.hash = models[len(models)-1]
	return Event{}, true, nil
}

// collect reads frames until a progress event is due (ok true, event in
// ev), the session ends (ok true, terminal ev), enough speech is collected
// (ok false) or ctx ends (err).
func (s *Session) collect(ctx context.Context) (ev Event, ok bool, err error) {
	for {
		if s.enough() {
			return Event{}, false, nil
		}
		f, err := s.read(ctx)
		if err != nil {
			switch {
			case errors.Is(err, ErrConsumerNotReady):
				return s.finish(Event{Type: EventErrorConsumerNotReady, Err: err}), true, nil
			case ctx.Err() != nil:
				return Event{}, false, ctx.Err()
			case errors.Is(err, io.EOF):
				return s.finish(Event{Type: EventErrorAudio, Err: fmt.Errorf("%w: the stream ended with %.2fs of net speech, %.2fs needed",
					ErrAudio, s.netSpeech().Seconds(), s.need.Seconds())}), true, nil
			default:
				return s.finish(Event{Type: EventErrorAudio, Err: fmt.Errorf("%w: reading audio: %w", ErrAudio, err)}), true, nil
			}
		}
		if err := s.process(f); err != nil {
			return s.finish(Event{Type: EventErrorAudio, Err: err}), true, nil
		}
		if s.cfg.ProgressInterval > 0 && s.netSpeech() >= s.nextProg && !s.enough() {
			for s.nextProg <= s.netSpeech() {
				s.nextProg += s.cfg.ProgressInterval
			}
			return s.fill(Event{Type: EventProgress}), true, nil
		}
	}
}

func (s *Session) netSpeech() time.Duration {
	if s.det == nil {
		return 0
	}
	return s.det.NetSpeech()
}

// enough reports whether the engine should be called: net speech reached
// the target, or the collected audio reached its cap with at least
// MinNetSpeech.
func (s *Session) enough() bool {
	if s.det == nil {
		return false
	}
	return s.det.NetSpeech() >= s.need || s.full()
}

func (s *Session) full() bool {
	return s.rate > 0 && s.audio.full()
}

// audioDuration is the duration of the collected audio.
func (s *Session) audioDuration() time.Duration {
	if s.rate == 0 {
		return 0
	}
	return time.Duration(s.audio.n/s.bps) * time.Second / time.Duration(s.rate)
}

// read returns the next frame of the party. Before the first one it
// enforces NoAudioTimeout.
func (s *Session) read(ctx context.Context) (voicegate.Frame, error) {
	for {
		rctx := ctx
		var cancel context.CancelFunc
		if !s.got {
			rctx, cancel = context.WithDeadline(ctx, s.start.Add(s.cfg.NoAudioTimeout))
		}
		f, err := s.src.ReadFrame(rctx)
		if cancel != nil {
			deadline := rctx.Err() != nil && ctx.Err() == nil
			cancel()
			if err != nil && deadline {
				return f, fmt.Errorf("%w within %v", ErrConsumerNotReady, s.cfg.NoAudioTimeout)
			}
		}
		if err != nil {
			return f, err
		}
		s.mu.Lock()
		s.stats.Frames++
		if err := f.Validate(); err != nil {
			s.stats.Invalid++
			s.mu.Unlock()
			continue
		}
		if f.Channels == 1 && f.Parties[0] != voicegate.PartyUnknown && f.Parties[0] != s.cfg.Party {
			s.stats.OtherParty++
			s.mu.Unlock()
			continue
		}
		s.mu.Unlock()
		s.got = true
		return f, nil
	}
}

// process decodes the party's channel of f, runs the detector and collects
// the audio.
func (s *Session) process(f voicegate.Frame) error {
	if s.rate == 0 {
		if f.SampleRate != 8000 && f.SampleRate != 16000 {
			return fmt.Errorf("%w: sample rate %d Hz (8000 or 16000 needed)", ErrAudio, f.SampleRate)
		}
		// The session reads only net speech from the detector: one
		// segment slot is enough.
		det, err := vad.New(f.SampleRate, &vad.Options{MaxSegments: 1})
		if err != nil {
			return fmt.Errorf("%w: %w", ErrAudio, err)
		}
		s.det, s.rate, s.enc = det, f.SampleRate, f.Encoding
		s.bps = 1
		if s.enc != voicegate.PCMU && s.enc != voicegate.PCMA {
			s.enc, s.bps = voicegate.L16, 2
		}
		maxSamples := int(int64(s.cfg.MaxTotalAudio) * int64(s.rate) / int64(time.Second))
		s.audio = clip{block: s.rate * s.bps, max: maxSamples * s.bps}
		s.pause = ring{buf: make([]byte, max(int(int64(s.cfg.MaxPause)*int64(s.rate)/int64(time.Second)), 1)*s.bps)}
	}
	if f.SampleRate != s.rate {
		return fmt.Errorf("%w: sample rate changed from %d to %d Hz", ErrAudio, s.rate, f.SampleRate)
	}
	n := f.Samples()
	// Decode all channels, then pick the party's.
	total := n * f.Channels
	if cap(s.pcm) < total {
		s.pcm = make([]int16, total)
	}
	pcm := s.pcm[:total]
	switch f.Encoding {
	case voicegate.PCMU:
		codec.DecodeULaw(pcm, f.Payload)
	case voicegate.PCMA:
		codec.DecodeALaw(pcm, f.Payload)
	case voicegate.L16:
		codec.BytesToInt16(pcm, f.Payload)
	}
	mono := pcm
	ch := 0
	if f.Channels > 1 {
		ch = f.Channel(s.cfg.Party)
		if ch < 0 {
			ch = 0
			if s.cfg.Party == voicegate.Agent {
				ch = 1
			}
		}
		if cap(s.mono) < n {
			s.mono = make([]int16, n)
		}
		mono = s.mono[:n]
		codec.ExtractChannel(mono, pcm, f.Channels, ch)
	}
	// The same channel in the collected encoding: the payload's own bytes
	// when the encodings match, so G.711 audio reaches the engine as it
	// came.
	if cap(s.one) < n*s.bps {
		s.one = make([]byte, n*s.bps)
	}
	one := s.one[:n*s.bps]
	switch {
	case f.Encoding == s.enc && s.bps == 1:
		for i := range one {
			one[i] = f.Payload[i*f.Channels+ch]
		}
	case s.enc == voicegate.PCMU:
		codec.EncodeULaw(one, mono)
	case s.enc == voicegate.PCMA:
		codec.EncodeALaw(one, mono)
	default:
		codec.Int16ToBytes(one, mono)
	}

	// Sequence gaps and timestamp gaps.
	s.mu.Lock()
	if s.lastSeq != 0 && f.Seq > s.lastSeq+1 {
		s.stats.Lost += int64(f.Seq - s.lastSeq - 1)
	}
	if f.Seq != 0 {
		s.lastSeq = f.Seq
	}
	s.mu.Unlock()
	s.clock.MinGap = time.Second / time.Duration(s.rate)
	gap, _ := s.clock.Place(f.Timestamp, f.Duration(), &s.gapc)
	if s.cfg.FillGaps && gap > 0 && gap <= voicegate.MaxGapFill {
		s.fillGap(int(int64(gap) * int64(s.rate) / int64(time.Second)))
	}
	s.feed(mono, one)
	return nil
}

// fillGap feeds n samples of silence.
func (s *Session) fillGap(n int) {
	step := s.rate / 50
	if s.zeros == nil {
		s.zeros = make([]int16, step)
		s.silence = make([]byte, step*s.bps)
		for i := range s.silence {
			s.silence[i] = streamcore.SilenceByte(s.enc)
		}
	}
	for left := n; left > 0; {
		k := min(left, step)
		s.feed(s.zeros[:k], s.silence[:k*s.bps])
		left -= k
	}
	s.mu.Lock()
	s.stats.Filled += time.Duration(n) * time.Second / time.Duration(s.rate)
	s.mu.Unlock()
}

// feed runs the detector over pcm and adds enc, the same samples in the
// collected encoding, to the collected audio: speech goes straight in;
// non-speech waits in the pause ring, whose last MaxPause joins the audio
// when speech resumes.
func (s *Session) feed(pcm []int16, enc []byte) {
	step := s.rate / 50
	for len(pcm) > 0 && !s.full() {
		k := min(len(pcm), step)
		chunk, echunk := pcm[:k], enc[:k*s.bps]
		pcm, enc = pcm[k:], enc[k*s.bps:]
		dropped := 0
		if s.det.Process(chunk) {
			s.pause.flush(&s.audio)
			s.audio.add(echunk)
		} else {
			dropped = s.pause.push(echunk) / s.bps
		}
		s.mu.Lock()
		s.stats.Received += time.Duration(k) * time.Second / time.Duration(s.rate)
		s.stats.Dropped += time.Duration(dropped) * time.Second / time.Duration(s.rate)
		s.mu.Unlock()
	}
}

// wav encodes the collected audio as a mono WAV file in the collected
// encoding, into buf's storage when its capacity is enough (its contents
// do not matter), otherwise in one allocation: the audio is copied once,
// to where the file's data goes, and EncodeWAV writes the header in front
// of it (its copy of the data onto itself leaves it as it is). Copying the
// audio out and encoding that copy allocated and copied the audio twice:
// 92 KB a verify call of the burst benchmark (go test -run '^$' -bench
// Burst -benchtime 1x -memprofile mem.out ./daspeak/), 46 KB with one
// allocation, none with a buffer from wavBufs.
func (s *Session) wav(buf []byte) ([]byte, error) {
	f := codec.WAVFormat{Encoding: s.enc, SampleRate: s.rate, Channels: 1}
	hdr, err := codec.EncodeWAV(s.wavHdr[:0], f, nil) // the header alone: its size
	if err != nil {
		return nil, err
	}
	h, n := len(hdr), s.audio.n
	if cap(buf) < h+n+1 { // +1: the pad byte of an odd size
		buf = make([]byte, h, h+n+1)
	}
	buf = buf[:h]
	data := s.audio.appendTo(buf[h:h])
	out, err := codec.EncodeWAV(buf[:0], f, data)
	if err == nil && len(out) != h+n+n&1 {
		// The header's size depended on the data's: it may have run
		// over the data. Encode a separate copy instead.
		return codec.EncodeWAV(nil, f, s.audio.appendTo(make([]byte, 0, n)))
	}
	return out, err
}

// wavBufs holds the storage of verify sessions' WAV files between engine
// calls. A verify session takes one once it holds its Limiter slot and puts
// it back when the engine call has returned, so with a Limiter the process
// reuses about one buffer a slot instead of touching a fresh ~40 KB for
// every call. Fresh memory cost page faults: the burst benchmark (go test
// -run '^$' -bench Burst -benchtime 1x -v ./daspeak/) had 12,300–12,800
// page faults and 73–127 ms a core of CPU outside the engine calls with a
// new WAV file a call; see the package documentation for the figures with
// the buffers reused.
//
// Only an Engine that says it is done with the audio when a call returns
// ([AudioReleaser]) gets a pooled buffer; any other gets a new file a call.
// The engines here that say so are right to: the offline engine decodes the file into its own buffers before it
// returns; the REST Client copies the file into its multipart body before
// it sends anything (encodeMultipart), so its retries, and an HTTP
// transport still writing a cancelled request's body after Do returned,
// read the Client's copy, never this buffer; the daspeaktest engines and
// the agent's timed wrapper read it only during the call. A register
// session's WAV file is never put back: it is the result's Event.Audio and
// goes to the Store.
var wavBufs sync.Pool // of *[]byte

// getWAVBuf returns a buffer from wavBufs, or a new empty one.
func getWAVBuf() *[]byte {
	if p, ok := wavBufs.Get().(*[]byte); ok {
		return p
	}
	return new([]byte)
}

// submit calls the engine and turns its answer into the result; a register
// credential then goes to the store.
func (s *Session) submit(ctx context.Context) (Event, error) {
	if s.netSpeech() < MinNetSpeech {
		return s.finish(Event{Type: EventErrorAudio, Err: fmt.Errorf("%w: %.2fs of net speech in %v of audio, %.2fs needed",
			ErrAudio, s.netSpeech().Seconds(), s.cfg.MaxTotalAudio, s.need.Seconds())}), nil
	}
	opts := &AudioOptions{Channel: 1, Calibration: s.cfg.Calibration}
	sl := &slot{l: s.cfg.Limiter}
	ectx := withSlot(ctx, sl)
	if err := sl.acquire(ectx); err != nil {
		s.addWait(sl.wait)
		return Event{}, err
	}
	// The WAV copy of the audio exists only while the call runs, not while
	// the session waits in the Limiter's queue. A verify session's copy
	// goes back to wavBufs once the engine call has returned; a register
	// session's is the result's audio and is never reused.
	var (
		pooled *[]byte
		buf    []byte
	)
	if s.op == OperationVerify && releasesAudio(s.engine) {
		pooled = getWAVBuf()
		buf = *pooled
	}
	audio, err := s.wav(buf)
	if pooled != nil {
		if err == nil {
			*pooled = audio[:0]
		}
		defer wavBufs.Put(pooled)
	}
	if err != nil {
		sl.release()
		s.addWait(sl.wait)
		return s.finish(Event{Type: EventErrorAudio, Err: fmt.Errorf("%w: %w", ErrAudio, err)}), nil
	}
	var (
		reg *CredentialResult
		cmp *CompareResult
	)
	if s.op == OperationRegister {
		reg, err = s.engine.GenerateCredential(ectx, s.hash, audio, opts)
	} else {
		cmp, err = s.engine.CompareCredentialToAudio(ectx, s.cred, audio, opts)
	}
	sl.release()
	s.addWait(sl.wait)
	if s.op == OperationRegister {
		r := reg
		if err != nil {
			if ctx.Err() != nil {
				return Event{}, ctx.Err()
			}
			return s.finish(Event{Type: EventErrorDasPeak, ModelHash: s.hash, Err: err}), nil
		}
		ev := Event{
			ModelHash:           r.Model.Hash,
			EngineNetSpeech:     secondsToDuration(r.NetSpeechDuration),
			EngineAudioDuration: secondsToDuration(r.InputAudioDuration),
		}
		if ev.ModelHash == "" {
			ev.ModelHash = s.hash
		}
		spoof, err := s.antiSpoofing(&ev, r.Authenticity)
		if err == nil && r.Credential == "" {
			err = fmt.Errorf("%w: empty credential", ErrInvalidResult)
		}
		if err != nil {
			return s.finish(Event{Type: EventErrorDasPeak, ModelHash: ev.ModelHash, Err: err}), nil
		}
		if spoof {
			ev.Type = EventResultFailSpoof
			return s.finish(ev), nil
		}
		ev.Type = EventResultSuccess
		ev.Credential = r.Credential
		ev.Audio = audio
		if s.cfg.Store == nil {
			return s.finish(ev), nil
		}
		return s.store(ctx, ev), nil
	}
	r := cmp
	if err != nil {
		if ctx.Err() != nil {
			return Event{}, ctx.Err()
		}
		return s.finish(Event{Type: EventErrorDasPeak, ModelHash: s.hash, Err: err}), nil
	}
	ev := Event{
		ModelHash:           r.Model.Hash,
		EngineNetSpeech:     secondsToDuration(r.NetSpeechDuration),
		EngineAudioDuration: secondsToDuration(r.InputAudioDuration),
		Score:               r.Score,
		ScoreThreshold:      s.cfg.ScoreThreshold,
	}
	if ev.ModelHash == "" {
		ev.ModelHash = s.hash
	}
	spoof, err := s.antiSpoofing(&ev, r.Authenticity)
	if err == nil && !(r.Score >= 0 && r.Score <= 1) {
		err = fmt.Errorf("%w: score %v outside [0, 1]", ErrInvalidResult, r.Score)
	}
	if err != nil {
		return s.finish(Event{Type: EventErrorDasPeak, ModelHash: ev.ModelHash, Err: err}), nil
	}
	switch {
	case spoof:
		ev.Type = EventResultFailSpoof
	case r.Score < s.cfg.ScoreThreshold:
		ev.Type = EventResultFailScore
	default:
		ev.Type = EventResultSuccess
	}
	return s.finish(ev), nil
}

// addWait adds a wait for the engine to the session's stats.
func (s *Session) addWait(d time.Duration) {
	s.mu.Lock()
	s.stats.EngineWait += d
	s.mu.Unlock()
}

// antiSpoofing records the engine's authenticity a in ev and reports
// whether it fails AuthenticityThreshold. AuthenticityNotPerformed is
// recorded as such and never fails (nor passes) a threshold; any other
// value outside [0, 1], NaN included, is an ErrInvalidResult.
func (s *Session) antiSpoofing(ev *Event, a float64) (spoof bool, err error) {
	switch {
	case a == AuthenticityNotPerformed:
		ev.AntiSpoofing = AntiSpoofingNotPerformed
		ev.Authenticity = AuthenticityNotPerformed
		return false, nil
	case a >= 0 && a <= 1:
		ev.AntiSpoofing = AntiSpoofingPerformed
		ev.Authenticity = a
		ev.AuthenticityThreshold = s.cfg.AuthenticityThreshold
		return a < s.cfg.AuthenticityThreshold, nil
	default:
		return false, fmt.Errorf("%w: authenticity %v outside [0, 1] and not AuthenticityNotPerformed (%v)",
			ErrInvalidResult, a, AuthenticityNotPerformed)
	}
}

// store hands the register result ev to Config.Store with retries, under
// a context that Next's ctx cannot cancel, bounded by StoreTimeout, and
// returns the terminal event: ev as result-success when the store kept
// the credential, ev as error-store otherwise.
func (s *Session) store(ctx context.Context, ev Event) Event {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.StoreTimeout)
	defer cancel()
	start := time.Now()
	n, err := storeWithRetries(sctx, s.cfg.Store, s.cfg.StoreRetries, s.cfg.StoreBackoff, s.cfg.CallerID, ev.Credential, ev.ModelHash, ev.Audio)
	s.mu.Lock()
	s.stats.StoreAttempts += n
	s.mu.Unlock()
	if err == nil {
		ev.Stored = true
		return s.finish(ev)
	}
	note := ""
	if ctx.Err() != nil {
		note = " (the session's context ended meanwhile; storing went on under StoreTimeout)"
	}
	ev.Type = EventErrorStore
	ev.Err = fmt.Errorf("%w: caller %q, %d attempts in %v%s: %w",
		ErrStore, s.cfg.CallerID, n, time.Since(start).Round(time.Millisecond), note, err)
	return s.finish(ev)
}

func secondsToDuration(s float64) time.Duration {
	return time.Duration(s * float64(time.Second))
}

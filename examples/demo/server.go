package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/twilio"
)

// Names of the call parameters: Twilio <Parameter> names and AudioHook
// customConfig keys.
const (
	paramCallerID  = "callerId"
	paramOperation = "operation"
)

// Paths served by the demo.
const (
	pathTwilio    = "/twilio/media"
	pathAudioHook = "/audiohook"
	pathEvents    = "/events"
)

const (
	// maxCall bounds one call on the server side.
	maxCall = 5 * time.Minute
	// queueAudio is how much audio each stream buffers for a slow reader.
	// Fast playback sends a whole call in a fraction of a second, so the
	// queue holds a whole call.
	queueAudio = 30 * time.Second
	// registerSpeech is the net speech a register session collects.
	registerSpeech = 10 * time.Second
	// progressEvery is the net speech between progress events.
	progressEvery = time.Second
)

// errAlreadyRegistered refuses an explicit register of a caller who already
// has a credential: registering again would replace the voiceprint of the
// account's owner with whoever is calling. The IVR (409 already_registered),
// the AudioHook server and the agent API refuse it too; the desk's delete
// removes the credential first.
var errAlreadyRegistered = errors.New("caller is already registered; delete the caller first to register again")

// server holds what the call handlers share: the biometric engine (a
// das-Peak REST client), the credential store, the event hub and the
// secrets that authenticate the two protocol endpoints.
type server struct {
	log    *slog.Logger
	hub    *hub
	engine daspeak.Engine
	store  credstore.Store
	creds  *agent.CredentialStore

	twilioURL   string // the public wss:// (here ws://) URL Twilio signs
	twilioToken string
	ahKeys      audiohook.StaticKeys
	ahNonces    *audiohook.MemoryNonces

	tracker *tracker

	// ctx outlives the HTTP requests: WebSocket calls run under it, never
	// under r.Context(). cancel ends every call at shutdown.
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	calls  sync.WaitGroup
}

// startCall registers a call handler with the server; it fails once the
// server is shutting down.
func (s *server) startCall() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.calls.Add(1)
	return true
}

// stopCalls ends every call and waits for their handlers, at most until ctx
// ends.
func (s *server) stopCalls(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.calls.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("calls still running: %w", ctx.Err())
	}
}

// handler returns the demo's HTTP routes.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pathTwilio, s.handleTwilio)
	mux.HandleFunc("GET "+pathAudioHook, s.handleAudioHook)
	mux.HandleFunc("GET "+pathEvents, s.hub.serveEvents)
	mux.HandleFunc("GET /{$}", serveConsole)
	return agent.JSONErrors(mux)
}

// handleTwilio accepts a Twilio Media Streams connection. Twilio signs the
// upgrade with X-Twilio-Signature; the caller id and the operation arrive as
// <Parameter>s in the start message.
func (s *server) handleTwilio(w http.ResponseWriter, r *http.Request) {
	if !s.startCall() {
		agent.WriteError(w, http.StatusServiceUnavailable, agent.CodeUnavailable, "shutting down")
		return
	}
	defer s.calls.Done()
	st, err := twilio.Accept(w, r, &twilio.AcceptOptions{
		PublicURL:   s.twilioURL,
		AuthTokens:  []string{s.twilioToken},
		QueueFrames: int(queueAudio / (20 * time.Millisecond)),
	})
	if err != nil {
		s.log.Warn("twilio: upgrade refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	// From here on r.Context() is not used: the call lives under s.ctx.
	defer st.Close()
	ctx, cancel := context.WithTimeout(s.ctx, maxCall)
	defer cancel()
	start, err := st.Start(ctx)
	if errors.Is(err, twilio.ErrMediaFormat) && start != nil {
		// A start announcing audio this server cannot read: the stream
		// was closed 1003.
		s.log.Warn("twilio: stream refused: unsupported media format", "call", start.CallSID, "stream", start.StreamSID, "err", err)
		return
	}
	if err != nil {
		s.log.Warn("twilio: no start message", "err", err)
		return
	}
	// The parameters come from your own TwiML or REST call. The upgrade
	// signature proves that Twilio opened the stream; in production, also
	// sign or look up the parameters to bind the stream to your call.
	c := s.newCall("twilio", start.CallSID, start.CustomParameters[paramCallerID], start.CustomParameters[paramOperation])
	s.runCall(ctx, c, st, fmt.Sprintf("stream %s, tracks %s, %s %d Hz", start.StreamSID, strings.Join(start.Tracks, "+"), start.MediaFormat.Encoding, start.MediaFormat.SampleRate))
	stats := st.Stats()
	s.log.Info("twilio: call ended", "call", c.label, "frames", stats.FramesReceived, "dropped", stats.FramesDropped, "gaps", stats.Gaps)
}

// handleAudioHook accepts a Genesys Cloud AudioHook connection. The upgrade
// is authenticated by X-API-KEY and an HTTP message signature; the caller
// id comes from customConfig.callerId or else the participant's ANI, and the
// operation from customConfig.operation.
func (s *server) handleAudioHook(w http.ResponseWriter, r *http.Request) {
	if !s.startCall() {
		agent.WriteError(w, http.StatusServiceUnavailable, agent.CodeUnavailable, "shutting down")
		return
	}
	defer s.calls.Done()
	sess, err := audiohook.Accept(w, r, &audiohook.ServerOptions{
		Keys:         s.ahKeys,
		Nonces:       s.ahNonces,
		Buffer:       queueAudio,
		BufferFrames: int(queueAudio / (20 * time.Millisecond)),
		Logger:       s.log.With("protocol", "audiohook"),
	})
	if err != nil {
		s.log.Warn("audiohook: upgrade refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	defer sess.Close()
	ctx, cancel := context.WithTimeout(s.ctx, maxCall)
	defer cancel()
	info, err := sess.Open(ctx)
	if err != nil {
		s.log.Warn("audiohook: open failed", "err", err)
		return
	}
	if info.Probe {
		s.log.Info("audiohook: connection probe answered")
		return
	}
	var cfg struct {
		CallerID  string `json:"callerId"`
		Operation string `json:"operation"`
	}
	if len(info.Params.CustomConfig) > 0 {
		if err := json.Unmarshal(info.Params.CustomConfig, &cfg); err != nil {
			s.log.Warn("audiohook: customConfig not understood", "err", err)
		}
	}
	caller := cfg.CallerID
	if caller == "" {
		caller = info.Params.Participant.ANI
	}
	c := s.newCall("audiohook", sess.ID(), caller, cfg.Operation)
	media := "no media"
	if info.Media != nil {
		media = fmt.Sprintf("%s %d Hz %s", info.Media.Format, info.Media.Rate, strings.Join(info.Media.Channels, "+"))
	}
	s.runCall(ctx, c, sess, fmt.Sprintf("conversation %s, %s", info.Params.ConversationID, media))
	stats := sess.Stats()
	s.log.Info("audiohook: call ended", "call", c.label, "frames", stats.FramesReceived, "dropped", stats.FramesDropped, "gap", stats.GapTime)
}

// call is one call on the server side.
type call struct {
	s         *server
	label     string
	id        string
	protocol  string
	caller    string
	operation string
}

func (s *server) newCall(protocol, id, caller, op string) *call {
	return &call{s: s, label: s.tracker.label(id), id: id, protocol: protocol, caller: caller, operation: op}
}

func (c *call) publish(typ, text string, ev *daspeak.Event) {
	c.emit(typ, text, ev, false)
}

func (c *call) emit(typ, text string, ev *daspeak.Event, terminal bool) {
	e := callEvent{
		Call: c.label, CallID: c.id, Protocol: c.protocol, Caller: c.caller, Operation: c.operation,
		Type: typ, Text: text, Terminal: terminal,
	}
	if ev != nil {
		e.Terminal = ev.IsTerminal()
		shown := *ev
		shown.Credential = "" // biometric data stays out of the console
		shown.Audio = nil
		if b, err := json.Marshal(shown); err == nil {
			e.Event = b
		}
	}
	c.s.hub.publish(e)
}

// end publishes the call's outcome as a terminal line and reports it to the
// code that placed the call, if the demo placed it.
func (c *call) end(got, text string) {
	c.emit(got, text, nil, true)
	c.s.tracker.done(c.id, got)
}

// runCall announces the call (connected, with the protocol's details),
// drives one register or verify session over src, publishing each event as
// it happens, and returns after the terminal event. The caller closes src
// afterwards, which ends the call at the protocol level.
func (s *server) runCall(ctx context.Context, c *call, src voicegate.FrameReader, details string) {
	if c.operation == "" {
		// Without an explicit operation a call verifies. Registration is
		// explicit: a caller id can be spoofed, so registering whoever
		// calls first under an unknown caller id would enrol an impostor.
		c.operation = string(daspeak.OperationVerify)
	}
	c.publish("connected", details, nil)
	if c.caller == "" {
		c.end("error-no-caller", "no caller id: set the callerId parameter")
		return
	}
	if err := credstore.ValidateID(c.caller); err != nil {
		c.end("error-no-caller", err.Error())
		return
	}
	var (
		sess *daspeak.Session
		cred credstore.Record
		err  error
	)
	switch daspeak.Operation(c.operation) {
	case daspeak.OperationRegister:
		// A register never replaces a stored voiceprint: refused here,
		// before any audio is collected, and again at store time for a
		// register of the same caller that finished first meanwhile.
		_, err = s.store.Get(ctx, c.caller)
		if err == nil {
			c.end("error-already-registered", errAlreadyRegistered.Error())
			return
		}
		if !errors.Is(err, credstore.ErrNotFound) {
			c.end("error-store", err.Error())
			return
		}
		sess, err = daspeak.Register(src, s.engine, &daspeak.Config{
			AudioTotalDuration: registerSpeech,
			ProgressInterval:   progressEvery,
			Store:              daspeak.StoreFunc(s.storeOnce),
			CallerID:           c.caller,
		})
	case daspeak.OperationVerify:
		cred, err = s.store.Get(ctx, c.caller)
		if errors.Is(err, credstore.ErrNotFound) {
			c.end("error-not-registered", "no credential stored for this caller; registering needs operation=register")
			return
		}
		if err != nil {
			c.end("error-store", err.Error())
			return
		}
		sess, err = daspeak.Verify(src, s.engine, cred.Credential, &daspeak.Config{
			ModelHash:        cred.ModelHash,
			ProgressInterval: progressEvery,
		})
	default:
		c.end("error-operation", fmt.Sprintf("unknown operation %q: use register or verify", c.operation))
		return
	}
	if err != nil {
		s.log.Warn("session configuration", "call", c.label, "err", err)
	}
	for {
		ev, err := sess.Next(ctx)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			c.end("interrupted", err.Error())
			return
		}
		if ev.Type == daspeak.EventErrorStore && errors.Is(ev.Err, errAlreadyRegistered) {
			// Another register of this caller stored first: nothing
			// stored here, the first credential untouched.
			c.end("error-already-registered", errAlreadyRegistered.Error())
			return
		}
		c.publish(string(ev.Type), describe(ev), &ev)
		if ev.IsTerminal() {
			got := string(ev.Type)
			if ev.Type == daspeak.EventResultSuccess && ev.Operation == daspeak.OperationRegister && !ev.Stored {
				got += " (not stored)"
			}
			c.s.tracker.done(c.id, got)
			return
		}
	}
}

// storeOnce stores a register's credential unless the caller already has
// one. It is the agent desk's CredentialStore.StoreNew, whose check and
// write run under that store's lock, so a register on a scripted call and
// one on the desk of the same caller cannot overwrite each other (within
// this process: credstore has no put-if-absent). The refusal wraps
// daspeak.ErrAlreadyStored, which the session does not retry.
func (s *server) storeOnce(ctx context.Context, callerID, credential, modelHash string, audio []byte) error {
	err := s.creds.StoreNew(ctx, callerID, credential, modelHash, audio)
	if errors.Is(err, agent.ErrAlreadyRegistered) {
		return fmt.Errorf("%w (%w)", errAlreadyRegistered, daspeak.ErrAlreadyStored)
	}
	return err
}

// describe renders the interesting fields of a session event.
func describe(ev daspeak.Event) string {
	speech := fmt.Sprintf("net speech %.1f/%.1f s", ev.NetSpeech.Seconds(), ev.NetSpeechNeeded.Seconds())
	switch ev.Type {
	case daspeak.EventProgress:
		return speech
	case daspeak.EventResultSuccess, daspeak.EventResultFailScore, daspeak.EventResultFailSpoof:
		var b strings.Builder
		if ev.Operation == daspeak.OperationVerify && ev.Type != daspeak.EventResultFailSpoof {
			cmp := ">="
			if ev.Score < ev.ScoreThreshold {
				cmp = "<"
			}
			fmt.Fprintf(&b, "score %.3f %s %.2f, ", ev.Score, cmp, ev.ScoreThreshold)
		}
		if ev.AntiSpoofing == daspeak.AntiSpoofingNotPerformed {
			// The engine reported no authenticity (the offline engine
			// never does): say so, never a number.
			b.WriteString("anti-spoofing not performed")
		} else {
			fmt.Fprintf(&b, "authenticity %.2f (min %.2f)", ev.Authenticity, ev.AuthenticityThreshold)
		}
		fmt.Fprintf(&b, ", %s in %.1f s of audio, model %s", speech, ev.AudioDuration.Seconds(), ev.ModelHash)
		if ev.Operation == daspeak.OperationRegister && ev.Type == daspeak.EventResultSuccess && ev.Stored {
			fmt.Fprintf(&b, ", credential stored (%d bytes)", len(ev.Credential))
		}
		return b.String()
	default:
		msg := speech
		if ev.Err != nil {
			msg += ": " + ev.Err.Error()
		}
		return msg
	}
}

// tracker connects calls placed by the demo to the server side: the player
// announces a call id with its label before dialing, and the server reports
// the call's outcome.
type tracker struct {
	mu    sync.Mutex
	calls map[string]*tracked
}

type tracked struct {
	label  string
	result chan string
}

func newTracker() *tracker { return &tracker{calls: map[string]*tracked{}} }

// expect announces a call and returns the channel its outcome arrives on.
func (t *tracker) expect(id, label string) <-chan string {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := &tracked{label: label, result: make(chan string, 1)}
	t.calls[id] = c
	return c.result
}

// forget drops an announced call.
func (t *tracker) forget(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.calls, id)
}

// label returns the label of a call, or a short form of its id for calls
// the demo did not place.
func (t *tracker) label(id string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.calls[id]; ok {
		return c.label
	}
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// done reports the outcome of a call; only the first report counts.
func (t *tracker) done(id, got string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.calls[id]; ok {
		select {
		case c.result <- got:
		default:
		}
	}
}

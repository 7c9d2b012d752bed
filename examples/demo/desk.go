package main

import (
	"bytes"
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/daspeak/agent/flex"
	"github.com/voicegate/voicegate/daspeak/daspeaktest"
	"github.com/voicegate/voicegate/daspeak/offline"
	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

// The agent desk: live simulated Twilio calls, each shown with its
// <voicegate-agent> widget, on the agent API of package daspeak/agent.
//
//	browser ── /desk/ (this page, calls, voice and engine controls)
//	   └─ <voicegate-agent> ── /agent/… (agent.Server: operations, SSE)
//	                              └─ flex.Source ── REST ──► fake Twilio (twiliotest.Server)
//	                                   ▲                        └─ OnStreamStart: the simulator
//	                                   └──── /desk/twilio ◄─ws──── plays the call's chosen voice
//	agent.Server ── daspeak REST client ──► das-Peak emulator ──► offline engine
const (
	pathDesk       = "/desk/"
	pathDeskTwilio = "/desk/twilio"
	pathAgentBase  = agent.DefaultBasePath
)

// Session parameters of the desk: the same net speech as the scripted
// calls, so the offline engine separates the voices by a wide margin.
const (
	deskRegisterSpeech = 10 * time.Second
	deskVerifySpeech   = 5 * time.Second
)

// Engine modes a person (or the browser test) can set on the desk.
const (
	modeNormal      = "normal"      // the offline engine's own answers (it does no anti-spoofing)
	modeSpoof       = "spoof"       // every result says pre-recorded voice (authenticity 0.05)
	modeUnreachable = "unreachable" // the emulator drops every connection
)

var deskModes = []string{modeNormal, modeSpoof, modeUnreachable}

// spoofAuthenticity is the authenticity the spoof mode reports.
const spoofAuthenticity = 0.05

// deskVoice is a voice a simulated caller can speak with.
type deskVoice struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

var deskVoices = []deskVoice{
	{"slt", "slt: US English, female"},
	{"kal", "kal: US English, male"},
	{"awb", "awb: Scottish English, male"},
	{"rms", "rms: US English, male"},
	{"armelle", "armelle: French, female"},
}

// deskCall is one simulated live call.
type deskCall struct {
	CallSID  string `json:"call_sid"`
	TaskSID  string `json:"task_sid"`
	CallerID string `json:"caller_id"`
	Voice    string `json:"voice"`
	Live     bool   `json:"live"`
	Note     string `json:"note"`

	// ctx lives as long as the call: hangUp cancels it at the hang-up,
	// the desk's context when the desk stops. It ends the call's
	// simulated streams.
	ctx    context.Context
	hangUp context.CancelFunc
}

// deskOptions configure the desk.
type deskOptions struct {
	BaseURL string // http://host:port the desk is reached at
	Listen  string // the listener's address: the desk refuses non-loopback ones
	Addr    string // the -addr given, named in that refusal; default Listen
	// Creds is the credential store the scripted calls use too, so a
	// delete from the desk removes what any call stored.
	Creds    *agent.CredentialStore
	Testdata string
	// Speed > 1 plays the calls' audio faster than real time (tests).
	Speed float64
	// AllowedOrigins are other origins whose pages may embed the widget
	// against the desk's agent API (CORS).
	AllowedOrigins []string
	// OnDeleted, when set, is told of each caller whose credential a
	// delete on the agent API removed.
	OnDeleted func(callerID string)
	Log       *slog.Logger
}

// desk serves the agent desk. Close it after the HTTP server stopped.
type desk struct {
	log       *slog.Logger
	api       *agent.Server
	src       *flex.Source
	tw        *twiliotest.Server
	emu       *daspeaktest.Server
	eng       *deskEngine
	store     *agent.CredentialStore
	onDeleted func(callerID string)
	token     string // the development bearer token of the widgets
	twToken   string
	testdata  string
	clock     twiliotest.Clock
	ctx       context.Context // ends the simulated streams at Close
	cancel    context.CancelFunc

	mu    sync.Mutex
	calls []*deskCall
	mode  string
}

// newDesk starts the desk's engine, fake Twilio and agent API.
func newDesk(o deskOptions) (_ *desk, err error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := agent.RequireLoopback(o.Listen); err != nil {
		addr := cmp.Or(o.Addr, o.Listen)
		return nil, fmt.Errorf("the desk uses a development token and listens on loopback only: -addr %q is not a loopback address; give 127.0.0.1:<port> or localhost:<port>", addr)
	}
	d := &desk{
		log: log, store: o.Creds, onDeleted: o.OnDeleted, testdata: o.Testdata, mode: modeNormal,
		token: randomHex(16), twToken: randomHex(16),
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.clock = twiliotest.ScaledClock(o.Speed)
	defer func() {
		if err != nil {
			d.close(context.Background())
		}
	}()

	// das-Peak: the emulator on the offline engine, behind a switch that
	// can answer "pre-recorded voice" or "no anti-spoofing"; the agent
	// server calls it through the real REST client.
	dasKey := randomHex(16)
	d.eng = &deskEngine{Engine: offline.New(nil)}
	d.emu = daspeaktest.NewServer(d.eng, &daspeaktest.Options{APIKey: dasKey, CredentialModel: offline.CredentialModel})
	engine, err := daspeak.NewClient(&daspeak.ClientOptions{BaseURL: d.emu.URL(), APIKey: dasKey, MaxRetries: -1})
	if err != nil {
		return nil, err
	}

	// Twilio: the fake REST API starts the simulator on every stream
	// flex.Source asks for; the simulator plays the call's chosen voice.
	d.tw = twiliotest.NewServer(&twiliotest.ServerOptions{AuthToken: d.twToken, OnStreamStart: d.play})
	client, err := twilio.NewClient(&twilio.ClientOptions{AccountSID: d.tw.AccountSID(), AuthToken: d.twToken, BaseURL: d.tw.URL})
	if err != nil {
		return nil, err
	}
	streamURL := "ws" + strings.TrimPrefix(o.BaseURL, "http") + pathDeskTwilio
	d.src, err = flex.NewSource(&flex.SourceOptions{Client: client, StreamURL: streamURL, AuthTokens: []string{d.twToken}, Logger: log})
	if err != nil {
		return nil, err
	}
	auth, err := agent.NewDevAuthenticator(d.token)
	if err != nil {
		return nil, err
	}
	d.api, err = agent.NewServer(&agent.Options{
		Engine:         engine,
		Store:          o.Creds,
		Source:         d.src,
		Authenticator:  auth,
		Register:       &daspeak.Config{AudioTotalDuration: deskRegisterSpeech},
		Verify:         &daspeak.Config{AudioTotalDuration: deskVerifySpeech},
		AllowedOrigins: o.AllowedOrigins,
		Logger:         log,
	})
	if err != nil {
		return nil, err
	}

	// Two live calls to start with: the caller the scripted Twilio calls
	// registered, and a new caller.
	d.calls = []*deskCall{
		{CallSID: twiliotest.SID("CA"), TaskSID: twiliotest.SID("WT"), CallerID: twilioCaller, Voice: "slt", Live: true,
			Note: "the caller of the scripted Twilio calls (voice slt)"},
		{CallSID: twiliotest.SID("CA"), TaskSID: twiliotest.SID("WT"), CallerID: "+14155550142", Voice: "rms", Live: true,
			Note: "a new caller"},
	}
	for _, c := range d.calls {
		d.placeCall(c)
	}
	return d, nil
}

// placeCall makes the fake Twilio's Calls API know c as an inbound call
// in progress from its caller: flex.Source asks it who the caller is.
// It gives c its context. d.mu is held, or the desk is not yet served.
func (d *desk) placeCall(c *deskCall) {
	c.ctx, c.hangUp = context.WithCancel(d.ctx)
	d.tw.AddCall(twilio.CallResource{SID: c.CallSID, From: c.CallerID, To: "+15005550006", Direction: twilio.DirectionInbound, Status: twilio.CallInProgress})
}

// handler routes the desk page, its controls, the agent API and the
// desk's Media Streams endpoint.
func (d *desk) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(pathAgentBase+"/", d.api)
	if d.onDeleted != nil {
		mux.Handle("POST "+pathAgentBase+"/delete", tellDeleted(d.api, d.onDeleted))
	}
	mux.Handle("GET "+pathDeskTwilio, d.src)
	mux.HandleFunc("GET "+pathDesk+"{$}", serveDesk)
	mux.HandleFunc("GET "+pathDesk+"state", d.handleState)
	mux.Handle("POST "+pathDesk+"calls", sameSiteJSON(d.handleNewCall))
	mux.Handle("POST "+pathDesk+"calls/{sid}", sameSiteJSON(d.handleCall))
	mux.Handle("POST "+pathDesk+"engine", sameSiteJSON(d.handleEngine))
	return agent.JSONErrors(mux)
}

// sameSiteJSON guards a state-changing desk endpoint, which has no
// credentials of its own, against cross-site requests (CSRF): an Origin
// header, when the browser sends one, must be the desk's own origin
// (http:// and the request's Host, which the server only answers for
// loopback names), a request without one must not be marked cross-site or
// same-site by the browser (Fetch Metadata), and the body must be
// declared application/json, which a page on another origin can send only
// after a CORS preflight the desk never answers. A refusal is 403
// origin_not_allowed or 415 unsupported_media_type with an agent API
// error body.
func sameSiteJSON(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		site := r.Header.Get("Sec-Fetch-Site")
		if o := r.Header.Get("Origin"); (o != "" && o != "http://"+r.Host) || (o == "" && (site == "cross-site" || site == "same-site")) {
			agent.WriteError(w, http.StatusForbidden, agent.CodeOriginNotAllowed, "the desk's controls answer pages of its own origin only")
			return
		}
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			agent.WriteError(w, http.StatusUnsupportedMediaType, codeUnsupportedMediaType, "send the body as Content-Type: application/json")
			return
		}
		h(w, r)
	})
}

// codeUnsupportedMediaType is the error code of a 415 answer, as
// flex.CodeUnsupportedMediaType.
const codeUnsupportedMediaType = agent.CodeUnsupportedMediaType

// shutdown ends the operations and event streams (before the HTTP server
// waits for its handlers).
func (d *desk) shutdown(ctx context.Context) error {
	if d.api == nil {
		return nil
	}
	return d.api.Shutdown(ctx)
}

// close stops the simulator, the fake Twilio, the Source and the emulator.
func (d *desk) close(ctx context.Context) {
	if d.api != nil {
		d.api.Shutdown(ctx)
	}
	d.cancel()
	if d.tw != nil {
		d.tw.Close() // waits for the simulated streams
	}
	if d.src != nil {
		d.src.Close()
	}
	if d.emu != nil {
		d.emu.Close()
	}
}

// play is the fake Twilio's OnStreamStart: the simulator streams the
// call's voice to the URL flex.Source gave, as Twilio would. A caller
// with a credential is heard saying something new (clip 3 first); a new
// caller says clips 1, 2 and 3. The stream ends when the operation closes
// it, the audio runs out or the call is hung up: then, as Twilio does when
// a call ends, the simulator sends no more media, sends stop and closes
// the WebSocket, so an operation still collecting speech ends with
// error-audio. When the desk stops, the connection is dropped.
func (d *desk) play(cs twiliotest.CreatedStream) {
	d.mu.Lock()
	var (
		voice, callerID string
		callCtx         context.Context
	)
	for _, c := range d.calls {
		if c.CallSID == cs.CallSID && c.Live {
			voice, callerID, callCtx = c.Voice, c.CallerID, c.ctx
		}
	}
	d.mu.Unlock()
	if voice == "" {
		d.log.Warn("desk: stream on a call that is not live", "call", cs.CallSID)
		return
	}
	clips := []string{voice + "_1.wav", voice + "_2.wav", voice + "_3.wav"}
	if _, err := d.store.Get(d.ctx, callerID); err == nil {
		clips = []string{voice + "_3.wav", voice + "_1.wav"}
	}
	wav, err := loadCall(d.testdata, clips)
	if err != nil {
		d.log.Error("desk: voice", "voice", voice, "err", err)
		return
	}
	_, err = twiliotest.PlayWAV(d.ctx, cs.URL, wav, &twiliotest.Options{
		AuthToken:        d.twToken,
		CallSID:          cs.CallSID,
		StreamSID:        cs.SID,
		CustomParameters: cs.Parameters,
		Clock:            d.clock,
		Stop:             callCtx.Done(),
	})
	if err != nil && d.ctx.Err() == nil {
		d.log.Debug("desk: simulated stream ended", "call", cs.CallSID, "err", err)
	}
}

// deskState is what the desk page shows.
type deskState struct {
	Token  string      `json:"token"`
	Calls  []deskCall  `json:"calls"`
	Voices []deskVoice `json:"voices"`
	Mode   string      `json:"mode"`
	Modes  []string    `json:"modes"`
}

func (d *desk) state() deskState {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := deskState{Token: d.token, Voices: deskVoices, Mode: d.mode, Modes: deskModes}
	for _, c := range d.calls {
		st.Calls = append(st.Calls, *c)
	}
	return st
}

func (d *desk) handleState(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	agent.WriteJSON(w, http.StatusOK, d.state())
}

// handleNewCall places a new simulated call: {"caller_id","voice"}.
func (d *desk) handleNewCall(w http.ResponseWriter, r *http.Request) {
	var req struct {
		CallerID string `json:"caller_id"`
		Voice    string `json:"voice"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
		agent.WriteError(w, http.StatusBadRequest, agent.CodeBadRequest, err.Error())
		return
	}
	callerID, err := agent.NormalizeCallerID(req.CallerID)
	if err != nil {
		agent.WriteError(w, http.StatusBadRequest, agent.CodeBadCallerID, err.Error())
		return
	}
	if !knownVoice(req.Voice) {
		agent.WriteError(w, http.StatusBadRequest, agent.CodeBadRequest, "unknown voice")
		return
	}
	c := &deskCall{CallSID: twiliotest.SID("CA"), TaskSID: twiliotest.SID("WT"), CallerID: callerID, Voice: req.Voice, Live: true, Note: "placed from the desk"}
	d.mu.Lock()
	if len(d.calls) >= 20 {
		d.mu.Unlock()
		agent.WriteError(w, http.StatusConflict, agent.CodeBusy, "the desk holds at most 20 calls")
		return
	}
	d.calls = append(d.calls, c)
	d.placeCall(c)
	d.mu.Unlock()
	agent.WriteJSON(w, http.StatusCreated, c)
}

// handleCall changes a call: {"voice"} picks who speaks from the next
// operation on; {"live":false} hangs up.
func (d *desk) handleCall(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Voice *string `json:"voice"`
		Live  *bool   `json:"live"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
		agent.WriteError(w, http.StatusBadRequest, agent.CodeBadRequest, err.Error())
		return
	}
	if req.Voice != nil && !knownVoice(*req.Voice) {
		agent.WriteError(w, http.StatusBadRequest, agent.CodeBadRequest, "unknown voice")
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	i := slices.IndexFunc(d.calls, func(c *deskCall) bool { return c.CallSID == r.PathValue("sid") })
	if i < 0 {
		agent.WriteError(w, http.StatusNotFound, agent.CodeNotFound, "no such call")
		return
	}
	c := d.calls[i]
	if req.Voice != nil {
		c.Voice = *req.Voice
	}
	if req.Live != nil && !*req.Live {
		c.Live = false
		c.hangUp() // ends the call's streams
		// The call is completed: Twilio answers so, and refuses streams
		// on it.
		d.tw.SetCallStatus(c.CallSID, twilio.CallCompleted)
		d.tw.SetFaults(d.hangupFaults()...)
	}
	agent.WriteJSON(w, http.StatusOK, c)
}

// hangupFaults makes the fake Twilio answer 404 to streams on the calls
// that were hung up. d.mu is held.
func (d *desk) hangupFaults() []twiliotest.Fault {
	var fs []twiliotest.Fault
	for _, c := range d.calls {
		if !c.Live {
			fs = append(fs, twiliotest.Fault{
				PathPrefix: "/2010-04-01/Accounts/" + d.tw.AccountSID() + "/Calls/" + c.CallSID + "/",
				Status:     http.StatusNotFound, Code: 20404,
				Message: "The requested resource was not found",
			})
		}
	}
	return fs
}

// handleEngine sets the engine mode: {"mode":"normal"|"spoof"|"unreachable"}.
func (d *desk) handleEngine(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Mode string `json:"mode"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
		agent.WriteError(w, http.StatusBadRequest, agent.CodeBadRequest, err.Error())
		return
	}
	if err := d.setMode(req.Mode); err != nil {
		agent.WriteError(w, http.StatusBadRequest, agent.CodeBadRequest, err.Error())
		return
	}
	agent.WriteJSON(w, http.StatusOK, map[string]string{"mode": req.Mode})
}

// setMode switches the engine: spoof changes the offline
// engine's authenticity; unreachable makes the emulator drop every
// connection (a transport error for the REST client).
func (d *desk) setMode(mode string) error {
	if !slices.Contains(deskModes, mode) {
		return fmt.Errorf("unknown engine mode %q", mode)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mode = mode
	d.eng.setMode(mode)
	d.emu.ClearFaults()
	if mode == modeUnreachable {
		d.emu.Inject(daspeaktest.Fault{Drop: true, Times: 1 << 30})
	}
	d.log.Info("desk: engine mode", "mode", mode)
	return nil
}

func knownVoice(v string) bool {
	return slices.ContainsFunc(deskVoices, func(dv deskVoice) bool { return dv.ID == v })
}

// deskEngine is the offline engine with a switch for the authenticity it
// reports, so the desk can show a spoofed voice. In its normal mode it
// passes the offline engine's answer through: anti-spoofing not performed.
type deskEngine struct {
	*offline.Engine // models, calibrations and comparisons as they are
	mu              sync.Mutex
	mode            string
}

func (e *deskEngine) setMode(m string) {
	e.mu.Lock()
	e.mode = m
	e.mu.Unlock()
}

func (e *deskEngine) authenticity(a float64) float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch e.mode {
	case modeSpoof:
		return spoofAuthenticity
	}
	return a
}

func (e *deskEngine) GenerateCredential(ctx context.Context, hash string, audio []byte, opts *daspeak.AudioOptions) (*daspeak.CredentialResult, error) {
	r, err := e.Engine.GenerateCredential(ctx, hash, audio, opts)
	if err == nil && r != nil {
		r.Authenticity = e.authenticity(r.Authenticity)
	}
	return r, err
}

func (e *deskEngine) CompareCredentialToAudio(ctx context.Context, credential string, audio []byte, opts *daspeak.AudioOptions) (*daspeak.CompareResult, error) {
	r, err := e.Engine.CompareCredentialToAudio(ctx, credential, audio, opts)
	if err == nil && r != nil {
		r.Authenticity = e.authenticity(r.Authenticity)
	}
	return r, err
}

//go:embed desk.html
var deskHTML []byte

func serveDesk(w http.ResponseWriter, r *http.Request) {
	setPageHeaders(w.Header(), "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'")
	w.Write(deskHTML)
}

// tellDeleted serves POST {base}/delete with api and, when the answer is
// 200 {"deleted":true,"caller_id":…}, tells onDeleted the caller.
func tellDeleted(api http.Handler, onDeleted func(callerID string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &deleteRecorder{ResponseWriter: w}
		api.ServeHTTP(rec, r)
		if rec.status != http.StatusOK {
			return
		}
		var ans struct {
			Deleted  bool   `json:"deleted"`
			CallerID string `json:"caller_id"`
		}
		if json.Unmarshal(rec.body.Bytes(), &ans) == nil && ans.Deleted && ans.CallerID != "" {
			onDeleted(ans.CallerID)
		}
	})
}

// deleteRecorder passes an answer through and keeps its status and the
// first 4 KiB of its body.
type deleteRecorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (d *deleteRecorder) WriteHeader(code int) {
	if d.status == 0 {
		d.status = code
	}
	d.ResponseWriter.WriteHeader(code)
}

func (d *deleteRecorder) Write(b []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	if n := 4096 - d.body.Len(); n > 0 {
		d.body.Write(b[:min(n, len(b))])
	}
	return d.ResponseWriter.Write(b)
}

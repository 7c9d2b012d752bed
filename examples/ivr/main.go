// Command ivr registers and verifies callers by voice for IVR flows over
// plain HTTP, the way das-Peak Streaming's REST channel is used from an
// IVR: create a session bound to a call, send the call's audio, poll the
// session's status.
//
// Audio reaches a session in one of two ways:
//
//   - a WAV file in the request body (an IVR that records the caller, then
//     uploads the recording): POST /register?caller=ID or
//     POST /verify?caller=ID answers with the result at once;
//   - a Twilio Media Stream bound to the call: POST /verify?caller=ID&call=CA…
//     answers 202 with the session id and the stream parameters, Twilio
//     streams the call to /twilio/media, and the IVR polls
//     GET /verify/{id}. POST /twiml/verify?caller=ID does both steps for a
//     Twilio voice webhook and returns the TwiML.
//
// See README.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/examples/internal/vgexample"
	"github.com/voicegate/voicegate/twilio"
)

const (
	mediaPath    = "/twilio/media"
	paramSession = "session"
	// maxWAV bounds an uploaded recording: 30 s of 16 kHz 16-bit stereo
	// is under 2 MiB; das-Peak takes at most 30 s.
	maxWAV = 8 << 20
	// maxSessions bounds the sessions kept for polling.
	maxSessions = 10000
)

// Session statuses, as an IVR polls them.
const (
	statusWaiting    = "waiting_audio"
	statusProcessing = "processing"
	statusSuccess    = "success"
	statusFailScore  = "fail_score"
	statusFailSpoof  = "fail_spoof"
	statusError      = "error"
)

type config struct {
	Listen      string
	PublicURL   string
	Store       string
	StoreKey    string
	AudioDir    string
	AuthToken   string
	SessionTTL  time.Duration
	Prompt      string
	Pause       int
	QueueFrames int
	Engine      vgexample.EngineConfig
	Session     vgexample.SessionFlags
}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("ivr", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", vgexample.Env("LISTEN", "127.0.0.1:8080"), "address to listen on (env LISTEN)")
	fs.StringVar(&c.PublicURL, "public-url", vgexample.Env("PUBLIC_URL", "http://127.0.0.1:8080"), "public base URL Twilio reaches this server at (env PUBLIC_URL)")
	fs.StringVar(&c.Store, "store", vgexample.Env("CREDSTORE", "memory"), "credential store: memory or sqlite:PATH (env CREDSTORE)")
	fs.StringVar(&c.AudioDir, "audio-dir", os.Getenv("ENROLMENT_AUDIO_DIR"), "directory to keep enrolment audio in (env ENROLMENT_AUDIO_DIR)")
	fs.DurationVar(&c.SessionTTL, "session-ttl", 10*time.Minute, "how long a session can be polled")
	fs.StringVar(&c.Prompt, "prompt", "Please tell us, in a few sentences, the reason for your call.", "what /twiml asks the caller")
	fs.IntVar(&c.Pause, "pause", 15, "seconds /twiml waits for the caller to speak")
	fs.IntVar(&c.QueueFrames, "queue-frames", 0, "frames a media stream buffers for a slow engine (0: 2 s)")
	c.Engine.Flags(fs)
	c.Session.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	c.AuthToken = os.Getenv("TWILIO_AUTH_TOKEN")
	c.StoreKey = os.Getenv("CREDSTORE_KEY")
	return c, nil
}

// session is one register or verify session, polled by the IVR.
type session struct {
	id     string
	op     daspeak.Operation
	caller string
	call   string // Twilio call SID it is bound to; "" for uploads

	mu      sync.Mutex
	status  string
	created time.Time
	ended   time.Time
	last    json.RawMessage // last event, without credential and audio
}

// doc is the JSON an IVR polls.
type doc struct {
	ID        string          `json:"id"`
	Operation string          `json:"operation"`
	CallID    string          `json:"call_id,omitempty"`
	Status    string          `json:"status"`
	CreatedAt time.Time       `json:"created_at"`
	Event     json.RawMessage `json:"event,omitempty"`
	// For sessions waiting for a Twilio stream:
	StreamURL  string            `json:"stream_url,omitempty"`
	Parameters map[string]string `json:"parameters,omitempty"`
}

func (s *session) doc() doc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return doc{ID: s.id, Operation: string(s.op), CallID: s.call, Status: s.status, CreatedAt: s.created, Event: s.last}
}

func (s *session) update(ev daspeak.Event) {
	m := vgexample.EventMessage(ev)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = m.Data
	switch ev.Type {
	case daspeak.EventProgress:
		s.status = statusProcessing
		return
	case daspeak.EventResultSuccess:
		s.status = statusSuccess
	case daspeak.EventResultFailScore:
		s.status = statusFailScore
	case daspeak.EventResultFailSpoof:
		s.status = statusFailSpoof
	default:
		s.status = statusError
	}
	s.ended = time.Now()
}

// claim moves a waiting session to processing; it fails if audio already
// arrived once (a session takes one stream).
func (s *session) claim() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status != statusWaiting {
		return false
	}
	s.status = statusProcessing
	return true
}

type server struct {
	cfg       *config
	log       *slog.Logger
	engine    daspeak.Engine
	store     credstore.Store
	mediaURL  string
	publicURL string // https form, for webhook signatures
	validator *twilio.Validator
	streams   vgexample.Tracker
	refused   atomic.Int64 // media streams refused after the upgrade

	mu       sync.Mutex
	sessions map[string]*session
}

func newServer(cfg *config, log *slog.Logger, engine daspeak.Engine, store credstore.Store) (*server, error) {
	pub, err := url.Parse(strings.TrimSuffix(cfg.PublicURL, "/"))
	if err != nil || pub.Host == "" || (pub.Scheme != "http" && pub.Scheme != "https") {
		return nil, fmt.Errorf("bad -public-url %q: want http(s)://host", cfg.PublicURL)
	}
	ws := *pub
	ws.Scheme = map[string]string{"http": "ws", "https": "wss"}[pub.Scheme]
	s := &server{
		cfg: cfg, log: log, engine: engine, store: store,
		mediaURL: ws.String() + mediaPath, publicURL: pub.String(),
		sessions: map[string]*session{},
	}
	if cfg.AuthToken != "" {
		s.validator = twilio.NewValidator(cfg.AuthToken)
	}
	return s, nil
}

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	for _, op := range []daspeak.Operation{daspeak.OperationRegister, daspeak.OperationVerify} {
		mux.HandleFunc("POST /"+string(op), s.create(op))
		mux.HandleFunc("GET /"+string(op)+"/{id}", s.poll(op))
		mux.HandleFunc("POST /twiml/"+string(op), s.twiml(op))
	}
	mux.HandleFunc("GET /callers/{caller}", s.getCaller)
	mux.HandleFunc("DELETE /callers/{caller}", s.deleteCaller)
	mux.HandleFunc("GET "+mediaPath, s.media)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	return mux
}

// newSession creates and remembers a session, dropping expired ones.
func (s *server) newSession(op daspeak.Operation, caller, call string) (*session, error) {
	b := make([]byte, 16)
	rand.Read(b)
	sess := &session{id: hex.EncodeToString(b), op: op, caller: caller, call: call, status: statusWaiting, created: time.Now()}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for id, x := range s.sessions {
		x.mu.Lock()
		expired := now.Sub(x.created) > s.cfg.SessionTTL && (x.status == statusWaiting || !x.ended.IsZero())
		x.mu.Unlock()
		if expired {
			delete(s.sessions, id)
		}
	}
	if len(s.sessions) >= maxSessions {
		return nil, errors.New("too many sessions")
	}
	s.sessions[sess.id] = sess
	return sess, nil
}

func (s *server) lookup(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[id]
	if sess != nil && time.Since(sess.created) > s.cfg.SessionTTL && sess.doc().Status == statusWaiting {
		return nil
	}
	return sess
}

// prepare checks a register or verify request and returns the credential
// to verify against ("" for register).
func (s *server) prepare(ctx context.Context, w http.ResponseWriter, op daspeak.Operation, caller string) (credstore.Record, bool) {
	if err := credstore.ValidateID(caller); err != nil {
		vgexample.WriteError(w, http.StatusBadRequest, "caller: 1 to 256 bytes of UTF-8 required")
		return credstore.Record{}, false
	}
	if op == daspeak.OperationRegister {
		return credstore.Record{}, true
	}
	rec, err := s.store.Get(ctx, caller)
	if errors.Is(err, credstore.ErrNotFound) {
		vgexample.WriteError(w, http.StatusNotFound, "caller is not registered")
		return rec, false
	}
	if err != nil {
		s.log.Error("credential store", "err", err)
		vgexample.WriteError(w, http.StatusInternalServerError, "credential store unavailable")
		return rec, false
	}
	return rec, true
}

// create handles POST /register and POST /verify: with a WAV body it runs
// the session on the recording and answers with the result; with call=CA…
// and no body it creates a session that waits for the call's Twilio
// stream.
func (s *server) create(op daspeak.Operation) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		caller := q.Get("caller")
		rec, ok := s.prepare(r.Context(), w, op, caller)
		if !ok {
			return
		}
		if call := q.Get("call"); call != "" {
			if len(call) != 34 || !strings.HasPrefix(call, "CA") {
				vgexample.WriteError(w, http.StatusBadRequest, "call: a Twilio call SID (CA…) required")
				return
			}
			sess, err := s.newSession(op, caller, call)
			if err != nil {
				vgexample.WriteError(w, http.StatusServiceUnavailable, err.Error())
				return
			}
			d := sess.doc()
			d.StreamURL = s.mediaURL
			d.Parameters = map[string]string{paramSession: sess.id}
			w.Header().Set("Location", "/"+string(op)+"/"+sess.id)
			vgexample.WriteJSON(w, http.StatusAccepted, d)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWAV))
		if err != nil {
			vgexample.WriteError(w, http.StatusRequestEntityTooLarge, "recording too large")
			return
		}
		wav, err := codec.ParseWAV(body)
		if err != nil {
			vgexample.WriteError(w, http.StatusBadRequest, "body must be a WAV file (or pass call=CA… to bind a Twilio stream)")
			return
		}
		sess, err := s.newSession(op, caller, "")
		if err != nil {
			vgexample.WriteError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		sess.claim()
		// No WebSocket here: the request's context bounds the session.
		s.run(r.Context(), sess, codec.NewWAVFrameReader(wav, 0), rec)
		vgexample.WriteJSON(w, http.StatusOK, sess.doc())
	}
}

// run drives a session on src to its terminal event.
func (s *server) run(ctx context.Context, sess *session, src voicegate.FrameReader, rec credstore.Record) {
	cfg := s.cfg.Session.Config()
	var ds *daspeak.Session
	if sess.op == daspeak.OperationRegister {
		cfg.Store = vgexample.CredentialStore{Store: s.store, AudioDir: s.cfg.AudioDir}
		cfg.CallerID = sess.caller
		ds, _ = daspeak.Register(src, s.engine, cfg)
	} else {
		if cfg.ModelHash == "" {
			cfg.ModelHash = rec.ModelHash
		}
		ds, _ = daspeak.Verify(src, s.engine, rec.Credential, cfg)
	}
	for {
		ev, err := ds.Next(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				sess.update(daspeak.Event{Type: daspeak.EventErrorAudio, Operation: sess.op, Err: err})
			}
			break
		}
		sess.update(ev)
		if ev.Type == daspeak.EventErrorStore {
			s.log.Error("credential not stored", "session", sess.id, "err", ev.Err)
		}
		if ev.IsTerminal() {
			break
		}
	}
	d := sess.doc()
	s.log.Info("session ended", "session", sess.id, "operation", sess.op, "call", sess.call, "status", d.Status)
}

func (s *server) poll(op daspeak.Operation) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess := s.lookup(r.PathValue("id"))
		if sess == nil || sess.op != op {
			vgexample.WriteError(w, http.StatusNotFound, "no such session")
			return
		}
		vgexample.WriteJSON(w, http.StatusOK, sess.doc())
	}
}

// twiml is a Twilio voice webhook: it creates a session bound to the
// call and answers with TwiML that streams the caller's audio to it.
func (s *server) twiml(op daspeak.Operation) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.validator == nil {
			http.Error(w, "TWILIO_AUTH_TOKEN not configured", http.StatusServiceUnavailable)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := s.validator.ValidateRequest(r, s.publicURL+r.URL.RequestURI()); err != nil {
			s.log.Warn("webhook signature refused", "path", r.URL.Path)
			http.Error(w, "invalid signature", http.StatusForbidden)
			return
		}
		call := r.PostForm.Get("CallSid")
		caller := r.URL.Query().Get("caller")
		if caller == "" {
			caller = r.PostForm.Get("From")
		}
		if _, ok := s.prepare(r.Context(), w, op, caller); !ok {
			return
		}
		sess, err := s.newSession(op, caller, call)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		doc, err := twilio.NewTwiML().
			StartStream(twilio.StreamNoun{
				Name: "voicegate-" + sess.id, URL: s.mediaURL, Track: twilio.TrackInbound,
				Parameters: []twilio.Parameter{{Name: paramSession, Value: sess.id}},
			}).
			Say(s.cfg.Prompt).
			Pause(s.cfg.Pause).
			String()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		w.Header().Set("X-Voicegate-Session", sess.id)
		io.WriteString(w, doc)
	}
}

// media is the Media Streams WebSocket endpoint. After the upgrade it uses
// the tracker's context, never r.Context().
func (s *server) media(w http.ResponseWriter, r *http.Request) {
	ctx, done, ok := s.streams.Start()
	if !ok {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer done()
	if s.cfg.AuthToken == "" {
		http.Error(w, "TWILIO_AUTH_TOKEN not configured", http.StatusServiceUnavailable)
		return
	}
	st, err := twilio.Accept(w, r, &twilio.AcceptOptions{
		PublicURL: s.mediaURL, AuthTokens: []string{s.cfg.AuthToken}, QueueFrames: s.cfg.QueueFrames,
	})
	if err != nil {
		s.log.Warn("media stream refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	defer st.Close()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	start, err := st.Start(sctx)
	cancel()
	if err != nil {
		s.log.Warn("media stream without start", "err", err)
		return
	}
	sess := s.lookup(start.CustomParameters[paramSession])
	// The session id is unguessable; the call SID must also match the
	// call the session was created for, and a session takes one stream.
	if sess == nil || sess.call != start.CallSID || !sess.claim() {
		s.refused.Add(1)
		s.log.Warn("media stream for no waiting session", "call", start.CallSID, "stream", start.StreamSID)
		return
	}
	var rec credstore.Record
	if sess.op == daspeak.OperationVerify {
		if rec, err = s.store.Get(ctx, sess.caller); err != nil {
			sess.update(daspeak.Event{Type: daspeak.EventErrorParameters, Operation: sess.op, Err: errors.New("caller is not registered")})
			return
		}
	}
	s.run(ctx, sess, st, rec)
}

func (s *server) getCaller(w http.ResponseWriter, r *http.Request) {
	rec, err := s.store.Get(r.Context(), r.PathValue("caller"))
	switch {
	case errors.Is(err, credstore.ErrNotFound) || errors.Is(err, credstore.ErrInvalidID):
		vgexample.WriteJSON(w, http.StatusOK, map[string]any{"registered": false})
	case err != nil:
		s.log.Error("credential store", "err", err)
		vgexample.WriteError(w, http.StatusInternalServerError, "credential store unavailable")
	default:
		vgexample.WriteJSON(w, http.StatusOK, map[string]any{"registered": true, "model_hash": rec.ModelHash, "updated_at": rec.UpdatedAt})
	}
}

func (s *server) deleteCaller(w http.ResponseWriter, r *http.Request) {
	err := s.store.Delete(r.Context(), r.PathValue("caller"))
	switch {
	case errors.Is(err, credstore.ErrInvalidID):
		vgexample.WriteError(w, http.StatusBadRequest, "bad caller id")
	case err != nil:
		s.log.Error("credential store", "err", err)
		vgexample.WriteError(w, http.StatusInternalServerError, "credential store unavailable")
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func run(ctx context.Context, args []string, logOut io.Writer, listening func(net.Addr)) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(logOut, nil))
	engine, desc, err := cfg.Engine.New()
	if err != nil {
		return err
	}
	store, closeStore, err := vgexample.OpenStore(ctx, cfg.Store, cfg.StoreKey)
	if err != nil {
		return err
	}
	defer closeStore()
	s, err := newServer(cfg, log, engine, store)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	log.Info("voice biometrics for IVRs", "engine", desc, "store", strings.SplitN(cfg.Store, ":", 2)[0],
		"media_url", s.mediaURL, "twilio", strconv.FormatBool(cfg.AuthToken != ""))
	if listening != nil {
		listening(ln.Addr())
	}
	return vgexample.Serve(ctx, log, ln, s.handler(), 0, s.streams.Shutdown)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "ivr:", err)
		os.Exit(1)
	}
}

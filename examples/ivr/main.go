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
//     Twilio voice webhook and returns the TwiML; when the result is known
//     Twilio requests /twiml/result, which answers TwiML that speaks the
//     result and redirects the call to -next-url with the result.
//
// The IVR endpoints require HTTP Basic or an API key (IVR_BASIC_USER and
// IVR_BASIC_PASSWORD, IVR_API_KEY); the Twilio endpoints require Twilio's
// request signature (TWILIO_AUTH_TOKEN). Without IVR credentials the
// server refuses to start, unless -insecure-loopback is given and it
// listens on a loopback address; it then answers only requests addressed
// to a loopback name and not forwarded by a proxy.
//
// Without -nats the server is one node: sessions live in its memory. With
// -nats every node of a deployment shares them over NATS JetStream
// (daspeak/agent/natsbus, the agent servers' operation log), so a
// session's stream, polls and /twiml/result may reach any node, and a
// caller's registration is locked across the nodes (natsbus.Bus.Lock).
//
// GET /healthz, GET /readyz and GET /metrics (Prometheus, the agent
// servers' daspeak/agent/metrics plus voicegate_ivr_*) answer without
// authentication, by design and logged at start: they act on no caller.
// On SIGTERM the server drains: /readyz answers 503 and new sessions are
// refused (503, or TwiML with voicegate_status=unavailable) while running
// ones finish for -drain-timeout; the rest end with error-cancelled.
//
// See README.md.
package main

import (
	"context"
	"crypto/sha256"
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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/daspeak/agent/metrics"
	"github.com/voicegate/voicegate/daspeak/agent/natsbus"
	"github.com/voicegate/voicegate/daspeak/agent/oplog"
	"github.com/voicegate/voicegate/twilio"
)

const (
	mediaPath    = "/twilio/media"
	resultPath   = "/twiml/result"
	paramSession = "session"
	// maxWAV bounds an uploaded recording: 30 s of 48 kHz 32-bit float
	// stereo (what browsers export) is 11.5 MB; das-Peak takes at most
	// 30 s.
	maxWAV = 16 << 20
	// maxSessions bounds the sessions kept for polling.
	maxSessions = 10000
	// resultWait bounds how long /twiml/result waits for a session that
	// is still being scored when Twilio asks for it.
	resultWait = 10 * time.Second
)

// Session statuses, as an IVR polls them.
const (
	statusWaiting    = "waiting_audio"
	statusProcessing = "processing"
	statusSuccess    = "success"
	statusFailScore  = "fail_score"
	statusFailSpoof  = "fail_spoof"
	statusError      = "error"
	// Statuses only a voice webhook reports, when no session was created.
	statusNotRegistered     = "not_registered"
	statusAlreadyRegistered = "already_registered"
	statusBadCaller         = "bad_caller"
	// statusUnavailable: the node is draining (shutting down); the call
	// may try again, reaching another node.
	statusUnavailable = "unavailable"
)

var (
	errStoreFailed = errors.New("the credential could not be stored; nothing was registered")
	// errStoreUnknown: the store's answer was lost (an error or a timeout
	// after the write may have landed) and reading the caller back failed
	// too, so whether the credential was kept is not known.
	errStoreUnknown      = errors.New("the credential store did not confirm the registration and could not be read back: the caller may or may not be registered; look the caller up before registering again")
	errAlreadyRegistered = errors.New("caller is already registered; DELETE /callers/{caller} first")
	// errDraining refuses new sessions while the server drains.
	errDraining = errors.New("the server is shutting down (draining) and takes no new sessions: send the request again, to another node")
	// errForeignStream refuses a stream whose start names another call
	// than the session's (or a session bound to no call).
	errForeignStream = errors.New("the stream's callSid is not the session's call")
	// errShutDown ends a session the drain deadline cut.
	errShutDown = errors.New("the server shut down before the session ended (the drain deadline passed)")
)

type config struct {
	Listen    string
	PublicURL string
	// Store: -store, -audio-dir, CREDSTORE_KEY, ENROLMENT_AUDIO_KEY.
	Store            agent.StoreConfig
	AuthToken        string
	APIKey           string
	BasicUser        string
	BasicPassword    string
	InsecureLoopback bool
	NextURL          string
	SayResult        bool
	SessionTTL       time.Duration
	Prompt           string
	QueueFrames      int
	AuthFailDelay    time.Duration // authFailDelay unless a test sets it
	Engine           agent.EngineConfig
	Session          agent.SessionFlags

	// -nats: run as one node of many.
	NATS       string
	NATSPrefix string
	NATSLease  time.Duration
	Node       string

	// Ops keeps the sessions (serve sets a natsbus.Bus with -nats); nil:
	// an oplog.Memory, this process only.
	Ops oplog.Log
	// MaxSessions bounds the sessions waiting for a stream that this node
	// created (0: maxSessions).
	MaxSessions int
	// DrainTimeout is how long running sessions may finish on SIGTERM
	// (-drain-timeout) before they are ended with error-cancelled.
	DrainTimeout time.Duration
}

// defaultNATSPrefix names the subjects, stream and buckets the IVR nodes
// share: not the agent servers' (natsbus.DefaultPrefix), whose nodes
// would take IVR sessions for their own operations.
const defaultNATSPrefix = "voicegate_ivr"

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("ivr", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", agent.Env("LISTEN", "127.0.0.1:8080"), "address to listen on (env LISTEN)")
	fs.StringVar(&c.PublicURL, "public-url", os.Getenv("PUBLIC_URL"), "public base URL Twilio reaches this server at, e.g. https://ivr.example.com (env PUBLIC_URL; default http://<listen address>)")
	c.Store.Flags(fs) // -store, -audio-dir (an existing writable directory)
	fs.BoolVar(&c.InsecureLoopback, "insecure-loopback", false, "run without "+envAPIKey+"/"+envBasicUser+" on a loopback -listen address (local tests only)")
	fs.StringVar(&c.NextURL, "next-url", os.Getenv("IVR_NEXT_URL"), "URL the call is redirected to (POST) with the result after a voice webhook; empty: hang up (env IVR_NEXT_URL)")
	fs.BoolVar(&c.SayResult, "say-result", true, "speak the result to the caller before the redirect")
	fs.DurationVar(&c.SessionTTL, "session-ttl", 10*time.Minute, "how long a session can be polled")
	fs.StringVar(&c.Prompt, "prompt", "Please tell us, in a few sentences, the reason for your call.", "what /twiml asks the caller")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long running sessions may finish before they are ended with error-cancelled; new sessions are refused meanwhile and /readyz answers 503")
	fs.IntVar(&c.QueueFrames, "queue-frames", 0, "frames a media stream buffers for a slow engine (0: 2 s)")
	fs.StringVar(&c.NATS, "nats", os.Getenv("NATS_URL"), "NATS server URL(s), e.g. nats://127.0.0.1:4222: run as one node of many behind a load balancer, sharing sessions over NATS JetStream (env NATS_URL; credentials from NATS_CREDS, NATS_NKEY, NATS_USER/NATS_PASSWORD or NATS_TOKEN); without it sessions live in this process only")
	fs.StringVar(&c.NATSPrefix, "nats-prefix", agent.Env("NATS_PREFIX", defaultNATSPrefix), "-nats: prefix of the subjects, stream and buckets the nodes share (env NATS_PREFIX)")
	fs.DurationVar(&c.NATSLease, "nats-lease", natsbus.DefaultLease, "-nats: how long a node that stopped renewing keeps its sessions before another node ends them")
	fs.StringVar(&c.Node, "node", os.Getenv("NODE_NAME"), "-nats: this node's name (env NODE_NAME; default host, pid and random)")
	c.Engine.Flags(fs)
	c.Session.Flags(fs)
	if err := agent.ParseFlags(fs, args); err != nil {
		return nil, err
	}
	c.AuthToken = os.Getenv("TWILIO_AUTH_TOKEN")
	c.APIKey = os.Getenv(envAPIKey)
	c.BasicUser = os.Getenv(envBasicUser)
	c.BasicPassword = os.Getenv(envBasicPass)
	c.AuthFailDelay = authFailDelay
	return c, nil
}

// checkAudioDir makes sure enrolment audio can be written before the
// first caller registers: dir must exist, be a directory and be writable.
func checkAudioDir(dir string) error {
	if dir == "" {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("-audio-dir %s: %w; create it (mkdir -p %s) or leave -audio-dir empty to keep no enrolment audio", dir, err, dir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("-audio-dir %s is not a directory; point it at a directory or leave it empty", dir)
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("-audio-dir %s is not writable by this process (%w); fix its owner or mode, or choose another directory", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// normalizeCaller returns the E.164 form of a caller id from a query, a
// path or Twilio's From. An unencoded "+" in a query arrives as a space;
// agent.NormalizeCallerID restores it.
func normalizeCaller(id string) (string, error) {
	n, err := agent.NormalizeCallerID(id)
	if err != nil {
		return "", err
	}
	return n, credstore.ValidateID(n)
}

type server struct {
	cfg       *config
	log       *slog.Logger
	engine    daspeak.Engine
	creds     *agent.CredentialStore // Delete removes the enrolment audio too
	auth      *authenticator
	mediaURL  string
	publicURL string // https form, for webhook signatures
	validator *twilio.Validator
	// streams tracks the running sessions (media streams and uploads):
	// drain waits for them, then ends the rest.
	streams   agent.Tracker
	draining  atomic.Bool
	met       *metrics.Metrics
	refused   atomic.Int64 // media streams refused after the upgrade
	authFails atomic.Int64

	regMu sync.Mutex // serialises the existence check and the store of a registration on this node (lockCaller)

	// ops keeps the sessions: cfg.Ops, or an oplog.Memory.
	ops oplog.Log

	mu      sync.Mutex
	waiting map[string]time.Time // sessions created here waiting for a stream, by id: creation time
}

func newServer(cfg *config, log *slog.Logger, engine daspeak.Engine, creds *agent.CredentialStore) (*server, error) {
	if creds == nil || creds.Store == nil {
		return nil, errors.New("no credential store")
	}
	pub, err := url.Parse(strings.TrimSuffix(cfg.PublicURL, "/"))
	if err != nil || pub.Host == "" || (pub.Scheme != "http" && pub.Scheme != "https") {
		return nil, fmt.Errorf("bad -public-url %q: want http(s)://host", cfg.PublicURL)
	}
	if cfg.NextURL != "" {
		if u, err := url.Parse(cfg.NextURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("bad -next-url %q: want an absolute http(s) URL", cfg.NextURL)
		}
	}
	auth, err := newAuthenticator(cfg.APIKey, cfg.BasicUser, cfg.BasicPassword, cfg.AuthFailDelay)
	if err != nil {
		return nil, err
	}
	ws := *pub
	ws.Scheme = map[string]string{"http": "ws", "https": "wss"}[pub.Scheme]
	s := &server{
		cfg: cfg, log: log, engine: engine, creds: creds, auth: auth,
		mediaURL: ws.String() + mediaPath, publicURL: pub.String(),
		ops: cfg.Ops, waiting: map[string]time.Time{},
	}
	if s.ops == nil {
		s.ops = oplog.NewMemory(cfg.SessionTTL, s.maxSessions())
	}
	s.met = metrics.New()
	s.engine = agent.ObserveEngine(engine, s.met)
	if cfg.Engine.Limiter != nil {
		s.met.WatchLimiter(cfg.Engine.Limiter)
	}
	s.registerMetrics()
	if auth != nil {
		auth.failures = func(r *http.Request) {
			s.authFails.Add(1)
			// Neither the credentials nor the caller id in the path.
			s.log.Warn("authentication failed", "remote", r.RemoteAddr, "route", r.Pattern)
		}
	}
	if cfg.AuthToken != "" {
		s.validator = twilio.NewValidator(cfg.AuthToken)
	}
	return s, nil
}

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	// IVR endpoints: HTTP Basic or API key.
	api := func(pattern string, h http.HandlerFunc) {
		if s.auth == nil { // -insecure-loopback
			mux.Handle(pattern, localOnly(h, s.log))
			return
		}
		mux.Handle(pattern, s.auth.wrap(h))
	}
	for _, op := range []daspeak.Operation{daspeak.OperationRegister, daspeak.OperationVerify} {
		api("POST /"+string(op), s.create(op))
		api("GET /"+string(op)+"/{id}", s.poll(op))
		// Twilio endpoints: Twilio's request signature.
		mux.HandleFunc("POST /twiml/"+string(op), s.twiml(op))
	}
	api("GET /callers/{caller}", s.getCaller)
	api("DELETE /callers/{caller}", s.deleteCaller)
	mux.HandleFunc("POST "+resultPath, s.result)
	mux.HandleFunc("GET "+resultPath, s.result)
	mux.HandleFunc("GET "+mediaPath, s.media)
	// Unauthenticated on purpose (load balancers and Prometheus call
	// them): they act on no caller and return no caller data; serve logs
	// them at start (openPaths).
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /metrics", s.met.Handler())
	// The mux's own answers (no such path, wrong method, a path it would
	// redirect to its canonical form) in JSON like every other IVR API
	// error; Allow stays.
	return agent.JSONErrors(mux)
}

// check looks up the caller for a register or verify request. It returns
// the credential to verify against (empty for register) and, on refusal,
// the HTTP status and the status word a voice webhook reports.
func (s *server) check(ctx context.Context, op daspeak.Operation, caller string) (rec credstore.Record, code int, status string, err error) {
	rec, err = s.creds.Get(ctx, caller)
	switch {
	case op == daspeak.OperationRegister && err == nil:
		return credstore.Record{}, http.StatusConflict, statusAlreadyRegistered, errAlreadyRegistered
	case op == daspeak.OperationRegister && errors.Is(err, credstore.ErrNotFound):
		return credstore.Record{}, 0, "", nil
	case errors.Is(err, credstore.ErrNotFound):
		return rec, http.StatusNotFound, statusNotRegistered, errors.New("caller is not registered")
	case err != nil:
		s.log.Error("credential store", "err", err)
		return rec, http.StatusInternalServerError, statusError, errors.New("credential store unavailable")
	}
	return rec, 0, "", nil
}

// uploadDiscardTimeout bounds discardUpload.
const uploadDiscardTimeout = 3 * time.Second

// discardUpload reads and discards the body of a request refused before
// its upload was read, up to maxWAV bytes and for at most
// uploadDiscardTimeout, so that a client still sending it reads the
// answer: the server would otherwise close the connection with the body
// unread (net/http reads at most 256 KiB of it), and the client, still
// writing, gets a broken pipe or a reset instead of the answer. A client
// that asked "Expect: 100-continue" has not sent the body and is not
// asked to.
func discardUpload(w http.ResponseWriter, r *http.Request) {
	if strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		return
	}
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(uploadDiscardTimeout))
	io.Copy(io.Discard, io.LimitReader(r.Body, maxWAV))
	rc.SetReadDeadline(time.Time{})
}

// create handles POST /register and POST /verify: with a WAV body it runs
// the session on the recording and answers with the result; with call=CA…
// and no body it creates a session that waits for the call's Twilio
// stream.
func (s *server) create(op daspeak.Operation) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			discardUpload(w, r)
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, errDraining.Error())
			return
		}
		// A refusal before the upload is read reads it first (discardUpload).
		refuse := func(code int, msg string) {
			discardUpload(w, r)
			writeError(w, code, msg)
		}
		q := r.URL.Query()
		// A parameter given twice has no one meaning: never pick one.
		for _, name := range []string{"caller", "call", "channel"} {
			if len(q[name]) > 1 {
				refuse(http.StatusBadRequest, name+": given more than once")
				return
			}
		}
		caller, err := normalizeCaller(q.Get("caller"))
		if err != nil {
			refuse(http.StatusBadRequest, "caller: an E.164 number (+ and 2 to 15 digits) required; encode + as %2B")
			return
		}
		rec, code, word, err := s.check(r.Context(), op, caller)
		if err != nil {
			discardUpload(w, r)
			writeErrorCode(w, code, word, err.Error())
			return
		}
		if call := q.Get("call"); call != "" {
			if len(call) != 34 || !strings.HasPrefix(call, "CA") {
				writeError(w, http.StatusBadRequest, "call: a Twilio call SID (CA…) required")
				return
			}
			// Without it /twilio/media refuses every stream: a session
			// made now would wait for a stream that cannot come.
			if s.cfg.AuthToken == "" {
				writeError(w, http.StatusServiceUnavailable, "call=CA… needs TWILIO_AUTH_TOKEN, which is not set: the server cannot accept Twilio's media stream without it")
				return
			}
			sess, created, err := s.newSession(r.Context(), op, caller, call, sessionSpec{})
			if err != nil {
				writeError(w, http.StatusServiceUnavailable, err.Error())
				return
			}
			d := doc{ID: sess.id, Operation: string(op), CallID: call, Status: statusWaiting, CreatedAt: created}
			d.StreamURL = s.mediaURL
			d.Parameters = map[string]string{paramSession: sess.id}
			w.Header().Set("Location", "/"+string(op)+"/"+sess.id)
			agent.WriteJSON(w, http.StatusAccepted, d)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWAV))
		if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("recording too large: at most %d bytes", tooLarge.Limit))
			return
		}
		if err != nil {
			// The client went away or stopped sending: never verify on
			// part of the recording.
			writeError(w, http.StatusBadRequest, "the recording is cut short (the upload was truncated): "+err.Error())
			return
		}
		if len(body) == 0 {
			writeError(w, http.StatusBadRequest, "empty body: send a WAV recording, or pass call=CA… to bind a Twilio stream")
			return
		}
		parsed, err := codec.ParseWAV(body)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			// A truncated upload: never verify on part of the recording.
			writeError(w, http.StatusBadRequest, "the recording is cut short (the upload was truncated): "+err.Error())
			return
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "body must be a WAV file: PCM 16-bit, 32/64-bit float, μ-law or A-law (or pass call=CA… to bind a Twilio stream): "+err.Error())
			return
		}
		audio, info, err := prepareUpload(parsed, q.Get("channel"))
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		// The session runs for the request, tracked so that a drain
		// waits for it (and ends it with error-cancelled at its deadline).
		tctx, done, ok := s.streams.Start()
		if !ok {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, errDraining.Error())
			return
		}
		defer done()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(tctx, cancel)()
		sess, _, err := s.newSession(ctx, op, caller, "", sessionSpec{Input: &info})
		if err == nil {
			var created oplog.Op
			if created, err = s.ops.Get(r.Context(), sess.id); err == nil {
				sess, err = s.take(r.Context(), created)
			}
		}
		if err != nil {
			s.log.Error("session", "err", err)
			writeError(w, http.StatusServiceUnavailable, "the session could not be recorded")
			return
		}
		// No WebSocket here: the request's context bounds the session.
		s.run(ctx, sess, codec.NewWAVFrameReader(audio, 0), rec)
		d, err := s.doc(context.WithoutCancel(r.Context()), sess.id)
		if err != nil {
			s.log.Error("session", "session", sess.id, "err", err)
			writeError(w, http.StatusServiceUnavailable, "the session's result could not be read")
			return
		}
		if d.Status == statusAlreadyRegistered {
			// Another registration of the caller stored first: the
			// answer a register of a registered caller gets.
			writeErrorCode(w, http.StatusConflict, statusAlreadyRegistered, errAlreadyRegistered.Error())
			return
		}
		agent.WriteJSON(w, http.StatusOK, d)
	}
}

// registerOnce is the credential store of a register session: it refuses
// to replace an existing credential (the caller must be deleted first),
// checking and storing under the caller's lock (lockCaller), so two
// registrations of the same caller cannot both succeed, on one node or
// on several. The refusal wraps errAlreadyRegistered,
// agent.ErrAlreadyRegistered (metrics reason already_registered, not
// store) and daspeak.ErrAlreadyStored (not retried); the session then
// ends as a register refused at its start would: already_registered
// (update), logged at Warn (an expected outcome, not a fault).
type registerOnce struct {
	s *server
	// unsure: an earlier attempt's store may have landed (errStoreUnknown)
	// and nothing read since told otherwise. daspeak calls the store
	// again after a failure, one attempt at a time.
	unsure bool
}

// StoreCredential stores the credential unless the caller has one.
//
// Once the lock is taken the store runs to completion on the lock's own
// context (lockCaller: bounded by the hold, not cut by ctx, so not by a
// drain). When the store fails, the caller is read back: a credential
// that landed after all (its answer lost) is success; one not there is
// errStoreFailed's "nothing was registered"; a read that fails too
// returns errStoreUnknown, as does every later failure until a read
// tells. A credential equal to the one being stored is this
// registration's own earlier attempt: success.
func (r *registerOnce) StoreCredential(ctx context.Context, callerID, credential, modelHash string, audio []byte) error {
	ctx, unlock, err := r.s.lockCaller(ctx, callerID)
	if err != nil {
		return r.fail(err)
	}
	defer unlock()
	if rec, err := r.s.creds.Get(ctx, callerID); err == nil {
		r.unsure = false
		if rec.Credential == credential && rec.ModelHash == modelHash {
			return nil // this registration's own earlier attempt
		}
		// Permanent: the session does not retry it. agent.ErrAlreadyRegistered
		// gives the metrics its own reason (agent.ReasonOf).
		return fmt.Errorf("%w (%w, %w)", errAlreadyRegistered, agent.ErrAlreadyRegistered, daspeak.ErrAlreadyStored)
	} else if !errors.Is(err, credstore.ErrNotFound) {
		return r.fail(err)
	}
	r.unsure = false
	serr := r.s.creds.StoreCredential(ctx, callerID, credential, modelHash, audio)
	if serr == nil {
		return nil
	}
	// Read back on a context of its own: the lock's may be what ended.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeReadBack)
	defer cancel()
	rec, err := r.s.creds.Get(rctx, callerID)
	switch {
	case err == nil && rec.Credential == credential && rec.ModelHash == modelHash:
		r.s.log.Warn("the credential store answered an error but kept the credential", "err", serr)
		return nil
	case err == nil || errors.Is(err, credstore.ErrNotFound):
		return serr
	}
	r.unsure = true
	return fmt.Errorf("%w: %w; reading back: %w", errStoreUnknown, serr, err)
}

// fail returns err, as errStoreUnknown while an earlier attempt may have
// landed.
func (r *registerOnce) fail(err error) error {
	if r.unsure && !errors.Is(err, errStoreUnknown) {
		return fmt.Errorf("%w: %w", errStoreUnknown, err)
	}
	return err
}

// storeReadBack bounds the read that checks a failed store.
const storeReadBack = 5 * time.Second

// callerLocker locks a name across the nodes of a deployment:
// natsbus.Bus.Lock with -nats.
type callerLocker interface {
	Lock(ctx context.Context, name string, hold time.Duration) (unlock func(), err error)
}

// Bounds of a caller's lock: how long a registration or deletion waits
// for it, and how long it may hold it (after which a waiting node takes
// it over, as it does at once when the holder's node stopped).
const (
	callerLockWait = 10 * time.Second
	callerLockHold = 30 * time.Second
)

// lockCaller takes the caller's lock, under which a registration checks
// and stores a credential and a deletion removes it with its audio. On
// one node it is a mutex (regMu); with -nats it is also the deployment's
// lock of that caller (a key named with a hash of the caller id in the
// bus's key-value bucket), so nodes sharing a credential store never
// register one caller twice. The returned ctx is bounded by the hold (it
// starts before the lock is taken, so it ends before the hold does) and
// not by ctx: what runs under the lock runs to completion, not cut
// part-way by the caller's cancellation or a drain.
func (s *server) lockCaller(ctx context.Context, caller string) (context.Context, func(), error) {
	release := func() {}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callerLockHold)
	if l, ok := s.ops.(callerLocker); ok {
		sum := sha256.Sum256([]byte("voicegate-ivr-register\x00" + caller))
		wctx, cancelWait := context.WithTimeout(ctx, callerLockWait)
		unlock, err := l.Lock(wctx, "ivr-caller-"+hex.EncodeToString(sum[:16]), callerLockHold)
		cancelWait()
		if err != nil {
			cancel()
			return nil, nil, fmt.Errorf("the caller's registration lock could not be taken: %w", err)
		}
		release = unlock
	}
	s.regMu.Lock()
	return hctx, func() {
		s.regMu.Unlock()
		release()
		cancel()
	}, nil
}

// errorAudio is the error-audio event of an operation whose audio failed
// outside its daspeak session (a stream refused for its media format, the
// session's audio gone, a node stopped): net_speech_needed is the
// configured value, as in the error-audio events of a session.
func (s *server) errorAudio(op daspeak.Operation, err error) daspeak.Event {
	return daspeak.Event{Type: daspeak.EventErrorAudio, Operation: op, Err: err, NetSpeechNeeded: s.cfg.Session.Config().NetSpeechNeeded()}
}

// refuseReason is the close reason (status 1008) of a stream refused for
// its session: short, and it says nothing of which check failed.
const refuseReason = "no session waiting for this stream"

// run drives a session on src to its terminal event.
func (s *server) run(ctx context.Context, sess *session, src voicegate.FrameReader, rec credstore.Record) {
	cfg := s.cfg.Session.Config()
	var ds *daspeak.Session
	if sess.op == daspeak.OperationRegister {
		cfg.Store = &registerOnce{s: s}
		cfg.CallerID = sess.caller
		ds, _ = daspeak.Register(src, s.engine, cfg)
	} else {
		if cfg.ModelHash == "" {
			cfg.ModelHash = rec.ModelHash
		}
		ds, _ = daspeak.Verify(src, s.engine, rec.Credential, cfg)
	}
	if s.met != nil {
		s.met.OperationStarted(sess.op)
	}
	var last daspeak.Event
	for {
		ev, err := ds.Next(ctx)
		// Cut by the drain deadline (the engine or the audio gave up on
		// ctx): error-cancelled, saying so, unless a result came.
		// Never error-store: the store ran on its own context to its
		// end, and error-store says what it knows (sessions.update).
		if ctx.Err() != nil && s.draining.Load() && (err != nil || ev.IsTerminal() && !isResult(ev.Type) && ev.Type != daspeak.EventErrorStore) {
			last = daspeak.Event{Type: agent.EventErrorCancelled, Operation: sess.op, Err: errShutDown}
			sess.update(ctx, last)
			break
		}
		if err != nil {
			// io.EOF after the terminal event, or ctx ended: either way
			// the session ends here, never without a status.
			last = s.errorAudio(sess.op, err)
			sess.update(ctx, last)
			break
		}
		last = ev
		if ev.Type == daspeak.EventErrorStore && errors.Is(ev.Err, errAlreadyRegistered) {
			s.log.Warn("another registration of the caller stored first; this one was not stored", "session", sess.id)
		} else if ev.Type == daspeak.EventErrorStore {
			s.log.Error("credential not stored", "session", sess.id, "err", ev.Err)
		}
		sess.update(ctx, ev)
		if ev.IsTerminal() || sess.ended {
			break
		}
	}
	if s.met != nil {
		s.met.OperationEnded(sess.op, last.Type, agent.ReasonOf(last.Type, last.Err))
	}
	d, _ := s.doc(context.WithoutCancel(ctx), sess.id)
	attrs := []any{"session", sess.id, "operation", sess.op, "call", sess.call, "status", d.Status}
	if last.Err != nil {
		attrs = append(attrs, "err", last.Err)
	}
	s.log.Info("session ended", attrs...)
}

// isResult reports whether t is a biometric result (not an error).
func isResult(t daspeak.EventType) bool {
	return t == daspeak.EventResultSuccess || t == daspeak.EventResultFailScore || t == daspeak.EventResultFailSpoof
}

func (s *server) poll(op daspeak.Operation) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d, err := s.doc(r.Context(), r.PathValue("id"))
		switch {
		case errors.Is(err, errNoSession) || err == nil && d.Operation != string(op):
			writeError(w, http.StatusNotFound, "no such session")
		case err != nil:
			s.log.Error("reading a session", "err", err)
			writeError(w, http.StatusServiceUnavailable, "the session could not be read")
		default:
			agent.WriteJSON(w, http.StatusOK, d)
		}
	}
}

// validTwilio checks a Twilio webhook's signature. On failure it answers
// and returns false: 503 when no auth token is configured, 403 for a bad
// signature (the request is not from Twilio, so it gets no TwiML).
func (s *server) validTwilio(w http.ResponseWriter, r *http.Request) bool {
	if s.validator == nil {
		writeError(w, http.StatusServiceUnavailable, "TWILIO_AUTH_TOKEN not configured")
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	start := time.Now()
	if err := s.validator.ValidateRequest(r, s.publicURL+r.URL.RequestURI()); err != nil {
		s.log.Warn("webhook signature refused", "path", r.URL.Path)
		// The same minimum delay as every IVR authentication failure.
		t := time.NewTimer(s.cfg.AuthFailDelay - time.Since(start))
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
		writeError(w, http.StatusForbidden, "invalid signature")
		return false
	}
	return true
}

// twiml is a Twilio voice webhook: it creates a session bound to the
// call and answers TwiML that prompts the caller and streams the call to
// the session with <Connect action>, so that Twilio requests /twiml/result
// when the server closes the stream with the result. Every answer to a
// signed request is TwiML.
func (s *server) twiml(op daspeak.Operation) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.validTwilio(w, r) {
			return
		}
		if s.draining.Load() {
			s.answer(w, op, statusUnavailable, "")
			return
		}
		call := r.PostForm.Get("CallSid")
		raw := r.URL.Query().Get("caller")
		if raw == "" {
			raw = r.PostForm.Get("From")
		}
		caller, err := normalizeCaller(raw)
		if err != nil {
			s.answer(w, op, statusBadCaller, "")
			return
		}
		if _, _, status, err := s.check(r.Context(), op, caller); err != nil {
			s.answer(w, op, status, "")
			return
		}
		if !strings.HasPrefix(call, "CA") {
			s.answer(w, op, statusError, "")
			return
		}
		sess, _, err := s.newSession(r.Context(), op, caller, call, sessionSpec{})
		if err != nil {
			s.log.Error("session", "err", err)
			s.answer(w, op, statusError, "")
			return
		}
		action := s.publicURL + resultPath + "?" + url.Values{paramSession: {sess.id}}.Encode()
		doc, err := twilio.NewTwiML().
			Say(s.cfg.Prompt).
			ConnectStreamWith(twilio.StreamNoun{
				Name: "voicegate-" + sess.id, URL: s.mediaURL,
				Parameters: []twilio.Parameter{{Name: paramSession, Value: sess.id}},
			}, twilio.ConnectOptions{Action: action, Method: http.MethodPost}).
			String()
		if err != nil {
			s.log.Error("twiml", "err", err)
			s.answer(w, op, statusError, "")
			return
		}
		w.Header().Set("X-Voicegate-Session", sess.id)
		writeTwiML(w, doc)
	}
}

// result is the <Connect action> of a voice webhook: Twilio requests it
// when the stream ends. It answers TwiML with the session's result.
func (s *server) result(w http.ResponseWriter, r *http.Request) {
	if !s.validTwilio(w, r) {
		return
	}
	r.ParseForm() // a GET action carries CallSid in the query
	op, _, err := s.get(r.Context(), r.URL.Query().Get(paramSession))
	call := r.Form.Get("CallSid")
	if err != nil || op.CallID == "" || op.CallID != call {
		s.log.Warn("result for no session of this call", "call", call, "err", err)
		s.answer(w, "", statusError, "")
		return
	}
	// The session may run on another node: wait for its terminal record.
	d, err := s.waitEnd(r.Context(), op, resultWait)
	status := d.Status
	if err != nil || status == statusWaiting || status == statusProcessing {
		status = statusError // the stream ended without a result
	}
	s.answer(w, daspeak.Operation(op.Kind), status, op.ID)
}

// Spoken results. A spoof is not told apart from a low score.
var sayResult = map[string]string{
	string(daspeak.OperationRegister) + statusSuccess: "Your voice has been registered.",
	string(daspeak.OperationVerify) + statusSuccess:   "Your identity has been verified.",
	statusFailScore:         "We could not verify your voice.",
	statusFailSpoof:         "We could not verify your voice.",
	statusNotRegistered:     "Your number is not registered for voice verification.",
	statusAlreadyRegistered: "Your number is already registered for voice verification.",
	statusBadCaller:         "We could not identify your phone number.",
	statusError:             "We could not process your voice at this time.",
	statusUnavailable:       "We could not process your voice at this time.",
}

// answer writes the TwiML that ends a voice webhook: the result spoken
// (unless -say-result=false), then <Redirect method="POST"> to -next-url
// with voicegate_operation, voicegate_status and voicegate_session added
// to its query, or <Hangup/> without -next-url.
func (s *server) answer(w http.ResponseWriter, op daspeak.Operation, status, id string) {
	t := twilio.NewTwiML()
	if s.cfg.SayResult {
		msg := sayResult[string(op)+status]
		if msg == "" {
			msg = sayResult[status]
		}
		t.Say(msg)
	}
	if s.cfg.NextURL == "" {
		t.Hangup()
	} else {
		t.Redirect(withResult(s.cfg.NextURL, op, status, id), http.MethodPost)
	}
	doc, err := t.String()
	if err != nil { // cannot happen with a checked -next-url
		s.log.Error("twiml", "err", err)
		doc = `<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>`
	}
	writeTwiML(w, doc)
}

// withResult adds the result parameters to the query of next.
func withResult(next string, op daspeak.Operation, status, id string) string {
	u, err := url.Parse(next)
	if err != nil {
		return next
	}
	q := u.Query()
	if op != "" {
		q.Set("voicegate_operation", string(op))
	}
	q.Set("voicegate_status", status)
	if id != "" {
		q.Set("voicegate_session", id)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// writeError writes the IVR API's error answer {"error": msg}.
// writeError answers {"error": msg, "code": …} with the agent API's
// error shape (agent.Error) and the code of status (errorCode).
func writeError(w http.ResponseWriter, status int, msg string) {
	writeErrorCode(w, status, errorCode(status), msg)
}

// writeErrorCode answers {"error": msg, "code": code} (agent.Error); a
// 503 carries Retry-After.
func writeErrorCode(w http.ResponseWriter, status int, code, msg string) {
	agent.WriteError(w, status, code, msg)
}

// errorCode is the agent API's error code of an HTTP status.
func errorCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return agent.CodeBadRequest
	case http.StatusUnauthorized:
		return agent.CodeUnauthenticated
	case http.StatusForbidden:
		return agent.CodeForbidden
	case http.StatusNotFound:
		return agent.CodeNotFound
	case http.StatusMethodNotAllowed:
		return agent.CodeMethodNotAllowed
	case http.StatusRequestEntityTooLarge:
		return agent.CodeTooLarge
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusMisdirectedRequest:
		return "misdirected_request"
	case http.StatusServiceUnavailable:
		return agent.CodeUnavailable
	}
	return agent.CodeInternal
}

func writeTwiML(w http.ResponseWriter, doc string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, doc)
}

// media is the Media Streams WebSocket endpoint. After the upgrade it uses
// the tracker's context, never r.Context(). It closes the stream when the
// session has its result, which ends <Connect> and makes Twilio request
// its action URL.
func (s *server) media(w http.ResponseWriter, r *http.Request) {
	ctx, done, ok := s.streams.Start()
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	defer done()
	if s.cfg.AuthToken == "" {
		writeError(w, http.StatusServiceUnavailable, "TWILIO_AUTH_TOKEN not configured")
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
	if errors.Is(err, twilio.ErrMediaFormat) && start != nil {
		// Audio this server cannot read: the stream is closed (1003) and
		// the session it names ends with error-audio, not at its timeout.
		s.log.Warn("media stream refused: unsupported media format", "call", start.CallSID, "stream", start.StreamSID, "err", err)
		if op, _, gerr := s.get(ctx, start.CustomParameters[paramSession]); gerr == nil && op.CallID != "" && op.CallID == start.CallSID {
			if sess, _ := s.take(ctx, op); sess != nil {
				sess.update(ctx, s.errorAudio(sess.op, err))
			}
		}
		return
	}
	if err != nil {
		s.log.Warn("media stream without start", "err", err)
		return
	}
	// The session id is unguessable; the call SID must also match the
	// call the session was created for, and a session takes one stream,
	// whichever node it reaches.
	op, _, err := s.get(ctx, start.CustomParameters[paramSession])
	var sess *session
	if err == nil && op.CallID != "" && op.CallID == start.CallSID {
		sess, err = s.take(ctx, op)
	}
	if sess == nil {
		s.refused.Add(1)
		if err == nil {
			err = errForeignStream
		}
		s.log.Warn("media stream refused: no waiting session", "call", start.CallSID, "stream", start.StreamSID, "err", err)
		// 1008 with a reason tells the peer why, where 1000 would not.
		_ = st.Refuse(refuseReason)
		return
	}
	s.met.AudioOpened()
	defer s.met.AudioClosed()
	defer s.met.TrackStream(func() metrics.StreamLag {
		st := st.Stats()
		return metrics.StreamLag{Lag: st.Lag, MaxLag: st.MaxLag, FramesLagged: st.FramesLagged}
	})()
	var rec credstore.Record
	if sess.op == daspeak.OperationVerify {
		if rec, err = s.creds.Get(ctx, sess.caller); err != nil {
			sess.update(ctx, daspeak.Event{Type: daspeak.EventErrorParameters, Operation: sess.op, Err: errors.New("caller is not registered")})
			return
		}
	}
	s.run(ctx, sess, st, rec)
}

func (s *server) getCaller(w http.ResponseWriter, r *http.Request) {
	caller, err := normalizeCaller(r.PathValue("caller"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "caller: an E.164 number required")
		return
	}
	rec, err := s.creds.Get(r.Context(), caller)
	switch {
	case errors.Is(err, credstore.ErrNotFound):
		agent.WriteJSON(w, http.StatusOK, map[string]any{"registered": false})
	case err != nil:
		s.log.Error("credential store", "err", err)
		writeError(w, http.StatusInternalServerError, "credential store unavailable")
	default:
		agent.WriteJSON(w, http.StatusOK, map[string]any{"registered": true, "model_hash": rec.ModelHash, "updated_at": rec.UpdatedAt})
	}
}

func (s *server) deleteCaller(w http.ResponseWriter, r *http.Request) {
	caller, err := normalizeCaller(r.PathValue("caller"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "caller: an E.164 number required")
		return
	}
	// The record and the enrolment audio file go together, never
	// interleaved with a registration of the caller on any node.
	ctx, unlock, err := s.lockCaller(r.Context(), caller)
	if err == nil {
		err = s.creds.Delete(ctx, caller)
		unlock()
	}
	if err != nil {
		s.log.Error("credential store", "err", err)
		writeError(w, http.StatusInternalServerError, "credential store unavailable")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func run(ctx context.Context, args []string, logOut io.Writer, listening func(net.Addr)) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, logOut, listening)
}

func serve(ctx context.Context, cfg *config, logOut io.Writer, listening func(net.Addr)) error {
	log := slog.New(slog.NewTextHandler(logOut, nil))
	auth, err := newAuthenticator(cfg.APIKey, cfg.BasicUser, cfg.BasicPassword, cfg.AuthFailDelay)
	if err != nil {
		return err
	}
	if err := checkExposure(cfg.Listen, auth, cfg.InsecureLoopback); err != nil {
		return err
	}
	if err := checkAudioDir(cfg.Store.AudioDir); err != nil {
		return err
	}
	if cfg.NATS != "" && (cfg.Store.Spec == "memory" || cfg.Store.Spec == "") {
		return errors.New("-nats: the nodes need one credential store: -store sqlite:PATH on a file they share, or a database")
	}
	engine, desc, err := cfg.Engine.New()
	if err != nil {
		return err
	}
	if cfg.Engine.Offline {
		log.Warn("the offline engine is for trying the flow: it is not a security control; use das-Peak to authenticate callers")
	}
	creds, closeStore, err := cfg.Store.Open(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	if cfg.Store.Spec == "memory" {
		log.Warn("credentials are kept in memory and lost at exit; use -store sqlite:PATH")
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	if cfg.PublicURL == "" {
		// The address actually bound: with -listen 127.0.0.1:0 the port
		// the system chose.
		cfg.PublicURL = "http://" + ln.Addr().String()
	}
	var bus *natsbus.Bus
	if cfg.NATS != "" {
		bus, err = natsbus.Connect(ctx, cfg.NATS, &natsbus.Options{Prefix: cfg.NATSPrefix, Node: cfg.Node, Lease: cfg.NATSLease, Retain: max(natsbus.DefaultRetain, 2*cfg.SessionTTL), Logger: log})
		if err != nil {
			ln.Close()
			return err
		}
		defer bus.Close()
		cfg.Ops = bus
	}
	s, err := newServer(cfg, log, engine, creds)
	if err != nil {
		ln.Close()
		return err
	}
	if bus != nil {
		rctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { s.reapOrphans(rctx) })
		defer wg.Wait()
		defer cancel()
		log.Info("one node of many: sessions are shared over NATS, so a session's stream, polls and result may reach any node", "node", bus.Node(), "nats_prefix", cfg.NATSPrefix)
	} else {
		log.Info("single node: sessions live in this process, so its stream, polls and /twiml/result must reach this process; run several nodes behind a load balancer with -nats")
	}
	if auth == nil {
		// checkExposure allowed this only on loopback; make sure of what
		// was actually bound.
		if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
			ln.Close()
			return fmt.Errorf("%w: %s is not a loopback address; %s", errExposed, ln.Addr(), credentialsHelp)
		}
		log.Warn("INSECURE: IVR endpoints accept requests WITHOUT authentication (-insecure-loopback); anyone on this machine can register, verify and delete callers (requests addressed to another host or forwarded by a proxy are refused). " + credentialsHelp)
	}
	if auth != nil && !isLoopback(cfg.Listen) && strings.HasPrefix(cfg.PublicURL, "http://") {
		log.Warn("-public-url is plain http: IVR credentials and Twilio webhooks must reach this server over HTTPS (a TLS proxy in front of it)")
	}
	authDesc := "none"
	if auth != nil {
		authDesc = auth.methods()
	}
	log.Info("voice biometrics for IVRs", "engine", desc, "store", strings.SplitN(cfg.Store.Spec, ":", 2)[0],
		"media_url", s.mediaURL, "twilio", strconv.FormatBool(cfg.AuthToken != ""), "auth", authDesc)
	if listening != nil {
		listening(ln.Addr())
	}
	log.Info("endpoints without authentication (no caller data): " + strings.Join(openPaths, ", "))
	return agent.Serve(ctx, log, ln, s.handler(), s.cfg.DrainTimeout+5*time.Second, func(sctx context.Context) error {
		dctx, cancel := context.WithTimeout(sctx, s.cfg.DrainTimeout)
		defer cancel()
		return s.drain(dctx)
	})
}

// openPaths are the endpoints served without authentication.
var openPaths = []string{"GET /healthz", "GET /readyz", "GET /metrics"}

// drain stops the server gracefully, for a SIGTERM: at once it refuses
// new sessions (503 with errDraining; a voice webhook answers TwiML with
// voicegate_status=unavailable) and /readyz answers 503, so the load
// balancer sends new work to other nodes, while the listener keeps
// serving (agent.Serve): polls and /twiml/result of existing sessions are
// answered. Running sessions (media streams and uploads, a stream that
// reaches this node for a session already created included) finish until
// ctx ends; then the rest end with error-cancelled (errShutDown). On a
// single node (no -nats) the sessions still waiting for their stream are
// this node's alone: the drain waits for their streams too, and at its
// deadline ends each with error-cancelled, logged. With -nats they stay
// in the log: another node takes their stream. It returns nil when all
// finished or were ended.
func (s *server) drain(ctx context.Context) error {
	s.draining.Store(true)
	single := s.cfg.Ops == nil
	s.mu.Lock()
	waiting := len(s.waiting)
	s.mu.Unlock()
	s.log.Info("draining: no new sessions; waiting for the running ones", "waiting_for_stream", waiting, "single_node", single)
	if err := s.waitDrained(ctx, single); err != nil {
		s.log.Warn("drain deadline: ending the running sessions with error-cancelled")
	}
	// A little time to record the cut sessions' terminal events.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if single {
		s.endWaiting(sctx)
	}
	return s.streams.Shutdown(sctx)
}

// waitDrained waits until no session runs and, with wait set, no session
// created here waits for its stream (expired ones are ended), or ctx
// ends.
func (s *server) waitDrained(ctx context.Context, wait bool) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for wait {
		s.mu.Lock()
		expired := s.expireLocked(time.Now())
		n := len(s.waiting)
		s.mu.Unlock()
		for _, id := range expired {
			s.expire(ctx, id)
		}
		if n == 0 {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// No session waits any more (a stream that took one is tracked
	// before it leaves s.waiting): only the running ones are left.
	return s.streams.Wait(ctx)
}

// endWaiting ends with error-cancelled (errShutDown) the sessions created
// here still waiting for their stream, each logged, so that a poll
// answers their end instead of waiting_audio until the process is gone. A
// stream that took one meanwhile keeps it (oplog.ErrSeq).
func (s *server) endWaiting(ctx context.Context) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.waiting))
	for id := range s.waiting {
		ids = append(ids, id)
		delete(s.waiting, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		op, err := s.ops.Get(ctx, id)
		if err != nil {
			continue
		}
		data, _ := json.Marshal(daspeak.Event{Type: agent.EventErrorCancelled, Operation: daspeak.Operation(op.Kind), Err: errShutDown})
		err = s.ops.Append(ctx, id, oplog.Record{Seq: 1, Type: string(agent.EventErrorCancelled), Terminal: true, Data: data})
		switch {
		case err == nil:
			s.log.Warn("session ended by the shutdown before its stream arrived", "session", id, "operation", op.Kind, "call", op.CallID)
		case !errors.Is(err, oplog.ErrSeq):
			s.log.Warn("ending a session waiting for its stream failed", "session", id, "call", op.CallID, "err", err)
		}
	}
}

// ready answers readiness probes (/readyz): 200 "ready", or 503 with the
// reason while the server drains or its session log is unreachable (the
// NATS server, with -nats).
func (s *server) ready(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if s.draining.Load() {
		writeError(w, http.StatusServiceUnavailable, "draining")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := s.ops.Ready(ctx); err != nil {
		s.log.Warn("not ready", "err", err)
		writeError(w, http.StatusServiceUnavailable, "session log unreachable")
		return
	}
	io.WriteString(w, "ready\n")
}

// registerMetrics adds the IVR's own metrics to the agent's (package
// daspeak/agent/metrics) on s.met's registry:
//
//	voicegate_ivr_auth_failures_total   counter  IVR requests refused for their credentials
//	voicegate_ivr_streams_refused_total counter  media streams for no waiting session of their call
//	voicegate_ivr_sessions_waiting      gauge    sessions created here waiting for a stream
//	voicegate_ivr_draining              gauge    1 while the server drains
func (s *server) registerMetrics() {
	reg := s.met.Registry()
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "voicegate_ivr_auth_failures_total", Help: "IVR requests refused for their credentials."},
			func() float64 { return float64(s.authFails.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "voicegate_ivr_streams_refused_total", Help: "Media streams for no waiting session of their call."},
			func() float64 { return float64(s.refused.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "voicegate_ivr_sessions_waiting", Help: "Sessions created on this node waiting for a stream."},
			func() float64 {
				s.mu.Lock()
				defer s.mu.Unlock()
				return float64(len(s.waiting))
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "voicegate_ivr_draining", Help: "1 while the server drains (SIGTERM)."},
			func() float64 {
				if s.draining.Load() {
					return 1
				}
				return 0
			}),
	)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr, nil)
	stop()
	os.Exit(agent.ExitCode(os.Stderr, "ivr", err))
}

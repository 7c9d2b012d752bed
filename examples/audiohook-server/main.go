// Command audiohook-server is a Genesys Cloud AudioHook server that
// registers or verifies the caller (the external party) by voice.
//
// Genesys opens one WebSocket per call at /api/v1/audiohook/ws, signed
// with an API key and client secret (STATIC_API_KEY_MAP). The open
// message's customConfig chooses what to do:
//
//	{"operation": "verify", "callerId": "+34600000000"}
//
// operation is "verify" (the default) or "register"; enrolment is always
// explicit. "auto" (verify a registered caller, register a new one) must be
// enabled with -auto-enrol, because a caller id can be spoofed: with auto,
// whoever calls first from a number is enrolled as its owner. register
// never replaces a stored voiceprint (error-parameters "already
// registered"). callerId defaults to the participant's ANI; either is
// normalised to E.164 and anything else is refused. Once enough net
// speech was heard, the
// server sends the result as an AudioHook event with one "voicegate.result"
// entity, then disconnects with reason "completed" and the result type as
// info.
//
// A failed authentication is answered as the Genesys reference server
// does: the WebSocket is accepted, then disconnect "unauthorized" is sent
// 500 ms after verification started (-auth-failure reject answers HTTP 401
// instead).
//
// With -agent the server serves the Genesys Cloud agent desk instead:
// every monitored conversation's session stays open, and the agent starts
// register or verify from the <voicegate-agent> widget, loaded as an
// Interaction Widget at /genesys/widget; the audio is the customer's from
// the moment of the click, the agent is authenticated with their Genesys
// Cloud OAuth token, and each result also goes to Genesys as an AudioHook
// event. See README.md.
//
// With -agent -fake-genesys (loopback only) the desk can be tried without
// a Genesys Cloud org: the agent token is checked by an in-process fake of
// GET /api/v2/users/me, the widget page gets that token without a login,
// http://127.0.0.1:8080/ lists the live conversations, and the
// audiohook-client example is accepted with the documented local key pair:
//
//	go run ./examples/audiohook-server -agent -fake-genesys -offline
//	AUDIOHOOK_API_KEY=local-trial AUDIOHOOK_CLIENT_SECRET=bG9jYWwtdHJpYWwtY2xpZW50LXNlY3JldA== \
//	    go run ./examples/audiohook-client -wav testdata/voices/awb_1.wav -loop 10m
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/daspeak/agent/genesys"
	"github.com/voicegate/voicegate/daspeak/agent/metrics"
	"github.com/voicegate/voicegate/daspeak/agent/natsbus"
)

// Path is where the Genesys AudioHook reference server listens; configure
// the AudioHook Monitor integration with wss://<host>/api/v1/audiohook/ws.
const wsPath = "/api/v1/audiohook/ws"

// Entity types of the events this server sends.
const (
	entityResult   = "voicegate.result"
	entityProgress = "voicegate.progress"
)

// Operations of customConfig.
const (
	opAuto     = "auto"
	opRegister = "register"
	opVerify   = "verify"
)

// Values of -auth-failure.
const (
	authDisconnect = "disconnect"
	authReject     = "reject"
)

// errAutoDisabled refuses operation auto on a server without -auto-enrol.
var errAutoDisabled = errors.New(`customConfig: operation "auto" is disabled on this server (caller ids can be spoofed; start it with -auto-enrol to allow it)`)

// errAlreadyRegistered refuses a register of a caller with a stored
// credential, as the IVR (409 already_registered) and the agent API do.
var errAlreadyRegistered = errors.New("caller is already registered; delete the caller first to register again")

// autoEnrolWarning is logged at start when -auto-enrol is set.
const autoEnrolWarning = "auto enrolment enabled: an unregistered caller id is enrolled with the voice of whoever calls first, and caller ids can be spoofed; prefer explicit register operations"

type config struct {
	Listen       string
	KeysEnv      string
	InsecureAuth bool
	AuthFailure  string // "disconnect" or "reject"
	AutoEnrol    bool
	RecordDir    string
	Store        string
	StoreKey     string
	AudioDir     string
	AudioKey     string
	Progress     bool
	Buffer       time.Duration
	EngineCalls  int
	Engine       agent.EngineConfig
	Session      agent.SessionFlags
	Agent        agentConfig
	NATS         string
	NATSPrefix   string
	NATSLease    time.Duration
	Node         string
	DrainTimeout time.Duration
}

// agentConfig configures -agent mode.
type agentConfig struct {
	Enabled      bool
	Region       string
	APIURL       string
	ClientID     string
	AllowOrigins string
	EventKey     string
	Fake         bool // -fake-genesys
}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("audiohook-server", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", agent.Env("LISTEN", "127.0.0.1:8080"), "address to listen on (env LISTEN)")
	fs.StringVar(&c.KeysEnv, "keys-env", "STATIC_API_KEY_MAP", `environment variable holding {"api key": "base64 client secret", …}`)
	fs.BoolVar(&c.InsecureAuth, "insecure-skip-auth", false, "accept unauthenticated connections (local tests only)")
	fs.StringVar(&c.AuthFailure, "auth-failure", agent.Env("AUTH_FAILURE", authDisconnect), `answer a failed authentication with "disconnect" (accept, then disconnect unauthorized, as the Genesys reference server) or "reject" (HTTP 401) (env AUTH_FAILURE)`)
	fs.BoolVar(&c.AutoEnrol, "auto-enrol", agent.EnvBool("AUTO_ENROL", false), "allow operation auto and make it the default: an unregistered caller id is enrolled with the voice of whoever calls; caller ids can be spoofed (env AUTO_ENROL)")
	fs.StringVar(&c.RecordDir, "record", os.Getenv("RECORD_DIR"), "record every session (WAV + JSON) into this directory (env RECORD_DIR)")
	fs.StringVar(&c.Store, "store", agent.Env("CREDSTORE", "memory"), "credential store: memory or sqlite:PATH (env CREDSTORE)")
	fs.StringVar(&c.AudioDir, "audio-dir", os.Getenv("ENROLMENT_AUDIO_DIR"), "directory to keep enrolment audio in (env ENROLMENT_AUDIO_DIR; needs ENROLMENT_AUDIO_KEY)")
	fs.DurationVar(&c.Buffer, "buffer", 0, "audio buffered for a slow engine per session (0: 2s)")
	fs.BoolVar(&c.Progress, "progress", true, "send progress events (net speech so far) as well as the result")
	fs.BoolVar(&c.Agent.Enabled, "agent", agent.EnvBool("AGENT_MODE", false), "agent desk: keep sessions open, agents register/verify from the Genesys interaction widget (env AGENT_MODE)")
	fs.StringVar(&c.Agent.Region, "genesys-region", os.Getenv("GENESYS_REGION"), "-agent: Genesys Cloud region domain, e.g. mypurecloud.ie (env GENESYS_REGION)")
	fs.StringVar(&c.Agent.ClientID, "genesys-client-id", os.Getenv("GENESYS_CLIENT_ID"), "-agent: OAuth client id (Authorization Code with PKCE) of the widget page (env GENESYS_CLIENT_ID)")
	fs.StringVar(&c.Agent.APIURL, "genesys-api-url", os.Getenv("GENESYS_API_URL"), "-agent: replace https://api.<region> where agent tokens are checked, for proxies and tests (env GENESYS_API_URL)")
	fs.BoolVar(&c.Agent.Fake, "fake-genesys", false, "-agent without a Genesys Cloud org, for local trials on loopback: an in-process fake checks agent tokens, the widget page logs in at a fake login that asks nothing, / lists the live conversations, and the local AudioHook key pair is accepted when no keys are set")
	fs.StringVar(&c.Agent.AllowOrigins, "allow-origin", os.Getenv("ALLOW_ORIGIN"), "-agent: comma-separated browser origins allowed to call /agent besides this server's (env ALLOW_ORIGIN)")
	fs.StringVar(&c.NATS, "nats", os.Getenv("NATS_URL"), "-agent: NATS server URL(s), e.g. nats://127.0.0.1:4222: run as one node of many; an agent's click on any node reaches the node holding the conversation's AudioHook session (env NATS_URL; credentials from NATS_CREDS, NATS_NKEY, NATS_USER/NATS_PASSWORD or NATS_TOKEN)")
	fs.StringVar(&c.NATSPrefix, "nats-prefix", agent.Env("NATS_PREFIX", natsbus.DefaultPrefix), "-nats: prefix of the subjects, stream and buckets the nodes share (env NATS_PREFIX)")
	fs.DurationVar(&c.NATSLease, "nats-lease", natsbus.DefaultLease, "-nats: how long a node that stopped renewing keeps its operations before another node ends them")
	fs.StringVar(&c.Node, "node", os.Getenv("NODE_NAME"), "-nats: this node's name (env NODE_NAME; default host, pid and random)")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long running operations may finish before they are ended with error-cancelled")
	fs.IntVar(&c.EngineCalls, "engine-calls", 0, "most engine calls at once across sessions; the others wait in arrival order (0: GOMAXPROCS with the offline engine, 16 with das-Peak)")
	c.Engine.Flags(fs)
	c.Session.Flags(fs)
	if err := agent.ParseFlags(fs, args); err != nil {
		return nil, err
	}
	if c.AuthFailure != authDisconnect && c.AuthFailure != authReject {
		return nil, &agent.UsageError{Err: fmt.Errorf("-auth-failure %q: want %q or %q", c.AuthFailure, authDisconnect, authReject)}
	}
	c.StoreKey = os.Getenv("CREDSTORE_KEY")
	c.AudioKey = os.Getenv("ENROLMENT_AUDIO_KEY")
	c.Agent.EventKey = os.Getenv("EVENT_KEY")
	return c, nil
}

// customConfig is the open message's customConfig, set in the Genesys
// AudioHook integration (or per call by an Architect flow).
type customConfig struct {
	Operation string `json:"operation"`
	CallerID  string `json:"callerId"`
}

// parseOpen returns the operation and caller id of an open message. An
// absent operation is verify, or auto when autoEnrol; auto is refused
// unless autoEnrol. The caller id is customConfig.callerId, else the
// participant's ani, normalised to E.164 (agent.NormalizeCallerID: "tel:",
// spaces and dashes dropped, "00" as "+"); anything else is refused.
func parseOpen(p *wire.OpenParameters, autoEnrol bool) (op, caller string, err error) {
	var cc customConfig
	if len(p.CustomConfig) > 0 && string(p.CustomConfig) != "null" {
		if err := json.Unmarshal(p.CustomConfig, &cc); err != nil {
			return "", "", fmt.Errorf("customConfig: %w", err)
		}
	}
	op = cc.Operation
	switch op {
	case "":
		op = opVerify
		if autoEnrol {
			op = opAuto
		}
	case opAuto:
		if !autoEnrol {
			return "", "", errAutoDisabled
		}
	case opRegister, opVerify:
	default:
		return "", "", fmt.Errorf("customConfig: unknown operation %q", op)
	}
	// One caller, one key in the store, whatever the spelling: the
	// E.164 form, as the IVR and the agent API store it.
	switch {
	case cc.CallerID != "":
		if caller, err = agent.NormalizeCallerID(cc.CallerID); err != nil {
			return "", "", fmt.Errorf("customConfig.callerId %q is not an E.164 telephone number (want + and 2 to 15 digits, e.g. +34600000000)", cc.CallerID)
		}
	case p.Participant.ANI != "":
		if caller, err = agent.NormalizeCallerID(p.Participant.ANI); err != nil {
			return "", "", fmt.Errorf("participant ani %q is not an E.164 telephone number: set customConfig.callerId to the caller's number (e.g. +34600000000)", p.Participant.ANI)
		}
	default:
		return "", "", errors.New("no caller id: set customConfig.callerId or send the participant's ani")
	}
	return op, caller, nil
}

type server struct {
	cfg      *config
	log      *slog.Logger
	engine   daspeak.Engine
	store    credstore.Store
	creds    *agent.CredentialStore
	regMu    sync.Mutex // serialises a registration's existence check and store
	opts     audiohook.ServerOptions
	sessions agent.Tracker
	// -agent mode
	source  *genesys.Source
	api     *agent.Server
	page    http.Handler
	convs   *conversations // -fake-genesys: live conversations for the index
	login   *fakeLogin     // -fake-genesys: the login service
	bus     *natsbus.Bus   // -nats
	metrics *metrics.Metrics
	limiter *daspeak.Limiter // engine calls, shared by every session
}

// sessionConfig returns the configuration of a session: the flags', with
// the server's engine Limiter.
func (s *server) sessionConfig() *daspeak.Config {
	c := s.cfg.Session.Config()
	c.Limiter = s.limiter
	return c
}

func newServer(cfg *config, log *slog.Logger, engine daspeak.Engine, store credstore.Store, bus *natsbus.Bus) (*server, error) {
	s := &server{cfg: cfg, log: log, engine: engine, store: store, bus: bus, metrics: metrics.New(), limiter: cfg.Engine.Limiter}
	if s.limiter == nil { // tests build servers without run
		s.limiter = cfg.Engine.NewLimiter(cfg.EngineCalls)
	}
	s.metrics.WatchLimiter(s.limiter)
	s.creds = &agent.CredentialStore{Store: store, AudioDir: cfg.AudioDir}
	if cfg.AudioDir != "" {
		key, err := base64.StdEncoding.DecodeString(cfg.AudioKey)
		if err != nil || len(key) < agent.MinAudioKeyLen {
			return nil, fmt.Errorf("-audio-dir needs ENROLMENT_AUDIO_KEY: base64 of %d or more random bytes, e.g. %s", agent.MinAudioKeyLen, agent.NewAudioKey())
		}
		s.creds.AudioKey = key
	}
	s.opts = audiohook.ServerOptions{
		InsecureSkipAuth: cfg.InsecureAuth,
		Nonces:           audiohook.NewMemoryNonces(0),
		// Only the customer's voice is needed: prefer their channel alone.
		Media: []wire.MediaParameter{
			wire.MediaPCMUExternal, wire.MediaL16External,
			wire.MediaPCMUStereo, wire.MediaL16Stereo,
		},
		OnOpen: func(info *audiohook.OpenInfo) error {
			if info.Probe || cfg.Agent.Enabled {
				return nil // agent mode: the agent chooses the operation
			}
			_, _, err := parseOpen(&info.Params, cfg.AutoEnrol)
			return err // refused with disconnect "error"
		},
		Logger: log,
		Buffer: cfg.Buffer,
	}
	if cfg.AuthFailure != authReject {
		// The reference server's default: accept, then disconnect
		// "unauthorized" no sooner than 500 ms after verification started.
		s.opts.AuthFailure = audiohook.AuthDisconnect
	}
	if cfg.AutoEnrol {
		log.Warn(autoEnrolWarning)
	}
	if cfg.Buffer > 0 {
		s.opts.BufferFrames = int(cfg.Buffer/(20*time.Millisecond)) + 1 // 20 ms frames at the least
	}
	if !cfg.InsecureAuth {
		keys, err := audiohook.KeysFromEnv(cfg.KeysEnv)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.KeysEnv, err)
		}
		fake := false // the public local pair: loopback only, never weak-checked
		if len(keys) == 0 && cfg.Agent.Fake {
			keys, fake = fakeKeys(), true
			log.Warn("fake Genesys Cloud: accepting the public local AudioHook key pair; start the client with AUDIOHOOK_API_KEY=" + fakeAPIKey + " AUDIOHOOK_CLIENT_SECRET=" + fakeSecretB64)
		}
		if len(keys) == 0 {
			return nil, fmt.Errorf("no API keys: set %s to {\"<api key>\":\"<base64 client secret>\"} (or -insecure-skip-auth for local tests)", cfg.KeysEnv)
		}
		if weak := weakKeys(keys); len(weak) > 0 && !fake {
			msg := fmt.Sprintf("%s: %s", cfg.KeysEnv, strings.Join(weak, "; "))
			if !isLoopback(cfg.Listen) {
				return nil, fmt.Errorf("%s: refusing to listen on %q beyond loopback with a weak key; %s", msg, cfg.Listen, keyAdvice)
			}
			log.Warn(msg+": accepted because -listen is loopback; "+keyAdvice, "listen", cfg.Listen)
		}
		s.opts.Keys = keys
	}
	if cfg.RecordDir != "" {
		if err := os.MkdirAll(cfg.RecordDir, 0o750); err != nil {
			return nil, err
		}
		s.opts.Recorder = audiohook.DirSink(cfg.RecordDir)
	}
	if cfg.Agent.Enabled {
		if err := s.newAgent(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Least sizes of an AudioHook key pair: the API key names the client and
// travels in clear (X-API-KEY), the client secret signs each request (HMAC-
// SHA256, RFC 9421) and is the real credential: 16 bytes is 128 bits.
const (
	minAPIKeyLen = 16 // characters
	minSecretLen = 16 // bytes, base64-decoded
)

// keyAdvice says how to make a key pair that weakKeys accepts.
var keyAdvice = fmt.Sprintf("use API keys of at least %d characters and client secrets of at least %d random bytes, e.g. key $(openssl rand -hex 16) and secret $(openssl rand -base64 32), and set the same pair in the Genesys AudioHook integration", minAPIKeyLen, minSecretLen)

// weakKeys describes each key of keys that is too short or has no or a
// too-short secret. No key material is named: a key is "API key N of M",
// N its place in the keys' sorted order, with its length; a secret by its
// length.
func weakKeys(keys map[string][]byte) []string {
	var out []string
	sorted := slices.Sorted(maps.Keys(keys))
	for i, k := range sorted {
		secret := keys[k]
		var why []string
		if len(k) < minAPIKeyLen {
			why = append(why, fmt.Sprintf("is %d characters, fewer than %d", len(k), minAPIKeyLen))
		}
		switch {
		case len(secret) == 0:
			why = append(why, "has no client secret (anyone who knows the key connects unsigned)")
		case len(secret) < minSecretLen:
			why = append(why, fmt.Sprintf("has a client secret of %d bytes, fewer than %d", len(secret), minSecretLen))
		}
		if len(why) > 0 {
			out = append(out, fmt.Sprintf("API key %d of %d %s", i+1, len(sorted), strings.Join(why, " and ")))
		}
	}
	return out
}

// isLoopback reports whether the listen address addr is on a loopback
// interface only.
func isLoopback(addr string) bool {
	return agent.RequireLoopback(addr) == nil
}

// newAgent sets up -agent mode: the conversations' audio source, the
// Genesys token check, the agent API and the widget page.
func (s *server) newAgent() error {
	a := s.cfg.Agent
	var fakeToken string
	var httpClient *http.Client
	var convTTL time.Duration // default
	if a.Fake {
		// The fake answers in this process: nothing to save by caching
		// an agent's access, and a call's end shows at once.
		convTTL = -1
		fakeToken = newFakeToken()
		a.Region, a.ClientID, a.APIURL = fakeRegion, "local-trial", "http://genesys-cloud.fake.invalid"
		s.convs = &conversations{}
		httpClient = &http.Client{Transport: handlerTransport{fakeGenesysHandler(fakeToken, s.convs)}}
	}
	if a.Region == "" || a.ClientID == "" {
		return errors.New("-agent needs -genesys-region (e.g. mypurecloud.ie) and -genesys-client-id (an OAuth client for the Authorization Code grant with PKCE whose redirect URI is https://<this server>/genesys/widget)")
	}
	apiURL := a.APIURL
	if apiURL == "" {
		u, err := genesys.APIBaseURL(a.Region)
		if err != nil {
			return err
		}
		apiURL = u
	}
	auth, err := genesys.NewAuthenticator(&genesys.AuthenticatorOptions{APIBaseURL: apiURL, HTTPClient: httpClient, ConversationCacheTTL: convTTL, Logger: s.log})
	if err != nil {
		return err
	}
	var eventKey []byte
	if a.EventKey != "" {
		if eventKey, err = base64.StdEncoding.DecodeString(a.EventKey); err != nil {
			return errors.New("EVENT_KEY is not base64")
		}
	}
	so := &genesys.SourceOptions{Logger: s.log}
	if s.convs != nil {
		// The index lists a conversation from its first session to its
		// last, under the caller its first session named.
		so.OnConversation = func(info *audiohook.OpenInfo, live bool) {
			if live {
				s.convs.add(info.Params.ConversationID, info.Params.Participant.ANI)
			} else {
				s.convs.remove(info.Params.ConversationID)
			}
		}
	}
	s.source = genesys.NewSource(so)
	opts := &agent.Options{
		Engine: s.engine, Store: s.creds, Source: s.source, Authenticator: auth,
		AllowedOrigins: splitList(a.AllowOrigins), Register: s.sessionConfig(), Verify: s.sessionConfig(),
		EventKey: eventKey, Logger: s.log, Observer: s.metrics,
	}
	if s.bus != nil {
		opts.Log = s.bus
	}
	s.api, err = agent.NewServer(opts)
	if err != nil {
		return err
	}
	s.metrics.SetSessions(func() float64 { return float64(s.source.Stats().Sessions) })
	po := &genesys.WidgetPageOptions{ClientID: a.ClientID, Region: a.Region, BasePath: s.api.BasePath()}
	if a.Fake {
		po.LoginURL = fakeLoginPath
		s.login = newFakeLogin(a.ClientID, fakeToken)
	}
	s.page, err = genesys.WidgetPage(po)
	return err
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// noFavicon answers a browser's favicon request with 204 No Content: the
// pages have no icon, and a 404 shows as an error in the console.
func noFavicon(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "max-age=86400")
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wsPath, s.audiohook)
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /favicon.ico", noFavicon)
	if s.api == nil {
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ready\n") })
	}
	if s.api != nil {
		mux.Handle("GET /healthz", s.api.HealthHandler())
		mux.Handle("GET /readyz", s.api.ReadyHandler())
		mux.Handle(s.api.BasePath()+"/", s.api)
		mux.Handle("GET "+genesys.DefaultWidgetPath, s.page)
	}
	if s.convs != nil {
		mux.HandleFunc("GET /{$}", s.convs.index)
		mux.Handle(fakeLoginPath+"/", s.login)
		return loopbackHostOnly(agent.JSONErrors(mux))
	}
	return agent.JSONErrors(mux)
}

// shutdown ends the agent's operations (in -agent mode), then the
// AudioHook sessions.
func (s *server) shutdown(ctx context.Context) error {
	var err error
	if s.api != nil {
		// Running operations finish until ctx ends, then end with
		// error-cancelled.
		if err = s.api.Drain(ctx); errors.Is(err, context.DeadlineExceeded) {
			err = nil
		}
	}
	return errors.Join(err, s.sessions.Shutdown(ctx))
}

// audiohook serves one AudioHook connection. After the upgrade it uses the
// tracker's context, never r.Context().
func (s *server) audiohook(w http.ResponseWriter, r *http.Request) {
	ctx, done, ok := s.sessions.Start()
	if !ok {
		agent.WriteError(w, http.StatusServiceUnavailable, agent.CodeUnavailable, "shutting down")
		return
	}
	defer done()
	sess, err := audiohook.Accept(w, r, &s.opts)
	if err != nil {
		s.log.Warn("audiohook connection refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	log := s.log.With("session", sess.ID())
	untrack := s.metrics.TrackStream(func() metrics.StreamLag {
		st := sess.Stats()
		return metrics.StreamLag{Lag: st.Lag, MaxLag: st.MaxLag, FramesLagged: st.FramesLagged}
	})
	defer untrack()
	defer func() {
		if err := sess.Close(); err != nil && !errors.Is(err, audiohook.ErrClosed) {
			log.Info("session close", "err", err)
		}
		logAudioStats(log, sess.Stats())
	}()
	octx, cancel := context.WithTimeout(ctx, 15*time.Second)
	info, err := sess.Open(octx)
	cancel()
	if err != nil {
		log.Warn("session not opened", "err", err)
		return
	}
	if info.Probe {
		// A connection probe: opened was sent; wait for the client's close.
		select {
		case <-sess.Done():
		case <-ctx.Done():
		}
		return
	}
	if info.Media == nil {
		// opened selected no media (none offered that the server takes):
		// no audio will come, so there is nothing to register or verify.
		log.Warn("no supported media format offered: disconnecting", "offered", len(info.Params.Media))
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		sess.Disconnect(dctx, wire.ReasonError, "no supported media format offered")
		return
	}
	if s.source != nil {
		// Agent mode: the conversation stays open for the agent's
		// operations until Genesys closes it. A session naming another
		// caller than the conversation's live one, or on a conversation
		// that has ended, is refused by Run (disconnect "error"; logged
		// there).
		if err := s.source.Run(ctx, sess); err != nil && !errors.Is(err, context.Canceled) &&
			!errors.Is(err, genesys.ErrCallerConflict) && !errors.Is(err, genesys.ErrConversationEnded) {
			log.Info("monitored session ended", "err", err)
		}
		return
	}
	op, caller, err := parseOpen(&info.Params, s.cfg.AutoEnrol)
	if err != nil { // OnOpen checked it already
		return
	}
	log = log.With("conversation", info.Params.ConversationID)
	cfg := s.sessionConfig()
	var ds *daspeak.Session
	rec, err := s.store.Get(ctx, caller)
	switch {
	case err != nil && !errors.Is(err, credstore.ErrNotFound):
		log.Error("credential store", "err", err)
		sess.Disconnect(ctx, wire.ReasonError, "credential store unavailable")
		return
	case op == opRegister && err == nil:
		// Never over a stored voiceprint: whoever calls from (or names) a
		// registered number would replace its owner's voice.
		s.result(ctx, log, sess, daspeak.Event{Type: daspeak.EventErrorParameters, Operation: daspeak.OperationRegister, Err: errAlreadyRegistered})
		return
	case op == opRegister || (op == opAuto && err != nil):
		if op == opAuto {
			log.Warn("auto enrolment of an unregistered caller id (the caller is not authenticated)")
		}
		cfg.Store = registerOnce{s}
		cfg.CallerID = caller
		ds, _ = daspeak.Register(sess, s.engine, cfg)
	case err != nil: // verify, not registered
		s.result(ctx, log, sess, daspeak.Event{Type: daspeak.EventErrorParameters, Operation: daspeak.OperationVerify, Err: errors.New("caller is not registered")})
		return
	default:
		if cfg.ModelHash == "" {
			cfg.ModelHash = rec.ModelHash
		}
		ds, _ = daspeak.Verify(sess, s.engine, rec.Credential, cfg)
	}
	log.Info("session started", "operation", ds.Operation(), "media", info.Media.Format, "channels", info.Media.Channels)
	for {
		ev, err := ds.Next(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				log.Info("session cancelled", "err", err)
			}
			return
		}
		if !ev.IsTerminal() {
			if s.cfg.Progress {
				s.send(ctx, log, sess, entityProgress, ev)
			}
			continue
		}
		if ev.Type == daspeak.EventErrorStore && errors.Is(ev.Err, errAlreadyRegistered) {
			// Another session registered the caller meanwhile: the same
			// answer as a register that found the credential at the start.
			ev.Type, ev.Err = daspeak.EventErrorParameters, errAlreadyRegistered
		} else if ev.Type == daspeak.EventErrorStore {
			log.Error("credential not stored", "err", ev.Err)
		}
		s.result(ctx, log, sess, ev)
		return
	}
}

// logAudioStats logs, at the end of a session that carried audio, what
// its bounded queue received and dropped: at level WARN when frames were
// dropped (the engine fell behind, or the client sent faster than real
// time), so that a loss of audio is never silent.
func logAudioStats(log *slog.Logger, st audiohook.Stats) {
	if st.FramesReceived == 0 && st.FramesDropped == 0 {
		return // a probe, or refused before any audio
	}
	attrs := []any{"frames_received", st.FramesReceived, "frames_dropped", st.FramesDropped,
		"max_queue_depth", st.MaxQueueDepth, "audio_position", st.Position}
	if st.FramesDropped > 0 {
		log.Warn("session audio dropped: the queue was full (the engine fell behind, or the client sent faster than real time; raise -buffer)", attrs...)
		return
	}
	log.Info("session audio", attrs...)
}

// registerOnce is the credential store of a register session: it refuses
// to replace a stored credential (the caller must be deleted first),
// checking and storing under one lock, so of two registrations of one
// caller running at once in this process only one is stored.
type registerOnce struct {
	s *server
}

func (r registerOnce) StoreCredential(ctx context.Context, callerID, credential, modelHash string, audio []byte) error {
	r.s.regMu.Lock()
	defer r.s.regMu.Unlock()
	if _, err := r.s.creds.Get(ctx, callerID); err == nil {
		// Permanent: the session does not retry it.
		return fmt.Errorf("%w (%w)", errAlreadyRegistered, daspeak.ErrAlreadyStored)
	} else if !errors.Is(err, credstore.ErrNotFound) {
		return err
	}
	return r.s.creds.StoreCredential(ctx, callerID, credential, modelHash, audio)
}

// result sends the terminal event and disconnects with reason completed.
func (s *server) result(ctx context.Context, log *slog.Logger, sess *audiohook.Session, ev daspeak.Event) {
	attrs := []any{"operation", ev.Operation, "result", ev.Type, "net_speech", ev.NetSpeech}
	if ev.Operation == daspeak.OperationVerify && (ev.Type == daspeak.EventResultSuccess || ev.Type == daspeak.EventResultFailScore) {
		attrs = append(attrs, "score", ev.Score)
	}
	if ev.Err != nil {
		attrs = append(attrs, "err", ev.Err)
	}
	log.Info("session ended", attrs...)
	if !s.send(ctx, log, sess, entityResult, ev) {
		return // the client is gone
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The Architect flow reads the result from the output variables.
	vars := map[string]string{"voicegateResult": string(ev.Type)}
	if ev.Operation == daspeak.OperationVerify && (ev.Type == daspeak.EventResultSuccess || ev.Type == daspeak.EventResultFailScore) {
		vars["voicegateScore"] = strconv.FormatFloat(ev.Score, 'f', 3, 64)
	}
	if ev.Type == daspeak.EventErrorParameters && ev.Err != nil {
		// The flow's reason to show or branch on; nothing secret.
		vars["voicegateError"] = ev.Err.Error()
	}
	p := wire.DisconnectParameters{Reason: wire.ReasonCompleted, Info: string(ev.Type), OutputVariables: vars}
	if err := sess.DisconnectWith(dctx, p); err != nil {
		log.Info("disconnect", "err", err)
	}
}

// send sends ev (without credential and audio) as an event entity.
func (s *server) send(ctx context.Context, log *slog.Logger, sess *audiohook.Session, typ string, ev daspeak.Event) bool {
	ev.Credential, ev.Audio = "", nil // they stay on the server
	data, err := json.Marshal(ev)
	if err == nil && ev.NetSpeechNeeded == 0 {
		// A refusal before any session ran (not registered, already
		// registered) needed no speech: "net_speech_needed":0 would say
		// a session was content with none, so the field is left out.
		var m map[string]json.RawMessage
		if err = json.Unmarshal(data, &m); err == nil {
			delete(m, "net_speech_needed")
			data, err = json.Marshal(m)
		}
	}
	if err != nil {
		log.Debug("event not encodable", "type", typ, "err", err)
		return false
	}
	ent := wire.Entity{Type: typ, Data: data}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := sess.SendEvent(wctx, ent); err != nil {
		log.Debug("event not sent", "type", typ, "err", err)
		return false
	}
	return true
}

func run(ctx context.Context, args []string, logOut io.Writer, listening func(net.Addr)) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(logOut, nil))
	// Each refusal names its own cause and fix.
	if cfg.InsecureAuth && !isLoopback(cfg.Listen) {
		return fmt.Errorf("-insecure-skip-auth lets any client connect without a signature, so it needs a loopback -listen (e.g. -listen 127.0.0.1:8080); to listen on %q, drop -insecure-skip-auth and set %s to {\"<api key>\":\"<base64 client secret>\"}", cfg.Listen, cfg.KeysEnv)
	}
	if cfg.Agent.Fake {
		if !cfg.Agent.Enabled {
			return errors.New("-fake-genesys fakes Genesys Cloud for the agent desk: give -agent too")
		}
		if !isLoopback(cfg.Listen) {
			return fmt.Errorf("-fake-genesys is for local trials only: its login hands every visitor the agent token, so it needs a loopback -listen (e.g. -listen 127.0.0.1:8080); to listen on %q, drop -fake-genesys and give -genesys-region and -genesys-client-id of a Genesys Cloud org", cfg.Listen)
		}
	}
	if cfg.Agent.Enabled && !cfg.Agent.Fake && strings.HasPrefix(cfg.Agent.APIURL, "http://") && !isLoopback(cfg.Listen) {
		return fmt.Errorf("-genesys-api-url %s is not TLS: agent tokens would travel in clear, which is allowed with a loopback -listen only; to listen on %q, give an https:// URL (or none, for https://api.<region>)", cfg.Agent.APIURL, cfg.Listen)
	}
	// Engine calls wait in arrival order for one of -engine-calls slots,
	// shared by the sessions and the das-Peak client.
	cfg.Engine.Limiter = cfg.Engine.NewLimiter(cfg.EngineCalls)
	engine, desc, err := cfg.Engine.New()
	if err != nil {
		return err
	}
	if cfg.Engine.Offline {
		log.Warn("the offline engine is for trying the flow: it is not a security control; use das-Peak to authenticate callers")
	}
	store, closeStore, err := agent.OpenStore(ctx, cfg.Store, cfg.StoreKey)
	if err != nil {
		return err
	}
	defer closeStore()
	var bus *natsbus.Bus
	if cfg.NATS != "" {
		if !cfg.Agent.Enabled {
			return errors.New("-nats needs -agent: without it each AudioHook session runs on its own node and nothing crosses nodes")
		}
		if cfg.Agent.EventKey == "" {
			return fmt.Errorf("-nats: every node needs the same EVENT_KEY (event-stream URLs open on any node): base64 of 32 random bytes, e.g. %s", agent.NewAudioKey())
		}
		if cfg.Store == "memory" || cfg.Store == "" {
			return errors.New("-nats: the nodes need one credential store: -store sqlite:PATH on a file they share, or a database")
		}
		if bus, err = natsbus.Connect(ctx, cfg.NATS, &natsbus.Options{Prefix: cfg.NATSPrefix, Node: cfg.Node, Lease: cfg.NATSLease, Logger: log}); err != nil {
			return err
		}
		defer bus.Close()
		log.Info("one node of many", "node", bus.Node(), "nats_prefix", cfg.NATSPrefix)
	}
	s, err := newServer(cfg, log, engine, store, bus)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	if cfg.InsecureAuth {
		log.Warn("authentication disabled: any client may connect")
	}
	log.Info("voice biometrics for Genesys AudioHook", "engine", desc, "path", wsPath, "record", cfg.RecordDir != "", "agent", cfg.Agent.Enabled)
	if cfg.Agent.Fake {
		log.Warn("fake Genesys Cloud, for local trials only: its login asks nothing and gives every visitor the agent token; open the live conversations at http://" + ln.Addr().String() + "/")
	}
	if listening != nil {
		listening(ln.Addr())
	}
	// The server's drain timeout (logged as "timeout") is -drain-timeout
	// plus closeGrace; the shutdown logs both next.
	return agent.Serve(ctx, log, ln, s.handler(), cfg.DrainTimeout+closeGrace, func(sctx context.Context) error {
		log.Info("draining: running operations may finish within -drain-timeout, then the rest are ended within close_grace", "drain_timeout", cfg.DrainTimeout, "close_grace", closeGrace)
		dctx, cancel := context.WithTimeout(sctx, cfg.DrainTimeout)
		defer cancel()
		return s.shutdown(dctx)
	})
}

// closeGrace is how long after -drain-timeout the operations still
// running are given to end (error-cancelled) and their sessions to close.
const closeGrace = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr, nil)
	stop()
	os.Exit(agent.ExitCode(os.Stderr, "audiohook-server", err))
}

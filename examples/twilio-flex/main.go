// Command twilio-flex is a starter server for voice biometrics in Twilio
// Flex: the agent presses Register, Verify or Re-verify in the
// <voicegate-agent> widget on the call canvas; the server starts a Media
// Stream on the customer's call leg, registers or verifies the caller with
// the biometric engine, keeps the credential, and streams the progress and
// the result to the widget.
//
//   - /agent/… is the agent API (package daspeak/agent), authenticated with
//     the agent's Flex token; /agent/voicegate-agent.js is the widget. An
//     agent acts only on the calls of their own accepted TaskRouter tasks
//     (-workspace, flex.Assignment); -any-agent-any-call turns that off.
//   - /twilio/media is the Media Streams WebSocket (daspeak/agent/flex):
//     signed by Twilio, bound to the operation that started it.
//   - POST /flex/voice-token issues Voice access tokens to a
//     browser-extension softphone for a Flex token (identity prefix
//     -voice-identity-prefix); POST /flex/webchat bootstraps a Flex web chat
//     for a customer page.
//
// With -fake-twilio the server runs against an in-process fake of Twilio
// (REST, IAM and Media Streams playing a recorded voice), so the whole flow
// can be tried locally without an account: open http://127.0.0.1:8080/.
// See README.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/daspeak/agent/flex"
	"github.com/voicegate/voicegate/daspeak/agent/metrics"
	"github.com/voicegate/voicegate/daspeak/agent/natsbus"
	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

// mediaPath is where Twilio opens the Media Streams WebSocket.
const mediaPath = "/twilio/media"

type config struct {
	Listen       string
	PublicURL    string
	AllowOrigins string
	Store        agent.StoreConfig
	QueueFrames  int
	EngineCalls  int

	AccountSID   string
	AuthToken    string
	APIKeySID    string
	APIKeySecret string
	Region       string
	Edge         string
	TwilioURL    string
	BindingKey   string
	EventKey     string

	Workspace       string
	AnyAgentAnyCall bool

	TokenTTL       time.Duration
	TwiMLAppSID    string
	IdentityPrefix string
	WebChatAddress string
	WebChatService string

	FakeTwilio bool
	FakeVoice  string
	FakeWAV    string
	VoicesDir  string
	FakeFast   bool
	FakeCaller string

	NATS         string
	NATSPrefix   string
	NATSLease    time.Duration
	Node         string
	DrainTimeout time.Duration

	Engine  agent.EngineConfig
	Session agent.SessionFlags
}

func parseFlags(args []string, out io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("twilio-flex", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.Listen, "listen", agent.Env("LISTEN", "127.0.0.1:8080"), "address to listen on (env LISTEN)")
	fs.StringVar(&c.PublicURL, "public-url", os.Getenv("PUBLIC_URL"), "public base URL Twilio reaches this server at, e.g. https://vb.example.com (env PUBLIC_URL; default http://<listen address>)")
	fs.StringVar(&c.AllowOrigins, "allow-origin", agent.Env("ALLOW_ORIGIN", "https://flex.twilio.com"), "comma-separated browser origins allowed to call the API (env ALLOW_ORIGIN)")
	c.Store.Flags(fs)
	fs.IntVar(&c.QueueFrames, "queue-frames", 0, "frames a media stream buffers for a slow engine (0: 2 s)")
	fs.IntVar(&c.EngineCalls, "engine-calls", 0, "most engine calls at once across sessions; the others wait in arrival order (0: GOMAXPROCS with the offline engine, 16 with das-Peak)")
	fs.StringVar(&c.Region, "twilio-region", os.Getenv("TWILIO_REGION"), "Twilio region, e.g. ie1 (env TWILIO_REGION)")
	fs.StringVar(&c.Edge, "twilio-edge", os.Getenv("TWILIO_EDGE"), "Twilio edge, e.g. dublin (env TWILIO_EDGE)")
	fs.StringVar(&c.TwilioURL, "twilio-base-url", os.Getenv("TWILIO_BASE_URL"), "replace https://{api,iam,flex-api}.twilio.com, for egress proxies (env TWILIO_BASE_URL)")
	fs.StringVar(&c.Workspace, "workspace", os.Getenv("TWILIO_WORKSPACE_SID"), "Flex TaskRouter workspace SID (WS…, Console → TaskRouter → Workspaces): an agent may act only on the calls of their accepted tasks (env TWILIO_WORKSPACE_SID; required unless -any-agent-any-call)")
	fs.BoolVar(&c.AnyAgentAnyCall, "any-agent-any-call", false, "let every Flex agent of the account act on every live call whose SID they know, without -workspace (development only; not with -nats)")
	fs.DurationVar(&c.TokenTTL, "token-ttl", time.Hour, "lifetime of the access tokens of /flex/voice-token and /flex/webchat")
	fs.StringVar(&c.TwiMLAppSID, "twiml-app", os.Getenv("TWILIO_TWIML_APP_SID"), "TwiML App SID (AP…) for the voice client's outgoing calls (env TWILIO_TWIML_APP_SID)")
	fs.StringVar(&c.IdentityPrefix, "voice-identity-prefix", agent.Env("VOICE_IDENTITY_PREFIX", "ext_"), "prefix of the voice client identities, so the extension differs from the Flex tab (env VOICE_IDENTITY_PREFIX)")
	fs.StringVar(&c.WebChatAddress, "webchat-address", os.Getenv("TWILIO_WEBCHAT_ADDRESS_SID"), "Conversations address (IG…) for /flex/webchat (env TWILIO_WEBCHAT_ADDRESS_SID)")
	fs.StringVar(&c.WebChatService, "webchat-service", os.Getenv("TWILIO_CONVERSATIONS_SERVICE_SID"), "Conversations service (IS…) of web chat tokens (env TWILIO_CONVERSATIONS_SERVICE_SID)")
	fs.BoolVar(&c.FakeTwilio, "fake-twilio", false, "run against an in-process fake Twilio (loopback only): try the flow at http://<listen>/")
	fs.StringVar(&c.FakeVoice, "fake-voice", "slt", "-fake-twilio: speaker whose recordings <voice>_1.wav, _2.wav, … the fake call plays, in turn")
	fs.StringVar(&c.VoicesDir, "voices-dir", "testdata/voices", "-fake-twilio: directory of the -fake-voice recordings")
	fs.StringVar(&c.FakeWAV, "fake-wav", "", "-fake-twilio: 8 kHz WAV file the fake call plays (instead of -fake-voice)")
	fs.BoolVar(&c.FakeFast, "fake-fast", false, "-fake-twilio: play the recording at 4x real time instead of in real time")
	fs.StringVar(&c.FakeCaller, "fake-caller", "+34600000000", "-fake-twilio: the fake caller's number")
	fs.StringVar(&c.NATS, "nats", os.Getenv("NATS_URL"), "NATS server URL(s), e.g. nats://127.0.0.1:4222: run as one node of many, sharing operations and events over NATS JetStream (env NATS_URL; credentials from NATS_CREDS, NATS_NKEY, NATS_USER/NATS_PASSWORD or NATS_TOKEN)")
	fs.StringVar(&c.NATSPrefix, "nats-prefix", agent.Env("NATS_PREFIX", natsbus.DefaultPrefix), "-nats: prefix of the subjects, stream and buckets the nodes share (env NATS_PREFIX)")
	fs.DurationVar(&c.NATSLease, "nats-lease", natsbus.DefaultLease, "-nats: how long a node that stopped renewing keeps its operations before another node ends them")
	fs.StringVar(&c.Node, "node", os.Getenv("NODE_NAME"), "-nats: this node's name (env NODE_NAME; default host, pid and random)")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long running operations may finish before they are ended with error-cancelled")
	c.Engine.Flags(fs)
	c.Session.Flags(fs)
	if err := agent.ParseFlags(fs, args); err != nil {
		return nil, err
	}
	// Secrets come from the environment only.
	c.AccountSID = os.Getenv("TWILIO_ACCOUNT_SID")
	c.AuthToken = os.Getenv("TWILIO_AUTH_TOKEN")
	c.APIKeySID = os.Getenv("TWILIO_API_KEY")
	c.APIKeySecret = os.Getenv("TWILIO_API_SECRET")
	c.BindingKey = os.Getenv("BINDING_KEY")
	c.EventKey = os.Getenv("EVENT_KEY")
	return c, nil
}

// errCredentials is the start-up error without Twilio credentials. The
// auth token cannot be replaced by an API key: Twilio signs the Media
// Streams upgrade with it.
var errCredentials = errors.New("set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (Console → Account info): " +
	"the auth token checks Twilio's signature on every Media Stream, and an API key cannot replace it; " +
	"TWILIO_API_KEY and TWILIO_API_SECRET are optional and only sign the access tokens of /flex/voice-token and /flex/webchat. " +
	"No account? Try -fake-twilio")

// errWorkspace is the start-up error without -workspace.
var errWorkspace = errors.New("set TWILIO_WORKSPACE_SID (or -workspace) to the Flex TaskRouter workspace (WS…, Console → TaskRouter → Workspaces) " +
	"so that an agent can register or verify only the callers of their own accepted tasks; " +
	"-any-agent-any-call lets every agent act on every call whose SID they know (development only)")

// errAnyAgentCluster is the start-up error of -any-agent-any-call with
// -nats.
var errAnyAgentCluster = errors.New("-any-agent-any-call cannot run with -nats (or NATS_URL): a node forwards an agent's request to the node that holds the call, " +
	"which does not authorize it again, so one node without -workspace would open every call of every node; " +
	"set -workspace (TWILIO_WORKSPACE_SID) on every node, or run one node without -nats for development")

// checkCluster refuses a node of many (-nats) whose configuration cannot
// be shared: every node must sign and check the same event-stream tokens
// and stream bindings, and read the same credentials, and keep agents to
// their calls (-workspace).
func checkCluster(cfg *config) error {
	if cfg.NATS == "" {
		return nil
	}
	if cfg.AnyAgentAnyCall {
		return errAnyAgentCluster
	}
	var missing []string
	if cfg.EventKey == "" {
		missing = append(missing, "EVENT_KEY (event-stream URLs open on any node)")
	}
	if cfg.BindingKey == "" {
		missing = append(missing, "BINDING_KEY (a Media Stream may reach any node)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("-nats: every node needs the same %s: base64 of 32 random bytes, e.g. %s", strings.Join(missing, " and "), agent.NewAudioKey())
	}
	if cfg.Store.Spec == "memory" || cfg.Store.Spec == "" {
		return errors.New("-nats: the nodes need one credential store: -store sqlite:PATH on a file they share, or a database")
	}
	return nil
}

func decodeKey(name, v string) ([]byte, error) {
	if v == "" {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("%s is not base64", name)
	}
	return b, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// streamURL derives the Media Streams URL Twilio is given (and signs) from
// the public base URL.
func streamURL(public string) (string, error) {
	pub, err := url.Parse(public)
	if err != nil || pub.Host == "" {
		return "", fmt.Errorf("bad -public-url %q", public)
	}
	switch pub.Scheme {
	case "https", "wss":
		pub.Scheme = "wss"
	case "http", "ws":
		pub.Scheme = "ws"
	default:
		return "", fmt.Errorf("bad -public-url scheme %q", pub.Scheme)
	}
	pub.Path = strings.TrimSuffix(pub.Path, "/") + mediaPath
	pub.RawQuery, pub.Fragment = "", ""
	return pub.String(), nil
}

// app is the server: the agent API, the stream source and the Flex
// endpoints.
type app struct {
	api        *agent.Server
	source     *flex.Source
	assignment *flex.Assignment // nil with -any-agent-any-call
	handler    http.Handler
}

// cluster is what a node of many shares (-nats); nil on a single node.
type cluster struct {
	bus *natsbus.Bus
}

func newApp(cfg *config, log *slog.Logger, engine daspeak.Engine, store *agent.CredentialStore, cl *cluster) (*app, error) {
	if cfg.AccountSID == "" || cfg.AuthToken == "" {
		return nil, errCredentials
	}
	media, err := streamURL(cfg.PublicURL)
	if err != nil {
		return nil, err
	}
	bindKey, err := decodeKey("BINDING_KEY", cfg.BindingKey)
	if err != nil {
		return nil, err
	}
	eventKey, err := decodeKey("EVENT_KEY", cfg.EventKey)
	if err != nil {
		return nil, err
	}
	tc, err := twilio.NewClient(&twilio.ClientOptions{
		AccountSID: cfg.AccountSID, AuthToken: cfg.AuthToken,
		APIKeySID: cfg.APIKeySID, APIKeySecret: cfg.APIKeySecret,
		Region: cfg.Region, Edge: cfg.Edge, BaseURL: cfg.TwilioURL,
	})
	if err != nil {
		return nil, err
	}
	fv, err := twilio.NewFlexValidator(&twilio.FlexValidatorOptions{
		AccountSID: cfg.AccountSID, AuthToken: cfg.AuthToken,
		APIKeySID: cfg.APIKeySID, APIKeySecret: cfg.APIKeySecret,
		Realm: cfg.Region, BaseURL: cfg.TwilioURL,
	})
	if err != nil {
		return nil, err
	}
	fa := flex.NewAuthenticator(fv, log)
	var auth agent.Authenticator = fa
	var assignment *flex.Assignment
	switch {
	case cfg.Workspace != "":
		if assignment, err = flex.NewAssignment(&flex.AssignmentOptions{Client: tc, WorkspaceSID: cfg.Workspace, Logger: log}); err != nil {
			return nil, err
		}
		auth = flex.Assigned(fa, assignment)
	case cfg.AnyAgentAnyCall:
		log.Warn("-any-agent-any-call: every Flex agent of the account can register, verify and delete the voice of any live call whose SID they know; set -workspace to keep agents to their own calls")
	default:
		return nil, errWorkspace
	}
	met := metrics.New()
	src, err := flex.NewSource(&flex.SourceOptions{
		Client: tc, StreamURL: media, AuthTokens: []string{cfg.AuthToken},
		Binder: agent.NewBinder(bindKey), QueueFrames: cfg.QueueFrames, Logger: log,
		Track: func(st *twilio.Stream) func() {
			return met.TrackStream(func() metrics.StreamLag {
				s := st.Stats()
				return metrics.StreamLag{Lag: s.Lag, MaxLag: s.MaxLag, FramesLagged: s.FramesLagged}
			})
		},
	})
	if err != nil {
		return nil, err
	}
	origins := splitList(cfg.AllowOrigins)
	// Engine calls wait in arrival order for one of -engine-calls slots
	// (see run), shared by the operations and the das-Peak client.
	lim := cfg.Engine.Limiter
	if lim == nil {
		lim = cfg.Engine.NewLimiter(cfg.EngineCalls)
	}
	met.WatchLimiter(lim)
	register, verify := cfg.Session.Config(), cfg.Session.Config()
	register.Limiter, verify.Limiter = lim, lim
	opts := &agent.Options{
		Engine: engine, Store: store, Source: src, Authenticator: auth,
		AllowedOrigins: origins, Register: register, Verify: verify,
		EventKey: eventKey, Logger: log, Observer: met,
	}
	if cl != nil {
		opts.Log = cl.bus
	}
	api, err := agent.NewServer(opts)
	if err != nil {
		src.Close()
		return nil, err
	}
	if cl != nil {
		// A stream the load balancer sent here for an operation another
		// node started runs here.
		src.SetAdopter(api)
	}
	mux := http.NewServeMux()
	// A refused token answers 401; a token the server could not check
	// (Twilio refused its own credentials, or is unreachable) 503
	// auth_unavailable.
	mux.Handle(api.BasePath()+"/", api)
	mux.Handle("GET "+mediaPath, src)
	mux.Handle("GET /healthz", api.HealthHandler())
	mux.Handle("GET /readyz", api.ReadyHandler())
	mux.Handle("GET /metrics", met.Handler())
	if cfg.APIKeySID != "" && cfg.APIKeySecret != "" {
		vt, err := flex.VoiceTokenHandler(&flex.VoiceTokenOptions{
			Auth: fa, AccountSID: cfg.AccountSID, APIKeySID: cfg.APIKeySID, APIKeySecret: cfg.APIKeySecret,
			TwiMLAppSID: cfg.TwiMLAppSID, IdentityPrefix: cfg.IdentityPrefix, TTL: cfg.TokenTTL, Region: cfg.Region,
			AllowedOrigins: origins, Logger: log,
		})
		if err != nil {
			src.Close()
			return nil, err
		}
		mux.Handle("/flex/voice-token", vt)
		if cfg.WebChatAddress != "" && cfg.WebChatService != "" {
			wc, err := flex.WebChatHandler(&flex.WebChatOptions{
				Client: tc, AddressSID: cfg.WebChatAddress, ServiceSID: cfg.WebChatService,
				AccountSID: cfg.AccountSID, APIKeySID: cfg.APIKeySID, APIKeySecret: cfg.APIKeySecret,
				TTL: cfg.TokenTTL, Region: cfg.Region, AllowedOrigins: origins, Logger: log,
			})
			if err != nil {
				src.Close()
				return nil, err
			}
			mux.Handle("/flex/webchat", wc)
		}
	}
	return &app{api: api, source: src, assignment: assignment, handler: cors(origins, agent.JSONErrors(mux))}, nil
}

// cors answers the /flex/ endpoints' preflight for the allowed origins
// (the agent API answers its own).
func cors(origins []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := r.Header.Get("Origin")
		if o != "" && strings.HasPrefix(r.URL.Path, "/flex/") {
			allowed := false
			for _, a := range origins {
				allowed = allowed || a == o
			}
			if allowed {
				h := w.Header()
				h.Set("Access-Control-Allow-Origin", o)
				h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
				h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, X-Flex-Token")
				h.Set("Access-Control-Max-Age", "600")
				h.Add("Vary", "Origin")
			}
			if r.Method == http.MethodOptions {
				if !allowed {
					w.WriteHeader(http.StatusForbidden)
					return
				}
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// checkWorkspace asks TaskRouter for the -workspace at start-up: a
// workspace it does not know stops the server; credentials it refuses,
// or TaskRouter unreachable, are logged (agents then get 503
// auth_unavailable until it answers).
func checkWorkspace(ctx context.Context, cfg *config, log *slog.Logger, a *app) error {
	if a.assignment == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err := a.assignment.Check(cctx)
	switch {
	case errors.Is(err, flex.ErrWorkspace):
		return fmt.Errorf("-workspace %s: TaskRouter does not know this workspace on account %s: %w", cfg.Workspace, cfg.AccountSID, err)
	case err != nil:
		log.Error("TaskRouter could not be asked at start-up: agents get 503 auth_unavailable until it answers", "workspace", cfg.Workspace, "err", err)
	default:
		log.Info("agents act only on the calls of their accepted TaskRouter tasks", "workspace", cfg.Workspace)
	}
	return nil
}

// shutdown ends the agent's operations, then refuses new streams.
func (a *app) shutdown(ctx context.Context) error {
	err := a.api.Drain(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = nil // the operations still running were ended with error-cancelled
	}
	return errors.Join(err, a.source.Close())
}

// abort closes an app that never served: nothing ran, nothing to drain.
func (a *app) abort(ctx context.Context) {
	a.api.Shutdown(ctx)
	a.source.Close()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// fakeTwilio is the in-process Twilio of -fake-twilio: REST, IAM and a
// caller who speaks into every started stream.
type fakeTwilio struct {
	srv    *twiliotest.Server
	token  string // the agent's Flex token, valid for the fake only
	caller string
	cancel context.CancelFunc

	mu    sync.Mutex
	calls []string // the live fake calls, oldest first
	// TaskRouter: every fake call is a task the fake agent (worker)
	// accepted.
	workspace, worker string
	tasks             map[string]string // call SID → task SID
	// hangups holds, by call SID, a channel closed when the fake call
	// hangs up: it ends the call's Media Streams.
	hangups map[string]chan struct{}
	wavs    [][]byte
	turn    int
	clock   twiliotest.Clock
	log     *slog.Logger
}

// fakeFastSpeed is how many times real time -fake-fast plays a recording.
// Still paced, not as fast as possible: a stream's queue is bounded (2 s
// by default, oldest frame dropped when full), and an unpaced burst of an
// 8 s recording overruns it, so the operation hears only part of it.
const fakeFastSpeed = 4

// startFake starts the fake Twilio and points cfg at it.
func startFake(cfg *config, log *slog.Logger) (*fakeTwilio, error) {
	var files []string
	if cfg.FakeWAV != "" {
		files = []string{cfg.FakeWAV}
	} else {
		files, _ = filepath.Glob(filepath.Join(cfg.VoicesDir, cfg.FakeVoice+"_[0-9]*.wav"))
		if len(files) == 0 {
			return nil, fmt.Errorf("-fake-twilio: no recording %s_1.wav in %q: run from the repository root, set -voices-dir, or pass -fake-wav PATH (an 8 kHz WAV)", cfg.FakeVoice, cfg.VoicesDir)
		}
	}
	f := &fakeTwilio{token: "fake-flex-" + randomHex(16), caller: cfg.FakeCaller, log: log,
		workspace: "WS" + randomHex(16), worker: "WK" + randomHex(16), tasks: map[string]string{}, hangups: map[string]chan struct{}{}}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("-fake-twilio: %w", err)
		}
		f.wavs = append(f.wavs, b)
	}
	f.clock = twiliotest.ScaledClock(1)
	if cfg.FakeFast {
		f.clock = twiliotest.ScaledClock(fakeFastSpeed)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	apiKey, apiSecret := "SK"+randomHex(16), randomHex(16)
	f.srv = twiliotest.NewServer(&twiliotest.ServerOptions{
		APIKeys:       map[string]string{apiKey: apiSecret},
		OnStreamStart: func(cs twiliotest.CreatedStream) { f.play(ctx, cs) },
	})
	f.srv.AddFlexToken(f.token, twilio.FlexIdentity{
		Identity: "agent_40example_2Dcom", RealmUserID: "agent@example.com", WorkerSID: f.worker,
		Roles: []string{"agent"}, Expiration: time.Now().Add(24 * time.Hour),
	})
	cfg.AccountSID, cfg.AuthToken = f.srv.AccountSID(), f.srv.AuthToken()
	cfg.APIKeySID, cfg.APIKeySecret = apiKey, apiSecret
	cfg.TwilioURL, cfg.Region, cfg.Edge = f.srv.URL, "", ""
	// A -workspace given is the fake's: its tasks are made there.
	if cfg.Workspace != "" {
		f.workspace = cfg.Workspace
	}
	f.srv.AddWorkspace(f.workspace)
	if cfg.Workspace == "" && !cfg.AnyAgentAnyCall {
		cfg.Workspace = f.workspace
	}
	if cfg.WebChatAddress == "" {
		cfg.WebChatAddress = "IG" + randomHex(16)
	}
	if cfg.WebChatService == "" {
		cfg.WebChatService = "IS" + randomHex(16)
	}
	return f, nil
}

// play connects to a started stream as Twilio would (signed with the fake's
// auth token) and plays the next recording as the caller.
func (f *fakeTwilio) play(ctx context.Context, cs twiliotest.CreatedStream) {
	f.mu.Lock()
	wav := f.wavs[f.turn%len(f.wavs)]
	f.turn++
	hungUp := f.hangups[cs.CallSID]
	f.mu.Unlock()
	res, err := twiliotest.PlayWAV(ctx, cs.URL, wav, &twiliotest.Options{
		AuthToken: f.srv.AuthToken(), AccountSID: cs.AccountSID, CallSID: cs.CallSID, StreamSID: cs.SID,
		CustomParameters: cs.Parameters, Clock: f.clock, Stop: hungUp,
	})
	if err != nil {
		f.log.Info("fake twilio: stream ended", "call", cs.CallSID, "stream", cs.SID, "err", err)
		return
	}
	f.log.Info("fake twilio: stream played", "call", cs.CallSID, "stream", cs.SID, "media_sent", res.MediaSent)
}

// close stops the fake's streams and the fake.
func (f *fakeTwilio) close() {
	f.cancel()
	f.srv.Close()
}

var tryPage = template.Must(template.New("try").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>voicegate · Flex (fake Twilio)</title>
<style>body{font:15px system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 8px}
.call{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:0 0 1rem}
.call button{font:inherit;font-weight:600;min-height:44px;padding:8px 14px;border-radius:6px;border:2px solid #b3261e;background:#b3261e;color:#fff;cursor:pointer}
.call button:disabled{background:#e8eaed;border-color:#80868b;color:#3c4043;cursor:not-allowed}
.call button:focus-visible{outline:3px solid #000;outline-offset:2px}</style></head>
<body>
<h1>Agent desk, fake Twilio</h1>
<p>A fake call <code>{{.CallSID}}</code> from <code>{{.Caller}}</code>. Every stream the agent starts plays a recorded caller.</p>
<div class="call"><button type="button" id="hangup">Hang up</button><span id="callstate" role="status">Call in progress.</span></div>
<script src="/agent/voicegate-agent.js"></script>
<voicegate-agent security-token="{{.Token}}" call-sid="{{.CallSID}}" caller-id="{{.Caller}}" call-in-progress="true"></voicegate-agent>
<p><small>Hang up ends the call as the caller would: the fake Twilio ends its Media Streams and moves the agent's TaskRouter reservation to wrapping. The page leaves the widget's call-in-progress as it was, so the widget learns of the end from the voice service.</small></p>
<script nonce="{{.Nonce}}">
document.getElementById('hangup').addEventListener('click', async (ev) => {
  const b = ev.currentTarget;
  const said = document.getElementById('callstate');
  b.disabled = true;
  said.textContent = 'Hanging up\u2026';
  try {
    const res = await fetch('/fake/hangup', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({call_sid: {{.CallSID}}})});
    if (!res.ok) throw new Error(res.status + ' ' + res.statusText);
    said.textContent = 'Call ended: the caller hung up.';
  } catch (e) {
    b.disabled = false;
    said.textContent = 'Hanging up failed: ' + e.message;
  }
});
</script>
</body></html>
`))

// maxFakeCalls bounds the live calls of the fake: the oldest one is hung
// up when a page load places one more.
const maxFakeCalls = 20

// try serves the local page of -fake-twilio: the widget on a new fake
// call, which the fake's Calls API knows as an inbound call in progress
// from the fake caller (so the agent server ties it to that number), and
// the fake's TaskRouter as the call_sid of a task the fake agent accepted
// (so the agent may act on it).
func (f *fakeTwilio) try(w http.ResponseWriter, r *http.Request) {
	sid := twiliotest.SID("CA")
	f.srv.AddCall(twilio.CallResource{SID: sid, From: f.caller, To: "+15005550006", Direction: twilio.DirectionInbound, Status: twilio.CallInProgress})
	task := twiliotest.SID("WT")
	f.srv.AddTask(f.workspace, task, `{"type":"inbound","call_sid":"`+sid+`","from":"`+f.caller+`"}`, twilio.TaskAssigned)
	f.srv.SetReservation(f.workspace, f.worker, task, twilio.ReservationAccepted)
	f.mu.Lock()
	f.calls = append(f.calls, sid)
	f.tasks[sid] = task
	f.hangups[sid] = make(chan struct{})
	if len(f.calls) > maxFakeCalls {
		old := f.calls[0]
		f.srv.SetCallStatus(old, twilio.CallCompleted)
		f.srv.SetReservation(f.workspace, f.worker, f.tasks[old], twilio.ReservationCompleted)
		if c := f.hangups[old]; c != nil {
			close(c)
		}
		delete(f.hangups, old)
		delete(f.tasks, old)
		f.calls = f.calls[1:]
	}
	f.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// No other site may frame the page and click the widget's buttons.
	// The page's own inline script (Hang up) runs by a nonce new on
	// every response (CSP Level 3, script-src 'nonce-…'); no other inline
	// script does.
	var nb [18]byte
	rand.Read(nb[:]) // never fails (crypto/rand)
	nonce := base64.StdEncoding.EncodeToString(nb[:])
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'nonce-"+nonce+"'; style-src 'self' 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	tryPage.Execute(w, map[string]string{"Token": f.token, "CallSID": sid, "Caller": f.caller, "Nonce": nonce})
}

// hangUp serves POST /fake/hangup {"call_sid": "CA…"}: the fake call
// ends as when the caller hangs up. Its Media Streams end (with Twilio's
// stop message), the Calls API says it is completed, and TaskRouter moves
// its task and the agent's reservation to wrapping. As the demo's desk
// controls do, it answers pages of its own origin only: an Origin header,
// when the browser sends one, must be http:// and the request's Host, and
// a request without one must not be marked cross-site or same-site by the
// browser (Fetch Metadata); a refusal is 403 origin_not_allowed. Only JSON
// is taken, so a page of another origin cannot send it without a CORS
// preflight either, which the fake does not answer.
func (f *fakeTwilio) hangUp(w http.ResponseWriter, r *http.Request) {
	site := r.Header.Get("Sec-Fetch-Site")
	if o := r.Header.Get("Origin"); (o != "" && o != "http://"+r.Host) || (o == "" && (site == "cross-site" || site == "same-site")) {
		agent.WriteError(w, http.StatusForbidden, agent.CodeOriginNotAllowed, "the fake's hang-up answers pages of its own origin only")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		agent.WriteError(w, http.StatusUnsupportedMediaType, agent.CodeUnsupportedMediaType, "send the body as Content-Type: application/json")
		return
	}
	var req struct {
		CallSID string `json:"call_sid"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<10)).Decode(&req); err != nil {
		agent.WriteError(w, http.StatusBadRequest, agent.CodeBadRequest, "the body is not JSON {\"call_sid\": \"CA…\"}")
		return
	}
	f.mu.Lock()
	task, ok := f.tasks[req.CallSID]
	hungUp := f.hangups[req.CallSID]
	if ok {
		delete(f.hangups, req.CallSID)
	}
	f.mu.Unlock()
	if !ok {
		agent.WriteError(w, http.StatusNotFound, agent.CodeNotFound, "no such live fake call")
		return
	}
	f.srv.SetCallStatus(req.CallSID, twilio.CallCompleted)
	f.srv.AddTask(f.workspace, task, `{"type":"inbound","call_sid":"`+req.CallSID+`","from":"`+f.caller+`"}`, "wrapping") // the task's assignment_status
	f.srv.SetReservation(f.workspace, f.worker, task, twilio.ReservationWrapping)
	if hungUp != nil {
		close(hungUp)
	}
	f.log.Info("fake twilio: the caller hung up", "call", req.CallSID)
	w.WriteHeader(http.StatusNoContent)
}

// handler serves the fake's page, its hang-up and its favicon in front of
// api, the agent API. A method the fake's paths do not take is 405
// method_not_allowed with Allow, as on the API's own paths. The page hands
// the fake's Flex token to whoever loads it: only requests addressed to a
// loopback name are answered (DNS rebinding).
func (f *fakeTwilio) handler(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.HandleFunc("GET /{$}", f.try)
	mux.HandleFunc("/{$}", methodNotAllowed("GET, HEAD"))
	mux.HandleFunc("POST /fake/hangup", f.hangUp)
	mux.HandleFunc("/fake/hangup", methodNotAllowed("POST"))
	// The page has no icon: 204, not a 404 in the browser's console.
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=86400")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/favicon.ico", methodNotAllowed("GET, HEAD"))
	return agent.LoopbackHostOnly(agent.JSONErrors(mux))
}

// methodNotAllowed answers 405 method_not_allowed with Allow: allow.
func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		agent.WriteError(w, http.StatusMethodNotAllowed, agent.CodeMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+allow)
	}
}

func run(ctx context.Context, args []string, logOut io.Writer, listening func(net.Addr)) error {
	cfg, err := parseFlags(args, logOut)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(logOut, nil))
	if cfg.FakeTwilio {
		// The fake's Flex token is served to any page that asks.
		if err := agent.RequireLoopback(cfg.Listen); err != nil {
			return fmt.Errorf("-fake-twilio listens on loopback only (127.0.0.1, [::1] or localhost), not -listen %s: its page hands a Flex token to any page that asks", cfg.Listen)
		}
	}
	if err := checkCluster(cfg); err != nil {
		return err
	}
	cfg.Engine.Limiter = cfg.Engine.NewLimiter(cfg.EngineCalls)
	engine, desc, err := cfg.Engine.New()
	if err != nil {
		return err
	}
	if cfg.Engine.Offline {
		log.Warn("the offline engine is for trying the flow: it is not a security control; use das-Peak to authenticate callers")
	}
	store, closeStore, err := cfg.Store.Open(ctx)
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
		cfg.PublicURL = "http://" + ln.Addr().String()
	}
	var fake *fakeTwilio
	if cfg.FakeTwilio {
		if fake, err = startFake(cfg, log); err != nil {
			ln.Close()
			return err
		}
		defer fake.close()
	}
	var cl *cluster
	if cfg.NATS != "" {
		bus, err := natsbus.Connect(ctx, cfg.NATS, &natsbus.Options{Prefix: cfg.NATSPrefix, Node: cfg.Node, Lease: cfg.NATSLease, Logger: log})
		if err != nil {
			ln.Close()
			return err
		}
		defer bus.Close()
		cl = &cluster{bus: bus}
		log.Info("one node of many", "node", bus.Node(), "nats_prefix", cfg.NATSPrefix)
	}
	a, err := newApp(cfg, log, engine, store, cl)
	if err != nil {
		ln.Close()
		return err
	}
	if err := checkWorkspace(ctx, cfg, log, a); err != nil {
		ln.Close()
		a.abort(ctx)
		return err
	}
	h := a.handler
	if fake != nil {
		h = fake.handler(a.handler)
		log.Warn("fake Twilio: no call reaches a real caller; try the flow at " + cfg.PublicURL + "/")
	}
	log.Info("voice biometrics for Twilio Flex", "engine", desc, "public_url", cfg.PublicURL, "fake_twilio", cfg.FakeTwilio)
	if listening != nil {
		listening(ln.Addr())
	}
	return agent.Serve(ctx, log, ln, h, cfg.DrainTimeout+5*time.Second, func(sctx context.Context) error {
		dctx, cancel := context.WithTimeout(sctx, cfg.DrainTimeout)
		defer cancel()
		return a.shutdown(dctx)
	})
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr, nil)
	stop()
	os.Exit(agent.ExitCode(os.Stderr, "twilio-flex", err))
}

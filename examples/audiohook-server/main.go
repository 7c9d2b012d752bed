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
// whoever calls first from a number is enrolled as its owner. callerId
// defaults to the participant's ANI. Once enough net speech was heard, the
// server sends the result as an AudioHook event with one "voicegate.result"
// entity, then disconnects with reason "completed" and the result type as
// info.
//
// A failed authentication is answered as the Genesys reference server
// does: the WebSocket is accepted, then disconnect "unauthorized" is sent
// 500 ms after verification started (-auth-failure reject answers HTTP 401
// instead). See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/examples/internal/vgexample"
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
	Progress     bool
	Buffer       time.Duration
	Engine       vgexample.EngineConfig
	Session      vgexample.SessionFlags
}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("audiohook-server", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", vgexample.Env("LISTEN", "127.0.0.1:8080"), "address to listen on (env LISTEN)")
	fs.StringVar(&c.KeysEnv, "keys-env", "STATIC_API_KEY_MAP", `environment variable holding {"api key": "base64 client secret", …}`)
	fs.BoolVar(&c.InsecureAuth, "insecure-skip-auth", false, "accept unauthenticated connections (local tests only)")
	fs.StringVar(&c.AuthFailure, "auth-failure", vgexample.Env("AUTH_FAILURE", authDisconnect), `answer a failed authentication with "disconnect" (accept, then disconnect unauthorized, as the Genesys reference server) or "reject" (HTTP 401) (env AUTH_FAILURE)`)
	fs.BoolVar(&c.AutoEnrol, "auto-enrol", vgexample.EnvBool("AUTO_ENROL", false), "allow operation auto and make it the default: an unregistered caller id is enrolled with the voice of whoever calls; caller ids can be spoofed (env AUTO_ENROL)")
	fs.StringVar(&c.RecordDir, "record", os.Getenv("RECORD_DIR"), "record every session (WAV + JSON) into this directory (env RECORD_DIR)")
	fs.StringVar(&c.Store, "store", vgexample.Env("CREDSTORE", "memory"), "credential store: memory or sqlite:PATH (env CREDSTORE)")
	fs.StringVar(&c.AudioDir, "audio-dir", os.Getenv("ENROLMENT_AUDIO_DIR"), "directory to keep enrolment audio in (env ENROLMENT_AUDIO_DIR)")
	fs.DurationVar(&c.Buffer, "buffer", 0, "audio buffered for a slow engine per session (0: 2s)")
	fs.BoolVar(&c.Progress, "progress", true, "send progress events (net speech so far) as well as the result")
	c.Engine.Flags(fs)
	c.Session.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if c.AuthFailure != authDisconnect && c.AuthFailure != authReject {
		return nil, fmt.Errorf("-auth-failure %q: want %q or %q", c.AuthFailure, authDisconnect, authReject)
	}
	c.StoreKey = os.Getenv("CREDSTORE_KEY")
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
// unless autoEnrol.
func parseOpen(p *audiohook.OpenParameters, autoEnrol bool) (op, caller string, err error) {
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
	caller = cc.CallerID
	if caller == "" {
		caller = strings.TrimPrefix(p.Participant.ANI, "tel:")
	}
	if err := credstore.ValidateID(caller); err != nil {
		return "", "", errors.New("no caller id: set customConfig.callerId or send the participant's ani")
	}
	return op, caller, nil
}

type server struct {
	cfg      *config
	log      *slog.Logger
	engine   daspeak.Engine
	store    credstore.Store
	opts     audiohook.ServerOptions
	sessions vgexample.Tracker
}

func newServer(cfg *config, log *slog.Logger, engine daspeak.Engine, store credstore.Store) (*server, error) {
	s := &server{cfg: cfg, log: log, engine: engine, store: store}
	s.opts = audiohook.ServerOptions{
		InsecureSkipAuth: cfg.InsecureAuth,
		Nonces:           audiohook.NewMemoryNonces(0),
		// Only the customer's voice is needed: prefer their channel alone.
		Media: []audiohook.MediaParameter{
			audiohook.MediaPCMUExternal, audiohook.MediaL16External,
			audiohook.MediaPCMUStereo, audiohook.MediaL16Stereo,
		},
		OnOpen: func(info *audiohook.OpenInfo) error {
			if info.Probe {
				return nil
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
		if len(keys) == 0 {
			return nil, fmt.Errorf("no API keys: set %s to {\"<api key>\":\"<base64 client secret>\"} (or -insecure-skip-auth for local tests)", cfg.KeysEnv)
		}
		s.opts.Keys = keys
	}
	if cfg.RecordDir != "" {
		if err := os.MkdirAll(cfg.RecordDir, 0o750); err != nil {
			return nil, err
		}
		s.opts.Recorder = audiohook.DirSink(cfg.RecordDir)
	}
	return s, nil
}

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wsPath, s.audiohook)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	return mux
}

// audiohook serves one AudioHook connection. After the upgrade it uses the
// tracker's context, never r.Context().
func (s *server) audiohook(w http.ResponseWriter, r *http.Request) {
	ctx, done, ok := s.sessions.Start()
	if !ok {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer done()
	sess, err := audiohook.Accept(w, r, &s.opts)
	if err != nil {
		s.log.Warn("audiohook connection refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	log := s.log.With("session", sess.ID())
	defer func() {
		if err := sess.Close(); err != nil && !errors.Is(err, audiohook.ErrClosed) {
			log.Info("session close", "err", err)
		}
	}()
	octx, cancel := context.WithTimeout(ctx, 15*time.Second)
	info, err := sess.Open(octx)
	cancel()
	if err != nil {
		log.Warn("session not opened", "err", err)
		return
	}
	if info.Probe || info.Media == nil {
		// A connection probe: opened was sent; wait for the client's close.
		select {
		case <-sess.Done():
		case <-ctx.Done():
		}
		return
	}
	op, caller, err := parseOpen(&info.Params, s.cfg.AutoEnrol)
	if err != nil { // OnOpen checked it already
		return
	}
	log = log.With("conversation", info.Params.ConversationID)
	cfg := s.cfg.Session.Config()
	var ds *daspeak.Session
	rec, err := s.store.Get(ctx, caller)
	switch {
	case err != nil && !errors.Is(err, credstore.ErrNotFound):
		log.Error("credential store", "err", err)
		sess.Disconnect(ctx, audiohook.ReasonError, "credential store unavailable")
		return
	case op == opRegister || (op == opAuto && err != nil):
		if op == opAuto {
			log.Warn("auto enrolment of an unregistered caller id (the caller is not authenticated)")
		}
		cfg.Store = vgexample.CredentialStore{Store: s.store, AudioDir: s.cfg.AudioDir}
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
		if ev.Type == daspeak.EventErrorStore {
			log.Error("credential not stored", "err", ev.Err)
		}
		s.result(ctx, log, sess, ev)
		return
	}
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
	p := audiohook.DisconnectParameters{Reason: audiohook.ReasonCompleted, Info: string(ev.Type), OutputVariables: vars}
	if err := sess.DisconnectWith(dctx, p); err != nil {
		log.Info("disconnect", "err", err)
	}
}

// send sends ev (without credential and audio) as an event entity.
func (s *server) send(ctx context.Context, log *slog.Logger, sess *audiohook.Session, typ string, ev daspeak.Event) bool {
	ent := audiohook.Entity{Type: typ, Data: vgexample.EventMessage(ev).Data}
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
	if cfg.InsecureAuth {
		log.Warn("authentication disabled: any client may connect")
	}
	log.Info("voice biometrics for Genesys AudioHook", "engine", desc, "path", wsPath, "record", cfg.RecordDir != "")
	if listening != nil {
		listening(ln.Addr())
	}
	return vgexample.Serve(ctx, log, ln, s.handler(), 0, s.sessions.Shutdown)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "audiohook-server:", err)
		os.Exit(1)
	}
}

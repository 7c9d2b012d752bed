// Command twilio-flex is a starter backend for a Twilio Flex voice
// biometrics plugin. It replaces the Twilio Functions and vendor scripts
// such integrations are usually assembled from:
//
//   - POST /flex/register, /flex/verify, /flex/reverify start a Media Stream
//     on the agent's live call (Streams REST API) that registers or verifies
//     the caller; POST /flex/stop stops it.
//   - POST /flex/credential and /flex/delete read and delete a caller's
//     credential; POST /flex/token issues a Twilio access token and a
//     short-lived token for the events endpoint.
//   - GET /flex/events streams the session's progress and result to the
//     agent's browser as Server-Sent Events.
//   - GET /twilio/media is the Media Streams WebSocket endpoint.
//
// Every /flex endpoint checks the agent's Flex token with Twilio IAM and
// fails closed. The biometric engine is das-Peak (DASPEAK_APIKEY) or, with
// -offline, the embedded offline engine. See README.md.
package main

import (
	"context"
	"encoding/base64"
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
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/examples/internal/vgexample"
	"github.com/voicegate/voicegate/twilio"
)

// mediaPath is where Twilio opens the Media Streams WebSocket.
const mediaPath = "/twilio/media"

// Stream custom parameters, set by this server when it starts a stream and
// read back from the start message.
const (
	paramCallerID  = "callerId"
	paramOperation = "operation"
	paramName      = "name"
	paramBinding   = "binding"
)

// bindingTTL bounds the time between starting a stream and Twilio opening
// its WebSocket.
const bindingTTL = 2 * time.Minute

// eventsTokenTTL is the lifetime of a token for GET /flex/events.
const eventsTokenTTL = 10 * time.Minute

type config struct {
	Listen      string
	PublicURL   string
	AllowOrigin string
	Store       string
	StoreKey    string
	AudioDir    string
	QueueFrames int
	TokenTTL    time.Duration

	AccountSID   string
	AuthToken    string
	APIKeySID    string
	APIKeySecret string
	TwiMLAppSID  string
	Region       string
	Edge         string
	TwilioURL    string
	BindingKey   string

	Engine  vgexample.EngineConfig
	Session vgexample.SessionFlags
}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("twilio-flex", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", vgexample.Env("LISTEN", "127.0.0.1:8080"), "address to listen on (env LISTEN)")
	fs.StringVar(&c.PublicURL, "public-url", vgexample.Env("PUBLIC_URL", "http://127.0.0.1:8080"), "public base URL Twilio reaches this server at, e.g. https://vb.example.com (env PUBLIC_URL)")
	fs.StringVar(&c.AllowOrigin, "allow-origin", vgexample.Env("ALLOW_ORIGIN", "https://flex.twilio.com"), "browser origin allowed to call /flex endpoints (env ALLOW_ORIGIN)")
	fs.StringVar(&c.Store, "store", vgexample.Env("CREDSTORE", "memory"), "credential store: memory or sqlite:PATH (env CREDSTORE)")
	fs.StringVar(&c.AudioDir, "audio-dir", os.Getenv("ENROLMENT_AUDIO_DIR"), "directory to keep enrolment audio in; empty keeps none (env ENROLMENT_AUDIO_DIR)")
	fs.IntVar(&c.QueueFrames, "queue-frames", 0, "frames a media stream buffers for a slow engine (0: 2 s)")
	fs.DurationVar(&c.TokenTTL, "token-ttl", time.Hour, "lifetime of the access tokens from /flex/token")
	fs.StringVar(&c.TwiMLAppSID, "twiml-app", os.Getenv("TWILIO_TWIML_APP_SID"), "TwiML App SID (AP…) for the voice grant of access tokens (env TWILIO_TWIML_APP_SID)")
	fs.StringVar(&c.Region, "twilio-region", os.Getenv("TWILIO_REGION"), "Twilio region, e.g. ie1 (env TWILIO_REGION)")
	fs.StringVar(&c.Edge, "twilio-edge", os.Getenv("TWILIO_EDGE"), "Twilio edge, e.g. dublin (env TWILIO_EDGE)")
	fs.StringVar(&c.TwilioURL, "twilio-base-url", os.Getenv("TWILIO_BASE_URL"), "replace https://{api,iam}.twilio.com, for tests and egress proxies (env TWILIO_BASE_URL)")
	c.Engine.Flags(fs)
	c.Session.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	// Secrets come from the environment only.
	c.AccountSID = os.Getenv("TWILIO_ACCOUNT_SID")
	c.AuthToken = os.Getenv("TWILIO_AUTH_TOKEN")
	c.APIKeySID = os.Getenv("TWILIO_API_KEY")
	c.APIKeySecret = os.Getenv("TWILIO_API_SECRET")
	c.StoreKey = os.Getenv("CREDSTORE_KEY")
	c.BindingKey = os.Getenv("BINDING_KEY")
	return c, nil
}

// server is the application: its handlers and the long-lived state they
// share.
type server struct {
	cfg      *config
	log      *slog.Logger
	mediaURL string
	engine   daspeak.Engine
	store    credstore.Store
	twilio   *twilio.Client
	flex     *twilio.FlexValidator
	hub      *vgexample.Hub
	binder   *vgexample.Binder
	sessions vgexample.Tracker

	mu     sync.Mutex
	active map[string]string // call SID → name of the stream this server started
}

func newServer(cfg *config, log *slog.Logger, engine daspeak.Engine, store credstore.Store) (*server, error) {
	if cfg.AccountSID == "" || (cfg.AuthToken == "" && (cfg.APIKeySID == "" || cfg.APIKeySecret == "")) {
		return nil, errors.New("set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET)")
	}
	if cfg.AuthToken == "" {
		return nil, errors.New("set TWILIO_AUTH_TOKEN: Media Streams upgrades are signed with it")
	}
	pub, err := url.Parse(cfg.PublicURL)
	if err != nil || pub.Host == "" {
		return nil, fmt.Errorf("bad -public-url %q", cfg.PublicURL)
	}
	// Twilio signs the wss:// URL it was given; Accept normalises https.
	switch pub.Scheme {
	case "https", "wss":
		pub.Scheme = "wss"
	case "http", "ws":
		pub.Scheme = "ws"
	default:
		return nil, fmt.Errorf("bad -public-url scheme %q", pub.Scheme)
	}
	pub.Path = strings.TrimSuffix(pub.Path, "/") + mediaPath
	pub.RawQuery, pub.Fragment = "", ""
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
	var key []byte
	if cfg.BindingKey != "" {
		if key, err = base64.StdEncoding.DecodeString(cfg.BindingKey); err != nil {
			return nil, errors.New("BINDING_KEY is not base64")
		}
	}
	return &server{
		cfg: cfg, log: log, mediaURL: pub.String(), engine: engine, store: store,
		twilio: tc, flex: fv, hub: vgexample.NewHub(0, 0), binder: vgexample.NewBinder(key),
		active: map[string]string{},
	}, nil
}

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /flex/register", s.agent(s.startStream(daspeak.OperationRegister)))
	mux.HandleFunc("POST /flex/verify", s.agent(s.startStream(daspeak.OperationVerify)))
	mux.HandleFunc("POST /flex/reverify", s.agent(s.startStream(daspeak.OperationVerify)))
	mux.HandleFunc("POST /flex/stop", s.agent(s.stopStream))
	mux.HandleFunc("POST /flex/credential", s.agent(s.getCredential))
	mux.HandleFunc("POST /flex/delete", s.agent(s.deleteCredential))
	mux.HandleFunc("POST /flex/token", s.agent(s.token))
	mux.HandleFunc("GET /flex/events", s.events)
	mux.HandleFunc("OPTIONS /flex/", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET "+mediaPath, s.media)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	return s.cors(mux)
}

// cors lets the Flex UI (another origin) call the /flex endpoints.
func (s *server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" && strings.HasPrefix(r.URL.Path, "/flex/") &&
			(s.cfg.AllowOrigin == "*" || o == s.cfg.AllowOrigin) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", o)
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, X-Flex-Token")
			h.Set("Access-Control-Max-Age", "600")
			h.Add("Vary", "Origin")
		}
		next.ServeHTTP(w, r)
	})
}

// agentHandler is a /flex handler that runs after the Flex token check.
type agentHandler func(w http.ResponseWriter, r *http.Request, id *twilio.FlexIdentity, p url.Values)

// agent checks the Flex token, as twilio-flex-token-validator does for a
// Twilio Function: Token in the body (JSON or form), or an
// "Authorization: Bearer" or X-Flex-Token header. Any failure, including
// an unreachable Twilio, is answered 403.
func (s *server) agent(h agentHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := vgexample.Params(w, r)
		if err != nil {
			vgexample.WriteError(w, http.StatusBadRequest, "unreadable request body")
			return
		}
		tok := p.Get("Token")
		if tok == "" {
			tok = r.Header.Get("X-Flex-Token")
		}
		if tok == "" {
			tok, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
		if tok == "" {
			vgexample.WriteError(w, http.StatusForbidden, "missing Flex token")
			return
		}
		id, err := s.flex.Validate(r.Context(), tok)
		if err != nil {
			// The error never contains the token.
			s.log.Warn("flex token refused", "path", r.URL.Path, "err", err)
			vgexample.WriteError(w, http.StatusForbidden, "invalid Flex token")
			return
		}
		h(w, r, id, p)
	}
}

// callerID returns the validated CallerId parameter, or answers 400.
func callerID(w http.ResponseWriter, p url.Values) (string, bool) {
	id := p.Get("CallerId")
	if err := credstore.ValidateID(id); err != nil {
		vgexample.WriteError(w, http.StatusBadRequest, "CallerId: 1 to 256 bytes of UTF-8 required")
		return "", false
	}
	return id, true
}

func callSID(w http.ResponseWriter, p url.Values) (string, bool) {
	c := p.Get("CallSid")
	if len(c) != 34 || !strings.HasPrefix(c, "CA") {
		vgexample.WriteError(w, http.StatusBadRequest, "CallSid: a call SID (CA…) required")
		return "", false
	}
	return c, true
}

func topics(call, caller string) []string {
	t := []string{"call:" + call}
	if caller != "" {
		t = append(t, "caller:"+caller)
	}
	return t
}

// startStream starts a Media Stream on the agent's call for op.
func (s *server) startStream(op daspeak.Operation) agentHandler {
	return func(w http.ResponseWriter, r *http.Request, id *twilio.FlexIdentity, p url.Values) {
		call, ok := callSID(w, p)
		if !ok {
			return
		}
		caller, ok := callerID(w, p)
		if !ok {
			return
		}
		if op == daspeak.OperationVerify {
			if _, err := s.store.Get(r.Context(), caller); errors.Is(err, credstore.ErrNotFound) {
				vgexample.WriteError(w, http.StatusNotFound, "caller is not registered")
				return
			} else if err != nil {
				s.log.Error("credential store", "err", err)
				vgexample.WriteError(w, http.StatusInternalServerError, "credential store unavailable")
				return
			}
		}
		// One biometric stream per call: stop the previous one
		// (re-authentication, or register after a failed verify).
		s.stopActive(r.Context(), call)
		name := fmt.Sprintf("voicegate-%s-%d", op, time.Now().UnixMilli())
		bind := s.binder.Sign(bindingTTL, call, caller, string(op), name)
		// Replace the last remembered event, so late subscribers do not
		// see the previous session's result.
		s.hub.Publish(vgexample.Message{Event: "stream-requested", Data: fmt.Appendf(nil, `{"type":"stream-requested","operation":%q}`, op)}, topics(call, caller)...)
		res, err := s.twilio.StartStream(r.Context(), call, &twilio.StreamParams{
			URL:   s.mediaURL,
			Name:  name,
			Track: twilio.TrackInbound,
			Parameters: []twilio.Parameter{
				{Name: paramCallerID, Value: caller},
				{Name: paramOperation, Value: string(op)},
				{Name: paramName, Value: name},
				{Name: paramBinding, Value: bind},
			},
		})
		if err != nil {
			s.log.Error("start stream", "call", call, "err", err)
			status := http.StatusBadGateway
			if ae, ok := twilio.IsAPIError(err, 0); ok && ae.Status == http.StatusNotFound {
				status = http.StatusNotFound
			}
			vgexample.WriteError(w, status, "could not start the media stream")
			return
		}
		s.mu.Lock()
		s.active[call] = name
		s.mu.Unlock()
		s.log.Info("stream started", "call", call, "stream", res.SID, "operation", op, "agent", id.Identity)
		vgexample.WriteJSON(w, http.StatusCreated, map[string]string{
			"call_sid": call, "stream_sid": res.SID, "name": name, "operation": string(op),
			"events": "/flex/events?call=" + url.QueryEscape(call),
		})
	}
}

// stopActive stops the stream this server started on call, if any.
func (s *server) stopActive(ctx context.Context, call string) (bool, error) {
	s.mu.Lock()
	name, ok := s.active[call]
	delete(s.active, call)
	s.mu.Unlock()
	if !ok {
		return false, nil
	}
	_, err := s.twilio.StopStream(ctx, call, name)
	if _, gone := twilio.IsAPIError(err, 20404); gone {
		err = nil // already ended with the session
	}
	if err != nil {
		s.log.Warn("stop stream", "call", call, "err", err)
	}
	return true, err
}

func (s *server) stopStream(w http.ResponseWriter, r *http.Request, _ *twilio.FlexIdentity, p url.Values) {
	call, ok := callSID(w, p)
	if !ok {
		return
	}
	found, err := s.stopActive(r.Context(), call)
	switch {
	case !found:
		vgexample.WriteError(w, http.StatusNotFound, "no biometric stream on this call")
	case err != nil:
		vgexample.WriteError(w, http.StatusBadGateway, "could not stop the media stream")
	default:
		vgexample.WriteJSON(w, http.StatusOK, map[string]any{"call_sid": call, "stopped": true})
	}
}

// getCredential tells whether a caller is registered. The credential
// itself never leaves the server.
func (s *server) getCredential(w http.ResponseWriter, r *http.Request, _ *twilio.FlexIdentity, p url.Values) {
	caller, ok := callerID(w, p)
	if !ok {
		return
	}
	rec, err := s.store.Get(r.Context(), caller)
	switch {
	case errors.Is(err, credstore.ErrNotFound):
		vgexample.WriteJSON(w, http.StatusOK, map[string]any{"registered": false})
	case err != nil:
		s.log.Error("credential store", "err", err)
		vgexample.WriteError(w, http.StatusInternalServerError, "credential store unavailable")
	default:
		vgexample.WriteJSON(w, http.StatusOK, map[string]any{
			"registered": true, "model_hash": rec.ModelHash,
			"created_at": rec.CreatedAt, "updated_at": rec.UpdatedAt,
		})
	}
}

func (s *server) deleteCredential(w http.ResponseWriter, r *http.Request, id *twilio.FlexIdentity, p url.Values) {
	caller, ok := callerID(w, p)
	if !ok {
		return
	}
	if err := s.store.Delete(r.Context(), caller); err != nil {
		s.log.Error("credential store", "err", err)
		vgexample.WriteError(w, http.StatusInternalServerError, "credential store unavailable")
		return
	}
	s.log.Info("credential deleted", "agent", id.Identity)
	vgexample.WriteJSON(w, http.StatusOK, map[string]any{"deleted": true})
}

// token is the agent UI's getTemporaryToken: a Twilio access token (Voice
// grant) when an API key is configured, and a short-lived token for
// GET /flex/events, which browsers' EventSource cannot send headers to.
func (s *server) token(w http.ResponseWriter, r *http.Request, id *twilio.FlexIdentity, _ url.Values) {
	exp := time.Now().Add(eventsTokenTTL)
	out := map[string]any{
		"identity":          id.Identity,
		"events_token":      s.binder.Sign(eventsTokenTTL, "events", id.Identity) + "." + base64.RawURLEncoding.EncodeToString([]byte(id.Identity)),
		"events_expires_at": exp.UTC().Format(time.RFC3339),
	}
	if s.cfg.APIKeySID != "" && s.cfg.APIKeySecret != "" {
		at := &twilio.AccessToken{
			AccountSID: s.cfg.AccountSID, APIKeySID: s.cfg.APIKeySID, APIKeySecret: s.cfg.APIKeySecret,
			Identity: id.Identity, TTL: s.cfg.TokenTTL, Region: s.cfg.Region,
			Voice: &twilio.VoiceGrant{IncomingAllow: true, OutgoingApplicationSID: s.cfg.TwiMLAppSID},
		}
		jwt, err := at.Sign(time.Now())
		if err != nil {
			s.log.Error("access token", "err", err)
			vgexample.WriteError(w, http.StatusInternalServerError, "could not sign an access token")
			return
		}
		out["token"] = jwt
		out["expires_at"] = time.Now().Add(s.cfg.TokenTTL).UTC().Format(time.RFC3339)
	}
	vgexample.WriteJSON(w, http.StatusOK, out)
}

// checkEventsToken verifies a token made by token: "exp.mac.identity".
func (s *server) checkEventsToken(tok string) bool {
	i := strings.LastIndexByte(tok, '.')
	if i < 0 {
		return false
	}
	ident, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		return false
	}
	return s.binder.Verify(tok[:i], "events", string(ident)) == nil
}

// events streams a call's (or caller's) session events as Server-Sent
// Events until the session's result.
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ok := s.checkEventsToken(q.Get("token"))
	if !ok {
		if tok := r.Header.Get("X-Flex-Token"); tok != "" {
			_, err := s.flex.Validate(r.Context(), tok)
			ok = err == nil
		}
	}
	if !ok {
		vgexample.WriteError(w, http.StatusForbidden, "invalid token")
		return
	}
	var t []string
	if c := q.Get("call"); c != "" {
		t = append(t, "call:"+c)
	}
	if c := q.Get("caller"); c != "" {
		t = append(t, "caller:"+c)
	}
	if len(t) == 0 {
		vgexample.WriteError(w, http.StatusBadRequest, "call or caller required")
		return
	}
	ctx, done, ok := s.sessions.Start()
	if !ok {
		vgexample.WriteError(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	defer done()
	vgexample.ServeSSE(ctx, w, r, s.hub.Subscribe(t...), 0, func(m vgexample.Message) bool {
		return vgexample.IsResult(m.Event)
	})
}

// media is the Media Streams WebSocket endpoint. After the upgrade it uses
// the session context from the tracker, never r.Context().
func (s *server) media(w http.ResponseWriter, r *http.Request) {
	ctx, done, ok := s.sessions.Start()
	if !ok {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer done()
	st, err := twilio.Accept(w, r, &twilio.AcceptOptions{
		PublicURL:   s.mediaURL,
		AuthTokens:  []string{s.cfg.AuthToken},
		QueueFrames: s.cfg.QueueFrames,
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
	p := start.CustomParameters
	caller, op, name := p[paramCallerID], daspeak.Operation(p[paramOperation]), p[paramName]
	if err := s.binder.Verify(p[paramBinding], start.CallSID, caller, string(op), name); err != nil {
		s.log.Warn("media stream binding refused", "call", start.CallSID, "stream", start.StreamSID)
		return
	}
	defer func() {
		s.mu.Lock()
		if s.active[start.CallSID] == name {
			delete(s.active, start.CallSID)
		}
		s.mu.Unlock()
	}()
	log := s.log.With("call", start.CallSID, "stream", start.StreamSID, "operation", op)
	cfg := s.cfg.Session.Config()
	var sess *daspeak.Session
	switch op {
	case daspeak.OperationRegister:
		cfg.Store = vgexample.CredentialStore{Store: s.store, AudioDir: s.cfg.AudioDir}
		cfg.CallerID = caller
		sess, _ = daspeak.Register(st, s.engine, cfg)
	case daspeak.OperationVerify:
		rec, err := s.store.Get(ctx, caller)
		if err != nil {
			log.Warn("verify without credential", "err", err)
			s.hub.Publish(vgexample.EventMessage(daspeak.Event{Type: daspeak.EventErrorParameters, Operation: op, Err: errors.New("caller is not registered")}), topics(start.CallSID, caller)...)
			return
		}
		if cfg.ModelHash == "" {
			cfg.ModelHash = rec.ModelHash
		}
		sess, _ = daspeak.Verify(st, s.engine, rec.Credential, cfg)
	default:
		return // the binding covers op, so this does not happen
	}
	log.Info("session started")
	for {
		ev, err := sess.Next(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				log.Info("session cancelled", "err", err)
			}
			return
		}
		s.hub.Publish(vgexample.EventMessage(ev), topics(start.CallSID, caller)...)
		if ev.IsTerminal() {
			attrs := []any{"result", ev.Type, "net_speech", ev.NetSpeech}
			if op == daspeak.OperationVerify && ev.Type != daspeak.EventResultFailSpoof {
				attrs = append(attrs, "score", ev.Score)
			}
			if ev.Err != nil {
				attrs = append(attrs, "err", ev.Err)
			}
			if ev.Type == daspeak.EventErrorStore {
				log.Error("credential not stored", "err", ev.Err)
			}
			log.Info("session ended", attrs...)
			return // closing the WebSocket ends the stream at Twilio
		}
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
	if cfg.Store == "memory" {
		log.Warn("credentials are kept in memory and lost at exit; use -store sqlite:PATH")
	}
	s, err := newServer(cfg, log, engine, store)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	log.Info("voice biometrics for Twilio Flex", "engine", desc, "media_url", s.mediaURL)
	if listening != nil {
		listening(ln.Addr())
	}
	return vgexample.Serve(ctx, log, ln, s.handler(), 0, s.sessions.Shutdown)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "twilio-flex:", err)
		os.Exit(1)
	}
}

package daspeaktest

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicegate/voicegate/daspeak"
)

// Options configure an Emulator. The zero value needs no credentials,
// serves the engine's models (or accepts any model hash), offers the
// calibration "telephone-channel" and applies das-Peak's audio limits.
type Options struct {
	// APIKey, when set, is required in the "apikey" header of every
	// das-Peak request, as the Veridas gateway does. A request without
	// apikey or Authorization header gets 401
	// {"message":"no Authorization header found"}; a wrong key or token
	// gets 401 {"message":"Invalid authentication credentials"}
	// (emulator-defined, after the Kong gateway).
	APIKey string
	// OAuthClientID and OAuthClientSecret, when set, enable the
	// emulator-only token endpoint POST /oauth/token (grant_type
	// client_credentials; client authentication by HTTP Basic or form
	// fields) and make das-Peak requests require a bearer token it issued
	// (or the APIKey, if also set). Veridas publishes no token endpoint;
	// this one exists to test OAuth2 client-credentials set-ups.
	OAuthClientID     string
	OAuthClientSecret string
	// TokenLifetime is the expires_in of issued tokens (default 1 h, at
	// least 1 s).
	TokenLifetime time.Duration

	// Models lists the model hashes served when the engine is not a
	// daspeak.ModelLister. With neither, GET /models returns an empty list
	// and any model hash is accepted.
	Models []string
	// Calibrations lists the calibrations every model supports (default
	// ["telephone-channel"]). Others give CalibrationNotAvailable.
	Calibrations []string
	// MinNetSpeech is the net speech, in seconds, below which audio gets
	// VoiceDurationIsNotEnoughException (default 3).
	MinNetSpeech float64
	// MaxAudioDuration is the play time from which audio gets "The wav
	// duration is longer than 30 seconds" (default 30 s).
	MaxAudioDuration time.Duration
	// MaxRequestBytes bounds a request body (default 32 MiB); larger ones get
	// 413 {"message":"Request size limit exceeded"} (emulator-defined).
	MaxRequestBytes int64
	// CredentialModel, when set, tells which model generated a credential,
	// for POST /models/metadata/from-credential; otherwise the engine must
	// be a CredentialModeler. It suits package-level helpers such as
	// offline.CredentialModel.
	CredentialModel func(credential string) (hash string, err error)
	// WrapData makes success bodies use the {"data": {...}} envelope shown
	// in the Veridas documentation instead of das-Peak's flat objects.
	WrapData bool
	// Version is the "version" of success bodies (default "1").
	Version string
}

// Stats counts the requests an Emulator has seen.
type Stats struct {
	// Requests counts every HTTP request, token requests included.
	Requests int64
	// Endpoints counts das-Peak requests by route, written as in the
	// das-Peak documentation relative to /daspeak/v1, for example
	// "/alive" or "/models/{hash}/credential/wav". Requests to unknown
	// paths count under "".
	Endpoints map[string]int64
	// Unauthorized counts requests refused with 401.
	Unauthorized int64
	// Faults counts requests answered by an injected fault.
	Faults int64
	// Errors counts das-Peak error answers (bodies with an "exception").
	Errors int64
	// TokensIssued counts access tokens issued by POST /oauth/token.
	TokensIssued int64
}

// Fault is a failure injected with Emulator.Inject. It applies to the next
// Times requests that match Endpoint (after the authentication check).
// Delay is applied first; then Drop, or an error answer when Status,
// Exception or Body is set, or else the normal answer, cut short when
// Truncate is set.
type Fault struct {
	// Endpoint restricts the fault to one route ("/models", "/similarity/credential2wav",
	// "/models/{hash}/credential/wav", …); "" matches every das-Peak route.
	Endpoint string
	// Times is how many requests the fault applies to (0 means 1).
	Times int
	// Delay holds the answer back (a slow service). A client that gives up
	// ends the wait.
	Delay time.Duration
	// Status is the HTTP status of the error answer. 0 means the
	// catalogue status of Exception, or 200 when only Body is set.
	Status int
	// Exception and Message make a das-Peak error body
	// {"exception":…,"error":…}. An empty Message takes the catalogue
	// example text of the exception.
	Exception string
	Message   string
	// Body is a raw body sent instead (an HTML page from a gateway, a
	// gateway's {"message":…}, an oversized success body, …), with
	// ContentType (default: application/json when Body starts with '{',
	// text/html otherwise).
	Body        string
	ContentType string
	// RetryAfter is sent as the Retry-After header of the error answer.
	RetryAfter string
	// Drop closes the connection without answering (a transport error).
	Drop bool
	// Truncate sends the normal answer with its full Content-Length but
	// only half of its body, then closes the connection.
	Truncate bool
}

type fault struct {
	Fault
	left int
}

// Emulator is an http.Handler serving the das-Peak REST API under
// /daspeak/v1 (and, when configured, POST /oauth/token), backed by a
// daspeak.Engine. Use NewServer for a ready loopback server, or mount the
// Emulator in your own. It is safe for concurrent use.
//
// Audio endpoints call the engine's GenerateCredential and
// CompareCredentialToAudio; credential-to-credential endpoints need a
// daspeak.CredentialComparer; GET /models uses a daspeak.ModelLister when
// the engine is one; POST /models/metadata/from-credential uses a
// CredentialModeler. wav2wav is a credential from the reference audio, then
// a comparison of the audio to evaluate; identification compares against
// each candidate in turn.
type Emulator struct {
	engine daspeak.Engine
	opts   Options
	mux    *http.ServeMux
	closed chan struct{}
	once   sync.Once

	requests, unauthorized, faultsApplied, errorsSent, tokensIssued atomic.Int64

	mu        sync.Mutex
	endpoints map[string]int64
	faults    []*fault
	tokens    map[string]time.Time
}

// NewEmulator returns an Emulator backed by engine (nil means FakeEngine{}).
// opts may be nil.
func NewEmulator(engine daspeak.Engine, opts *Options) *Emulator {
	if engine == nil {
		engine = FakeEngine{}
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.TokenLifetime <= 0 {
		o.TokenLifetime = time.Hour
	}
	if o.TokenLifetime < time.Second {
		o.TokenLifetime = time.Second
	}
	o.Models = append([]string(nil), o.Models...)
	if len(o.Calibrations) == 0 {
		o.Calibrations = []string{daspeak.DefaultCalibration}
	} else {
		o.Calibrations = append([]string(nil), o.Calibrations...)
	}
	if o.MinNetSpeech <= 0 {
		o.MinNetSpeech = 3
	}
	if o.MaxAudioDuration <= 0 {
		o.MaxAudioDuration = 30 * time.Second
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = 32 << 20
	}
	if o.Version == "" {
		o.Version = "1"
	}
	e := &Emulator{
		engine:    engine,
		opts:      o,
		closed:    make(chan struct{}),
		endpoints: make(map[string]int64),
		tokens:    make(map[string]time.Time),
	}
	e.routes()
	return e
}

// Inject queues a fault. Faults apply in the order they were injected; a
// request takes the first queued fault that matches its route.
func (e *Emulator) Inject(f Fault) {
	n := f.Times
	if n <= 0 {
		n = 1
	}
	e.mu.Lock()
	e.faults = append(e.faults, &fault{Fault: f, left: n})
	e.mu.Unlock()
}

// ClearFaults drops all queued faults.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	e.faults = nil
	e.mu.Unlock()
}

// Stats returns a snapshot of the request counters.
func (e *Emulator) Stats() Stats {
	s := Stats{
		Requests:     e.requests.Load(),
		Unauthorized: e.unauthorized.Load(),
		Faults:       e.faultsApplied.Load(),
		Errors:       e.errorsSent.Load(),
		TokensIssued: e.tokensIssued.Load(),
	}
	e.mu.Lock()
	s.Endpoints = make(map[string]int64, len(e.endpoints))
	for k, v := range e.endpoints {
		s.Endpoints[k] = v
	}
	e.mu.Unlock()
	return s
}

// Requests returns how many requests reached the given das-Peak route
// ("/alive", "/models/{hash}/credential/wav", …).
func (e *Emulator) Requests(endpoint string) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.endpoints[endpoint]
}

// Close makes pending delayed answers return at once. The Emulator still
// answers later requests. It is idempotent.
func (e *Emulator) Close() {
	e.once.Do(func() { close(e.closed) })
}

func (e *Emulator) takeFault(endpoint string) *Fault {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, f := range e.faults {
		if f.Endpoint != "" && f.Endpoint != endpoint {
			continue
		}
		f.left--
		if f.left <= 0 {
			e.faults = append(e.faults[:i], e.faults[i+1:]...)
		}
		c := f.Fault
		return &c
	}
	return nil
}

// ServeHTTP implements http.Handler.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.requests.Add(1)
	if r.URL.Path == "/oauth/token" && e.opts.OAuthClientID != "" {
		e.serveToken(w, r)
		return
	}
	_, pattern := e.mux.Handler(r)
	endpoint := routeName(pattern)
	e.mu.Lock()
	e.endpoints[endpoint]++
	e.mu.Unlock()
	if msg, ok := e.authorize(r); !ok {
		e.unauthorized.Add(1)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": msg})
		return
	}
	if endpoint != "" {
		if f := e.takeFault(endpoint); f != nil {
			e.faultsApplied.Add(1)
			if !e.applyFault(w, r, f) {
				return
			}
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, e.opts.MaxRequestBytes)
	e.mux.ServeHTTP(w, r)
}

// routeName turns a mux pattern "POST /daspeak/v1/models/{hash}/credential/wav"
// into "/models/{hash}/credential/wav"; "" for no route.
func routeName(pattern string) string {
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		pattern = pattern[i+1:]
	}
	if !strings.HasPrefix(pattern, daspeak.ServicePath+"/") {
		return ""
	}
	return strings.TrimPrefix(pattern, daspeak.ServicePath)
}

// applyFault carries out f. It returns true when the normal handler must
// still run (a delay-only fault).
func (e *Emulator) applyFault(w http.ResponseWriter, r *http.Request, f *Fault) bool {
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return false
		case <-e.closed:
			t.Stop()
		}
	}
	switch {
	case f.Drop:
		panic(http.ErrAbortHandler)
	case f.Status != 0 || f.Exception != "" || f.Body != "":
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		if f.Body != "" {
			status := f.Status
			if status == 0 {
				status = http.StatusOK
			}
			ct := f.ContentType
			if ct == "" {
				ct = "text/html; charset=utf-8"
				if strings.HasPrefix(strings.TrimSpace(f.Body), "{") {
					ct = "application/json"
				}
			}
			w.Header().Set("Content-Type", ct)
			w.WriteHeader(status)
			_, _ = w.Write([]byte(f.Body))
			return false
		}
		exc := f.Exception
		if exc == "" {
			exc = daspeak.ExceptionDaspeakInternal
		}
		msg := f.Message
		if msg == "" {
			msg = exampleMessages[exc]
		}
		ae := daspeak.NewAPIError(f.Status, exc, msg)
		e.writeError(w, ae)
		return false
	case f.Truncate:
		rec := httptest.NewRecorder()
		r.Body = http.MaxBytesReader(rec, r.Body, e.opts.MaxRequestBytes)
		e.mux.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body[:len(body)/2])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	return true
}

// exampleMessages are the catalogue example texts used when a fault names
// an exception without a message.
var exampleMessages = map[string]string{
	daspeak.ExceptionAudioInput:               msgTooManyChannels,
	daspeak.ExceptionSignalNoiseRatio:         "Noise level exceeded",
	daspeak.ExceptionVoiceDurationIsNotEnough: "Voice duration is not enough 2.55s < 3.00s",
	daspeak.ExceptionInvalidChannel:           msgInvalidChannel,
	daspeak.ExceptionInsufficientQuality:      "The audio quality is not good enough",
	daspeak.ExceptionCalibrationNotAvailable:  "The calibration unknown-channel is not available",
	daspeak.ExceptionInvalidCredential:        msgDecryption,
	daspeak.ExceptionUnsupportedMediaType:     msgUnsupportedType,
	daspeak.ExceptionModelNotAvailable:        "The requested model is not available: unknown",
	daspeak.ExceptionNoAudio:                  msgNoAudio,
	daspeak.ExceptionDaspeakInternal:          msgInternal,
}

// exceptionStatus is the HTTP status the emulator sends with each
// exception. InvalidCredential (400) and ModelNotAvailable (404) are
// emulator-defined: das-Peak's are not public.
var exceptionStatus = map[string]int{
	daspeak.ExceptionUnsupportedMediaType: http.StatusUnsupportedMediaType,
	daspeak.ExceptionModelNotAvailable:    http.StatusNotFound,
	daspeak.ExceptionDaspeakInternal:      http.StatusInternalServerError,
}

func apiError(exception, message string) *daspeak.APIError {
	return daspeak.NewAPIError(0, exception, message)
}

// writeError sends a das-Peak error body {"exception":…,"error":…}.
func (e *Emulator) writeError(w http.ResponseWriter, ae *daspeak.APIError) {
	status := ae.Status
	if status == 0 {
		status = http.StatusBadRequest
		if s, ok := exceptionStatus[ae.Exception]; ok {
			status = s
		}
	}
	e.errorsSent.Add(1)
	writeJSON(w, status, map[string]string{"exception": ae.Exception, "error": ae.Message})
}

// writeOK sends a success body, flat with "version" or wrapped in "data".
func (e *Emulator) writeOK(w http.ResponseWriter, fields map[string]any) {
	fields["version"] = e.opts.Version
	if e.opts.WrapData {
		writeJSON(w, http.StatusOK, map[string]any{"data": fields})
		return
	}
	writeJSON(w, http.StatusOK, fields)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// authorize applies the gateway's check. It returns the 401 message when
// the request is refused.
func (e *Emulator) authorize(r *http.Request) (string, bool) {
	if e.opts.APIKey == "" && e.opts.OAuthClientID == "" {
		return "", true
	}
	key := r.Header.Get("apikey")
	authz := r.Header.Get("Authorization")
	if key == "" && authz == "" {
		return "no Authorization header found", false
	}
	if key != "" && e.opts.APIKey != "" && subtle.ConstantTimeCompare([]byte(key), []byte(e.opts.APIKey)) == 1 {
		return "", true
	}
	if tok, ok := strings.CutPrefix(authz, "Bearer "); ok && e.validToken(tok) {
		return "", true
	}
	return "Invalid authentication credentials", false
}

func (e *Emulator) validToken(tok string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	exp, ok := e.tokens[tok]
	return ok && time.Now().Before(exp)
}

// serveToken is the emulator-only OAuth2 token endpoint (RFC 6749 §4.4).
func (e *Emulator) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	id, secret, ok := basicAuth(r)
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if subtle.ConstantTimeCompare([]byte(id), []byte(e.opts.OAuthClientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(e.opts.OAuthClientSecret)) != 1 {
		e.unauthorized.Add(1)
		w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	now := time.Now()
	e.mu.Lock()
	for t, exp := range e.tokens {
		if now.After(exp) {
			delete(e.tokens, t)
		}
	}
	e.tokens[tok] = now.Add(e.opts.TokenLifetime)
	e.mu.Unlock()
	e.tokensIssued.Add(1)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int(e.opts.TokenLifetime / time.Second),
	})
}

// basicAuth reads HTTP Basic client authentication, whose parts RFC 6749
// §2.3.1 form-encodes.
func basicAuth(r *http.Request) (id, secret string, ok bool) {
	id, secret, ok = r.BasicAuth()
	if !ok {
		return "", "", false
	}
	if v, err := urlUnescape(id); err == nil {
		id = v
	}
	if v, err := urlUnescape(secret); err == nil {
		secret = v
	}
	return id, secret, true
}

// Server is an Emulator listening on a loopback address.
type Server struct {
	*Emulator
	ts   *httptest.Server
	once sync.Once
}

// NewServer starts an Emulator backed by engine (nil means FakeEngine{}) on
// 127.0.0.1. opts may be nil. Close it when done.
func NewServer(engine daspeak.Engine, opts *Options) *Server {
	e := NewEmulator(engine, opts)
	return &Server{Emulator: e, ts: httptest.NewServer(e)}
}

// URL returns the das-Peak base URL, "http://127.0.0.1:port/daspeak/v1",
// for daspeak.ClientOptions.BaseURL.
func (s *Server) URL() string { return s.ts.URL + daspeak.ServicePath }

// RootURL returns "http://127.0.0.1:port".
func (s *Server) RootURL() string { return s.ts.URL }

// TokenURL returns the URL of the emulator-only OAuth2 token endpoint, for
// clientcredentials.Config.TokenURL.
func (s *Server) TokenURL() string { return s.ts.URL + "/oauth/token" }

// Client returns an *http.Client for the server (as httptest provides).
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Close ends pending delayed answers, shuts the server down and waits for
// requests in flight. It is idempotent.
func (s *Server) Close() {
	s.once.Do(func() {
		s.Emulator.Close()
		s.ts.CloseClientConnections()
		s.ts.Close()
	})
}

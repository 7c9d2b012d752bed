package twiliotest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/voicegate/voicegate/twilio"
)

// ServerOptions configures NewServer. Zero values are the defaults.
type ServerOptions struct {
	// AccountSID and AuthToken are the account's credentials; defaults
	// DefaultAccountSID and DefaultAuthToken.
	AccountSID string
	AuthToken  string
	// APIKeys maps API key SIDs to secrets that are also accepted.
	APIKeys map[string]string
	// OnStreamStart, when set, is called in its own goroutine for every
	// stream created through the REST API, for example to run PlayWAV
	// against its URL.
	OnStreamStart func(CreatedStream)
}

// Default credentials of the fake server.
const (
	DefaultAccountSID = "AC00000000000000000000000000000000"
	DefaultAuthToken  = "fake-auth-token"
)

// CreatedStream is a stream started through the fake Streams API.
type CreatedStream struct {
	twilio.StreamResource
	URL                  string
	Track                string
	StatusCallback       string
	StatusCallbackMethod string
	// Parameters holds ParameterN.Name → ParameterN.Value.
	Parameters map[string]string
	// Stopped is closed when the stream is stopped through the REST API;
	// pass it as Options.Stop to the simulator playing the stream, so the
	// stop ends the simulated stream as it ends Twilio's.
	Stopped <-chan struct{}

	stopped chan struct{}
}

// Request is a request the fake server received.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Form   url.Values
	Body   []byte
}

// Fault makes the fake server answer requests whose path starts with
// PathPrefix with Status and a Twilio error body, after Delay.
type Fault struct {
	PathPrefix string
	Status     int
	Code       int
	Message    string
	Delay      time.Duration
	// Times, when positive, limits the fault to the first Times matching
	// requests; later ones are served normally (a transient failure).
	Times int
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
	// Process serves the request normally first (a stream is created,
	// a stop takes effect) and then discards the answer, as when Twilio
	// acts but the answer is lost.
	Process bool
	// Hangup closes the connection without an answer (a transport error)
	// instead of sending Status.
	Hangup bool
}

// Server is a fake of the Twilio REST and IAM APIs this SDK calls:
// Calls fetch (of calls added with AddCall), Streams create and stop, IAM
// Tokens/validate and Flex v2 WebChats. Every endpoint checks Basic auth
// and answers failures with
// Twilio's error body. Point twilio.ClientOptions.BaseURL and
// FlexValidatorOptions.BaseURL at Server.URL.
type Server struct {
	// URL is the server's base URL (http://127.0.0.1:port).
	URL string

	o    ServerOptions
	ts   *httptest.Server
	mu   sync.Mutex
	reqs []Request
	// streams by call SID
	streams    map[string][]*CreatedStream
	calls      map[string]*twilio.CallResource // by call SID
	flexTokens map[string]twilio.FlexIdentity
	taskRouter *taskRouter
	faults     []Fault
	faultHits  []int
	n          int
	wg         sync.WaitGroup
}

// NewServer starts a fake Twilio server on 127.0.0.1. Close it when done.
func NewServer(opts *ServerOptions) *Server {
	s := &Server{streams: map[string][]*CreatedStream{}, calls: map[string]*twilio.CallResource{}, flexTokens: map[string]twilio.FlexIdentity{}}
	if opts != nil {
		s.o = *opts
	}
	if s.o.AccountSID == "" {
		s.o.AccountSID = DefaultAccountSID
	}
	if s.o.AuthToken == "" {
		s.o.AuthToken = DefaultAuthToken
	}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.ts.URL
	return s
}

// Close shuts the server down and waits for OnStreamStart callbacks.
func (s *Server) Close() {
	s.ts.Close()
	s.wg.Wait()
}

// AccountSID returns the account SID the server accepts.
func (s *Server) AccountSID() string { return s.o.AccountSID }

// AuthToken returns the auth token the server accepts.
func (s *Server) AuthToken() string { return s.o.AuthToken }

// AddFlexToken makes token valid for Tokens/validate, with the given
// identity (its Expiration is returned as the token's expiration).
func (s *Server) AddFlexToken(token string, id twilio.FlexIdentity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flexTokens[token] = id
}

// AddCall makes the Calls API know a call (GET …/Calls/{Sid}.json answers
// it; other SIDs answer 404, error 20404) and replaces a call with the
// same SID. Empty fields get defaults: AccountSID the server's, Status
// "in-progress", Direction "inbound". A call known with another status
// than "in-progress" refuses new streams (400, error 21220), as Twilio
// does; streams on calls never added are accepted, for tests that need no
// Calls API.
func (s *Server) AddCall(c twilio.CallResource) {
	if c.AccountSID == "" {
		c.AccountSID = s.o.AccountSID
	}
	if c.Status == "" {
		c.Status = twilio.CallInProgress
	}
	if c.Direction == "" {
		c.Direction = twilio.DirectionInbound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[c.SID] = &c
}

// SetCallStatus changes the status of a call added with AddCall
// ("completed" hangs it up) and reports whether the call is known.
func (s *Server) SetCallStatus(sid, status string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.calls[sid]
	if ok {
		c.Status = status
	}
	return ok
}

// SetFaults replaces the fault list; the first matching fault applies.
func (s *Server) SetFaults(f ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append([]Fault(nil), f...)
	s.faultHits = make([]int, len(f))
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Streams returns the streams created on a call.
func (s *Server) Streams(callSID string) []CreatedStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []CreatedStream
	for _, st := range s.streams[callSID] {
		out = append(out, *st)
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{
		"code": code, "message": msg, "more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), "status": status,
	})
}

func (s *Server) authorized(r *http.Request) bool {
	u, p, ok := r.BasicAuth()
	if !ok {
		return false
	}
	if u == s.o.AccountSID && p == s.o.AuthToken {
		return true
	}
	sec, ok := s.o.APIKeys[u]
	return ok && sec == p
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	req := Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		req.Form, _ = url.ParseQuery(string(body))
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	var fault *Fault
	for i := range s.faults {
		if strings.HasPrefix(r.URL.Path, s.faults[i].PathPrefix) {
			if s.faults[i].Times > 0 && s.faultHits[i] >= s.faults[i].Times {
				continue
			}
			s.faultHits[i]++
			f := s.faults[i]
			fault = &f
			break
		}
	}
	s.mu.Unlock()
	if fault != nil {
		if fault.Delay > 0 {
			select {
			case <-time.After(fault.Delay):
			case <-r.Context().Done():
				return
			}
		}
		if fault.Process {
			s.handle(httptest.NewRecorder(), r, req, body)
		}
		if fault.Hangup {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		if fault.Status != 0 {
			if fault.RetryAfter != "" {
				w.Header().Set("Retry-After", fault.RetryAfter)
			}
			writeError(w, fault.Status, fault.Code, fault.Message)
			return
		}
	}
	s.handle(w, r, req, body)
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request, req Request, body []byte) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	isCall := len(parts) == 5 && parts[0] == "2010-04-01" && parts[1] == "Accounts" && parts[3] == "Calls" && strings.HasSuffix(parts[4], ".json")
	if r.Method != http.MethodPost && !((isCall || isTaskRouter(parts)) && r.Method == http.MethodGet) {
		writeError(w, http.StatusMethodNotAllowed, 20004, "Method not allowed")
		return
	}
	if !s.authorized(r) {
		writeError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	switch {
	case isTaskRouter(parts) && r.Method == http.MethodGet:
		s.taskRouterGet(w, r, parts)
	case isCall && r.Method == http.MethodGet:
		s.getCall(w, parts[2], strings.TrimSuffix(parts[4], ".json"))
	case len(parts) >= 6 && parts[0] == "2010-04-01" && parts[1] == "Accounts" && parts[3] == "Calls" && parts[5] == "Streams.json" && len(parts) == 6:
		s.createStream(w, parts[2], parts[4], req.Form)
	case len(parts) == 7 && parts[0] == "2010-04-01" && parts[1] == "Accounts" && parts[3] == "Calls" && parts[5] == "Streams" && strings.HasSuffix(parts[6], ".json"):
		s.stopStream(w, parts[2], parts[4], strings.TrimSuffix(parts[6], ".json"), req.Form)
	case len(parts) == 5 && parts[0] == "v1" && parts[1] == "Accounts" && parts[3] == "Tokens" && parts[4] == "validate":
		s.validate(w, r, parts[2], body)
	case r.URL.Path == "/v2/WebChats":
		s.webChat(w, req.Form)
	default:
		writeError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
	}
}

func (s *Server) checkAccount(w http.ResponseWriter, ac string) bool {
	if ac != s.o.AccountSID {
		writeError(w, http.StatusNotFound, 20404, "The requested resource /Accounts/"+ac+" was not found")
		return false
	}
	return true
}

func (s *Server) createStream(w http.ResponseWriter, ac, call string, f url.Values) {
	if !s.checkAccount(w, ac) {
		return
	}
	u := f.Get("Url")
	if u == "" {
		writeError(w, http.StatusBadRequest, 20001, "Missing required parameter Url in the post body")
		return
	}
	if pu, err := url.Parse(u); err != nil || (pu.Scheme != "wss" && pu.Scheme != "ws") {
		writeError(w, http.StatusBadRequest, 21205, "Url is not a valid WebSocket URL")
		return
	}
	track := f.Get("Track")
	switch track {
	case "":
		track = twilio.TrackInbound
	case twilio.TrackInbound, twilio.TrackOutbound, twilio.TrackBoth:
	default:
		writeError(w, http.StatusBadRequest, 20001, "Invalid Track "+track)
		return
	}
	params := map[string]string{}
	for k := range f {
		if !strings.HasPrefix(k, "Parameter") {
			continue
		}
		num, field, ok := strings.Cut(strings.TrimPrefix(k, "Parameter"), ".")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 1 || n > 99 || (field != "Name" && field != "Value") {
			writeError(w, http.StatusBadRequest, 20001, "Invalid parameter "+k)
			return
		}
		if field == "Name" {
			params[f.Get(k)] = f.Get("Parameter" + num + ".Value")
		}
	}
	s.mu.Lock()
	if c, ok := s.calls[call]; ok && c.Status != twilio.CallInProgress {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, 21220, "Call is not in-progress. Cannot create stream.")
		return
	}
	name := f.Get("Name")
	for _, st := range s.streams[call] {
		if name != "" && st.Name == name && st.Status == "in-progress" {
			s.mu.Unlock()
			writeError(w, http.StatusBadRequest, 21220, "A stream named "+name+" already exists on this call")
			return
		}
	}
	s.n++
	sid := fmt.Sprintf("MZ%032x", s.n)
	st := &CreatedStream{
		StreamResource: twilio.StreamResource{
			SID: sid, AccountSID: ac, CallSID: call, Name: name, Status: "in-progress",
			DateUpdated: time.Now().UTC().Format(time.RFC1123Z),
			URI:         "/2010-04-01/Accounts/" + ac + "/Calls/" + call + "/Streams/" + sid + ".json",
		},
		URL: u, Track: track, StatusCallback: f.Get("StatusCallback"), StatusCallbackMethod: f.Get("StatusCallbackMethod"),
		Parameters: params,
	}
	st.stopped = make(chan struct{})
	st.Stopped = st.stopped
	s.streams[call] = append(s.streams[call], st)
	cb := s.o.OnStreamStart
	cp := *st
	if cb != nil {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if cb != nil {
		go func() {
			defer s.wg.Done()
			cb(cp)
		}()
	}
	writeJSON(w, http.StatusCreated, st.StreamResource)
}

func (s *Server) getCall(w http.ResponseWriter, ac, sid string) {
	if !s.checkAccount(w, ac) {
		return
	}
	s.mu.Lock()
	c, ok := s.calls[sid]
	var out twilio.CallResource
	if ok {
		out = *c
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, 20404, "The requested resource /2010-04-01/Accounts/"+ac+"/Calls/"+sid+".json was not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"sid": out.SID, "account_sid": out.AccountSID, "parent_call_sid": nullable(out.ParentCallSID),
		"from": out.From, "to": out.To, "status": out.Status, "direction": out.Direction,
		"api_version": "2010-04-01",
		"uri":         "/2010-04-01/Accounts/" + out.AccountSID + "/Calls/" + out.SID + ".json",
	})
}

// nullable is v, or JSON null when empty (as Twilio sends absent SIDs).
func nullable(v string) any {
	if v == "" {
		return nil
	}
	return v
}

func (s *Server) stopStream(w http.ResponseWriter, ac, call, sidOrName string, f url.Values) {
	if !s.checkAccount(w, ac) {
		return
	}
	if f.Get("Status") != "stopped" {
		writeError(w, http.StatusBadRequest, 20001, "Status must be stopped")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.streams[call] {
		if st.SID == sidOrName || (st.Name != "" && st.Name == sidOrName) {
			if st.Status != "stopped" {
				close(st.stopped)
			}
			st.Status = "stopped"
			st.DateUpdated = time.Now().UTC().Format(time.RFC1123Z)
			out := st.StreamResource
			out.SID = sidOrName // Twilio echoes the path value
			writeJSON(w, http.StatusOK, out)
			return
		}
	}
	writeError(w, http.StatusNotFound, 20404, "The requested resource /Streams/"+sidOrName+" was not found")
}

func (s *Server) validate(w http.ResponseWriter, r *http.Request, ac string, body []byte) {
	if !s.checkAccount(w, ac) {
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeError(w, http.StatusBadRequest, 20001, "Content-Type must be application/json")
		return
	}
	var in struct {
		Token string `json:"token"`
	}
	if json.Unmarshal(body, &in) != nil || in.Token == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"valid": false, "code": 20001, "message": "token is required"})
		return
	}
	s.mu.Lock()
	id, ok := s.flexTokens[in.Token]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"valid": false, "message": "not valid"})
		return
	}
	var realm any
	if id.RealmUserID != "" {
		realm = id.RealmUserID
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"valid": true, "code": 0, "message": nil, "expiration": id.Expiration.UTC().Format("2006-01-02T15:04:05.000Z"),
		"realm_user_id": realm, "identity": id.Identity, "roles": id.Roles, "worker_sid": id.WorkerSID,
	})
}

func (s *Server) webChat(w http.ResponseWriter, f url.Values) {
	if f.Get("AddressSid") == "" {
		writeError(w, http.StatusBadRequest, 20001, "Missing required parameter AddressSid in the post body")
		return
	}
	s.mu.Lock()
	s.n++
	n := s.n
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]string{
		"conversation_sid": fmt.Sprintf("CH%032x", n),
		"identity":         fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n),
	})
}

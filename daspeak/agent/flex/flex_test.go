package flex

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/daspeak/offline"
	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	goodToken = "flex-token-good"
	apiKey    = "SK00000000000000000000000000000001"
	apiSecret = "api-secret"
)

var agentID = twilio.FlexIdentity{
	Identity: "user_40example_2Dcom", RealmUserID: "user@example.com", WorkerSID: "WK0123",
	Roles: []string{"agent"},
}

// newFake returns a fake Twilio with goodToken valid for an hour and an
// API key.
func newFake(t *testing.T, opts *twiliotest.ServerOptions) *twiliotest.Server {
	t.Helper()
	var o twiliotest.ServerOptions
	if opts != nil {
		o = *opts
	}
	o.APIKeys = map[string]string{apiKey: apiSecret}
	fake := twiliotest.NewServer(&o)
	t.Cleanup(fake.Close)
	id := agentID
	id.Expiration = time.Now().Add(time.Hour)
	fake.AddFlexToken(goodToken, id)
	return fake
}

func newAuth(t *testing.T, baseURL, authToken string) *Authenticator {
	t.Helper()
	v, err := twilio.NewFlexValidator(&twilio.FlexValidatorOptions{
		AccountSID: twiliotest.DefaultAccountSID, AuthToken: authToken, BaseURL: baseURL, Timeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return NewAuthenticator(v, nil)
}

func TestAuthenticate(t *testing.T) {
	fake := newFake(t, nil)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	for _, c := range []struct {
		name      string
		base      string
		authToken string
		header    string
		value     string
		wantSub   string
		wantErr   []error
		notErr    error
	}{
		{"bearer", fake.URL, fake.AuthToken(), "Authorization", "Bearer " + goodToken, "WK0123", nil, nil},
		{"bearer lower case", fake.URL, fake.AuthToken(), "Authorization", "bearer " + goodToken, "WK0123", nil, nil},
		{"x-flex-token", fake.URL, fake.AuthToken(), TokenHeader, goodToken, "WK0123", nil, nil},
		{"no token", fake.URL, fake.AuthToken(), "", "", "", []error{ErrNoToken, twilio.ErrFlexToken}, ErrServerCredentials},
		{"invalid token", fake.URL, fake.AuthToken(), "Authorization", "Bearer nope", "", []error{twilio.ErrFlexToken}, ErrServerCredentials},
		{"wrong server auth token", fake.URL, "not-the-auth-token", "Authorization", "Bearer " + goodToken, "", []error{ErrServerCredentials, twilio.ErrServerCredentials, agent.ErrAuthUnavailable}, ErrTwilioUnavailable},
		{"twilio unreachable", downURL, fake.AuthToken(), "Authorization", "Bearer " + goodToken, "", []error{ErrTwilioUnavailable, agent.ErrAuthUnavailable}, ErrServerCredentials},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := twilio.NewFlexValidator(&twilio.FlexValidatorOptions{
				AccountSID: twiliotest.DefaultAccountSID, AuthToken: c.authToken, BaseURL: c.base, Timeout: 2 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			var logs logBuf
			a := NewAuthenticator(v, slog.New(slog.NewTextHandler(&logs, nil)))
			r := httptest.NewRequest(http.MethodPost, "/agent/status", nil)
			if c.header != "" {
				r.Header.Set(c.header, c.value)
			}
			p, err := a.Authenticate(context.Background(), r)
			for _, want := range c.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("err %v, want %v", err, want)
				}
			}
			if c.wantErr == nil && err != nil {
				t.Fatal(err)
			}
			if c.notErr != nil && errors.Is(err, c.notErr) {
				t.Errorf("err %v is also %v", err, c.notErr)
			}
			if err != nil && strings.Contains(err.Error(), goodToken) {
				t.Errorf("error shows the token: %v", err)
			}
			if p.Subject != c.wantSub || (c.wantSub != "" && p.Name != "user@example.com") {
				t.Errorf("principal %+v", p)
			}
			// The log blames the server or the token, never both.
			server, refused := strings.Contains(logs.String(), "server misconfigured"), strings.Contains(logs.String(), "flex token refused")
			isServer := errors.Is(err, ErrServerCredentials) || errors.Is(err, ErrTwilioUnavailable)
			if server != isServer || refused != (err != nil && !isServer) {
				t.Errorf("log %q", logs.String())
			}
			// The server's faults, and only they, are agent.ErrAuthUnavailable.
			if errors.Is(err, agent.ErrAuthUnavailable) != isServer {
				t.Errorf("err %v: agent.ErrAuthUnavailable %v, server fault %v", err, errors.Is(err, agent.ErrAuthUnavailable), isServer)
			}
			if strings.Contains(logs.String(), goodToken) {
				t.Error("token in the log")
			}
		})
	}
}

// logBuf is a concurrency-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func jwtPayload(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestVoiceTokenHandler(t *testing.T) {
	fake := newFake(t, nil)
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name       string
		authToken  string
		method     string
		ct, body   string
		header     string
		wantStatus int
		wantCode   string
		wantLog    string
	}{
		{"bearer", fake.AuthToken(), "POST", "", "", "Bearer " + goodToken, 200, "", ""},
		{"form body", fake.AuthToken(), "POST", "application/x-www-form-urlencoded", "Token=" + goodToken, "", 200, "", ""},
		{"json body", fake.AuthToken(), "POST", "application/json", `{"Token":"` + goodToken + `"}`, "", 200, "", ""},
		{"invalid token", fake.AuthToken(), "POST", "", "", "Bearer forged", 401, "unauthenticated", "flex token refused"},
		{"no token", fake.AuthToken(), "POST", "application/json", `{}`, "", 401, "unauthenticated", "flex token refused"},
		{"server misconfigured", "wrong-auth-token", "POST", "", "", "Bearer " + goodToken, 503, CodeAuthUnavailable, "server misconfigured"},
		{"bad json", fake.AuthToken(), "POST", "application/json", `{"Token":`, "", 400, "bad_request", ""},
		{"get", fake.AuthToken(), "GET", "", "", "Bearer " + goodToken, 405, "method_not_allowed", ""},
		{"json body over 64 KiB", fake.AuthToken(), "POST", "application/json", `{"Token":"` + strings.Repeat("a", 5<<20) + `"}`, "", 413, "too_large", ""},
		{"form body over 64 KiB", fake.AuthToken(), "POST", "application/x-www-form-urlencoded", "Token=" + strings.Repeat("a", 5<<20), "", 413, "too_large", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs logBuf
			h, err := VoiceTokenHandler(&VoiceTokenOptions{
				Auth: newAuth(t, fake.URL, c.authToken), AccountSID: fake.AccountSID(), APIKeySID: apiKey, APIKeySecret: apiSecret,
				TwiMLAppSID: "AP0123", IdentityPrefix: "ext_", TTL: 30 * time.Minute, FailureDelay: 50 * time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now },
			})
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(c.method, "/flex/voice-token", strings.NewReader(c.body))
			if c.ct != "" {
				r.Header.Set("Content-Type", c.ct)
			}
			if c.header != "" {
				r.Header.Set("Authorization", c.header)
			}
			w := httptest.NewRecorder()
			t0 := time.Now()
			h.ServeHTTP(w, r)
			if w.Code != c.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, c.wantStatus, w.Body)
			}
			if c.wantStatus == 401 || c.wantStatus == 503 {
				if d := time.Since(t0); d < 50*time.Millisecond {
					t.Errorf("refused after %v, before the failure delay", d)
				}
			}
			if strings.Contains(logs.String(), goodToken) || strings.Contains(w.Body.String(), goodToken) {
				t.Fatal("token in log or answer")
			}
			if c.wantLog != "" && !strings.Contains(logs.String(), c.wantLog) {
				t.Errorf("log %q lacks %q", logs.String(), c.wantLog)
			}
			if c.wantStatus != 200 {
				var e map[string]string
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e["code"] != c.wantCode || e["error"] == "" {
					t.Fatalf("answer %s", w.Body)
				}
				return
			}
			var got VoiceTokenResponse
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got.Identity != "ext_user_40example_2Dcom" || !got.ExpiresAt.Equal(now.Add(30*time.Minute)) {
				t.Fatalf("answer %+v", got)
			}
			p := jwtPayload(t, got.Token)
			grants := p["grants"].(map[string]any)
			voice, _ := json.Marshal(grants["voice"])
			if grants["identity"] != "ext_user_40example_2Dcom" || string(voice) != `{"incoming":{"allow":true},"outgoing":{"application_sid":"AP0123"}}` ||
				p["iss"] != apiKey || p["sub"] != fake.AccountSID() || p["exp"].(float64) != float64(now.Add(30*time.Minute).Unix()) {
				t.Fatalf("claims %v", p)
			}
		})
	}
}

func TestVoiceTokenOptions(t *testing.T) {
	fake := newFake(t, nil)
	a := newAuth(t, fake.URL, fake.AuthToken())
	for _, o := range []*VoiceTokenOptions{
		nil,
		{Auth: a, AccountSID: "AC1", APIKeySID: apiKey},                                         // no secret
		{Auth: a, AccountSID: "AC1", APIKeySID: apiKey, APIKeySecret: "s", TTL: 25 * time.Hour}, // too long
		{Auth: a, AccountSID: "AC1", APIKeySID: apiKey, APIKeySecret: "s", IdentityPrefix: "ext:"},
	} {
		if _, err := VoiceTokenHandler(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestWebChatHandler(t *testing.T) {
	fake := newFake(t, nil)
	cl, err := twilio.NewClient(&twilio.ClientOptions{AccountSID: fake.AccountSID(), AuthToken: fake.AuthToken(), BaseURL: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	h, err := WebChatHandler(&WebChatOptions{
		Client: cl, AddressSID: "IG0123", ServiceSID: "IS0123",
		AccountSID: fake.AccountSID(), APIKeySID: apiKey, APIKeySecret: apiSecret, UIVersion: "2.0",
		AllowedOrigins: []string{"https://www.example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	post := func(body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/flex/webchat", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := post(`{"FriendlyName":"Ana","PreEngagementData":"{\"q\":\"card\"}"}`)
	if w.Code != http.StatusCreated {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var got WebChatResponse
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.ConversationSID, "CH") || got.Identity == "" {
		t.Fatalf("%+v", got)
	}
	grants := jwtPayload(t, got.Token)["grants"].(map[string]any)
	chat, _ := json.Marshal(grants["chat"])
	if grants["identity"] != got.Identity || string(chat) != `{"service_sid":"IS0123"}` {
		t.Fatalf("grants %v", grants)
	}
	var sent *twiliotest.Request
	for _, r := range fake.Requests() {
		if r.Path == "/v2/WebChats" {
			sent = &r
		}
	}
	if sent == nil || sent.Form.Get("AddressSid") != "IG0123" || sent.Form.Get("CustomerFriendlyName") != "Ana" ||
		sent.Form.Get("PreEngagementData") != `{"q":"card"}` || sent.Header.Get("Ui-Version") != "2.0" {
		t.Fatalf("request %+v", sent)
	}
	if w := post(`{"FriendlyName":"` + strings.Repeat("a", MaxWebChatField+1) + `"}`); w.Code != http.StatusBadRequest {
		t.Fatalf("oversized name: %d", w.Code)
	}
	// A page of another site must not start chats in its visitors'
	// browsers: only the server's own origin and AllowedOrigins are
	// answered, the body must be declared JSON, 64 KiB at most.
	for _, c := range []struct {
		name, method, origin, site, ct, body string
		status                               int
		code, allow                          string
	}{
		{"cross-site text/plain", "POST", "https://evil.example", "cross-site", "text/plain", `{"FriendlyName":"x"}`, 403, "origin_not_allowed", ""},
		{"cross-site json", "POST", "https://evil.example", "cross-site", "application/json", `{}`, 403, "origin_not_allowed", ""},
		{"cross-site without origin", "POST", "", "cross-site", "application/json", `{}`, 403, "origin_not_allowed", ""},
		{"same-site sibling", "POST", "https://shop.example.com", "same-site", "application/json", `{}`, 403, "origin_not_allowed", ""},
		{"null origin", "POST", "null", "", "application/json", `{}`, 403, "origin_not_allowed", ""},
		// The server's host over plain http (another origin, which a
		// network attacker can serve) to this TLS server.
		{"own host over http", "POST", "http://chat.example.com", "", "application/json", `{}`, 403, "origin_not_allowed", ""},
		{"own host over http, port 443", "POST", "http://chat.example.com:443", "", "application/json", `{}`, 403, "origin_not_allowed", ""},
		{"own origin text/plain", "POST", "https://chat.example.com", "same-origin", "text/plain", `{}`, 415, "unsupported_media_type", ""},
		{"form", "POST", "", "", "application/x-www-form-urlencoded", `FriendlyName=x`, 415, "unsupported_media_type", ""},
		{"no content type", "POST", "", "", "", ``, 415, "unsupported_media_type", ""},
		{"5 MB", "POST", "", "", "application/json", `{"FriendlyName":"` + strings.Repeat("a", 5<<20) + `"}`, 413, "too_large", ""},
		{"get", "GET", "", "", "", ``, 405, "method_not_allowed", "POST"},
		{"own origin", "POST", "https://chat.example.com", "same-origin", "application/json", `{}`, 201, "", ""},
		{"allowed origin", "POST", "https://www.example.com", "cross-site", "application/json; charset=utf-8", `{}`, 201, "", ""},
		{"program", "POST", "", "", "application/json", `{}`, 201, "", ""},
	} {
		r := httptest.NewRequest(c.method, "https://chat.example.com/flex/webchat", strings.NewReader(c.body))
		for k, v := range map[string]string{"Origin": c.origin, "Sec-Fetch-Site": c.site, "Content-Type": c.ct} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var e struct{ Error, Code string }
		json.Unmarshal(w.Body.Bytes(), &e)
		if w.Code != c.status || e.Code != c.code || w.Header().Get("Allow") != c.allow || (c.code != "" && e.Error == "") {
			t.Errorf("%s: %d %s Allow %q, want %d %q", c.name, w.Code, w.Body, w.Header().Get("Allow"), c.status, c.code)
		}
	}
	fake.SetFaults(twiliotest.Fault{PathPrefix: "/v2/WebChats", Status: 500, Code: 20500, Message: "boom"})
	if w := post(`{}`); w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "twilio_unavailable") {
		t.Fatalf("flex api failure: %d %s", w.Code, w.Body)
	}
}

// voice is an 8 kHz μ-law recording from the repository's test voices.
func voice(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../../../testdata/voices/awb_1.wav")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rig is a fake Twilio whose stream starts play a voice into a Source
// served over HTTP.
type rig struct {
	fake   *twiliotest.Server
	src    *Source
	srv    *httptest.Server
	url    string
	played chan *twiliotest.Result
}

// newRig returns a rig; tamper, when set, changes the simulator's options
// before each stream plays (to forge what Twilio would send).
func newRig(t *testing.T, tamper func(*twiliotest.CreatedStream, *twiliotest.Options)) *rig {
	t.Helper()
	return newRigWith(t, tamper, nil)
}

// newRigWith is newRig with the Source's options changed by mod.
func newRigWith(t *testing.T, tamper func(*twiliotest.CreatedStream, *twiliotest.Options), mod func(*SourceOptions)) *rig {
	t.Helper()
	wav := voice(t)
	rg := &rig{played: make(chan *twiliotest.Result, 4)}
	var mu sync.Mutex
	mux := http.NewServeMux()
	rg.srv = httptest.NewServer(mux)
	t.Cleanup(rg.srv.Close)
	rg.url = "ws" + strings.TrimPrefix(rg.srv.URL, "http") + "/twilio/media"
	rg.fake = newFake(t, &twiliotest.ServerOptions{OnStreamStart: func(cs twiliotest.CreatedStream) {
		o := &twiliotest.Options{
			AuthToken: twiliotest.DefaultAuthToken, CallSID: cs.CallSID, StreamSID: cs.SID,
			AccountSID: cs.AccountSID, CustomParameters: cs.Parameters, Pace: twiliotest.AsFastAsPossible,
		}
		if tamper != nil {
			mu.Lock()
			tamper(&cs, o)
			mu.Unlock()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, _ := twiliotest.PlayWAV(ctx, cs.URL, wav, o)
		rg.played <- res
	}})
	cl, err := twilio.NewClient(&twilio.ClientOptions{AccountSID: rg.fake.AccountSID(), AuthToken: rg.fake.AuthToken(), BaseURL: rg.fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	// A queue for the whole recording: the simulator sends it at once.
	so := &SourceOptions{Client: cl, StreamURL: rg.url, AuthTokens: []string{rg.fake.AuthToken()}, QueueFrames: 1000}
	if mod != nil {
		mod(so)
	}
	rg.src, err = NewSource(so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rg.src.Close() })
	mux.Handle("/twilio/media", rg.src)
	return rg
}

// stops returns the stream names stopped over REST on call.
func (rg *rig) stops(call string) []string {
	var out []string
	for _, r := range rg.fake.Requests() {
		if strings.Contains(r.Path, "/Calls/"+call+"/Streams/") && r.Form.Get("Status") == "stopped" {
			out = append(out, strings.TrimSuffix(r.Path[strings.LastIndex(r.Path, "/")+1:], ".json"))
		}
	}
	return out
}

func TestSourceDeliversBoundStream(t *testing.T) {
	rg := newRig(t, nil)
	call := twiliotest.SID("CA")
	req := agent.SourceRequest{OperationID: "op_0123456789abcdef0123456789abcdef", CallID: call, CallerID: "+34600000000"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := rg.src.Open(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	streams := rg.fake.Streams(call)
	if len(streams) != 1 {
		t.Fatalf("streams %+v", streams)
	}
	cs := streams[0]
	if cs.URL != rg.url || cs.Track != twilio.TrackInbound || cs.Name != StreamName(req.OperationID) ||
		cs.Parameters[ParamOperation] != req.OperationID || cs.Parameters[ParamBinding] == "" || cs.Parameters[ParamCaller] != req.CallerID || len(cs.Parameters) != 3 {
		t.Fatalf("stream %+v", cs)
	}
	// The whole recording arrives as the caller's audio, then io.EOF.
	var samples int
	for {
		f, err := a.ReadFrame(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.Parties[0].String() != "customer" {
			t.Fatalf("party %v", f.Parties[0])
		}
		samples += f.Samples()
	}
	wav := voice(t)
	if want := len(wav) - 44; samples < want-160 || samples > want+160 {
		t.Errorf("%d samples, recording has about %d", samples, want)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Twilio ended the stream with stop: nothing to stop over REST.
	if got := rg.stops(call); len(got) != 0 {
		t.Fatalf("stops %v", got)
	}
	<-rg.played
}

// TestSourceStopsStreamAtOperationEnd: an operation that ends while the
// call goes on stops its stream over REST and closes the WebSocket.
func TestSourceStopsStreamAtOperationEnd(t *testing.T) {
	rg := newRig(t, func(cs *twiliotest.CreatedStream, o *twiliotest.Options) {
		o.Pace = twiliotest.RealTime // a live call: 7 s of speech
	})
	call := twiliotest.SID("CA")
	op := "op_0123456789abcdef0123456789abcdef"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := rg.src.Open(ctx, agent.SourceRequest{OperationID: op, CallID: call, CallerID: "+34600000000"})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := a.ReadFrame(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := rg.stops(call); len(got) != 1 || got[0] != StreamName(op) {
		t.Fatalf("stops %v", got)
	}
	if st := rg.fake.Streams(call); len(st) != 1 || st[0].Status != "stopped" {
		t.Fatalf("stream at Twilio %+v", st)
	}
	if res := <-rg.played; res == nil || !res.ServerClosed || res.MediaSent > 100 {
		t.Fatalf("the simulated call was not cut: %+v", res)
	}
	if _, err := a.ReadFrame(ctx); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrame after Close: %v", err)
	}
}

// TestSourceTrack: Track sees each accepted stream, and its untrack runs
// once the stream ended, with the stream's final Stats readable.
func TestSourceTrack(t *testing.T) {
	type seen struct {
		st       *twilio.Stream
		untracks int
	}
	var mu sync.Mutex
	var tracked []*seen
	untracked := make(chan twilio.Stats, 4)
	rg := newRigWith(t, nil, func(o *SourceOptions) {
		o.Track = func(st *twilio.Stream) func() {
			s := &seen{st: st}
			mu.Lock()
			tracked = append(tracked, s)
			mu.Unlock()
			return func() {
				mu.Lock()
				s.untracks++
				mu.Unlock()
				untracked <- st.Stats()
			}
		}
	})
	call := twiliotest.SID("CA")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := rg.src.Open(ctx, agent.SourceRequest{OperationID: "op_0123456789abcdef0123456789abcdef", CallID: call, CallerID: "+34600000000"})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := a.ReadFrame(ctx); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-untracked:
		if st.FramesRead == 0 {
			t.Errorf("untracked stream read no frames: %+v", st)
		}
	case <-ctx.Done():
		t.Fatal("untrack not called after the stream ended")
	}
	<-rg.played
	mu.Lock()
	defer mu.Unlock()
	if len(tracked) != 1 || tracked[0].untracks != 1 {
		t.Fatalf("tracked %d streams, untracks %+v", len(tracked), tracked)
	}
}

func TestSourceRefusesStreamsOfOtherOperations(t *testing.T) {
	otherOp := "op_ffffffffffffffffffffffffffffffff"
	for _, c := range []struct {
		name   string
		tamper func(*twiliotest.CreatedStream, *twiliotest.Options)
	}{
		{"binding replayed on another call", func(cs *twiliotest.CreatedStream, o *twiliotest.Options) { o.CallSID = twiliotest.SID("CA") }},
		{"binding forged", func(cs *twiliotest.CreatedStream, o *twiliotest.Options) {
			o.CustomParameters = map[string]string{ParamOperation: cs.Parameters[ParamOperation], ParamBinding: "9999999999.AAAA"}
		}},
		{"no binding", func(cs *twiliotest.CreatedStream, o *twiliotest.Options) {
			o.CustomParameters = map[string]string{ParamOperation: cs.Parameters[ParamOperation]}
		}},
		{"binding of this operation, named for another", func(cs *twiliotest.CreatedStream, o *twiliotest.Options) {
			o.CustomParameters = map[string]string{ParamOperation: otherOp, ParamBinding: cs.Parameters[ParamBinding]}
		}},
		{"upgrade not signed by Twilio", func(cs *twiliotest.CreatedStream, o *twiliotest.Options) { o.AuthToken = "attacker" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			rg := newRig(t, func(cs *twiliotest.CreatedStream, o *twiliotest.Options) {
				if cs.CallSID == "CA-other-call" {
					o.AuthToken = "never-arrives" // the other operation's own stream
					return
				}
				// Keep the stream open after the audio, as a live call
				// does, until the server closes it (or 10 s pass).
				o.HoldOpen = make(chan struct{})
				c.tamper(cs, o)
			})
			call := twiliotest.SID("CA")
			// The other operation waits too: a stream named for it must not
			// feed it either.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			errc := make(chan error, 1)
			octx, ocancel := context.WithTimeout(ctx, 1500*time.Millisecond)
			defer ocancel()
			go func() {
				_, err := rg.src.Open(octx, agent.SourceRequest{OperationID: otherOp, CallID: "CA-other-call", CallerID: "+34600000001"})
				errc <- err
			}()
			wctx, wcancel := context.WithTimeout(ctx, 1500*time.Millisecond)
			defer wcancel()
			a, err := rg.src.Open(wctx, agent.SourceRequest{OperationID: "op_0123456789abcdef0123456789abcdef", CallID: call, CallerID: "+34600000000"})
			if err == nil {
				a.Close()
				t.Fatal("a stream that fails its binding fed the operation")
			}
			if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, agent.ErrNoCall) {
				t.Fatalf("err %v", err)
			}
			// The stream the operation asked for was stopped over REST.
			if got := rg.stops(call); len(got) != 1 {
				t.Fatalf("stops %v", got)
			}
			for range 2 {
				if res := <-rg.played; res != nil && !res.ServerClosed {
					t.Fatalf("a refused stream was not closed by the server: %+v", res)
				}
			}
			if err := <-errc; err == nil {
				t.Fatal("the other operation got a stream")
			}
		})
	}
}

func TestSourceRESTFailures(t *testing.T) {
	rg := newRig(t, nil)
	rg.fake.SetFaults(twiliotest.Fault{PathPrefix: "/2010-04-01/", Status: 404, Code: 20404, Message: "The requested resource was not found"})
	ctx := context.Background()
	_, err := rg.src.Open(ctx, agent.SourceRequest{OperationID: "op_1", CallID: "CA404", CallerID: "+34600000000"})
	if _, ok := twilio.IsAPIError(err, 20404); !ok || !errors.Is(err, agent.ErrNoCall) {
		t.Fatalf("refused start: %v", err)
	}
	// An unreachable Twilio is not "no call": the call was never judged.
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	cl, _ := twilio.NewClient(&twilio.ClientOptions{AccountSID: "AC1", AuthToken: "x", BaseURL: down.URL})
	src, err := NewSource(&SourceOptions{Client: cl, StreamURL: rg.url, AuthTokens: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Open(ctx, agent.SourceRequest{OperationID: "op_2", CallID: "CA1"}); err == nil || errors.Is(err, agent.ErrNoCall) {
		t.Fatalf("unreachable Twilio: %v", err)
	}
	// Close fails the operations still waiting for their stream, and a
	// closed Source refuses new ones.
	rg.fake.SetFaults()
	wait, err := NewSource(&SourceOptions{Client: rg.src.o.Client, StreamURL: rg.url, AuthTokens: []string{"not-twilio"}})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	call := twiliotest.SID("CA")
	go func() {
		_, err := wait.Open(ctx, agent.SourceRequest{OperationID: "op_4", CallID: call})
		errc <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		wait.mu.Lock()
		n := len(wait.pending)
		wait.mu.Unlock()
		if n == 1 && len(rg.fake.Streams(call)) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the operation never waited")
		}
	}
	wait.Close()
	if err := <-errc; !errors.Is(err, agent.ErrClosed) {
		t.Fatalf("waiting operation at Close: %v", err)
	}
	<-rg.played // the fake's stream for op_4, refused (wrong auth token)
	src.Close()
	if _, err := src.Open(ctx, agent.SourceRequest{OperationID: "op_3", CallID: "CA1"}); !errors.Is(err, agent.ErrClosed) {
		t.Fatalf("closed source: %v", err)
	}
	for _, o := range []*SourceOptions{nil, {Client: cl}, {Client: cl, StreamURL: rg.url}} {
		if _, err := NewSource(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// noCalls is a Source without calls.
type noCalls struct{}

func (noCalls) Open(context.Context, agent.SourceRequest) (agent.Audio, error) {
	return nil, agent.ErrNoCall
}

// TestAgentAPIAuth: behind an agent.Server, a Flex token the server could
// not check because of its own side (Twilio refused its credentials, or
// could not be reached) answers 503 auth_unavailable, logged as a server
// fault; an invalid token answers 401; a valid one gets through.
func TestAgentAPIAuth(t *testing.T) {
	fake := newFake(t, nil)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	for _, c := range []struct {
		name      string
		base      string
		authToken string
		token     string
		wantCode  int
		wantBody  string
		wantLog   string
	}{
		{"valid token", fake.URL, fake.AuthToken(), goodToken, 200, `"registered":false`, ""},
		{"invalid token", fake.URL, fake.AuthToken(), "forged", 401, `{"code":"unauthenticated"`, `"level":"WARN","msg":"agent: token refused"`},
		{"no token", fake.URL, fake.AuthToken(), "", 401, `{"code":"unauthenticated"`, `"level":"WARN","msg":"agent: token refused"`},
		{"server credentials refused", fake.URL, "stale", goodToken, 503, `{"code":"auth_unavailable"`, `"level":"ERROR","msg":"agent: token not checked`},
		{"twilio unreachable", downURL, fake.AuthToken(), goodToken, 503, `{"code":"auth_unavailable"`, `"level":"ERROR","msg":"agent: token not checked`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs logBuf
			api, err := agent.NewServer(&agent.Options{
				Engine: offline.New(nil), Store: &agent.CredentialStore{Store: credstore.NewMemory()},
				Source: noCalls{}, Authenticator: newAuth(t, c.base, c.authToken), AuthFailureDelay: time.Millisecond,
				Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer api.Shutdown(context.Background())
			r := httptest.NewRequest(http.MethodPost, "/agent/status", strings.NewReader(`{"call_id":"CA00000000000000000000000000000001","caller_id":"+34911234567"}`))
			if c.token != "" {
				r.Header.Set("Authorization", "Bearer "+c.token)
			}
			w := httptest.NewRecorder()
			api.ServeHTTP(w, r)
			if w.Code != c.wantCode || !strings.Contains(w.Body.String(), c.wantBody) {
				t.Fatalf("answer %d %s, want %d with %s", w.Code, w.Body, c.wantCode, c.wantBody)
			}
			if c.wantLog != "" && !strings.Contains(logs.String(), c.wantLog) {
				t.Fatalf("log %s, want %s", logs.String(), c.wantLog)
			}
			if strings.Contains(logs.String(), goodToken) {
				t.Fatal("token in the log")
			}
		})
	}
}

// FuzzParams feeds request bodies of either content type to the body
// reader of the token handlers: it never panics and only reads strings.
func FuzzParams(f *testing.F) {
	f.Add("application/json", `{"Token":"t","n":1,"a":[1]}`)
	f.Add("application/x-www-form-urlencoded", "Token=t&Token=u&%zz")
	f.Add("application/json; charset=utf-8", ``)
	f.Add("text/plain", "Token=t")
	f.Fuzz(func(t *testing.T, ct, body string) {
		r := httptest.NewRequest(http.MethodPost, "/flex/voice-token", strings.NewReader(body))
		r.Header.Set("Content-Type", ct)
		p, err := params(httptest.NewRecorder(), r)
		if err == nil && p == nil {
			t.Fatal("nil map without error")
		}
	})
}

// TestVoiceTokenFailureFloor: every refusal of a Flex token is answered no
// sooner than the agent API's refusals (500 ms), whichever way the token
// came or failed. A lower bound only: it cannot flake on a slow machine.
func TestVoiceTokenFailureFloor(t *testing.T) {
	fake := newFake(t, nil)
	h, err := VoiceTokenHandler(&VoiceTokenOptions{
		Auth: newAuth(t, fake.URL, fake.AuthToken()), AccountSID: fake.AccountSID(), APIKeySID: apiKey, APIKeySecret: apiSecret,
	})
	if err != nil {
		t.Fatal(err)
	}
	if DefaultFailureDelay != 500*time.Millisecond {
		t.Fatalf("DefaultFailureDelay = %v, want the agent API's 500ms", DefaultFailureDelay)
	}
	for _, c := range []struct{ name, header, value, ct, body string }{
		{"no token", "", "", "", ""},
		{"bad bearer", "Authorization", "Bearer forged", "", ""},
		{"bad X-Flex-Token", "X-Flex-Token", "forged", "", ""},
		{"bad Token in JSON", "", "", "application/json", `{"Token":"forged"}`},
		{"bad Token in form", "", "", "application/x-www-form-urlencoded", "Token=forged"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/flex/voice-token", strings.NewReader(c.body))
			if c.header != "" {
				r.Header.Set(c.header, c.value)
			}
			if c.ct != "" {
				r.Header.Set("Content-Type", c.ct)
			}
			w := httptest.NewRecorder()
			t0 := time.Now()
			h.ServeHTTP(w, r)
			if d := time.Since(t0); d < DefaultFailureDelay {
				t.Errorf("answered after %v, want at least %v", d, DefaultFailureDelay)
			}
			if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), `"code":"unauthenticated"`) {
				t.Errorf("%d %s", w.Code, w.Body)
			}
		})
	}
}

// TestVoiceTokenOrigin: a form another site posts with a Flex token in it
// (Origin: https://evil.example, application/x-www-form-urlencoded, no
// preflight) is refused with 403 origin_not_allowed before the token is
// checked; the Flex page, the server's own pages, browser extensions and
// programs get their token.
func TestVoiceTokenOrigin(t *testing.T) {
	fake := newFake(t, nil)
	h, err := VoiceTokenHandler(&VoiceTokenOptions{
		Auth: newAuth(t, fake.URL, fake.AuthToken()), AccountSID: fake.AccountSID(), APIKeySID: apiKey, APIKeySecret: apiSecret,
		FailureDelay: -1, AllowedOrigins: []string{"https://flex.twilio.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	const refused = `{"code":"origin_not_allowed","error":"voice tokens are issued to the Flex page's origin and browser extensions only"}` + "\n"
	for _, c := range []struct {
		name, origin, site string
		status             int
	}{
		{"cross-site form", "https://evil.example", "cross-site", 403},
		{"cross-site form, no Sec-Fetch-Site", "https://evil.example", "", 403},
		{"cross-site without origin", "", "cross-site", 403},
		{"null origin", "null", "cross-site", 403},
		{"own host over http", "http://voice.example.com", "", 403},
		{"flex", "https://flex.twilio.com", "cross-site", 200},
		{"own origin", "https://voice.example.com", "same-origin", 200},
		{"extension", "chrome-extension://abcdefghijklmnopabcdefghijklmnop", "none", 200},
		{"program", "", "", 200},
	} {
		r := httptest.NewRequest("POST", "https://voice.example.com/flex/voice-token", strings.NewReader("Token="+goodToken))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range map[string]string{"Origin": c.origin, "Sec-Fetch-Site": c.site} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.status || c.status == 403 && w.Body.String() != refused {
			t.Errorf("%s: %d %s, want %d", c.name, w.Code, w.Body, c.status)
		}
	}
}

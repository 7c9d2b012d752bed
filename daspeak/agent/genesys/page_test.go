package genesys

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestWidgetPageScript runs the page's script under Node with a stub DOM:
// login redirect, return from login, forged state, wrong region, and a
// reload for another conversation.
func TestWidgetPageScript(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed: the page's script is not run")
	}
	h, err := WidgetPage(&WidgetPageOptions{ClientID: "client-1", Region: "mypurecloud.ie"})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/genesys/widget", nil))
	m := regexp.MustCompile(`(?s)<script nonce="[^"]+">(.*?)</script>`).FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatal("no script in the page")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "page.js")
	if err := os.WriteFile(script, []byte(m[1]), 0o644); err != nil {
		t.Fatal(err)
	}
	const (
		self  = "https://vb.example.com/genesys/widget"
		conv  = "1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7081"
		conv2 = "2b2c3d4e-5f60-4718-9a2b-3c4d5e6f7082"
	)
	search := "?conversationId=" + conv + "&gcHostOrigin=https%3A%2F%2Fapps.mypurecloud.ie&gcTargetEnv=prod-euw1&langTag=en-us"
	state := "000102030405060708090a0b0c0d0e0f" // the stub's random bytes
	var vb [32]byte
	for i := range vb {
		vb[i] = byte(i)
	}
	verifier := base64.RawURLEncoding.EncodeToString(vb[:])
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	pending := `{"search":"` + search + `","state":"` + state + `","verifier":"` + verifier + `"}`
	// Logged in, with the parameters of an earlier interaction still kept.
	loggedIn := `{"token":"TOK","expires":99999999999999,"search":"` + search + `"}`
	type answer struct {
		Status int            `json:"status"`
		Body   map[string]any `json:"body"`
	}
	type scenario struct {
		Href    string            `json:"href"`
		Storage map[string]string `json:"storage,omitempty"`
		Token   *answer           `json:"token,omitempty"`
	}
	granted := &answer{200, map[string]any{"access_token": "TOK", "token_type": "bearer", "expires_in": 3600}}
	scenarios := []scenario{
		{Href: self + search},
		{Href: self + "?code=CODE-1&state=" + state, Storage: map[string]string{"voicegate-genesys": pending}, Token: granted},
		{Href: self + "?code=EVIL&state=forged", Storage: map[string]string{"voicegate-genesys": pending}, Token: granted},
		{Href: self + "?conversationId=" + conv + "&gcHostOrigin=https%3A%2F%2Fapps.mypurecloud.de"},
		{Href: self + "?conversationId=" + conv2 + "&gcTargetEnv=prod-euw1", Storage: map[string]string{"voicegate-genesys": loggedIn}},
		{Href: self + "?conversationId=%3Cscript%3E&gcTargetEnv=prod-euw1", Storage: map[string]string{"voicegate-genesys": loggedIn}},
		{Href: self + "?code=CODE-2&state=" + state, Storage: map[string]string{"voicegate-genesys": pending},
			Token: &answer{400, map[string]any{"error": "invalid_grant", "error_description": "code_verifier does not match"}}},
		{Href: self + "?error=access_denied&state=" + state, Storage: map[string]string{"voicegate-genesys": pending}, Token: granted},
	}
	b, _ := json.Marshal(scenarios)
	sc := filepath.Join(dir, "scenarios.json")
	if err := os.WriteFile(sc, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(node, "testdata/page_harness.js", script, sc).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var res []struct {
		Assigned *string           `json:"assigned"`
		Replaced *string           `json:"replaced"`
		Status   string            `json:"status"`
		Scripts  []string          `json:"scripts"`
		Storage  map[string]string `json:"storage"`
		Fetched  []struct {
			URL, Method, Body, ContentType string
		} `json:"fetched"`
		Element *struct {
			Tag   string            `json:"tag"`
			Attrs map[string]string `json:"attrs"`
			Token *string           `json:"token"`
		} `json:"element"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(scenarios) {
		t.Fatalf("harness output %s: %v", out, err)
	}

	// 1. Not logged in: to the region's login page, authorization code
	// with a PKCE S256 challenge; state, verifier and the widget's
	// parameters kept.
	r := res[0]
	if r.Assigned == nil || r.Element != nil {
		t.Fatalf("first load: %+v", r)
	}
	u, _ := url.Parse(*r.Assigned)
	q := u.Query()
	if u.Host != "login.mypurecloud.ie" || u.Path != "/oauth/authorize" || q.Get("response_type") != "code" ||
		q.Get("client_id") != "client-1" || q.Get("redirect_uri") != self || q.Get("state") != state ||
		q.Get("code_challenge") != challenge || q.Get("code_challenge_method") != "S256" || q.Has("code_verifier") {
		t.Fatalf("login URL %s (want challenge %s)", *r.Assigned, challenge)
	}
	if st := r.Storage["voicegate-genesys"]; !strings.Contains(st, `"state":"`+state+`"`) || !strings.Contains(st, conv) || !strings.Contains(st, `"verifier":"`+verifier+`"`) {
		t.Fatalf("stored %v", r.Storage)
	}
	// 2. Back with a code: exchanged at the login service's token
	// endpoint with the verifier; the URL loses the code, the widget
	// mounts.
	r = res[1]
	if r.Replaced == nil || *r.Replaced != self+search || r.Assigned != nil || r.Element == nil {
		t.Fatalf("return: %+v", r)
	}
	if len(r.Fetched) != 1 {
		t.Fatalf("token requests %+v", r.Fetched)
	}
	f := r.Fetched[0]
	form, _ := url.ParseQuery(f.Body)
	if f.URL != "https://login.mypurecloud.ie/oauth/token" || f.Method != "POST" || f.ContentType != "application/x-www-form-urlencoded" ||
		form.Get("grant_type") != "authorization_code" || form.Get("code") != "CODE-1" || form.Get("redirect_uri") != self ||
		form.Get("client_id") != "client-1" || form.Get("code_verifier") != verifier || len(form) != 5 {
		t.Fatalf("token request %+v", f)
	}
	if e := r.Element; e.Tag != "voicegate-agent" || e.Attrs["conversation-id"] != conv || e.Attrs["backend-url"] != "/agent" ||
		e.Attrs["lang"] != "en-us" || e.Token == nil || *e.Token != "TOK" || e.Attrs["caller-id"] != "" {
		t.Fatalf("element %+v", e)
	}
	if len(r.Scripts) != 1 || r.Scripts[0] != "/agent/voicegate-agent.js" {
		t.Fatalf("scripts %v", r.Scripts)
	}
	if st := r.Storage["voicegate-genesys"]; strings.Contains(st, "state") || strings.Contains(st, "verifier") {
		t.Fatalf("state or verifier kept after use: %v", r.Storage)
	}
	// 3. A forged state: no exchange, no token, no widget, and the
	// verifier is gone.
	if r = res[2]; r.Element != nil || len(r.Fetched) != 0 || !strings.Contains(r.Status, "state mismatch") ||
		strings.Contains(r.Storage["voicegate-genesys"], "verifier") || strings.Contains(r.Storage["voicegate-genesys"], "TOK") {
		t.Fatalf("forged state: %+v", r)
	}
	// 4. Another region: refused before any login.
	if r = res[3]; r.Element != nil || r.Assigned != nil || !strings.Contains(r.Status, "mypurecloud.ie") {
		t.Fatalf("other region: %+v", r)
	}
	// 5. Logged in, a new interaction: its own conversation.
	if r = res[4]; r.Element == nil || r.Element.Attrs["conversation-id"] != conv2 || r.Assigned != nil {
		t.Fatalf("next conversation: %+v", r)
	}
	// 6. Not a conversation id.
	if r = res[5]; r.Element != nil || !strings.Contains(r.Status, "No conversation") {
		t.Fatalf("bad conversation id: %+v", r)
	}
	// 7. The token endpoint refuses the code: said, no widget, no token.
	if r = res[6]; r.Element != nil || len(r.Fetched) != 1 || !strings.Contains(r.Status, "code_verifier does not match") ||
		strings.Contains(r.Storage["voicegate-genesys"], "token") {
		t.Fatalf("refused code: %+v", r)
	}
	// 8. The login refused: said, no exchange.
	if r = res[7]; r.Element != nil || len(r.Fetched) != 0 || !strings.Contains(r.Status, "access_denied") {
		t.Fatalf("login error: %+v", r)
	}
}

// TestWidgetPageLoginURL: the login service is login.<Region> by default
// (and the only other origin the page may connect to); an absolute path
// puts it on the page's own origin; anything else is refused.
func TestWidgetPageLoginURL(t *testing.T) {
	page := func(login string) (string, string) {
		h, err := WidgetPage(&WidgetPageOptions{ClientID: "client-1", Region: "mypurecloud.ie", LoginURL: login})
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/genesys/widget", nil))
		return w.Body.String(), w.Header().Get("Content-Security-Policy")
	}
	body, csp := page("")
	if !strings.Contains(body, `"login":"https://login.mypurecloud.ie"`) || !strings.Contains(csp, "connect-src 'self' https://login.mypurecloud.ie;") {
		t.Fatalf("default login: CSP %q, page %s", csp, body)
	}
	body, csp = page("/fake-login/")
	if !strings.Contains(body, `"login":"/fake-login"`) || !strings.Contains(csp, "connect-src 'self';") {
		t.Fatalf("path login: CSP %q", csp)
	}
	_, csp = page("https://login.example.com/base")
	if !strings.Contains(csp, "connect-src 'self' https://login.example.com;") {
		t.Fatalf("URL login: CSP %q", csp)
	}
	for _, bad := range []string{"http://login.example.com", "//evil.example.com", "https://login.example.com/?q=1", "https://u:p@login.example.com", "javascript:alert(1)", "/a b"} {
		if _, err := WidgetPage(&WidgetPageOptions{ClientID: "client-1", Region: "mypurecloud.ie", LoginURL: bad}); err == nil {
			t.Errorf("LoginURL %q accepted", bad)
		}
	}
}

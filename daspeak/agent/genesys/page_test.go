package genesys

import (
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
	pending := `{"search":"` + search + `","state":"` + state + `"}`
	// Logged in, with the parameters of an earlier interaction still kept.
	loggedIn := `{"token":"TOK","expires":99999999999999,"search":"` + search + `"}`
	type scenario struct {
		Href    string            `json:"href"`
		Storage map[string]string `json:"storage,omitempty"`
	}
	scenarios := []scenario{
		{Href: self + search},
		{Href: self + "#access_token=TOK&expires_in=3600&token_type=bearer&state=" + state, Storage: map[string]string{"voicegate-genesys": pending}},
		{Href: self + "#access_token=EVIL&expires_in=3600&state=forged", Storage: map[string]string{"voicegate-genesys": pending}},
		{Href: self + "?conversationId=" + conv + "&gcHostOrigin=https%3A%2F%2Fapps.mypurecloud.de"},
		{Href: self + "?conversationId=" + conv2 + "&gcTargetEnv=prod-euw1", Storage: map[string]string{"voicegate-genesys": loggedIn}},
		{Href: self + "?conversationId=%3Cscript%3E&gcTargetEnv=prod-euw1", Storage: map[string]string{"voicegate-genesys": loggedIn}},
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
		Element  *struct {
			Tag   string            `json:"tag"`
			Attrs map[string]string `json:"attrs"`
			Token *string           `json:"token"`
		} `json:"element"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(scenarios) {
		t.Fatalf("harness output %s: %v", out, err)
	}

	// 1. Not logged in: to the region's login page, implicit grant, state kept.
	r := res[0]
	if r.Assigned == nil || r.Element != nil {
		t.Fatalf("first load: %+v", r)
	}
	u, _ := url.Parse(*r.Assigned)
	q := u.Query()
	if u.Host != "login.mypurecloud.ie" || u.Path != "/oauth/authorize" || q.Get("response_type") != "token" ||
		q.Get("client_id") != "client-1" || q.Get("redirect_uri") != self || q.Get("state") != state {
		t.Fatalf("login URL %s", *r.Assigned)
	}
	if !strings.Contains(r.Storage["voicegate-genesys"], `"state":"`+state+`"`) || !strings.Contains(r.Storage["voicegate-genesys"], conv) {
		t.Fatalf("stored %v", r.Storage)
	}
	// 2. Back with the token: the URL loses the fragment, the widget mounts.
	r = res[1]
	if r.Replaced == nil || *r.Replaced != self+search || r.Assigned != nil || r.Element == nil {
		t.Fatalf("return: %+v", r)
	}
	if e := r.Element; e.Tag != "voicegate-agent" || e.Attrs["conversation-id"] != conv || e.Attrs["backend-url"] != "/agent" ||
		e.Attrs["lang"] != "en-us" || e.Token == nil || *e.Token != "TOK" || e.Attrs["caller-id"] != "" {
		t.Fatalf("element %+v", e)
	}
	if len(r.Scripts) != 1 || r.Scripts[0] != "/agent/voicegate-agent.js" {
		t.Fatalf("scripts %v", r.Scripts)
	}
	if strings.Contains(r.Storage["voicegate-genesys"], "state") {
		t.Fatalf("state kept after use: %v", r.Storage)
	}
	// 3. A forged state: no token, no widget.
	if r = res[2]; r.Element != nil || !strings.Contains(r.Status, "state mismatch") || strings.Contains(r.Storage["voicegate-genesys"], "EVIL") {
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
}

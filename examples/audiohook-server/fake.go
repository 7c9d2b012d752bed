package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/daspeak/agent/genesys"
)

// The -fake-genesys mode lets the agent desk be tried on one machine,
// without a Genesys Cloud org: the agent's token is checked by a fake of
// GET /api/v2/users/me inside this process (and its access to a
// conversation by a fake of GET /api/v2/conversations/{id}: the fake agent
// is on every conversation, which ends for them when its AudioHook session
// closes), the widget page logs in with the PKCE
// login it runs against Genesys Cloud, at a fake login service that
// issues that token (fakeLogin), / lists the live conversations, and the AudioHook connections are signed with the
// documented local key pair below (unless STATIC_API_KEY_MAP is set).
// All of it is for loopback only.

// The AudioHook key pair a -fake-genesys server accepts when no keys are
// configured; it is public, as the audiohook-client README gives it.
const (
	fakeAPIKey    = "local-trial"
	fakeSecretB64 = "bG9jYWwtdHJpYWwtY2xpZW50LXNlY3JldA==" // "local-trial-client-secret"
)

// fakeRegion is the Genesys Cloud region the fake plays; the widget page
// checks the interaction's gcHostOrigin against it.
const fakeRegion = "mypurecloud.com"

// fakeAgent is the user the fake users/me answers for the token.
const fakeAgent = `{"id":"` + fakeAgentID + `","name":"Local Trial Agent","email":"agent@localhost","state":"active"}`

// newFakeToken returns a random token for one run of the fake.
func newFakeToken() string {
	var b [24]byte
	rand.Read(b[:])
	return "local-trial-" + hex.EncodeToString(b[:])
}

// fakeGenesysHandler answers as Genesys Cloud does GET /api/v2/users/me
// (200 with the user for token) and GET /api/v2/conversations/{id} (200
// for a conversation of convs, which the fake agent is on: see
// conversationJSON; 404 for others); 401 for any other bearer token, 404
// elsewhere.
func fakeGenesysHandler(token string, convs *conversations) http.Handler {
	want := "Bearer " + token
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conv, isConv := strings.CutPrefix(r.URL.Path, "/api/v2/conversations/")
		if r.Method != http.MethodGet || (r.URL.Path != "/api/v2/users/me" && !isConv) {
			agent.WriteError(w, http.StatusNotFound, agent.CodeNotFound, "no such path")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != want {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"message":"Invalid login credentials.","code":"bad.credentials","status":401}`)
			return
		}
		if isConv {
			c, ok := convs.get(conv)
			if !ok {
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, `{"message":"Unable to find a conversation with that conversationId","code":"not.found","status":404}`)
				return
			}
			json.NewEncoder(w).Encode(conversationJSON(c))
			return
		}
		io.WriteString(w, fakeAgent)
	})
}

// fakeAgentID is the user id of fakeAgent.
const fakeAgentID = "00000000-0000-4000-8000-00000000a9e7"

// conversationJSON is c as GET /api/v2/conversations/{id} answers it (the
// Conversation model's fields the agent server reads): a customer
// participant with c's ANI and the fake agent's participant, each with one
// call, "connected" while c is live; once it ended, the conversation, both
// participants and their calls have endTime (ISO-8601, UTC) and the calls
// are "disconnected".
func conversationJSON(c conversation) map[string]any {
	stamp := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
	state := "connected"
	participant := func(id, purpose string, extra map[string]any) map[string]any {
		p := map[string]any{"id": id, "purpose": purpose, "startTime": stamp(c.Since), "calls": []map[string]any{{"state": state}}}
		if !c.Ended.IsZero() {
			p["endTime"] = stamp(c.Ended)
		}
		maps.Copy(p, extra)
		return p
	}
	out := map[string]any{"id": c.ID, "startTime": stamp(c.Since)}
	if !c.Ended.IsZero() {
		state = "disconnected"
		out["endTime"] = stamp(c.Ended)
	}
	out["participants"] = []map[string]any{
		participant("00000000-0000-4000-8000-0000000c0001", "customer", map[string]any{"ani": "tel:" + c.ANI, "address": "tel:" + c.ANI}),
		participant("00000000-0000-4000-8000-0000000a0001", "agent", map[string]any{"userId": fakeAgentID, "name": "Local Trial Agent"}),
	}
	return out
}

// handlerTransport serves HTTP requests with a handler in this process:
// the fake Genesys Cloud API needs no listener.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	resp := w.Result()
	resp.Request = r
	return resp, nil
}

// loopbackHostOnly refuses requests whose Host is not a loopback name or
// address: a web page whose domain an attacker points at 127.0.0.1 (DNS
// rebinding) must not read the token in the widget page.
func loopbackHostOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			host = hh
		}
		host = strings.Trim(host, "[]")
		ip := net.ParseIP(host)
		if !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback()) {
			agent.WriteError(w, http.StatusMisdirectedRequest, agent.CodeMisdirectedRequest, "the fake Genesys Cloud answers requests to 127.0.0.1, [::1] or localhost only")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// fakeKeys returns the documented local key pair.
func fakeKeys() map[string][]byte {
	secret, _ := base64.StdEncoding.DecodeString(fakeSecretB64)
	return map[string][]byte{fakeAPIKey: secret}
}

// conversation is an AudioHook session's conversation: live, as the
// index lists it, or ended (Ended set) when its session closed.
type conversation struct {
	ID    string
	ANI   string
	Since time.Time
	Ended time.Time
}

// maxEndedConversations bounds the ended conversations the fake keeps.
const maxEndedConversations = 100

// conversations are the live sessions, for the index page, and the last
// maxEndedConversations ended ones, which the fake's conversation API
// still answers as ended (as Genesys Cloud does).
type conversations struct {
	mu    sync.Mutex
	m     map[string]conversation
	ended []string // ids of the ended conversations in m, oldest first
}

func (c *conversations) add(id, ani string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]conversation{}
	}
	if old, ok := c.m[id]; ok && !old.Ended.IsZero() {
		c.ended = slices.DeleteFunc(c.ended, func(e string) bool { return e == id })
	}
	c.m[id] = conversation{ID: id, ANI: strings.TrimPrefix(ani, "tel:"), Since: time.Now()}
}

// get returns conversation id, live or ended.
func (c *conversations) get(id string) (conversation, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[id]
	return v, ok
}

// remove ends conversation id: the index no longer lists it, the API
// answers it as ended.
func (c *conversations) remove(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[id]
	if !ok || !v.Ended.IsZero() {
		return
	}
	v.Ended = time.Now()
	c.m[id] = v
	c.ended = append(c.ended, id)
	if len(c.ended) > maxEndedConversations {
		delete(c.m, c.ended[0])
		c.ended = c.ended[1:]
	}
}

// list returns the live conversations, newest first.
func (c *conversations) list() []conversation {
	c.mu.Lock()
	out := make([]conversation, 0, len(c.m))
	for _, v := range c.m {
		if v.Ended.IsZero() {
			out = append(out, v)
		}
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b conversation) int {
		if d := b.Since.Compare(a.Since); d != 0 {
			return d
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// widgetURL is the widget page of a conversation, with the parameters the
// Interaction Widget integration passes.
func widgetURL(conversationID string) string {
	q := url.Values{"conversationId": {conversationID}, "gcHostOrigin": {"https://apps." + fakeRegion}, "langTag": {"en-us"}}
	return genesys.DefaultWidgetPath + "?" + q.Encode()
}

type indexRow struct {
	ID, ANI, Since, URL string
}

// index serves the list of live conversations, each linked to its widget
// page. The page fetches itself every 2 s while there is none, every 10 s
// after, and replaces the list in place when it changed, keeping keyboard
// focus on the link that had it (a reload would move focus to the top of
// the page); when that conversation left the list, focus moves to the
// link now in its place (or the last one), or to the list itself when
// none is left, and a status region says it ended. Without JavaScript it
// reloads.
func (c *conversations) index(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		agent.WriteError(w, http.StatusNotFound, agent.CodeNotFound, "no such path")
		return
	}
	var rows []indexRow
	for _, v := range c.list() {
		rows = append(rows, indexRow{ID: v.ID, ANI: v.ANI, Since: v.Since.Format("15:04:05"), URL: widgetURL(v.ID)})
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-"+indexScriptHash+"'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	indexTemplate.Execute(w, struct {
		Rows                []indexRow
		APIKey, Secret, URL string
		Script              template.JS
	}{rows, fakeAPIKey, fakeSecretB64, "ws://" + r.Host + wsPath, template.JS(indexScript)})
}

// indexScript refreshes the index page in place (see index).
const indexScript = `(() => {
  const list = document.getElementById('list');
  const said = document.getElementById('said');
  const refresh = async () => {
    try {
      const res = await fetch(location.pathname, { cache: 'no-store', credentials: 'same-origin' });
      if (!res.ok) return;
      const next = new DOMParser().parseFromString(await res.text(), 'text/html').getElementById('list');
      if (!next || next.innerHTML === list.innerHTML) return;
      const f = document.activeElement;
      const at = f && list.contains(f) ? Array.from(list.querySelectorAll('a')).indexOf(f) : -1;
      const href = at >= 0 ? f.getAttribute('href') : null;
      const name = at >= 0 ? f.textContent : '';
      const onList = f === list;
      list.innerHTML = next.innerHTML;
      const links = Array.from(list.querySelectorAll('a'));
      if (href) {
        let again = links.find((a) => a.getAttribute('href') === href);
        if (!again) {
          // The conversation ended: focus stays in the list, not on the
          // page's body.
          said.textContent = 'Conversation ' + name + ' ended.';
          again = links[Math.min(at, links.length - 1)] || list;
        }
        again.focus();
      } else if (onList) {
        list.focus();
      }
    } catch (_) {
      // The server is gone or restarting: try again later.
    } finally {
      setTimeout(refresh, list.querySelector('#conversations') ? 10000 : 2000);
    }
  };
  setTimeout(refresh, list.querySelector('#conversations') ? 10000 : 2000);
})();`

// indexScriptHash is the base64 SHA-256 of indexScript, for the page's
// Content-Security-Policy.
var indexScriptHash = func() string {
	h := sha256.Sum256([]byte(indexScript))
	return base64.StdEncoding.EncodeToString(h[:])
}()

var indexTemplate = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<noscript><meta http-equiv="refresh" content="{{if .Rows}}10{{else}}2{{end}}"></noscript>
<title>Live conversations (fake Genesys Cloud)</title>
<style>
body{margin:24px;font:14px system-ui,sans-serif;color:#222}
@media (max-width:480px){body{margin:12px}th,td{padding:6px 4px!important}}
h1{font-size:1.5em}
table{border-collapse:collapse;width:100%}th,td{padding:6px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{font-size:12px}td:first-child{word-break:break-all}td+td{white-space:nowrap}
code,pre{font:12px ui-monospace,monospace}pre{background:#f4f4f4;padding:8px;white-space:pre-wrap;overflow-wrap:anywhere}
a{color:#0b57d0}a:focus-visible,#list:focus-visible{outline:3px solid #000;outline-offset:2px}
.sr{position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
.note{color:#8a4b00}
</style>
</head>
<body>
<h1 id="heading">Live conversations</h1>
<p class="note">Fake Genesys Cloud for local trials: the login asks nothing, one token for everyone on this machine.</p>
<p id="said" class="sr" role="status" aria-live="polite"></p>
<div id="list" tabindex="-1" role="region" aria-labelledby="heading">
{{if .Rows}}
<table id="conversations">
<thead><tr><th>Conversation</th><th>Caller (ANI)</th><th>Since</th></tr></thead>
<tbody>
{{range .Rows}}<tr><td><a href="{{.URL}}">{{.ID}}</a></td><td>{{.ANI}}</td><td>{{.Since}}</td></tr>
{{end}}</tbody>
</table>
<p>Open a conversation, then press <b>Register User</b> (or <b>Authenticate User</b>) while the caller speaks.</p>
{{else}}
<p id="empty">No live conversation yet. Start a call with the AudioHook client, from the repository's root:</p>
<pre>AUDIOHOOK_API_KEY={{.APIKey}} AUDIOHOOK_CLIENT_SECRET={{.Secret}} \
go run ./examples/audiohook-client -url {{.URL}} -wav testdata/voices/awb_1.wav -loop 10m</pre>
{{end}}
</div>
<script>{{.Script}}</script>
</body>
</html>
`))

// fakeLoginPath is where -fake-genesys serves its login service (the
// widget page's LoginURL): /oauth/authorize and /oauth/token below it.
const fakeLoginPath = "/fake-genesys/login"

// fakeLogin is the fake's login service: the Authorization Code grant with
// PKCE as the widget page runs it against login.<region>. /oauth/authorize
// logs the agent in at once (there is one agent) and sends the browser
// back to the page with a single-use code bound to the request's client,
// redirect URI and S256 code_challenge; POST /oauth/token exchanges that
// code, with the code_verifier whose SHA-256 is the challenge, for the
// fake's token. Codes expire after a minute.
type fakeLogin struct {
	clientID, token string

	mu    sync.Mutex
	codes map[string]fakeCode
}

type fakeCode struct {
	challenge, redirect string
	expires             time.Time
}

func newFakeLogin(clientID, token string) *fakeLogin {
	return &fakeLogin{clientID: clientID, token: token, codes: map[string]fakeCode{}}
}

func (f *fakeLogin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case fakeLoginPath + "/oauth/authorize":
		if r.Method == http.MethodGet {
			f.authorize(w, r)
			return
		}
	case fakeLoginPath + "/oauth/token":
		if r.Method == http.MethodPost {
			f.exchange(w, r)
			return
		}
	}
	agent.WriteError(w, http.StatusNotFound, agent.CodeNotFound, "no such path")
}

// pageURL is the widget page's URL on the host r was sent to: the only
// redirect URI the fake's client has.
func pageURL(r *http.Request) string { return "http://" + r.Host + genesys.DefaultWidgetPath }

func (f *fakeLogin) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case q.Get("client_id") != f.clientID || q.Get("redirect_uri") != pageURL(r):
		// Never redirect to a URI the client does not have.
		agent.WriteError(w, http.StatusBadRequest, agent.CodeBadRequest, "unknown client_id or redirect_uri")
		return
	case q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43:
		back := url.Values{"error": {"invalid_request"}, "state": {q.Get("state")}}
		http.Redirect(w, r, pageURL(r)+"?"+back.Encode(), http.StatusFound)
		return
	}
	var b [24]byte
	rand.Read(b[:])
	code := hex.EncodeToString(b[:])
	f.mu.Lock()
	now := time.Now()
	for k, c := range f.codes {
		if now.After(c.expires) {
			delete(f.codes, k)
		}
	}
	f.codes[code] = fakeCode{challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"), expires: now.Add(time.Minute)}
	f.mu.Unlock()
	back := url.Values{"code": {code}, "state": {q.Get("state")}}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, pageURL(r)+"?"+back.Encode(), http.StatusFound)
}

func (f *fakeLogin) exchange(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := r.ParseForm(); err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_request"}`)
		return
	}
	code := r.PostForm.Get("code")
	f.mu.Lock()
	c, ok := f.codes[code]
	delete(f.codes, code) // single use, whatever follows
	f.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case r.PostForm.Get("grant_type") != "authorization_code":
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"unsupported_grant_type"}`)
	case r.PostForm.Get("client_id") != f.clientID:
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"invalid_client"}`)
	case !ok || time.Now().After(c.expires) || r.PostForm.Get("redirect_uri") != c.redirect ||
		base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge:
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_grant","error_description":"the code is unknown, used, expired, or not for this redirect_uri and code_verifier"}`)
	default:
		json.NewEncoder(w).Encode(map[string]any{"access_token": f.token, "token_type": "bearer", "expires_in": 86399})
	}
}

package genesys

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// DefaultWidgetPath is where a server usually mounts WidgetPage; configure
// the Genesys Cloud Interaction Widget integration with
//
//	https://<host>/genesys/widget?conversationId={{pcConversationId}}&gcHostOrigin={{gcHostOrigin}}&gcTargetEnv={{gcTargetEnv}}&langTag={{pcLangTag}}
const DefaultWidgetPath = "/genesys/widget"

// WidgetPageOptions configures WidgetPage.
type WidgetPageOptions struct {
	// ClientID is the Genesys Cloud OAuth client for the Authorization
	// Code grant with PKCE (a browser client: no secret) whose authorized
	// redirect URI is the page's own URL without query
	// (https://<host>/genesys/widget); required.
	ClientID string
	// Region is the region domain the server checks tokens against
	// ("mypurecloud.ie", see Region); required. The page logs the agent in
	// at login.<Region> and refuses a gcHostOrigin of another region.
	Region string
	// BasePath is the agent API's base path, where the widget script is
	// served too; default agent.DefaultBasePath ("/agent").
	BasePath string
	// LoginURL is the base URL of the login service, where the page
	// sends the agent to /oauth/authorize and posts /oauth/token; default
	// "https://login.<Region>". An absolute path ("/fake-login") is on the
	// page's own origin: for a local fake of the login service only.
	LoginURL string
}

// WidgetPage returns the page a Genesys Cloud Interaction Widget loads
// next to each interaction. It reads conversationId, gcHostOrigin,
// gcTargetEnv and langTag from its URL; logs the agent in with the OAuth
// Authorization Code grant with PKCE (RFC 7636, S256) at login.<Region>
// in the widget's frame; then writes
//
//	<voicegate-agent conversation-id="…" backend-url="{BasePath}" lang="…">
//
// loads {BasePath}/voicegate-agent.js and gives the element a
// utils.getTemporaryToken that returns the access token, which the agent
// API checks with GET /api/v2/users/me (Authenticator). The caller id is
// left to the server (the AudioHook session's ani).
//
// The login, as Genesys Cloud documents it (Developer Center, "Grant -
// Authorization Code", https://developer.genesys.cloud/authorization/platform-auth/use-authorization-code,
// and "Grant - Authorization Code with PKCE",
// https://developer.genesys.cloud/authorization/platform-auth/use-pkce;
// the PKCE fields are RFC 7636's):
//
//	GET  https://login.<Region>/oauth/authorize?response_type=code&client_id=…&redirect_uri=<page>
//	     &state=<random>&code_challenge=BASE64URL(SHA-256(code_verifier))&code_challenge_method=S256
//	  → 302 <page>?code=…&state=…            (or ?error=…)
//	POST https://login.<Region>/oauth/token  (application/x-www-form-urlencoded)
//	     grant_type=authorization_code&code=…&redirect_uri=<page>&client_id=…&code_verifier=…
//	  → 200 {"access_token":"…","token_type":"bearer","expires_in":86399}
//
// The code_verifier (32 random bytes, base64url: 43 characters), the
// state and the widget's own URL parameters wait in sessionStorage while
// the agent logs in; a returning code is exchanged only when its state is
// the one stored, and the verifier and state are dropped at once, used or
// not. The access token is kept in sessionStorage until 60 s before it
// expires, never in a URL.
//
// The page is served with a Content-Security-Policy that lets only
// https://apps.<Region> frame it, connects only to its own origin and the
// login service, and runs no script but its own (nonce) and the widget's.
func WidgetPage(opts *WidgetPageOptions) (http.Handler, error) {
	if opts == nil || opts.ClientID == "" {
		return nil, errors.New("genesys: WidgetPageOptions.ClientID is required (an OAuth client for the Authorization Code grant with PKCE)")
	}
	if !knownDomain(opts.Region) {
		return nil, fmt.Errorf("%w: WidgetPageOptions.Region %q", ErrRegion, opts.Region)
	}
	base := strings.TrimSuffix(opts.BasePath, "/")
	if base == "" {
		base = "/agent"
	}
	if !strings.HasPrefix(base, "/") || strings.ContainsAny(base, "\"'<> ?#") {
		return nil, fmt.Errorf("genesys: BasePath %q is not a path", opts.BasePath)
	}
	login := strings.TrimSuffix(opts.LoginURL, "/")
	connect := ""
	switch {
	case login == "":
		login = "https://login." + opts.Region
		connect = " " + login
	case strings.HasPrefix(login, "/") && !strings.HasPrefix(login, "//"):
		// the page's own origin: 'self'
	default:
		u, err := url.Parse(login)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("genesys: LoginURL %q is not an https:// URL nor an absolute path", opts.LoginURL)
		}
		connect = " " + u.Scheme + "://" + u.Host
	}
	if strings.ContainsAny(login, "\"'<> ?#;") {
		return nil, fmt.Errorf("genesys: LoginURL %q is not a URL", opts.LoginURL)
	}
	cfg := pageConfig{ClientID: opts.ClientID, Region: opts.Region, BasePath: base, Envs: Regions, Login: login}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		var nb [18]byte
		rand.Read(nb[:])
		nonce := base64.RawURLEncoding.EncodeToString(nb[:])
		var buf bytes.Buffer
		if err := pageTemplate.Execute(&buf, pageData{Nonce: nonce, Config: cfg}); err != nil {
			http.Error(w, "page unavailable", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self' 'nonce-"+nonce+"'; connect-src 'self'"+connect+"; "+
			"style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "+
			"frame-ancestors https://apps."+opts.Region)
		w.Write(buf.Bytes())
	}), nil
}

type pageConfig struct {
	ClientID string            `json:"clientId"`
	Region   string            `json:"region"`
	BasePath string            `json:"basePath"`
	Envs     map[string]string `json:"envs"`
	Login    string            `json:"login"`
}

type pageData struct {
	Nonce  string
	Config pageConfig
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Voice biometrics</title>
<style>body{margin:0;font:14px system-ui,sans-serif}#vg-status{padding:12px;color:#444}</style>
</head>
<body>
<div id="vg-status">Signing in to Genesys Cloud…</div>
<div id="vg-mount"></div>
<script nonce="{{.Nonce}}">
(async function () {
  'use strict';
  var cfg = {{.Config}};
  var KEY = 'voicegate-genesys';
  var status = document.getElementById('vg-status');
  function fail(msg) { status.textContent = msg; }
  function load() { try { return JSON.parse(sessionStorage.getItem(KEY)) || {}; } catch (e) { return {}; } }
  function save(s) { sessionStorage.setItem(KEY, JSON.stringify(s)); }
  function random(n) { var b = new Uint8Array(n); crypto.getRandomValues(b); return b; }
  function hex(b) { return Array.prototype.map.call(b, function (x) { return ('0' + x.toString(16)).slice(-2); }).join(''); }
  function b64url(b) {
    return btoa(String.fromCharCode.apply(null, b)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  var self = location.origin + location.pathname;
  var login = new URL(cfg.login, location.href).href.replace(/\/+$/, '');
  var st = load();
  var search = location.search;
  var back = new URLSearchParams(location.search);

  // Back from the login page with a code (or an error): the widget's own
  // parameters were kept before leaving; the verifier and state are used
  // once.
  if (back.has('code') || back.has('error')) {
    search = st.search || '';
    history.replaceState(null, '', self + search);
    var verifier = st.verifier;
    var stateOK = !!st.state && back.get('state') === st.state;
    delete st.state;
    delete st.verifier;
    delete st.search;
    save(st);
    if (back.get('error')) { fail('Genesys Cloud login failed: ' + back.get('error')); return; }
    if (!stateOK || !verifier) { fail('Genesys Cloud login failed: state mismatch'); return; }
    var res, tok = null;
    try {
      res = await fetch(login + '/oauth/token', {
        method: 'POST', credentials: 'omit', cache: 'no-store',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body: new URLSearchParams({
          grant_type: 'authorization_code', code: back.get('code'), redirect_uri: self,
          client_id: cfg.clientId, code_verifier: verifier
        }).toString()
      });
      tok = await res.json();
    } catch (e) {
      if (!res) { fail('Genesys Cloud login failed: the login service did not answer.'); return; }
    }
    if (!res.ok || !tok || typeof tok.access_token !== 'string' || !tok.access_token) {
      fail('Genesys Cloud login failed: ' + ((tok && (tok.error_description || tok.error)) || ('HTTP ' + res.status)));
      return;
    }
    st.token = tok.access_token;
    st.expires = Date.now() + 1000 * (parseInt(tok.expires_in, 10) || 3600);
    save(st);
  }
  var q = new URLSearchParams(search);
  var conversationId = q.get('conversationId') || '';
  var hostOrigin = q.get('gcHostOrigin') || '';
  var targetEnv = q.get('gcTargetEnv') || '';
  var lang = q.get('langTag') || '';
  if (!/^[0-9a-fA-F-]{36}$/.test(conversationId)) { fail('No conversation: open this widget from an interaction.'); return; }
  var region = '';
  if (hostOrigin) {
    try {
      var u = new URL(hostOrigin);
      if (u.protocol === 'https:') { region = u.hostname.toLowerCase().replace(/^apps\./, ''); }
    } catch (e) { region = ''; }
  } else if (targetEnv) {
    region = cfg.envs[targetEnv.toLowerCase()] || '';
  }
  if (region !== cfg.region) { fail('This server serves the Genesys Cloud region ' + cfg.region + ', not ' + (region || hostOrigin || targetEnv || 'unknown') + '.'); return; }

  if (!st.token || Date.now() > st.expires - 60000) {
    var v = b64url(random(32));
    var challenge = b64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(v))));
    st = {search: search, state: hex(random(16)), verifier: v};
    save(st);
    location.assign(login + '/oauth/authorize?' + new URLSearchParams({
      response_type: 'code', client_id: cfg.clientId, redirect_uri: self, state: st.state,
      code_challenge: challenge, code_challenge_method: 'S256'
    }).toString());
    return;
  }
  var token = st.token;
  status.remove();
  var el = document.createElement('voicegate-agent');
  el.setAttribute('conversation-id', conversationId);
  el.setAttribute('backend-url', cfg.basePath);
  el.setAttribute('call-in-progress', 'true');
  if (lang) { el.setAttribute('lang', lang); }
  el.utils = {getTemporaryToken: function () { return Promise.resolve(token); }};
  document.getElementById('vg-mount').appendChild(el);
  var s = document.createElement('script');
  s.src = cfg.basePath + '/voicegate-agent.js';
  document.head.appendChild(s);
})().catch(function (e) {
  var el = document.getElementById('vg-status');
  if (el) { el.textContent = 'Genesys Cloud login failed: ' + e; }
});
</script>
</body>
</html>
`))

package genesys

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
)

// DefaultWidgetPath is where a server usually mounts WidgetPage; configure
// the Genesys Cloud Interaction Widget integration with
//
//	https://<host>/genesys/widget?conversationId={{pcConversationId}}&gcHostOrigin={{gcHostOrigin}}&gcTargetEnv={{gcTargetEnv}}&langTag={{pcLangTag}}
const DefaultWidgetPath = "/genesys/widget"

// WidgetPageOptions configures WidgetPage.
type WidgetPageOptions struct {
	// ClientID is the Genesys Cloud OAuth client (grant type "Token
	// Implicit Grant (Browser)") whose authorized redirect URI is the
	// page's own URL without query (https://<host>/genesys/widget);
	// required.
	ClientID string
	// Region is the region domain the server checks tokens against
	// ("mypurecloud.ie", see Region); required. The page logs the agent in
	// at login.<Region> and refuses a gcHostOrigin of another region.
	Region string
	// BasePath is the agent API's base path, where the widget script is
	// served too; default agent.DefaultBasePath ("/agent").
	BasePath string
}

// WidgetPage returns the page a Genesys Cloud Interaction Widget loads
// next to each interaction. It reads conversationId, gcHostOrigin,
// gcTargetEnv and langTag from its URL; logs the agent in with the OAuth
// implicit grant at login.<Region> (in the widget's frame, state checked,
// token kept in sessionStorage, never in the URL after the return); then
// writes
//
//	<voicegate-agent conversation-id="…" backend-url="{BasePath}" lang="…">
//
// loads {BasePath}/voicegate-agent.js and gives the element a
// utils.getTemporaryToken that returns the access token, which the agent
// API checks with GET /api/v2/users/me (Authenticator). The caller id is
// left to the server (the AudioHook session's ani).
//
// The page is served with a Content-Security-Policy that lets only
// https://apps.<Region> frame it and runs no script but its own (nonce)
// and the widget's.
func WidgetPage(opts *WidgetPageOptions) (http.Handler, error) {
	if opts == nil || opts.ClientID == "" {
		return nil, errors.New("genesys: WidgetPageOptions.ClientID is required (a Token Implicit Grant OAuth client)")
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
	cfg := pageConfig{ClientID: opts.ClientID, Region: opts.Region, BasePath: base, Envs: Regions}
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
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self' 'nonce-"+nonce+"'; connect-src 'self'; "+
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
(function () {
  'use strict';
  var cfg = {{.Config}};
  var KEY = 'voicegate-genesys';
  var status = document.getElementById('vg-status');
  function fail(msg) { status.textContent = msg; }
  function load() { try { return JSON.parse(sessionStorage.getItem(KEY)) || {}; } catch (e) { return {}; } }
  function save(s) { sessionStorage.setItem(KEY, JSON.stringify(s)); }
  function randomState() {
    var b = new Uint8Array(16); crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return ('0' + x.toString(16)).slice(-2); }).join('');
  }
  var self = location.origin + location.pathname;
  var st = load();
  var search = location.search;

  // Back from the login page: the token is in the fragment, the widget's
  // own parameters were kept before leaving.
  if (location.hash.length > 1) {
    var h = new URLSearchParams(location.hash.slice(1));
    search = st.search || '';
    history.replaceState(null, '', self + search);
    if (h.get('error')) { fail('Genesys Cloud login failed: ' + h.get('error')); return; }
    if (!st.state || h.get('state') !== st.state) { fail('Genesys Cloud login failed: state mismatch'); return; }
    st.token = h.get('access_token');
    st.expires = Date.now() + 1000 * (parseInt(h.get('expires_in'), 10) || 3600);
    delete st.state;
    delete st.search;
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
    st = {search: search, state: randomState()};
    save(st);
    location.assign('https://login.' + cfg.region + '/oauth/authorize?' + new URLSearchParams({
      response_type: 'token', client_id: cfg.clientId, redirect_uri: self, state: st.state
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
})();
</script>
</body>
</html>
`))

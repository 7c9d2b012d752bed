package browsertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// TestPinnedVersion keeps the version .ci/run installs and the one this
// package names in step, and checks the installed one when there is one.
func TestPinnedVersion(t *testing.T) {
	run, err := os.ReadFile(filepath.Join("..", "..", ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^PLAYWRIGHT_CORE_VERSION=(\S+)$`).FindSubmatch(run)
	if m == nil {
		t.Fatal(".ci/run does not set PLAYWRIGHT_CORE_VERSION")
	}
	if string(m[1]) != PlaywrightCoreVersion {
		t.Errorf(".ci/run installs playwright-core %s, PlaywrightCoreVersion is %s", m[1], PlaywrightCoreVersion)
	}
	pw, err := findPlaywright()
	if err != nil {
		t.Skipf("playwright-core not installed: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(pw, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		Version string
		Engines struct{ Node string }
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	if pkg.Engines.Node != fmt.Sprintf(">=%d", MinNodeMajor) {
		t.Errorf("playwright-core %s needs Node.js %q; MinNodeMajor is %d", pkg.Version, pkg.Engines.Node, MinNodeMajor)
	}
	if os.Getenv("VOICEGATE_PLAYWRIGHT_CORE") == "" && pkg.Version != PlaywrightCoreVersion {
		t.Errorf("installed playwright-core %s at %s, want %s (run .ci/run)", pkg.Version, pw, PlaywrightCoreVersion)
	}
}

// TestDriver runs every driver command once against a small page: a
// click changes text, keyboard focus is reported inside a shadow root,
// waits time out with the text they saw, and screenshots are PNG files.
func TestDriver(t *testing.T) {
	b := Start(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>t</title>
<p id="out">before</p><button id="b" onclick="document.getElementById('out').textContent='after'">Go</button>
<select id="s"><option value="a">A</option><option value="z">Z</option></select>
<div id="host"></div>
<script>
const r = document.getElementById('host').attachShadow({mode:'open'});
r.innerHTML = '<button id="inner">Inner</button><p id="hid" hidden>x</p>';
</script>`)
	}))
	defer srv.Close()

	p := b.NewPage(400, 300)
	p.Goto(srv.URL)
	if got := p.Text("#out"); got != "before" {
		t.Errorf("text %q", got)
	}
	p.Click("#b")
	if got := p.WaitText("#out", "^after$", 5*time.Second); got != "after" {
		t.Errorf("waitText %q", got)
	}
	p.Select("#s", "z")
	var v string
	p.Eval(`document.getElementById('s').value`, &v)
	if v != "z" {
		t.Errorf("select: value %q", v)
	}
	p.Focus("#host >> #inner")
	if f := p.Focused(); f != "button#inner:Inner" {
		t.Errorf("focused %q", f)
	}
	p.Press("Tab")
	if f := p.Focused(); f == "button#inner:Inner" {
		t.Errorf("Tab did not move the focus")
	}
	if p.Visible("#host >> #hid") {
		t.Error("hidden element reported visible")
	}
	p.WaitHidden("#host >> #hid", time.Second)
	if n := p.Count("button"); n != 2 {
		t.Errorf("count of buttons (light and shadow DOM) = %d, want 2", n)
	}
	if _, err := b.Do("waitText", map[string]any{"page": 1, "selector": "#out", "pattern": "^never$", "timeout": 200}); err == nil ||
		!regexp.MustCompile(`text "after" does not match /\^never\$/`).MatchString(err.Error()) {
		t.Errorf("waitText timeout error %v", err)
	}
	if _, err := b.Do("noSuchOp", nil); err == nil {
		t.Error("unknown op accepted")
	}
	var dark bool
	p.Media("prefers-color-scheme", "dark")
	p.Eval(`matchMedia('(prefers-color-scheme: dark)').matches`, &dark)
	if !dark {
		t.Error("Media did not emulate a dark colour scheme")
	}
	path := p.Screenshot("driver", "")
	png, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("screenshot %s: %v, %d bytes", path, err, len(png))
	}
	p.Eval(`setTimeout(() => { throw new Error('boom') }, 0)`, nil)
	deadline := time.Now().Add(5 * time.Second)
	for len(b.PageErrors()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if errs := b.PageErrors(); len(errs) != 1 || !regexp.MustCompile(`boom`).MatchString(errs[0]) {
		t.Errorf("page errors %q", errs)
	}
	p.Eval(`console.error('logged'), console.log('not an error')`, nil)
	for deadline := time.Now().Add(5 * time.Second); len(b.ConsoleErrors()) == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if errs := b.ConsoleErrors(); len(errs) != 1 || errs[0] != "logged" {
		t.Errorf("console errors %q", errs)
	}
}

// Package browsertest drives a headless Chromium from Go tests, for the
// tests of the agent widget.
//
// It runs a small Node.js driver (driver.cjs, embedded) over
// playwright-core and the Debian chromium package, and talks to it with
// one JSON object a line on stdin and stdout. [Start] skips the test, with
// a message saying what is missing, when chromium, node or playwright-core
// is absent; .ci/run installs all three (playwright-core at
// [PlaywrightCoreVersion] into .ci/node_modules).
//
// Selectors are Playwright selectors: CSS pierces open shadow roots, and
// "a >> b" chains (b inside a).
//
// Environment:
//
//	VOICEGATE_CHROMIUM          browser executable (default /usr/bin/chromium)
//	VOICEGATE_PLAYWRIGHT_CORE   playwright-core package directory
//	                            (default <module>/.ci/node_modules/playwright-core)
//	VOICEGATE_SCREENSHOTS       directory for screenshots (default: a test temp dir)
package browsertest

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PlaywrightCoreVersion is the playwright-core version .ci/run installs.
const PlaywrightCoreVersion = "1.65.1"

// MinNodeMajor is the oldest Node.js major version PlaywrightCoreVersion
// runs on (its package.json "engines").
const MinNodeMajor = 20

//go:embed driver.cjs
var driverJS []byte

// DefaultTimeout bounds one command to the browser.
const DefaultTimeout = 60 * time.Second

// StartTimeout bounds Chromium's start. It is long: under go test ./...
// on two loaded cores, several packages start a browser at once, and a
// start over a minute was seen.
const StartTimeout = 3 * time.Minute

// Browser is one headless Chromium with a fresh, empty profile. Its
// methods are for the test goroutine; they fail the test on error.
type Browser struct {
	t   testing.TB
	cmd *exec.Cmd
	in  io.WriteCloser

	// Dir is where Screenshot writes.
	Dir string

	mu      sync.Mutex
	nextID  int
	pending map[int]chan answer
	errs    []string // page errors (uncaught exceptions)
	console []string // console messages of type error
	exited  chan struct{}
	exitErr error
}

type answer struct {
	ID    int             `json:"id"`
	OK    bool            `json:"ok"`
	Value json.RawMessage `json:"value"`
	Error string          `json:"error"`
	Log   string          `json:"log"`
	Page  int             `json:"page"`
	Text  string          `json:"text"`
	Ready bool            `json:"ready"`
	Fatal string          `json:"fatal"`
}

// Start launches the browser, or skips t when chromium, node or
// playwright-core is not installed. With VOICEGATE_REQUIRE_BROWSER=1 (set
// by .ci/run, which installs them) a missing piece fails t instead: CI
// must never pass by skipping the browser tests. The browser is closed
// when t ends.
func Start(t testing.TB) *Browser {
	t.Helper()
	if os.Getenv("VOICEGATE_REQUIRE_BROWSER") == "1" {
		t = requireTB{t}
	}
	chromium := os.Getenv("VOICEGATE_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("browser test needs Chromium at %s (apt-get install chromium; or set VOICEGATE_CHROMIUM): %v", chromium, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skipf("browser test needs Node.js (apt-get install nodejs): %v", err)
	}
	if out, err := exec.Command(node, "--version").Output(); err != nil {
		t.Skipf("browser test needs Node.js: %s --version: %v", node, err)
	} else if major, _ := strconv.Atoi(strings.TrimPrefix(strings.SplitN(strings.TrimSpace(string(out)), ".", 2)[0], "v")); major < MinNodeMajor {
		t.Skipf("browser test needs Node.js >= %d for playwright-core %s; %s is %s", MinNodeMajor, PlaywrightCoreVersion, node, strings.TrimSpace(string(out)))
	}
	pw, err := findPlaywright()
	if err != nil {
		t.Skipf("browser test needs playwright-core %s (.ci/run installs it into .ci/node_modules; or set VOICEGATE_PLAYWRIGHT_CORE): %v", PlaywrightCoreVersion, err)
	}

	tmp := t.TempDir()
	driver := filepath.Join(tmp, "driver.cjs")
	if err := os.WriteFile(driver, driverJS, 0o600); err != nil {
		t.Fatal(err)
	}
	profile := filepath.Join(tmp, "profile")
	if err := os.Mkdir(profile, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("VOICEGATE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(tmp, "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(node, driver)
	cmd.Env = append(os.Environ(), "PLAYWRIGHT_CORE="+pw, "CHROMIUM="+chromium, "USER_DATA_DIR="+profile)
	cmd.Stderr = &logWriter{t: t}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start browser driver: %v", err)
	}
	b := &Browser{t: t, cmd: cmd, in: in, Dir: dir, pending: map[int]chan answer{}, exited: make(chan struct{})}
	ready := make(chan answer, 1)
	go b.read(out, ready)
	t.Cleanup(b.close)
	select {
	case a := <-ready:
		if a.Fatal != "" {
			t.Fatalf("browser did not start: %s", a.Fatal)
		}
	case <-b.exited:
		t.Fatalf("browser driver exited: %v", b.exitErr)
	case <-time.After(StartTimeout):
		t.Fatalf("browser did not start within %v", StartTimeout)
	}
	t.Logf("browser: %s; screenshots in %s", chromium, dir)
	return b
}

// findPlaywright returns the playwright-core package directory.
func findPlaywright() (string, error) {
	if d := os.Getenv("VOICEGATE_PLAYWRIGHT_CORE"); d != "" {
		_, err := os.Stat(filepath.Join(d, "package.json"))
		return d, err
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			pw := filepath.Join(d, ".ci", "node_modules", "playwright-core")
			_, err := os.Stat(filepath.Join(pw, "package.json"))
			return pw, err
		}
		if filepath.Dir(d) == d {
			return "", errors.New("no go.mod above " + wd)
		}
	}
}

func (b *Browser) read(out io.Reader, ready chan<- answer) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var a answer
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			b.t.Logf("browser: %s", sc.Text())
			continue
		}
		switch {
		case a.Ready || a.Fatal != "":
			select {
			case ready <- a:
			default:
				b.t.Logf("browser: %s", a.Fatal)
			}
		case a.Log != "":
			b.t.Logf("browser page %d %s: %s", a.Page, a.Log, a.Text)
			b.mu.Lock()
			switch {
			case a.Log == "pageerror":
				b.errs = append(b.errs, a.Text)
			case a.Log == "console" && strings.HasPrefix(a.Text, "error: "):
				b.console = append(b.console, strings.TrimPrefix(a.Text, "error: "))
			}
			b.mu.Unlock()
		default:
			b.mu.Lock()
			ch := b.pending[a.ID]
			delete(b.pending, a.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- a
			}
		}
	}
	b.exitErr = b.cmd.Wait()
	close(b.exited)
}

func (b *Browser) close() {
	b.in.Close() // the driver closes the browser and exits at EOF
	select {
	case <-b.exited:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-b.exited
	}
}

// Do sends one command and returns its value. It is the primitive behind
// the Page methods; op and args are those of driver.cjs.
func (b *Browser) Do(op string, args map[string]any) (json.RawMessage, error) {
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan answer, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	line, err := json.Marshal(map[string]any{"id": id, "op": op, "args": args})
	if err != nil {
		return nil, err
	}
	if _, err := b.in.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("browser %s: %w", op, err)
	}
	select {
	case a := <-ch:
		if !a.OK {
			return nil, fmt.Errorf("browser %s: %s", op, a.Error)
		}
		return a.Value, nil
	case <-b.exited:
		return nil, fmt.Errorf("browser %s: driver exited: %v", op, b.exitErr)
	case <-time.After(DefaultTimeout):
		return nil, fmt.Errorf("browser %s: no answer within %v", op, DefaultTimeout)
	}
}

// PageErrors returns the uncaught exceptions the pages threw so far.
func (b *Browser) PageErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

// ConsoleErrors returns the messages the pages logged as console errors
// so far (failed loads, Content-Security-Policy refusals, console.error).
func (b *Browser) ConsoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...)
}

// Page is one browser tab.
type Page struct {
	b  *Browser
	id int
}

// NewPage opens a tab with a viewport of width × height CSS pixels.
func (b *Browser) NewPage(width, height int) *Page {
	b.t.Helper()
	v := b.must("newPage", map[string]any{"width": width, "height": height})
	var id int
	if err := json.Unmarshal(v, &id); err != nil {
		b.t.Fatalf("newPage: %v", err)
	}
	return &Page{b: b, id: id}
}

func (b *Browser) must(op string, args map[string]any) json.RawMessage {
	b.t.Helper()
	v, err := b.Do(op, args)
	if err != nil {
		b.t.Fatal(err)
	}
	return v
}

func (p *Page) do(op string, args map[string]any) json.RawMessage {
	p.b.t.Helper()
	if args == nil {
		args = map[string]any{}
	}
	args["page"] = p.id
	return p.b.must(op, args)
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// Goto loads url and waits for its load event.
func (p *Page) Goto(url string) { p.b.t.Helper(); p.do("goto", map[string]any{"url": url}) }

// Viewport resizes the tab.
func (p *Page) Viewport(width, height int) {
	p.b.t.Helper()
	p.do("viewport", map[string]any{"width": width, "height": height})
}

// Media emulates a CSS media feature: "forced-colors" ("active",
// "none"), "prefers-color-scheme" ("dark", "light") or
// "prefers-reduced-motion" ("reduce", "no-preference").
func (p *Page) Media(feature, value string) {
	p.b.t.Helper()
	key := map[string]string{"forced-colors": "forcedColors", "prefers-color-scheme": "colorScheme", "prefers-reduced-motion": "reducedMotion"}[feature]
	if key == "" {
		p.b.t.Fatalf("media: unknown feature %q", feature)
	}
	p.do("media", map[string]any{key: value})
}

// Click clicks the element selector names, waiting for it to be visible,
// stable and enabled.
func (p *Page) Click(selector string) {
	p.b.t.Helper()
	p.do("click", map[string]any{"selector": selector})
}

// Focus focuses the element selector names.
func (p *Page) Focus(selector string) {
	p.b.t.Helper()
	p.do("focus", map[string]any{"selector": selector})
}

// Press presses a key ("Tab", "Enter", "Escape", "Shift+Tab") on the
// focused element.
func (p *Page) Press(key string) { p.b.t.Helper(); p.do("press", map[string]any{"key": key}) }

// Select chooses the option with value in the <select> selector names.
func (p *Page) Select(selector, value string) {
	p.b.t.Helper()
	p.do("select", map[string]any{"selector": selector, "value": value})
}

// Count returns how many elements selector matches.
func (p *Page) Count(selector string) int {
	p.b.t.Helper()
	var n int
	json.Unmarshal(p.do("count", map[string]any{"selector": selector}), &n)
	return n
}

// Visible reports whether the first element selector matches is visible.
func (p *Page) Visible(selector string) bool {
	p.b.t.Helper()
	var v bool
	json.Unmarshal(p.do("visible", map[string]any{"selector": selector}), &v)
	return v
}

// Text returns the visible text of the first element selector matches.
func (p *Page) Text(selector string) string {
	p.b.t.Helper()
	var s string
	json.Unmarshal(p.do("text", map[string]any{"selector": selector}), &s)
	return s
}

// WaitText waits until the visible text of the first element selector
// matches the regular expression pattern (JavaScript syntax) and returns
// the text. It fails the test after timeout.
func (p *Page) WaitText(selector, pattern string, timeout time.Duration) string {
	p.b.t.Helper()
	var s string
	json.Unmarshal(p.do("waitText", map[string]any{"selector": selector, "pattern": pattern, "timeout": ms(timeout)}), &s)
	return s
}

// WaitHidden waits until the element selector names is hidden or gone.
func (p *Page) WaitHidden(selector string, timeout time.Duration) {
	p.b.t.Helper()
	p.do("waitHidden", map[string]any{"selector": selector, "timeout": ms(timeout)})
}

// Eval evaluates a JavaScript expression in the page (a function
// expression is called) and stores its JSON value in out (which may be
// nil).
func (p *Page) Eval(js string, out any) {
	p.b.t.Helper()
	v := p.do("eval", map[string]any{"js": js})
	if out != nil {
		if err := json.Unmarshal(v, out); err != nil {
			p.b.t.Fatalf("eval %q: %v (value %s)", js, err, v)
		}
	}
}

// Focused describes the focused element, inside shadow roots:
// "tag#id:text".
func (p *Page) Focused() string {
	p.b.t.Helper()
	var s string
	json.Unmarshal(p.do("focused", nil), &s)
	return s
}

// Screenshot writes a PNG of the whole page (or of the first element
// selector matches, when selector is not empty) to Dir/name.png and
// returns its path.
func (p *Page) Screenshot(name, selector string) string {
	p.b.t.Helper()
	path := filepath.Join(p.b.Dir, strings.TrimSuffix(name, ".png")+".png")
	args := map[string]any{"path": path}
	if selector != "" {
		args["selector"] = selector
	}
	p.do("screenshot", args)
	return path
}

// logWriter copies the driver's stderr into the test log.
type logWriter struct{ t testing.TB }

func (w *logWriter) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.t.Logf("browser stderr: %s", l)
	}
	return len(b), nil
}

// requireTB turns a skip into a failure (VOICEGATE_REQUIRE_BROWSER=1).
type requireTB struct{ testing.TB }

func (r requireTB) Skipf(format string, args ...any) {
	r.TB.Helper()
	r.TB.Fatalf("VOICEGATE_REQUIRE_BROWSER=1: "+format, args...)
}

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/internal/browsertest"
)

// TestDeskBrowser drives the agent desk in headless Chromium against the
// real agent server (offline engine behind the das-Peak emulator, flex
// Source, fake Twilio REST and the Media Streams simulator), as an agent
// on a 320 px wide panel would: register, verify by the same voice,
// re-verify by an impostor, delete, a spoofed voice, an engine without
// anti-spoofing and an unreachable engine. Screenshots go to
// $VOICEGATE_SCREENSHOTS (default: a temporary directory named in the
// log). It skips when chromium, node or playwright-core is absent.
func TestDeskBrowser(t *testing.T) {
	b := browsertest.Start(t)

	dir := t.TempDir()
	d, err := start(t.Context(), options{
		Fast: true, desk: true, deskSpeed: 4, Addr: "127.0.0.1:0",
		DB: filepath.Join(dir, "creds.db"), Shutdown: 5 * time.Second,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()

	calls := d.desk.state().Calls
	call := calls[1] // a caller with no credential
	if call.CallerID != "+14155550142" {
		t.Fatalf("desk call 2 is %s", call.CallerID)
	}
	card := fmt.Sprintf(`article[data-call="%s"]`, call.CallSID)
	w := card + " voicegate-agent"
	sel := func(id string) string { return w + " >> #" + id }
	// Call 1 runs its own operations at the same time, on another caller.
	w1 := fmt.Sprintf(`article[data-call="%s"] voicegate-agent`, calls[0].CallSID)
	sel1 := func(id string) string { return w1 + " >> #" + id }

	p := b.NewPage(320, 900)
	p.Goto(d.base + pathDesk)
	shot := func(name string) { p.Screenshot(name, card) }
	class := func() string {
		var c string
		p.Eval(fmt.Sprintf(`document.querySelector(%q).shadowRoot.getElementById('outcome').className`, w), &c)
		return c
	}
	expectOutcome := func(kind, title string) {
		t.Helper()
		p.WaitText(sel("otitle"), "^"+regexp.QuoteMeta(title)+"$", 60*time.Second)
		if c := class(); c != "outcome "+kind {
			t.Errorf("%s: outcome class %q, want %q", title, c, "outcome "+kind)
		}
	}
	seconds := regexp.MustCompile(`Voice collected: (\d+\.\d) s of (\d+\.\d) s`)
	collected := func(text string) (have, need float64) {
		m := seconds.FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("progress text %q", text)
		}
		have, _ = strconv.ParseFloat(m[1], 64)
		need, _ = strconv.ParseFloat(m[2], 64)
		return have, need
	}

	// 1. Register: progress rises, then a green tick.
	p.WaitText(sel("main"), "^Register User$", 15*time.Second)
	if got := p.Text(sel("caller")); got != "+14155550142" {
		t.Errorf("caller shown as %q", got)
	}
	shot("01-register")
	// Every progress text the widget shows is recorded, with what the
	// outcome row and the page's onResponse line showed at that moment:
	// checked afterwards, not at a time the operation may have ended.
	p.Eval(fmt.Sprintf(`(() => {
		const r = document.querySelector(%q).shadowRoot;
		const t = r.getElementById('ptext'), o = r.getElementById('outcome');
		const log = document.querySelector(%q);
		window.ptexts = [];
		window.pseen = [];
		new MutationObserver(() => {
			ptexts.push(t.textContent);
			pseen.push({text: t.textContent, outcome: o.checkVisibility() ? o.textContent : '', log: log.textContent});
		}).observe(t, {childList: true, characterData: true, subtree: true});
	})()`, w, card+" .log"), nil)
	type seenProgress struct{ Text, Outcome, Log string }
	// whileRunning returns what was shown next to a progress text of a
	// check under way (some voice collected, not all), since the last
	// reset.
	whileRunning := func() (outcomes, logs []string) {
		var seen []seenProgress
		p.Eval(`pseen`, &seen)
		for _, e := range seen {
			if m := seconds.FindStringSubmatch(e.Text); m != nil && m[1] != "0.0" && m[1] != m[2] {
				if e.Outcome != "" {
					outcomes = append(outcomes, e.Outcome)
				}
				if e.Log != "" {
					logs = append(logs, e.Log)
				}
			}
		}
		return outcomes, logs
	}
	p.Click(sel("main"))
	p.WaitText(sel1("main"), "^Register User$", 15*time.Second)
	p.Click(sel1("main"))
	p.WaitText(sel("ptext"), `Voice collected: [1-9]\.\d s of 10\.0 s`, 30*time.Second)
	shot("02-register-progress")
	expectOutcome("success", "Voice registered")
	if outcomes, _ := whileRunning(); len(outcomes) > 0 {
		t.Errorf("an outcome row is shown while registering: %q", outcomes)
	}
	var texts []string
	p.Eval(`ptexts`, &texts)
	var seen []float64
	for _, txt := range texts {
		if have, need := collected(txt); need != 10 {
			t.Errorf("progress %q: want 10 s needed", txt)
		} else if have > 0 && (len(seen) == 0 || have != seen[len(seen)-1]) {
			seen = append(seen, have)
		}
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] < seen[i-1] {
			t.Errorf("progress went back: %v", seen)
		}
	}
	t.Logf("register progress shown: %v s", seen)
	if len(seen) < 3 || seen[len(seen)-1] < 8 {
		t.Errorf("progress seen %v (from %q): want it to rise in steps towards 10 s", seen, texts)
	}
	p.WaitText(sel("main"), "^Authenticate User$", 5*time.Second)
	p.WaitText(card+" .log", `onResponse: result-success \(success\)`, 5*time.Second)
	shot("03-registered")
	if _, err := d.desk.store.Get(t.Context(), call.CallerID); err != nil {
		t.Errorf("credential after register: %v", err)
	}

	// 2. Authenticate by the same voice: a green tick, then Re-Authenticate.
	p.WaitText(sel1("otitle"), "^Voice registered$", 60*time.Second)
	p.Click(sel("main"))
	p.Click(sel1("main"))
	p.WaitText(sel("ptext"), `Voice collected`, 30*time.Second)
	expectOutcome("success", "Caller verified")
	p.WaitText(sel("main"), "^Re-Authenticate User$", 5*time.Second)
	shot("04-verified")
	p.WaitText(sel1("otitle"), "^Caller verified$", 60*time.Second)

	// 3. Re-Authenticate by an impostor: the authentication row, and the
	// earlier success is gone from the moment the new check starts.
	p.Select(card+" .voice", "kal")
	p.Eval(`pseen = []`, nil)
	p.Click(sel("main"))
	p.WaitText(sel("ptext"), `Voice collected`, 30*time.Second)
	expectOutcome("fail", "Not verified")
	outcomes, logs := whileRunning()
	if len(outcomes) > 0 {
		t.Errorf("the earlier result %q is still shown during re-authentication", outcomes)
	}
	if len(logs) > 0 {
		t.Errorf("the page's onResponse line still says %q during re-authentication", logs)
	}
	if txt := p.Text(sel("outcome")); regexp.MustCompile(`(?i)caller verified`).MatchString(txt) {
		t.Errorf("failed re-authentication shows %q", txt)
	}
	p.WaitText(sel("odetail"), `score 0\.\d\d \(needs 0\.50\)`, 5*time.Second)
	p.WaitText(card+" .log", `onResponse: result-fail-score \(authentication\)`, 5*time.Second)
	shot("05-impostor")
	// The desk at a laptop's width: a verified caller next to an impostor.
	p.Viewport(1100, 760)
	p.Screenshot("00-desk", "")
	p.Viewport(320, 900)

	// 4. Delete, by keyboard: the trash asks first; Escape keeps the
	// credential; confirming deletes it and offers Register User again.
	p.Focus(sel("trash"))
	p.Press("Enter")
	p.WaitText(sel("confirm-q"), `Delete the voice registration of \+14155550142\?`, 5*time.Second)
	if f := p.Focused(); !regexp.MustCompile(`^button#confirm-no:`).MatchString(f) {
		t.Errorf("focus on the confirmation is %q, want the Cancel button", f)
	}
	shot("06-confirm-delete")
	p.Press("Escape")
	p.WaitHidden(sel("confirm"), 5*time.Second)
	if f := p.Focused(); !regexp.MustCompile(`^button#trash:`).MatchString(f) {
		t.Errorf("focus after Escape is %q, want the trash button", f)
	}
	if _, err := d.desk.store.Get(t.Context(), call.CallerID); err != nil {
		t.Fatalf("Escape deleted the credential: %v", err)
	}
	p.Press("Enter")
	p.Click(sel("confirm-yes"))
	p.WaitText(sel("main"), "^Register User$", 10*time.Second)
	if p.Visible(sel("trash")) {
		t.Error("trash shown for a caller without credential")
	}
	if txt := p.Text(card + " .log"); txt != "" {
		t.Errorf("the page's onResponse line still says %q after the delete", txt)
	}
	if _, err := d.desk.store.Get(t.Context(), call.CallerID); !errors.Is(err, credstore.ErrNotFound) {
		t.Errorf("credential after delete: %v", err)
	}
	shot("07-deleted")

	// 5. The emulator tags the voice as pre-recorded: the spoof row.
	p.Select(card+" .voice", "rms")
	p.Select("#engine", "spoof")
	p.WaitText("#status", "Voice service: Tag every voice", 5*time.Second)
	// At 320 px the long option wraps inside the select, not cut off.
	var engine [3]float64
	p.Eval(`(() => { const e = document.getElementById('engine'), r = e.getBoundingClientRect(); return [r.right, e.scrollWidth - e.clientWidth, r.height]; })()`, &engine)
	if engine[0] > 320 || engine[1] > 0 || engine[2] < 50 {
		t.Errorf("the voice service select at 320 px: right edge %v, overflow %v, height %v (want two lines of text)", engine[0], engine[1], engine[2])
	}
	p.Screenshot("06-engine-320", "fieldset")
	// By keyboard: Tab goes from the desk's Hang up button into the
	// widget's shadow DOM, to its action.
	p.Focus(card + " .hangup")
	p.Press("Tab")
	if f := p.Focused(); f != "button#main:Register User" {
		t.Fatalf("Tab from Hang up reached %q, want the widget's Register User", f)
	}
	p.Press("Enter")
	expectOutcome("fail", "Pre-recorded voice")
	p.WaitText(sel("ocause"), "pre-recorded voice", time.Second)
	p.WaitText(sel("otodo"), "different voice", time.Second)
	shot("08-spoof")
	if _, err := d.desk.store.Get(t.Context(), call.CallerID); !errors.Is(err, credstore.ErrNotFound) {
		t.Errorf("credential after a spoofed register: %v", err)
	}

	// 6. The engine cannot be reached: the connection row.
	p.Select("#engine", "unreachable")
	p.WaitText("#status", "Voice service: Unreachable", 5*time.Second)
	p.WaitText(sel("main"), "^Register User$", 5*time.Second)
	p.Click(sel("main"))
	expectOutcome("error", "Cannot reach the voice service")
	p.WaitText(card+" .log", `onResponse: error-das-Peak \(connection\)`, 5*time.Second)
	shot("09-unreachable")

	// 7. The engine did no anti-spoofing: the result says so, never
	// "passed".
	p.Select("#engine", "normal")
	p.WaitText("#status", "Voice service: Offline engine", 5*time.Second)
	p.Click(sel("main"))
	txt := p.WaitText(w+" >> section.card", "Anti-spoofing not performed", 60*time.Second)
	for _, bad := range []string{"authenticity", "Pre-recorded voice"} {
		if regexp.MustCompile(bad).MatchString(txt) {
			t.Errorf("an engine without anti-spoofing: the widget shows %q:\n%s", bad, txt)
		}
	}
	shot("10-no-antispoofing")

	// 8. Place a call from the desk, start a register, then hang up: the
	// call's audio ends, and so does the register, without storing the
	// voice; the widget turns off and says the call ended.
	p.Eval(`document.getElementById('newcaller').value = '+1 (415) 555-0199'`, nil)
	p.Click("#newcall button[type=submit]")
	placed := `article[aria-label="Call from +14155550199"]`
	p.WaitText(placed+" voicegate-agent >> #main", "^Register User$", 10*time.Second)
	p.Click(placed + " voicegate-agent >> #main")
	p.WaitText(placed+" voicegate-agent >> #ptext", `Voice collected: [1-9]\.\d s of 10\.0 s`, 30*time.Second)
	p.Click(placed + " .hangup")
	p.WaitText(placed+" voicegate-agent >> #otitle", "^Call ended$", 10*time.Second)
	p.WaitText(placed+" voicegate-agent >> #state", "^Call ended: voice checks are off$", 5*time.Second)
	p.WaitText(placed+" .log", `onResponse: error-audio \(speech\)`, 5*time.Second)
	p.Screenshot("12-hung-up-mid-register", placed)
	if _, err := d.desk.store.Get(t.Context(), "+14155550199"); !errors.Is(err, credstore.ErrNotFound) {
		t.Errorf("credential of a caller who hung up mid-register: %v", err)
	}
	var off bool
	p.Eval(fmt.Sprintf(`document.querySelector('%s voicegate-agent').shadowRoot.getElementById('main').disabled`, placed), &off)
	if !off {
		t.Error("the widget of a hung-up call can still start a check")
	}

	// 9. 320 px: nothing scrolls sideways.
	var widths [3]int
	p.Eval(fmt.Sprintf(`[document.documentElement.scrollWidth, document.documentElement.clientWidth, document.querySelector(%q).getBoundingClientRect().right|0]`, w), &widths)
	if widths[0] > widths[1] || widths[2] > 320 {
		t.Errorf("at 320 px: scrollWidth %d, clientWidth %d, widget right edge %d", widths[0], widths[1], widths[2])
	}
	p.Screenshot("11-desk-320", "")

	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
	if errs := b.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

// TestWidgetCrossOrigin embeds the widget in a page of another origin, as
// Twilio Flex does (the page on flex.twilio.com, the API on the
// integrator's server): the script comes from the agent server, the
// widget finds the API next to it, and the API calls (with their CORS
// preflight) and the event stream work across origins against the real
// agent server.
func TestWidgetCrossOrigin(t *testing.T) {
	b := browsertest.Start(t)

	var deskBase, token, callSID string
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><meta charset="utf-8"><title>CRM panel</title><link rel="icon" href="data:,">
<script src="%s/agent/voicegate-agent.js"></script>
<voicegate-agent security-token="%s" call-sid="%s" caller-id="+14155550142" call-in-progress="true"></voicegate-agent>`,
			deskBase, token, callSID)
	}))
	defer page.Close()

	d, err := start(t.Context(), options{
		Fast: true, desk: true, deskSpeed: 4, deskOrigins: []string{page.URL}, Addr: "127.0.0.1:0",
		DB: filepath.Join(t.TempDir(), "creds.db"), Shutdown: 5 * time.Second,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	st := d.desk.state()
	deskBase, token, callSID = d.base, st.Token, st.Calls[1].CallSID
	if strings.Split(deskBase, ":")[2] == strings.Split(page.URL, ":")[2] {
		t.Fatal("page and API on the same origin")
	}

	p := b.NewPage(320, 700)
	p.Goto(page.URL)
	p.WaitText("voicegate-agent >> #main", "^Register User$", 15*time.Second)
	p.Click("voicegate-agent >> #main")
	p.WaitText("voicegate-agent >> #ptext", `Voice collected: [1-9]\.\d s of 10\.0 s`, 30*time.Second)
	p.WaitText("voicegate-agent >> #otitle", "^Voice registered$", 60*time.Second)
	p.Screenshot("cross-origin", "voicegate-agent")
	if errs := b.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak/agent/flex"
	"github.com/voicegate/voicegate/internal/browsertest"
)

// TestFakeHangUpBrowser: the caller hangs up on the fake Flex page (the
// fake ends the call and moves the agent's reservation to wrapping).
// Once the server no longer remembers the agent's access
// (flex.DefaultAssignmentCacheTTL), the widget learns of the end from the
// voice service, when the page gets the focus or when the agent presses
// Register: it says the call ended, never that the agent is not assigned,
// and its buttons stay off. The server starts nothing on the call.
func TestFakeHangUpBrowser(t *testing.T) {
	b := browsertest.Start(t)
	s := start(t, "-fake-twilio", "-offline", "-voices-dir", voicesDir(t), "-fake-voice", "slt")
	sel := func(id string) string { return "voicegate-agent >> #" + id }
	disabled := func(p *browsertest.Page, id string) bool {
		var d bool
		p.Eval(`document.querySelector('voicegate-agent').shadowRoot.getElementById('`+id+`').disabled`, &d)
		return d
	}
	callOf := func(p *browsertest.Page) (token, call string) {
		p.Eval(`document.querySelector('voicegate-agent').getAttribute('security-token')`, &token)
		p.Eval(`document.querySelector('voicegate-agent').getAttribute('call-sid')`, &call)
		return token, call
	}
	ended := func(p *browsertest.Page, how string) {
		t.Helper()
		p.WaitText(sel("otitle"), "^Call ended$", 5*time.Second)
		p.WaitText(sel("state"), "^Call ended: voice checks are off$", time.Second)
		p.WaitText(sel("main"), "^Call ended$", time.Second)
		if !disabled(p, "main") {
			t.Errorf("%s: the main button is enabled after the call ended", how)
		}
		if p.Visible(sel("trash")) && !disabled(p, "trash") {
			t.Errorf("%s: the delete button is enabled after the call ended", how)
		}
		var text string
		p.Eval(`document.querySelector('voicegate-agent').shadowRoot.textContent`, &text)
		if strings.Contains(strings.ToLower(text), "not assigned") {
			t.Errorf("%s: the widget says the agent is not assigned: %q", how, text)
		}
	}
	pastCache := func() { time.Sleep(flex.DefaultAssignmentCacheTTL + 500*time.Millisecond) }

	// The page gets the focus after the hang-up.
	p := b.NewPage(360, 900)
	p.Goto(s.base + "/")
	p.WaitText(sel("main"), "^Register User$", 10*time.Second)
	token, call := callOf(p)
	p.Click("#hangup")
	p.WaitText("#callstate", "^Call ended: the caller hung up\\.$", 5*time.Second)
	pastCache()
	p.Eval(`window.dispatchEvent(new Event('focus'))`, nil)
	ended(p, "on focus")
	p.Screenshot("flex-hangup-focus", "")
	// Fail closed: nothing starts on the call, and every call-scoped
	// request says the call ended.
	for _, path := range []string{"/agent/status", "/agent/register", "/agent/verify", "/agent/delete"} {
		if code, m := s.post(token, path, map[string]any{"call_id": call}); code != 409 || m["code"] != "no_call" {
			t.Errorf("%s after the hang-up: %d %v, want 409 no_call", path, code, m)
		}
	}

	// The agent presses Register before the widget learnt of the end.
	p2 := b.NewPage(360, 900)
	p2.Goto(s.base + "/")
	p2.WaitText(sel("main"), "^Register User$", 10*time.Second)
	p2.Click("#hangup")
	p2.WaitText("#callstate", "^Call ended: the caller hung up\\.$", 5*time.Second)
	pastCache()
	p2.Click(sel("main"))
	ended(p2, "on Register")
	p2.Screenshot("flex-hangup-register", "")
	if strings.Contains(s.logs.String(), `msg="agent: operation started"`) {
		t.Errorf("an operation started on a call that ended:\n%s", s.logs)
	}
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

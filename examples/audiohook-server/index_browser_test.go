package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/browsertest"
)

// TestFakeIndexBrowser: the fake's conversation list fits 320 px and
// updates itself in place, without moving keyboard focus off the link
// that has it.
func TestFakeIndexBrowser(t *testing.T) {
	b := browsertest.Start(t)
	c := &conversations{}
	const first, second = "3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
	c.add(first, "tel:+34600000077")
	srv := httptest.NewServer(http.HandlerFunc(c.index))
	defer srv.Close()
	p := b.NewPage(320, 640)
	p.Goto(srv.URL + "/")
	p.WaitText("#conversations", first, 5*time.Second)
	var width int
	p.Eval(`document.documentElement.scrollWidth`, &width)
	if width > 320 {
		t.Errorf("the page is %d px wide at 320 px: cut off", width)
	}
	p.Screenshot("genesys-index-320", "")
	p.Focus("#conversations a")
	c.add(second, "tel:+34600000078")
	p.WaitText("#conversations", second, 15*time.Second)
	var focused string
	p.Eval(`document.activeElement ? document.activeElement.textContent : ''`, &focused)
	if focused != first {
		t.Errorf("after the list updated, focus is on %q, want the link to %s", focused, first)
	}
	// The focused conversation ends: focus moves to the link in its
	// place, and the status region says it ended.
	p.Focus("#conversations tbody tr:first-child a")
	focusedNow := func() string {
		var f string
		p.Eval(`document.activeElement ? (document.activeElement.id || document.activeElement.tagName) + ':' + document.activeElement.textContent.trim().slice(0, 40) : ''`, &f)
		return f
	}
	if f := focusedNow(); !strings.HasSuffix(f, second) {
		t.Fatalf("focus on %q, want the link to %s (the newest)", f, second)
	}
	c.remove(second)
	p.WaitText("#said", "^Conversation "+second+` ended\.$`, 15*time.Second)
	if f := focusedNow(); f != "A:"+first {
		t.Errorf("after the focused conversation left, focus is on %q, want the link to %s", f, first)
	}
	// The last one ends: focus stays on the list.
	c.remove(first)
	p.WaitText("#list", "No live conversation yet", 15*time.Second)
	if f := focusedNow(); !strings.HasPrefix(f, "list:") {
		t.Errorf("after the last conversation left, focus is on %q, want the list", f)
	}
	p.Screenshot("genesys-index-320-empty", "")
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
	if errs := b.ConsoleErrors(); len(errs) > 0 && strings.Contains(strings.Join(errs, " "), "Content Security Policy") {
		t.Errorf("console errors: %q", errs)
	}
}

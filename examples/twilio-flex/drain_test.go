package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDrainKeepsServing: once the server is told to stop (SIGTERM ends
// run's context) its listener keeps serving while the drain runs:
// /readyz answers 503, a new operation 503 with Retry-After and the
// API's JSON error, and the event stream of an operation started before
// is (re)opened and delivers its result; then run returns nil.
func TestDrainKeepsServing(t *testing.T) {
	logs := &syncBuffer{}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-listen", "127.0.0.1:0", "-fake-twilio", "-offline", "-voices-dir", voicesDir(t), "-fake-voice", "slt", "-audio-total-duration", "3s", "-drain-timeout", "20s"}, logs, func(a net.Addr) { addr <- a })
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a.String()
	case err := <-errc:
		t.Fatalf("run: %v\n%s", err, logs)
	}
	resp, err := hc.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`<voicegate-agent security-token="([^"]+)" call-sid="(CA[0-9a-f]{32})" caller-id="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("page %s", page)
	}
	token, call, caller := string(m[1]), string(m[2]), strings.ReplaceAll(string(m[3]), "&#43;", "+")
	post := func(path string) (*http.Response, map[string]any) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"call_id": call, "caller_id": caller})
		req, _ := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp, m
	}
	// A register that plays the fake call in real time: it runs through
	// the drain.
	resp, op := post("/agent/register")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("register: %d %v", resp.StatusCode, op)
	}
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := hc.Get(base + "/readyz")
		if err != nil {
			t.Fatalf("/readyz right after the stop: %v", err)
		}
		r.Body.Close()
		if r.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz while draining: %d", r.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if resp, m := post("/agent/register"); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || m["code"] == nil {
		t.Errorf("new operation while draining: %d Retry-After %q %v", resp.StatusCode, resp.Header.Get("Retry-After"), m)
	}
	// The event stream of the running operation, opened after the stop
	// (as a widget reconnecting would), delivers its result.
	r, err := hc.Get(base + op["events_url"].(string))
	if err != nil {
		t.Fatalf("event stream while draining: %v", err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK || !strings.Contains(string(body), "result-success") {
		t.Fatalf("event stream while draining: %d %s", r.StatusCode, body)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after the drain")
	}
}

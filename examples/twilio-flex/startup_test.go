package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/twilio/twiliotest"
)

// TestStartupMessages: what a failed start-up says, and only that.
func TestStartupMessages(t *testing.T) {
	for _, k := range []string{"TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY", "TWILIO_API_SECRET", "TWILIO_WORKSPACE_SID"} {
		t.Setenv(k, "")
	}
	// -fake-twilio beyond loopback: said plainly, without the library's
	// advice for real deployments.
	var logs syncBuffer
	err := run(context.Background(), []string{"-offline", "-fake-twilio", "-listen", "0.0.0.0:0"}, &logs, func(net.Addr) { t.Error("the server started") })
	if err == nil || !strings.Contains(err.Error(), "-fake-twilio listens on loopback only") || strings.Contains(err.Error(), "authenticator") {
		t.Errorf("-fake-twilio -listen 0.0.0.0:0: %v", err)
	}

	// A workspace TaskRouter does not know: the error, no "draining" of a
	// server that never served.
	fake := twiliotest.NewServer(nil)
	defer fake.Close()
	t.Setenv("TWILIO_ACCOUNT_SID", fake.AccountSID())
	t.Setenv("TWILIO_AUTH_TOKEN", fake.AuthToken())
	logs = syncBuffer{}
	err = run(context.Background(), []string{"-offline", "-listen", "127.0.0.1:0", "-twilio-base-url", fake.URL, "-workspace", "WS000000000000000000000000000000ff"}, &logs, func(net.Addr) { t.Error("the server started") })
	if err == nil || !strings.Contains(err.Error(), "TaskRouter does not know this workspace") {
		t.Errorf("unknown workspace: %v", err)
	}
	if strings.Contains(logs.String(), "draining") {
		t.Errorf("a start-up that failed logs draining:\n%s", logs.String())
	}
}

// TestFakeTwilioWorkspace: with -fake-twilio, a -workspace given is the
// fake's workspace, not a start-up error.
func TestFakeTwilioWorkspace(t *testing.T) {
	const ws = "WS0123456789abcdef0123456789abcdef"
	s := start(t, "-fake-twilio", "-fake-fast", "-offline", "-voices-dir", voicesDir(t), "-workspace", ws)
	resp, err := s.hc.Get(s.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("fake page: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.logs.String(), ws) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(s.logs.String(), "agents act only on the calls of their accepted TaskRouter tasks") || !strings.Contains(s.logs.String(), ws) {
		t.Errorf("-fake-twilio -workspace %s: the workspace is not the fake's:\n%s", ws, s.logs)
	}
}

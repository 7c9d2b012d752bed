package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/fixtures"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

// TestSIGTERMBinary runs the ivr command, sends it SIGTERM while a stream
// session created just before waits for its stream, and checks what a
// draining node answers on its real listener: /readyz 503 "draining", a
// new session 503 with Retry-After, the waiting session's stream taken
// and scored, its result readable; then the process exits 0.
func TestSIGTERMBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the ivr command; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to build the ivr command")
	}
	bin := filepath.Join(t.TempDir(), "ivr")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-offline", "-public-url", publicURL, "-drain-timeout", "20s", "-queue-frames", "2000")
	cmd.Env = append(os.Environ(), envAPIKey+"="+apiKey, "TWILIO_AUTH_TOKEN="+authToken, "CREDSTORE=memory", "IVR_BASIC_USER=", "IVR_BASIC_PASSWORD=", "NATS_URL=", "LISTEN=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	logs := make(chan string, 1000)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`msg=listening addr=(\S+)`)
		for sc.Scan() {
			line := sc.Text()
			if m := re.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
			select {
			case logs <- line:
			default:
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			close(logs)
			for l := range logs {
				t.Log(l)
			}
		}
	})
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-time.After(60 * time.Second):
		t.Fatal("the server did not listen")
	}
	do := func(method, path string, body []byte) (int, http.Header, doc) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(string(body)))
		req.Header.Set("X-API-Key", apiKey)
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		var d doc
		json.NewDecoder(resp.Body).Decode(&d)
		return resp.StatusCode, resp.Header, d
	}
	const caller = "+34600000950"
	if code, _, d := do(http.MethodPost, "/register?caller="+url.QueryEscape(caller), wav(t, fixtures.Utterances("rms")[0])); code != http.StatusOK || d.Status != statusSuccess {
		t.Fatalf("register: %d %+v", code, d)
	}
	call := twiliotest.SID("CA")
	code, _, sess := do(http.MethodPost, "/verify?caller="+url.QueryEscape(caller)+"&call="+call, nil)
	if code != http.StatusAccepted {
		t.Fatalf("create: %d %+v", code, sess)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The drain starts at once; the listener keeps serving.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatalf("/readyz right after SIGTERM: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(b), "draining") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after SIGTERM: %d %q", resp.StatusCode, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, h, d := do(http.MethodPost, "/register?caller=%2B34600000951&call="+twiliotest.SID("CA"), nil); code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Errorf("new session while draining: %d Retry-After %q %+v", code, h.Get("Retry-After"), d)
	}
	if code, _, d := do(http.MethodGet, "/verify/"+sess.ID, nil); code != http.StatusOK || d.Status != statusWaiting {
		t.Errorf("poll of the waiting session while draining: %d %+v", code, d)
	}
	// The session's stream, arriving after the SIGTERM, is taken.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := twiliotest.PlayWAV(ctx, "ws"+strings.TrimPrefix(base, "http")+mediaPath, wav(t, fixtures.Utterances("rms")[2]), &twiliotest.Options{
		AuthToken: authToken, PublicURL: "wss://ivr.example.com" + mediaPath,
		CallSID: call, CustomParameters: sess.Parameters, Pace: twiliotest.AsFastAsPossible,
	}); err != nil {
		t.Fatalf("stream of the waiting session while draining: %v", err)
	}
	var got doc
	for {
		code, _, d := do(http.MethodGet, "/verify/"+sess.ID, nil)
		if code != http.StatusOK {
			t.Fatalf("poll while draining: %d %+v", code, d)
		}
		if d.Status != statusWaiting && d.Status != statusProcessing {
			got = d
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got.Status != statusSuccess {
		t.Errorf("the session streamed during the drain ended %+v %s", got, got.Event)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after the drain: %v", err)
		}
		exited <- nil
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not exit after the drain")
	}
}

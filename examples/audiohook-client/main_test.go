package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/audiohook/audiohooktest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// The audiohook-server example is built once per test run.
var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
	buildSkip string
)

func buildServer() {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		if _, err := os.Stat(goBin); os.Getenv("GOROOT") == "" || err != nil {
			buildSkip = "the go command (in PATH or $GOROOT/bin) is needed to build the audiohook-server example"
			return
		}
	}
	if buildDir, buildErr = os.MkdirTemp("", "audiohook-client-test-"); buildErr != nil {
		return
	}
	buildBin = filepath.Join(buildDir, "audiohook-server")
	args := []string{"build", "-o", buildBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command(goBin, append(args, "./examples/audiohook-server")...)
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		buildErr = fmt.Errorf("go build: %v\n%s", err, out)
	}
}

const (
	apiKey    = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh"
	secretB64 = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="
)

// startServer builds and starts the audiohook-server example on a free
// loopback port with the offline engine, and returns its WebSocket URL.
// The server is stopped with SIGTERM at cleanup, and must exit cleanly.
func startServer(t *testing.T) string {
	t.Helper()
	return startServerWith(t, []string{"-buffer", "30s", "-progress=false"}, `STATIC_API_KEY_MAP={"`+apiKey+`":"`+secretB64+`"}`)
}

// startServerWith starts the server with the offline engine on a free
// loopback port, args and the environment entries env.
func startServerWith(t *testing.T, args []string, env ...string) string {
	t.Helper()
	url, _ := startServerLogs(t, args, env...)
	return url
}

// lockedLog is the server's log, written by one goroutine and read by the
// test.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) write(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServerLogs is startServerWith that also returns the server's log.
func startServerLogs(t *testing.T, args []string, env ...string) (string, *lockedLog) {
	t.Helper()
	buildOnce.Do(buildServer)
	if buildSkip != "" {
		t.Skip(buildSkip)
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	bin := buildBin
	cmd := exec.Command(bin, append([]string{"-listen", "127.0.0.1:0", "-offline"}, args...)...)
	cmd.Env = append(os.Environ(), append([]string{"STATIC_API_KEY_MAP=", "CREDSTORE=memory"}, env...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	logDone := make(chan struct{})
	logs := &lockedLog{}
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.write(sc.Text() + "\n")
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		// Wait closes the pipe: read the log to its end first, or its
		// last lines may be lost.
		<-logDone
		err := cmd.Wait()
		if err != nil {
			t.Errorf("server exit: %v\n%s", err, logs.String())
		}
		if !strings.Contains(logs.String(), "shutting down") {
			t.Errorf("no graceful shutdown:\n%s", logs.String())
		}
		if strings.Contains(logs.String(), secretB64) {
			t.Error("the server logged the client secret")
		}
	})
	addr := regexp.MustCompile(`msg=listening addr=(127\.0\.0\.1:\d+)`)
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l := <-lines:
			if m := addr.FindStringSubmatch(l); m != nil {
				return "ws://" + m[1] + "/api/v1/audiohook/ws", logs
			}
		case <-timeout:
			t.Fatal("the server did not start")
		}
	}
}

func runClient(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := run(ctx, args, &out, &errOut)
	return out.String(), err
}

// TestAgainstServerExample registers a caller through the audiohook-server
// example, verifies them, probes the server and checks that a wrong secret
// is refused.
func TestAgainstServerExample(t *testing.T) {
	url := startServer(t)
	t.Setenv("AUDIOHOOK_API_KEY", apiKey)
	t.Setenv("AUDIOHOOK_CLIENT_SECRET", secretB64)
	const ani = "tel:+34600000030"

	out, err := runClient(t, "-url", url, "-wav", testdata(utterance("awb", 0)), "-ani", ani, "-fast",
		"-custom-config", `{"operation":"register"}`)
	if err != nil {
		t.Fatalf("register: %v\n%s", err, out)
	}
	for _, want := range []string{
		"opened session=", "media=PCMU channels=[external] rate=8000",
		`event voicegate.result {"type":"result-success","operation":"register"`,
		`disconnect reason=completed info="result-success"`, "ping rtt=", "closed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("register output lacks %q:\n%s", want, out)
		}
	}

	out, err = runClient(t, "-url", url, "-wav", testdata(utterance("awb", 2)), "-ani", ani, "-fast",
		"-custom-config", `{"operation":"verify"}`, "-conversation-id", "1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7081")
	if err != nil || !strings.Contains(out, `event voicegate.result {"type":"result-success","operation":"verify"`) ||
		!strings.Contains(out, " conversation=1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7081 ") {
		t.Fatalf("verify: %v\n%s", err, out)
	}

	out, err = runClient(t, "-url", url, "-probe")
	if err != nil || !strings.Contains(out, "opened session=") || !strings.Contains(out, "ping rtt=") || !strings.Contains(out, "closed") {
		t.Fatalf("probe: %v\n%s", err, out)
	}

	t.Setenv("AUDIOHOOK_CLIENT_SECRET", "d3Jvbmc=")
	// The server answers as the Genesys reference server: disconnect.
	if _, err := runClient(t, "-url", url, "-tone", "1s", "-fast"); err == nil || !strings.Contains(err.Error(), "disconnected: unauthorized") {
		t.Fatalf("wrong secret: %v", err)
	}
}

// TestFastDoesNotOverrun: -fast against a server with its default queue
// (2 s) loses no audio: a register of a long call succeeds and the server
// logs no dropped frame. Sent unpaced, 15 s of audio would land at once
// and all but the last 2 s be dropped.
func TestFastDoesNotOverrun(t *testing.T) {
	url, logs := startServerLogs(t, []string{"-progress=false"}, `STATIC_API_KEY_MAP={"`+apiKey+`":"`+secretB64+`"}`)
	t.Setenv("AUDIOHOOK_API_KEY", apiKey)
	t.Setenv("AUDIOHOOK_CLIENT_SECRET", secretB64)
	start := time.Now()
	out, err := runClient(t, "-url", url, "-wav", testdata(utterance("awb", 0)), "-loop", "15s", "-fast",
		"-ani", "tel:+34600000031", "-custom-config", `{"operation":"register"}`)
	if err != nil || !strings.Contains(out, `event voicegate.result {"type":"result-success","operation":"register"`) {
		t.Fatalf("register: %v\n%s\nserver:\n%s", err, out, logs)
	}
	// Bounded below only (the time a paced send must take): never flaky.
	if el := time.Since(start); el < time.Second {
		t.Errorf("register took %v: more than %g times real time", el, fastSpeed)
	}
	for deadline := time.Now().Add(5 * time.Second); strings.Count(logs.String(), "frames_dropped=") < 1 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "frames_dropped=0 ") || strings.Contains(logs.String(), "session audio dropped") {
		t.Fatalf("server log:\n%s", logs)
	}
}

// TestPacer: frames are released at speed times real time, by the audio
// before them, and a late reader gets no burst beyond maxLag.
func TestPacer(t *testing.T) {
	frame := voicegate.Frame{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1, Payload: make([]byte, 160)} // 20 ms
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var slept []time.Duration
	src := &frames{n: 6, f: frame}
	p := &pacer{src: src, speed: 4, now: func() time.Time { return now },
		sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); now = now.Add(d); return nil }}
	ctx := context.Background()
	for range 3 {
		if _, err := p.ReadFrame(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// 0, 5, 10 ms: 20 ms frames at 4x.
	if want := []time.Duration{5 * time.Millisecond, 5 * time.Millisecond}; !slices.Equal(slept, want) {
		t.Fatalf("slept %v, want %v", slept, want)
	}
	// The reader took 2 ms (due at 15 ms, asked at 12 ms): 3 ms more.
	now = now.Add(2 * time.Millisecond)
	p.ReadFrame(ctx)
	// Then 1 s late: a new schedule, no sleep, no burst.
	now = now.Add(time.Second)
	p.ReadFrame(ctx)
	p.ReadFrame(ctx)
	if want := []time.Duration{5 * time.Millisecond, 5 * time.Millisecond, 3 * time.Millisecond, 5 * time.Millisecond}; !slices.Equal(slept, want) {
		t.Fatalf("slept %v, want %v", slept, want)
	}
	if _, err := p.ReadFrame(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last frame: %v", err)
	}
	// A cancelled wait ends the read.
	p = newPacer(&frames{n: 3, f: frame}, 1)
	p.ReadFrame(ctx)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.ReadFrame(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// frames returns f n times.
type frames struct {
	n int
	f voicegate.Frame
}

func (r *frames) ReadFrame(context.Context) (voicegate.Frame, error) {
	if r.n == 0 {
		return voicegate.Frame{}, io.EOF
	}
	r.n--
	return r.f, nil
}

// TestToneWithoutResult streams a tone too short for a result: the client
// gives up waiting, closes the session cleanly, and exits non-zero, since
// the call got no answer.
func TestToneWithoutResult(t *testing.T) {
	url := startServer(t)
	t.Setenv("AUDIOHOOK_API_KEY", apiKey)
	t.Setenv("AUDIOHOOK_CLIENT_SECRET", secretB64)
	out, err := runClient(t, "-url", url, "-tone", "400ms", "-chunk", "20ms", "-wait", "200ms", "-ping", "50ms",
		"-custom-config", `{"operation":"register"}`)
	if !errors.Is(err, errNoResult) || !strings.Contains(err.Error(), "no result: the server sent no event and no disconnect") {
		t.Fatalf("tone: %v, want the no-result error\n%s", err, out)
	}
	if !strings.Contains(out, "no disconnect within 200ms; closing") || !strings.Contains(out, "closed") ||
		strings.Contains(out, "voicegate.result") || strings.Count(out, "ping rtt=") < 2 {
		t.Fatalf("tone output:\n%s", out)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{},                               // no audio
		{"-wav", "x.wav", "-tone", "1s"}, // both
		{"-tone", "1s", "-custom-config", "[1]"},
		{"-nope"},
		{"-tone", "1s", "-conversation-id", "not-a-uuid"},
		{"-tone", "1s", "-conversation-id", "00000000-0000-0000-0000-000000000000"},
		{"-probe", "-conversation-id", "1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7081"},
		{"-tone", "1s", "-loop", "-1s"},
		{"-probe", "-loop", "1s"},
		{"-tone", "1s", "-speed", "0.5"},
		{"-tone", "1s", "-fast", "-speed", "17"},
		{"-tone", "1s", "-speed", "NaN"},
		{"-tone", "1s", "-speed", "-4"},
		{"-tone", "1s", "-chunk", "7ms"},
		{"-tone", "1s", "-chunk", "1s"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	for _, c := range []struct {
		args []string
		want time.Duration
	}{
		{[]string{"-tone", "1s"}, 5 * time.Minute},
		{[]string{"-tone", "1s", "-loop", "10m"}, 11 * time.Minute},
		{[]string{"-tone", "1s", "-loop", "1m"}, 5 * time.Minute},
		{[]string{"-tone", "1s", "-loop", "10m", "-timeout", "2m"}, 2 * time.Minute},
	} {
		if cfg, err := parseFlags(c.args, io.Discard); err != nil {
			t.Errorf("%v: %v", c.args, err)
		} else if cfg.Timeout != c.want {
			t.Errorf("%v: timeout %s, want %s", c.args, cfg.Timeout, c.want)
		}
	}
	for _, c := range []struct {
		args []string
		want float64
	}{
		{[]string{"-tone", "1s"}, 1},
		{[]string{"-tone", "1s", "-fast"}, fastSpeed},
		{[]string{"-tone", "1s", "-fast", "-speed", "8"}, 8},
		{[]string{"-tone", "1s", "-speed", "16"}, 16},
		{[]string{"-tone", "1s", "-speed", "1"}, 1},
	} {
		if cfg, err := parseFlags(c.args, io.Discard); err != nil || cfg.Speed != c.want {
			t.Errorf("%v: speed %v %v, want %v", c.args, cfg, err, c.want)
		}
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	if _, err := runClient(t, "-tone", "1s", "-secret", "not base64!"); err == nil {
		t.Error("bad secret accepted")
	}
}

// testdata returns the path of a file in the repository's testdata folder
// ("voices/slt_1.wav").
func testdata(name string) string {
	return filepath.Join("..", "..", "testdata", filepath.FromSlash(name))
}

// utterance returns the i-th (from 0) recording of a test voice.
func utterance(voice string, i int) string {
	return "voices/" + voice + "_" + strconv.Itoa(i+1) + ".wav"
}

// TestAgainstFakeGenesys: a -agent -fake-genesys server accepts the local
// key pair its README gives, and -loop keeps the call talking for the
// whole -loop duration, in real time.
func TestAgainstFakeGenesys(t *testing.T) {
	url := startServerWith(t, []string{"-agent", "-fake-genesys"})
	t.Setenv("AUDIOHOOK_API_KEY", "local-trial")
	t.Setenv("AUDIOHOOK_CLIENT_SECRET", "bG9jYWwtdHJpYWwtY2xpZW50LXNlY3JldA==")
	start := time.Now()
	out, err := runClient(t, "-url", url, "-tone", "400ms", "-loop", "1s", "-wait", "100ms", "-ping", "0",
		"-conversation-id", "1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7081")
	if err != nil {
		t.Fatalf("client: %v\n%s", err, out)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Errorf("1 s of looped audio sent in %s: not in real time", el)
	}
	if !regexp.MustCompile(`(?m)^audio sent position=1(\.[0-9]+)?s$`).MatchString(out) {
		t.Errorf("not 1 s of looped audio sent:\n%s", out)
	}
	for _, want := range []string{"opened session=", " conversation=1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7081 ", "closed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Ctrl-C (ctx ending) during -loop ends the audio and closes the
	// session cleanly.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var sb strings.Builder
	if err := run(ctx, []string{"-url", url, "-tone", "1s", "-loop", "1h", "-ping", "0"}, &sb, io.Discard); err != nil {
		t.Fatalf("interrupted loop: %v\n%s", err, sb.String())
	}
	if out := sb.String(); !strings.Contains(out, "audio stopped") || !strings.HasSuffix(out, "closed\n") {
		t.Errorf("interrupted loop output:\n%s", out)
	}
	t.Setenv("AUDIOHOOK_CLIENT_SECRET", "d3Jvbmc=")
	if _, err := runClient(t, "-url", url, "-tone", "1s", "-fast"); err == nil || !strings.Contains(err.Error(), "disconnected: unauthorized") {
		t.Fatalf("wrong secret: %v", err)
	}
}

// TestLoopReader: passes are joined as one stream (Seq from 1 without
// gaps, timestamps continuous), reading stops at the frame that crosses
// the limit, and a source without audio ends instead of looping forever.
func TestLoopReader(t *testing.T) {
	wav := func() (voicegate.FrameReader, error) { return audiohooktest.WAVSource(testdata(utterance("awb", 0))) }
	tone := func() (voicegate.FrameReader, error) { return audiohooktest.ToneSource(70*time.Millisecond, 440), nil }
	for _, c := range []struct {
		name      string
		open      func() (voicegate.FrameReader, error)
		limit     time.Duration
		minPasses int
	}{
		{"wav over two passes", wav, 10 * time.Second, 2},
		{"short tone", tone, time.Second, 14},
	} {
		t.Run(c.name, func(t *testing.T) {
			first, err := c.open()
			if err != nil {
				t.Fatal(err)
			}
			opens := 1
			l := &loopReader{open: func() (voicegate.FrameReader, error) { opens++; return c.open() }, cur: first, limit: c.limit}
			var total, last time.Duration
			var n uint64
			for {
				f, err := l.ReadFrame(t.Context())
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				n++
				if f.Seq != n || f.Timestamp != total {
					t.Fatalf("frame %d: seq %d timestamp %s, want %d %s", n, f.Seq, f.Timestamp, n, total)
				}
				last = f.Duration()
				total += last
			}
			if total < c.limit || total-last >= c.limit {
				t.Errorf("read %s (last frame %s), limit %s", total, last, c.limit)
			}
			if opens < c.minPasses {
				t.Errorf("%d passes, want ≥ %d", opens, c.minPasses)
			}
			if _, err := l.ReadFrame(t.Context()); !errors.Is(err, io.EOF) {
				t.Errorf("after the end: %v", err)
			}
		})
	}
	t.Run("stopped", func(t *testing.T) {
		stop := make(chan struct{})
		l := &loopReader{open: tone, limit: time.Hour, stop: stop}
		if _, err := l.ReadFrame(t.Context()); err != nil {
			t.Fatal(err)
		}
		close(stop)
		if _, err := l.ReadFrame(t.Context()); !errors.Is(err, io.EOF) || !l.stopped {
			t.Fatalf("after stop: %v, stopped %v", err, l.stopped)
		}
	})
	t.Run("no audio", func(t *testing.T) {
		l := &loopReader{open: func() (voicegate.FrameReader, error) { return emptySource{}, nil }, limit: time.Minute}
		if _, err := l.ReadFrame(t.Context()); !errors.Is(err, io.EOF) {
			t.Fatalf("empty source: %v", err)
		}
	})
}

// TestInterruptClosesAndExitsZero cancels the run as CTRL-C does in the
// middle of a real-time stream (without -loop): the session is closed on
// the wire and run returns no error.
func TestInterruptClosesAndExitsZero(t *testing.T) {
	url := startServer(t)
	t.Setenv("AUDIOHOOK_API_KEY", apiKey)
	t.Setenv("AUDIOHOOK_CLIENT_SECRET", secretB64)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	var out, errOut strings.Builder
	err := run(ctx, []string{"-url", url, "-tone", "30s", "-ping", "0", "-custom-config", `{"operation":"register"}`}, &out, &errOut)
	if err != nil {
		t.Fatalf("interrupted run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "interrupted") || !strings.Contains(out.String(), "closed") {
		t.Fatalf("output:\n%s", out.String())
	}
}

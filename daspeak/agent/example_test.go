package agent_test

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/daspeak/offline"
	"github.com/voicegate/voicegate/internal/fixtures"
)

// wavSource is a Source that plays WAV files as the call's audio; a real
// server uses daspeak/agent/flex or daspeak/agent/genesys.
type wavSource struct{ files []string }

func (s wavSource) Open(ctx context.Context, req agent.SourceRequest) (agent.Audio, error) {
	var frames []voicegate.Frame
	for _, name := range s.files {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", agent.ErrNoCall, err)
		}
		w, err := codec.ParseWAV(b)
		if err != nil {
			return nil, err
		}
		n := w.Format.SampleRate / 50 * w.Format.Encoding.BytesPerSample() // 20 ms, mono
		for off := 0; off+n <= len(w.Data); off += n {
			f := voicegate.Frame{Encoding: w.Format.Encoding, SampleRate: w.Format.SampleRate, Channels: 1, Payload: w.Data[off : off+n]}
			f.Parties[0] = voicegate.Customer
			frames = append(frames, f)
		}
	}
	return nopCloser{voicegate.NewSliceReader(frames)}, nil
}

type nopCloser struct{ voicegate.FrameReader }

func (nopCloser) Close() error { return nil }

// A server with the offline engine, a memory store and the development
// token registers a caller; the widget would do the same through its
// API calls and event stream.
func ExampleNewServer() {
	auth, err := agent.NewDevAuthenticator("dev-token")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := agent.NewServer(&agent.Options{
		Engine:        offline.New(nil),
		Store:         &agent.CredentialStore{Store: credstore.NewMemory()},
		Source:        wavSource{files: []string{fixtures.Path("voices/slt_1.wav"), fixtures.Path("voices/slt_2.wav")}},
		Authenticator: auth,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Shutdown(context.Background())

	post := func(path, body string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/agent"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer dev-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		return resp
	}
	resp := post("/register", `{"call_id":"CA0123","caller_id":"+34 911 23 45 67"}`)
	var op struct {
		OperationID string `json:"operation_id"`
		CallerID    string `json:"caller_id"`
		EventsURL   string `json:"events_url"`
	}
	json.NewDecoder(resp.Body).Decode(&op)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, op.CallerID)

	// The operation's event stream, as an EventSource reads it.
	events, err := http.Get(ts.URL + op.EventsURL)
	if err != nil {
		log.Fatal(err)
	}
	defer events.Body.Close()
	sc := bufio.NewScanner(events.Body)
	for sc.Scan() {
		if t, ok := strings.CutPrefix(sc.Text(), "event: "); ok && t != "progress" {
			fmt.Println(t)
		}
	}

	resp = post("/status", `{"call_id":"CA0123","caller_id":"+34911234567"}`)
	var st map[string]any
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	// registered_at is when the credential was stored; last_operation
	// the call's operation that ended last.
	at, _ := st["registered_at"].(string)
	_, err = time.Parse(time.RFC3339, at)
	last, _ := st["last_operation"].(map[string]any)
	delete(st, "registered_at")
	delete(st, "last_operation")
	b, _ := json.Marshal(st)
	fmt.Println(string(b))
	fmt.Println("registered_at:", err == nil, "last_operation:", last["operation_id"] == op.OperationID, last["operation"], last["result"])
	// Output:
	// 202 +34911234567
	// started
	// result-success
	// {"call_id":"CA0123","call_in_progress":true,"caller_id":"+34911234567","operation_running":false,"registered":true}
	// registered_at: true last_operation: true register result-success
}

// The adapter keeps a register session's credential and enrolment audio;
// Delete removes both.
func ExampleCredentialStore() {
	dir, _ := os.MkdirTemp("", "enrol")
	defer os.RemoveAll(dir)
	cs := &agent.CredentialStore{
		Store:    credstore.NewMemory(),
		AudioDir: dir,
		AudioKey: []byte("load this from a secret store!!!"), // agent.NewAudioKey makes one
	}
	ctx := context.Background()
	// A register session calls StoreCredential (daspeak.Config.Store).
	var _ daspeak.CredentialStore = cs
	if err := cs.StoreCredential(ctx, "+34911234567", "opaque-credential", "model", []byte("RIFF…")); err != nil {
		log.Fatal(err)
	}
	files, _ := os.ReadDir(dir)
	fmt.Println("audio files:", len(files))
	if err := cs.Delete(ctx, "+34911234567"); err != nil {
		log.Fatal(err)
	}
	files, _ = os.ReadDir(dir)
	_, err := cs.Get(ctx, "+34911234567")
	fmt.Println("audio files:", len(files), "record:", err)
	// Output:
	// audio files: 1
	// audio files: 0 record: credstore: not found
}

// A Binder's token opens only what it was signed for.
func ExampleBinder() {
	b := agent.NewBinder([]byte("a 32-byte key from configuration"))
	tok := b.Sign(time.Minute, "op_1", "CA0001")
	fmt.Println(b.Verify(tok, "op_1", "CA0001"))
	fmt.Println(b.Verify(tok, "op_1", "CA0002"))
	// Output:
	// <nil>
	// agent: invalid binding token
}

// A server that authenticates with the development token refuses to
// listen beyond loopback.
func ExampleRequireLoopback() {
	fmt.Println(agent.RequireLoopback("127.0.0.1:8080") == nil)
	fmt.Println(agent.RequireLoopback(":8080") == nil)
	// Output:
	// true
	// false
}

// Starter servers read the engine and session parameters from flags and
// the environment (DASPEAK_APIKEY only from the environment).
func ExampleEngineConfig() {
	var eng agent.EngineConfig
	var sess agent.SessionFlags
	fs := flagSet()
	eng.Flags(fs)
	sess.Flags(fs)
	fs.Parse([]string{"-offline", "-score-threshold", "0.7"})
	engine, desc, err := eng.New()
	if err != nil {
		log.Fatal(err)
	}
	_ = engine
	fmt.Println(desc, sess.Config().ScoreThreshold)
	// Output: offline 0.7
}

func flagSet() *flag.FlagSet { return flag.NewFlagSet("server", flag.ContinueOnError) }

// A starter server's main: serve until SIGINT or SIGTERM, then end the
// operations and event streams within the timeout.
func ExampleServe() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.Default()
	addr := agent.Env("LISTEN", "127.0.0.1:8080")
	if err := agent.RequireLoopback(addr); err != nil { // development token only
		logger.Error("refusing to start", "err", err)
		return
	}
	auth, _ := agent.NewDevAuthenticator(agent.Env("DEV_TOKEN", "dev"))
	srv, err := agent.NewServer(&agent.Options{
		Engine:        offline.New(nil),
		Store:         &agent.CredentialStore{Store: credstore.NewMemory()},
		Source:        wavSource{},
		Authenticator: auth,
	})
	if err != nil {
		logger.Error("config", "err", err)
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		logger.Error("listen", "err", err)
		return
	}
	if err := agent.Serve(ctx, logger, ln, srv, 10*time.Second, srv.Shutdown); err != nil {
		logger.Error("serve", "err", err)
	}
}

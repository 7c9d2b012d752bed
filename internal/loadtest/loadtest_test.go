package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicegate/voicegate/internal/wsconn"
)

func TestMain(m *testing.M) {
	MaybeServe()
	goleak.VerifyTestMain(m)
}

type message struct {
	typ  wsconn.MessageType
	data []byte
}

// wsconnServer runs an RFC 6455 server (internal/wsconn) that hands every
// message it reads to the returned channel, which is closed when the
// connection ends.
func wsconnServer(t *testing.T) (addr string, msgs <-chan message) {
	t.Helper()
	ch := make(chan message, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wsconn.Accept(w, r, nil)
		if err != nil {
			t.Errorf("wsconn.Accept: %v", err)
			close(ch)
			return
		}
		defer close(ch)
		c.SetReadLimit(1 << 20)
		defer c.CloseNow()
		for {
			typ, p, err := c.ReadMessage()
			if err != nil {
				var ce *wsconn.CloseError
				if !errors.As(err, &ce) || ce.Code != 1000 {
					t.Errorf("ReadMessage ended with %v, want a close with status 1000", err)
				}
				return
			}
			ch <- message{typ, bytes.Clone(p)}
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), ch
}

// TestFramesParseAsRFC6455 checks that the generator's pre-encoded,
// pre-masked frames are valid masked client frames that a strict server
// reads back as the intended messages.
func TestFramesParseAsRFC6455(t *testing.T) {
	addr, msgs := wsconnServer(t)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := handshake(conn, addr, "/", http.Header{}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	g := &generator{proto: ProtoTwilio, period: twilioPeriod, epoch: time.Now().Truncate(twilioPeriod)}
	st, err := g.newStream(6, conn)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.startTwilio(6, 10); err != nil {
		t.Fatal(err)
	}
	for m := range 3 {
		if _, err := conn.Write(st.mediaFrame(m)); err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, 70000) // a 64-bit length
	for i := range big {
		big[i] = byte(i)
	}
	for _, f := range [][]byte{audioHookFrame, appendFrame(nil, opBinary, big), appendFrame(nil, opText, []byte("short")), closeFrame} {
		if _, err := conn.Write(f); err != nil {
			t.Fatal(err)
		}
	}

	var got []message
	for m := range msgs {
		got = append(got, m)
	}
	if len(got) != 8 {
		t.Fatalf("server read %d messages, want 8", len(got))
	}
	var connected struct{ Event string }
	if err := json.Unmarshal(got[0].data, &connected); err != nil || connected.Event != "connected" {
		t.Errorf("message 1 = %s (%v), want the connected event", got[0].data, err)
	}
	var start struct {
		Event string
		Start struct {
			StreamSid        string
			CustomParameters map[string]string
		}
	}
	if err := json.Unmarshal(got[1].data, &start); err != nil || start.Event != "start" || start.Start.StreamSid != st.sid {
		t.Errorf("message 2 = %s (%v), want start of %s", got[1].data, err, st.sid)
	}
	if want := st.t0.UnixMicro(); start.Start.CustomParameters["t0us"] != jsonInt(want) {
		t.Errorf("start t0us = %q, want %d", start.Start.CustomParameters["t0us"], want)
	}
	if phase := st.t0.Sub(g.epoch) % twilioPeriod; phase != 12*time.Millisecond {
		t.Errorf("stream 6 of 10 starts at phase %v of the 20 ms period, want 12ms", phase)
	}
	for m := range 3 {
		msg := got[2+m]
		var media struct {
			Event          string
			StreamSid      string
			SequenceNumber string
			Media          struct{ Track, Chunk, Timestamp, Payload string }
		}
		if err := json.Unmarshal(msg.data, &media); err != nil || msg.typ != wsconn.MessageText {
			t.Fatalf("media %d = %s (%v, %v)", m, msg.data, msg.typ, err)
		}
		want := [3]string{jsonInt(int64(m + 2)), jsonInt(int64(m + 1)), jsonInt(int64(20 * m))}
		if got := [3]string{media.SequenceNumber, media.Media.Chunk, media.Media.Timestamp}; got != want || media.StreamSid != st.sid || media.Event != "media" {
			t.Errorf("media %d: sequenceNumber, chunk, timestamp = %v, want %v (%s)", m, got, want, msg.data)
		}
		p, err := base64.StdEncoding.DecodeString(media.Media.Payload)
		if err != nil || len(p) != 160 {
			t.Errorf("media %d payload: %d bytes, %v; want 160", m, len(p), err)
		}
	}
	if m := got[5]; m.typ != wsconn.MessageBinary || len(m.data) != 3200 || m.data[0] != m.data[1] {
		t.Errorf("AudioHook frame read as %v of %d bytes, want 3,200 bytes of stereo PCMU", m.typ, len(m.data))
	}
	if !bytes.Equal(got[6].data, big) {
		t.Errorf("70,000-byte frame read back as %d bytes, not equal", len(got[6].data))
	}
	if string(got[7].data) != "short" {
		t.Errorf("short text = %q", got[7].data)
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestHistogramBuckets(t *testing.T) {
	for _, us := range []int64{0, 9, 10, 999, 1000, 1099, 1100, 99_999, 100_000, 109_999, 9_999_999, 10_000_000, 129_999_999} {
		i := BucketOf(us)
		lo := int64(0)
		if i > 0 {
			lo = BucketUpper(i - 1)
		}
		if us < lo || us >= BucketUpper(i) {
			t.Errorf("%d µs in bucket %d = [%d, %d)", us, i, lo, BucketUpper(i))
		}
	}
	if i := BucketOf(-5); i != 0 {
		t.Errorf("BucketOf(-5) = %d, want 0", i)
	}
	if i := BucketOf(1 << 40); i != NumBuckets-1 {
		t.Errorf("BucketOf(huge) = %d, want the last bucket %d", i, NumBuckets-1)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	if q := h.Snapshot().Quantile(0.99); q != 0 {
		t.Errorf("empty p99 = %v", q)
	}
	// 1..1000 ms: p50 is 500 ms, p99 990 ms, max 1000 ms; buckets are
	// 10 ms wide there, reported by their upper bound.
	for ms := 1; ms <= 1000; ms++ {
		h.Add(time.Duration(ms) * time.Millisecond)
	}
	s := h.Snapshot()
	if s.Count() != 1000 {
		t.Fatalf("count %d", s.Count())
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 510 * time.Millisecond}, {0.99, 1000 * time.Millisecond}, {1, 1010 * time.Millisecond}, {0.001, 1100 * time.Microsecond}} {
		if got := s.Quantile(c.q); got != c.want {
			t.Errorf("q%v = %v, want %v", c.q, got, c.want)
		}
	}
	h.Reset()
	if n := h.Snapshot().Count(); n != 0 {
		t.Errorf("after Reset: %d samples", n)
	}
}

func TestParseProc(t *testing.T) {
	stat := []byte("4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 567 0 0 20 0 9 0 100 1000000 300 18446744073709551615\n")
	cpu, err := parseStatCPU(stat)
	if err != nil || cpu != (1234+567)*10*time.Millisecond {
		t.Errorf("parseStatCPU = %v, %v; want 18.01s", cpu, err)
	}
	if _, err := parseStatCPU([]byte("4242 (cmd) S 1 2")); err == nil {
		t.Error("short stat parsed")
	}
	status := []byte("Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t   1536 kB\nThreads:\t4\n")
	rss, err := parseStatusRSS(status)
	if err != nil || rss != 1536*1024 {
		t.Errorf("parseStatusRSS = %d, %v", rss, err)
	}
	if _, err := parseStatusRSS([]byte("Name:\tx\n")); err == nil {
		t.Error("status without VmRSS parsed")
	}
	busy, idle, err := parseMachineCPU([]byte("cpu  105440 314 40567 39983 277 0 11404 100 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"))
	if want := (105440 + 314 + 40567 + 11404 + 100) * 10 * time.Millisecond; err != nil || busy != want || idle != (39983+277)*10*time.Millisecond {
		t.Errorf("parseMachineCPU = %v, %v, %v; want busy %v, idle 402.6s", busy, idle, err, want)
	}
	if _, _, err := parseMachineCPU([]byte("cpu0 1 2 3 4 5 6 7 8\n")); err == nil {
		t.Error("/proc/stat without the cpu line parsed")
	}
	if _, _, err := MachineCPU(); err != nil {
		t.Errorf("MachineCPU: %v", err)
	}
	self, err := ProcCPU(os.Getpid())
	if err != nil || self < 0 {
		t.Errorf("ProcCPU(self) = %v, %v", self, err)
	}
}

func TestServeCommands(t *testing.T) {
	if err := Serve("nope", strings.NewReader(""), new(bytes.Buffer)); err == nil {
		t.Error("unknown kind served")
	}
	var out bytes.Buffer
	if err := Serve(KindTwilio, strings.NewReader("reset\nbogus\nreport\nquit\nreport\n"), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], `"addr":"127.0.0.1:`) || lines[1] != `{"ok":true}` ||
		!strings.Contains(lines[2], "unknown command") || !strings.Contains(lines[3], `"kind":"twilio"`) {
		t.Errorf("answers:\n%s", out.String())
	}
}

// TestServeCadenceEnv checks that a twilio server refuses a CadenceEnv
// that is not a duration, before it listens.
func TestServeCadenceEnv(t *testing.T) {
	t.Setenv(CadenceEnv, "sixty")
	var out syncBuffer
	err := Serve(KindTwilio, strings.NewReader("quit\n"), &out)
	if err == nil || !strings.Contains(err.Error(), CadenceEnv) {
		t.Errorf("Serve = %v, want an error naming %s", err, CadenceEnv)
	}
	if out.String() != "" {
		t.Errorf("answered %q before failing", out.String())
	}
}

// TestServeCPUProfile checks that a server with ProfileEnv set writes a
// pprof profile (gzip-compressed protocol buffer) between "reset" and
// "report", and none before.
func TestServeCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.prof")
	t.Setenv(ProfileEnv, path)
	in, inw := io.Pipe()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- Serve(KindTwilio, in, &out) }()
	if _, err := io.WriteString(inw, "\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("profile written before reset")
	}
	if _, err := io.WriteString(inw, "reset\nreport\nquit\n"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("profile of %d bytes is not gzip: % x", len(b), b[:min(len(b), 8)])
	}
	if lines := strings.Count(out.String(), "\n"); lines != 3 {
		t.Errorf("%d answers, want 3:\n%s", lines, out.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRun runs the harness end to end with a few streams and checks what
// it counts, not how fast anything is.
func TestRun(t *testing.T) {
	for _, c := range []struct {
		kind     string
		n        int
		duration time.Duration
	}{{KindTwilio, 4, 2 * time.Second}, {KindFloor, 2, time.Second}, {KindAudioHook, 3, 6 * time.Second}} {
		t.Run(c.kind, func(t *testing.T) {
			var log bytes.Buffer
			r, err := Run(context.Background(), Config{Kind: c.kind, Streams: c.n, Ramp: 200 * time.Millisecond,
				Warmup: time.Second, Duration: c.duration, Log: &log})
			if err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			if r.Connected != c.n || r.DialErrors != 0 || r.ServerErrors != 0 || r.GenErrors != 0 {
				t.Fatalf("%v\n%s", r, log.String())
			}
			if r.ServerReported != c.n {
				t.Errorf("server counted %d streams, want %d", r.ServerReported, c.n)
			}
			if r.Behind != Behind(r) || r.LagBudgetMs != 150 || r.Coalesce != 1 || r.Nagle {
				t.Errorf("verdict %q (Behind says %q), budget %v ms, coalesce %d, nagle %v; want the defaults", r.Behind, Behind(r), r.LagBudgetMs, r.Coalesce, r.Nagle)
			}
			if ncpu := float64(runtime.NumCPU()); r.OthersCores < 0 || r.IdleCores < 0 || r.OthersCores+r.IdleCores > ncpu+0.5 {
				t.Errorf("others %.2f and idle %.2f cores on a %v-CPU machine", r.OthersCores, r.IdleCores, ncpu)
			}
			if r.GenLateP50Ms > r.GenLateP99Ms || r.Sent == 0 {
				t.Errorf("generator sent %d messages, send delay p50 %v ms p99 %v ms", r.Sent, r.GenLateP50Ms, r.GenLateP99Ms)
			}
			if c.kind == KindFloor {
				if r.Frames != 0 {
					t.Errorf("floor reported %d frames", r.Frames)
				}
				return
			}
			// Frames sent in the window reach the server; allow for the
			// window's edges and for a loaded machine delaying frames by a
			// good part of the window.
			if r.Frames < r.ExpectedFrames/4 || r.Frames > r.ExpectedFrames*2+uint64(c.n) {
				t.Errorf("server read %d frames in the window, expected about %d", r.Frames, r.ExpectedFrames)
			}
			if r.LagMaxMs <= 0 || r.LagP50Ms > r.LagP99Ms || r.Dropped != 0 {
				t.Errorf("lag p50 %v p99 %v max %v dropped %d", r.LagP50Ms, r.LagP99Ms, r.LagMaxMs, r.Dropped)
			}
			if c.kind == KindAudioHook && (r.Pongs == 0 || r.ServerMaxPongMs <= 0) {
				t.Errorf("AudioHook run saw %d pongs, server max pong %v ms: want pings answered", r.Pongs, r.ServerMaxPongMs)
			}
		})
	}
}

// TestMediaWriteAllocs checks that sending a Twilio media message
// allocates nothing, so the generator's cost stays its system calls.
func TestMediaWriteAllocs(t *testing.T) {
	addr, msgs := wsconnServer(t)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := handshake(conn, addr, "/", http.Header{}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	g := &generator{proto: ProtoTwilio, period: twilioPeriod, epoch: time.Now().Truncate(twilioPeriod)}
	st, err := g.newStream(0, conn)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.startTwilio(0, 1); err != nil {
		t.Fatal(err)
	}
	m := 0
	allocs := testing.AllocsPerRun(20, func() {
		if err := st.write(st.mediaFrame(m)); err != nil {
			t.Fatal(err)
		}
		m++
	})
	if allocs != 0 {
		t.Errorf("a media write allocates %v times, want 0", allocs)
	}
	_, _ = conn.Write(closeFrame)
	n := 0
	for range msgs {
		n++
	}
	if want := 2 + m; n != want {
		t.Errorf("server read %d messages, want %d", n, want)
	}
}

// TestSendDueSchedule checks the generator's schedule and send-delay
// accounting: at a given time, every media message whose time has come is
// written (each as its own WebSocket message, in order, none early) and
// its delay against its own 20 ms slot is counted; with Coalesce 3 the
// messages go in groups written once the group's last one is due.
func TestSendDueSchedule(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		coalesce int
		// at are the times (from media time 0) sendDue runs; next the
		// index of the next message after each; delays every send delay
		// counted, in order.
		at     []time.Duration
		next   []int
		delays []time.Duration
	}{
		{1, []time.Duration{65 * ms, 79 * ms, 80 * ms, 80 * ms},
			[]int{4, 4, 5, 5}, []time.Duration{65 * ms, 45 * ms, 25 * ms, 5 * ms, 0}},
		{3, []time.Duration{39 * ms, 65 * ms, 99 * ms, 121 * ms},
			[]int{0, 3, 3, 6}, []time.Duration{25 * ms, 45 * ms, 65 * ms, 21 * ms, 41 * ms, 61 * ms}},
	} {
		t.Run("coalesce="+jsonInt(int64(c.coalesce)), func(t *testing.T) {
			addr, msgs := wsconnServer(t)
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := handshake(conn, addr, "/", http.Header{}, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			g := &generator{proto: ProtoTwilio, period: twilioPeriod, epoch: time.Now().Truncate(twilioPeriod), coalesce: c.coalesce}
			s := &sender{}
			g.senders = []*sender{s}
			st, err := g.newStream(0, conn)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.startTwilio(0, 1); err != nil {
				t.Fatal(err)
			}
			t0 := st.t0
			for i, at := range c.at {
				g.sendDue(s, st, t0.Add(at))
				if st.next != c.next[i] {
					t.Fatalf("after sendDue at %v: next message %d, want %d", at, st.next, c.next[i])
				}
			}
			var want Histogram
			for _, d := range c.delays {
				want.Add(d)
			}
			if got, w := g.lateSnapshot(), want.Snapshot(); !equalSparse(got, w) {
				t.Errorf("send delays counted %v, want %v (bucket, count)", got, w)
			}
			if got := g.messages(); got != uint64(len(c.delays)) {
				t.Errorf("messages() = %d, want %d", got, len(c.delays))
			}
			if _, err := conn.Write(closeFrame); err != nil {
				t.Fatal(err)
			}
			var chunks []string
			for m := range msgs {
				var media struct {
					Event string
					Media struct{ Chunk string }
				}
				if err := json.Unmarshal(m.data, &media); err != nil {
					t.Fatalf("message %q: %v", m.data, err)
				}
				if media.Event == "media" {
					chunks = append(chunks, media.Media.Chunk)
				}
			}
			var wantChunks []string
			for i := range c.next[len(c.next)-1] {
				wantChunks = append(wantChunks, jsonInt(int64(i+1)))
			}
			if strings.Join(chunks, ",") != strings.Join(wantChunks, ",") {
				t.Errorf("server read media chunks %v, want %v", chunks, wantChunks)
			}
			if w := st.written.Load(); w == 0 {
				t.Error("bytes written not counted")
			}
		})
	}
}

func equalSparse(a, b Sparse) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestBehind checks which side a run's figures blame.
func TestBehind(t *testing.T) {
	for _, c := range []struct {
		name string
		r    Result
		want string
	}{
		{"within budget", Result{Kind: KindTwilio, LagP99Ms: 120, GenLateP99Ms: 10, Sent: 100, ExpectedFrames: 100}, BehindNone},
		{"generator late", Result{Kind: KindTwilio, LagP99Ms: 900, GenLateP99Ms: 850, Sent: 100, ExpectedFrames: 100}, BehindGenerator},
		{"generator short of messages", Result{Kind: KindTwilio, LagP99Ms: 30, GenLateP99Ms: 10, Sent: 90, ExpectedFrames: 100}, BehindGenerator},
		{"server late", Result{Kind: KindTwilio, LagP99Ms: 900, GenLateP99Ms: 20, Sent: 100, ExpectedFrames: 100}, BehindServer},
		{"server dropped", Result{Kind: KindTwilio, LagP99Ms: 40, GenLateP99Ms: 20, Dropped: 1, Sent: 100, ExpectedFrames: 100}, BehindServer},
		{"both late", Result{Kind: KindTwilio, LagP99Ms: 2000, GenLateP99Ms: 900, Sent: 100, ExpectedFrames: 100}, BehindBoth},
		{"just over, mostly the server", Result{Kind: KindTwilio, LagP99Ms: 155, GenLateP99Ms: 45, Sent: 100, ExpectedFrames: 100}, BehindServer},
		{"just over, generator a third", Result{Kind: KindTwilio, LagP99Ms: 155, GenLateP99Ms: 55, Sent: 100, ExpectedFrames: 100}, BehindGenerator},
		{"floor kept up", Result{Kind: KindFloor, ServerBacklogMs: 5, GenLateP99Ms: 10, Sent: 100, ExpectedFrames: 100}, BehindNone},
		{"floor unread", Result{Kind: KindFloor, ServerBacklogMs: 400, GenLateP99Ms: 10, Sent: 100, ExpectedFrames: 100}, BehindServer},
		{"server far behind, generator a little", Result{Kind: KindTwilio, LagP99Ms: 85000, GenLateP99Ms: 140, Sent: 100, ExpectedFrames: 100}, BehindServer},
		{"server slow to report", Result{Kind: KindTwilio, LagP99Ms: 40, GenLateP99Ms: 20, ReportWaitS: 6, Sent: 100, ExpectedFrames: 100}, BehindServer},
		{"floor socket full", Result{Kind: KindFloor, GenBacklogged: 3, Sent: 100, ExpectedFrames: 100}, BehindServer},
	} {
		c.r.LagBudgetMs = 150
		if got := Behind(&c.r); got != c.want {
			t.Errorf("%s: Behind = %q, want %q", c.name, got, c.want)
		}
	}
}

// TestReportWhenServerBehind checks that a server slow to answer its
// report gets the answer waited for, with the generator's media stopped
// after reportPatience so that it can catch up.
func TestReportWhenServerBehind(t *testing.T) {
	defer func(p, g time.Duration) { reportPatience, reportGiveUp = p, g }(reportPatience, reportGiveUp)
	reportPatience, reportGiveUp = 100*time.Millisecond, 10*time.Second
	cmd := exec.Command("sh", "-c", `read x; sleep 1; echo '{"kind":"slow","streams":3}'; read y`)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("no sh to play a slow server: %v", err)
	}
	srv := &serverProc{kind: "slow", cmd: cmd, in: in, out: bufio.NewScanner(out)}
	defer srv.quit()
	g, err := newGenerator(ProtoTwilio, "127.0.0.1:1", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer g.stop()
	rep, wait, err := report(srv, g)
	if err != nil || rep.Kind != "slow" || rep.Streams != 3 {
		t.Fatalf("report = %+v, %v", rep, err)
	}
	if wait < time.Second {
		t.Errorf("report took %v, want the server's 1 s", wait)
	}
	stopped := make(chan struct{})
	go func() { g.wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Error("the generator's senders still run after a late report")
	}
}

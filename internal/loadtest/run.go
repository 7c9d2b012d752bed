package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server kinds.
const (
	KindFloor     = "floor"
	KindTwilio    = "twilio"
	KindAudioHook = "audiohook"
	KindNode      = "node"
)

// ErrNoNode is returned (or wrapped) by Run and NodeSetup for KindNode
// when node or npm is not installed or npm ci could not install ws.
var ErrNoNode = errors.New("loadtest: no Node consumer (it needs node, npm, and ws installed with npm ci in internal/loadtest/node)")

// Config describes one run. The zero value of every field but Kind is its
// documented default.
type Config struct {
	// Kind is the server: KindFloor, KindTwilio, KindAudioHook or KindNode.
	Kind string
	// Proto is the traffic, ProtoTwilio or ProtoAudioHook; default
	// ProtoAudioHook for KindAudioHook, ProtoTwilio otherwise. The floor
	// server takes either; it answers no AudioHook open, so it is only
	// meant for Twilio traffic.
	Proto string
	// Streams is the number of concurrent streams; default 100.
	Streams int
	// Ramp spreads the stream starts over this time; default 5 s.
	Ramp time.Duration
	// Warmup is the time between the last stream start and the measured
	// window; default 3 s.
	Warmup time.Duration
	// Duration is the measured window; default 10 s.
	Duration time.Duration
	// Senders is the number of generator goroutines sending media;
	// default GOMAXPROCS.
	Senders int
	// Coalesce, when above 1, writes each group of Coalesce consecutive
	// Twilio media messages of a stream with one write(2) once the group's
	// last message is due: still one WebSocket message each, but fewer and
	// larger TCP segments, each message up to (Coalesce−1) × 20 ms late (its
	// send delay counts it). Twilio sends each message when it is due, so
	// this is not what a server sees from Twilio; it measures a server when
	// the generator alone cannot keep up. Default 1.
	Coalesce int
	// Nagle turns TCP_NODELAY off on the generator's sockets, so the kernel
	// holds a small write while an earlier segment is unacknowledged and
	// sends them together (RFC 896); the transmission of the held data then
	// runs on the server's ACK, in the server's CPU time. Default off:
	// Go's default TCP_NODELAY, each message leaving as its own segment
	// when written, as from a sender that writes each message when due.
	Nagle bool
	// LagBudget is the delivery lag a run must stay within at p99 to have
	// kept up (Result.Behind); default 150 ms.
	LagBudget time.Duration
	// ServerCPUs and GenCPUs, when set, pin the server process and this
	// process with taskset(1) (a CPU list such as "0" or "0-1").
	ServerCPUs, GenCPUs string
	// NodeDir is the directory of consumer.js; default the node directory
	// beside this package's source.
	NodeDir string
	// CPUProfile, when set, is a file the Go server process writes a
	// pprof CPU profile of the measured window to (ignored for KindNode).
	CPUProfile string
	// Cadence, when not 0, is the twilio server's
	// twilio.AcceptOptions.ReadCadence (negative: none); 0 keeps the
	// default.
	Cadence time.Duration
	// Log receives progress lines and the servers' standard error; default
	// os.Stderr. Run serialises its writes.
	Log io.Writer
}

// Result is what one run measured. CPU figures are utime+stime from
// /proc over the measured window, divided by streams × window seconds.
type Result struct {
	Kind  string `json:"kind"`
	Proto string `json:"proto"`
	// CadenceMs is Config.Cadence of a twilio server in ms; 0 the default.
	CadenceMs float64 `json:"cadence_ms,omitempty"`
	Streams   int     `json:"streams"`
	// Connected is the number of streams the generator opened; DialErrors
	// those it could not.
	Connected  int `json:"connected"`
	DialErrors int `json:"dial_errors"`
	// WindowS is the measured window in seconds.
	WindowS float64 `json:"window_s"`
	// ServerCPUUs and GenCPUUs are the server's and the generator's CPU
	// time per stream-second, in µs (1,000,000 would be a whole core per
	// stream).
	ServerCPUUs float64 `json:"server_cpu_us_per_stream_s"`
	GenCPUUs    float64 `json:"gen_cpu_us_per_stream_s"`
	// ServerCPUPct is the server's CPU over the window in percent of one
	// core.
	ServerCPUPct float64 `json:"server_cpu_pct"`
	// ServerRSSKB is the server's VmRSS at the end of the window;
	// RSSPerStreamKB is that divided by the streams, and
	// RSSDeltaPerStreamKB the growth since before the first stream divided
	// by the streams.
	ServerRSSKB         int64   `json:"server_rss_kb"`
	RSSPerStreamKB      float64 `json:"rss_kb_per_stream"`
	RSSDeltaPerStreamKB float64 `json:"rss_delta_kb_per_stream"`
	// Frames is the number of frames the server read between its "reset"
	// and "report" commands, which a server that has fallen behind answers
	// late; ExpectedFrames is the number due on schedule in the window.
	Frames         uint64 `json:"frames"`
	ExpectedFrames uint64 `json:"expected_frames"`
	// Sent is the number of media messages the generator sent in the
	// window.
	Sent uint64 `json:"sent"`
	// ServerCPUPerFrameUs is the server's CPU time per frame read in the
	// window, in µs: the cost per message even when the server falls
	// behind and reads more or fewer frames than were sent.
	ServerCPUPerFrameUs float64 `json:"server_cpu_us_per_frame,omitempty"`
	// LagP50Ms, LagP99Ms and LagMaxMs are quantiles of the time from a
	// frame's scheduled send time to its ReadFrame, in ms (bucket upper
	// bounds: see Histogram).
	LagP50Ms float64 `json:"lag_p50_ms"`
	LagP99Ms float64 `json:"lag_p99_ms"`
	LagMaxMs float64 `json:"lag_max_ms"`
	// Dropped, Late and MaxQueue come from the streams' Stats (whole run).
	Dropped  uint64 `json:"dropped"`
	Late     uint64 `json:"late"`
	MaxQueue int    `json:"max_queue"`
	// PongP99Ms is the AudioHook ping→pong round trip at p99 as the
	// generator saw it, Pongs the number of pongs in the window, and
	// ServerMaxPongMs the servers' largest Stats.MaxPongLatency.
	PongP99Ms       float64 `json:"pong_p99_ms,omitempty"`
	Pongs           uint64  `json:"pongs,omitempty"`
	ServerMaxPongMs float64 `json:"server_max_pong_ms,omitempty"`
	// GenLateP50Ms and GenLateP99Ms are how late the generator sent media
	// (its own send delay: write time − scheduled time): a large value means
	// the generator, not the server, fell behind; the server's lag
	// includes it.
	GenLateP50Ms float64 `json:"gen_late_p50_ms"`
	GenLateP99Ms float64 `json:"gen_late_p99_ms"`
	// ServerBacklogMs is, for the floor server (which reads but does not
	// parse, so has no lag), the bytes the generator had written but the
	// server not yet read at the end of the window, in ms of the window's
	// send rate: how far behind its reads were.
	ServerBacklogMs float64 `json:"server_backlog_ms,omitempty"`
	// Behind says which side fell behind: BehindNone, BehindGenerator,
	// BehindServer or BehindBoth (see Behind).
	Behind string `json:"behind"`
	// ReportWaitS is how long the server took to answer the report at the
	// end of the window, in s; over 5 s the generator stopped sending
	// media to let it answer, and the server was at least that far behind.
	ReportWaitS float64 `json:"report_wait_s"`
	// OthersCores is the CPU the rest of the machine (other processes and
	// the kernel's own threads) used over the window, and IdleCores the
	// CPU left idle, both in cores (/proc/stat): a side that fell behind
	// while IdleCores was near 0 and OthersCores large was short of CPU
	// because of other jobs.
	OthersCores float64 `json:"others_cores"`
	IdleCores   float64 `json:"idle_cores"`
	// LagBudgetMs is the budget Behind was judged against; Coalesce and
	// Nagle are the run's Config fields (1 and false are real time, as
	// Twilio sends).
	LagBudgetMs float64 `json:"lag_budget_ms"`
	Coalesce    int     `json:"coalesce"`
	Nagle       bool    `json:"nagle,omitempty"`
	// GenBacklogged counts media writes (whole run) that the server's
	// socket did not take whole: the server was not reading.
	GenBacklogged uint64 `json:"gen_backlogged"`
	// ServerErrors and GenErrors count failed streams on each side, with
	// the last error.
	ServerErrors   int    `json:"server_errors"`
	ServerLastErr  string `json:"server_last_error,omitempty"`
	GenErrors      uint64 `json:"gen_errors"`
	GenLastErr     string `json:"gen_last_error,omitempty"`
	ServerReported int    `json:"server_streams"`
}

// String formats r on one line.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-9s %-9s n=%d window=%.0fs server=%.0fµs/stream-s (%.0f%% core) gen=%.0fµs/stream-s rss=%.1fKB/stream (Δ%.1f) lag p50=%.2fms p99=%.2fms max=%.0fms frames=%d/%d sent=%d (%.1fµs/frame) dropped=%d late=%d genlate-p99=%.2fms backlogged=%d",
		r.Kind, r.Proto, r.Streams, r.WindowS, r.ServerCPUUs, r.ServerCPUPct, r.GenCPUUs, r.RSSPerStreamKB, r.RSSDeltaPerStreamKB,
		r.LagP50Ms, r.LagP99Ms, r.LagMaxMs, r.Frames, r.ExpectedFrames, r.Sent, r.ServerCPUPerFrameUs, r.Dropped, r.Late, r.GenLateP99Ms, r.GenBacklogged)
	if r.Kind == KindFloor {
		fmt.Fprintf(&b, " unread=%.0fms", r.ServerBacklogMs)
	}
	if r.CadenceMs != 0 {
		fmt.Fprintf(&b, " cadence=%gms", r.CadenceMs)
	}
	if r.Coalesce > 1 || r.Nagle {
		fmt.Fprintf(&b, " NOT-REAL-TIME(coalesce=%d nagle=%v)", r.Coalesce, r.Nagle)
	}
	if r.ReportWaitS > 1 {
		fmt.Fprintf(&b, " report-wait=%.1fs", r.ReportWaitS)
	}
	fmt.Fprintf(&b, " machine: others=%.2f idle=%.2f cores => %s", r.OthersCores, r.IdleCores, r.Behind)
	if r.Proto == ProtoAudioHook {
		fmt.Fprintf(&b, " pong-p99=%.2fms (%d) server-max-pong=%.2fms", r.PongP99Ms, r.Pongs, r.ServerMaxPongMs)
	}
	if r.DialErrors+r.ServerErrors > 0 || r.GenErrors > 0 {
		fmt.Fprintf(&b, " ERRORS dial=%d server=%d (%s) gen=%d (%s)", r.DialErrors, r.ServerErrors, r.ServerLastErr, r.GenErrors, r.GenLastErr)
	}
	return b.String()
}

func (c *Config) fill() error {
	switch c.Kind {
	case KindFloor, KindTwilio, KindNode:
		if c.Proto == "" {
			c.Proto = ProtoTwilio
		}
	case KindAudioHook:
		if c.Proto == "" {
			c.Proto = ProtoAudioHook
		}
	default:
		return fmt.Errorf("loadtest: unknown kind %q (want floor, twilio, audiohook or node)", c.Kind)
	}
	if c.Kind == KindNode && c.Proto != ProtoTwilio || c.Kind == KindTwilio && c.Proto != ProtoTwilio ||
		c.Kind == KindAudioHook && c.Proto != ProtoAudioHook {
		return fmt.Errorf("loadtest: server %s does not take %s traffic", c.Kind, c.Proto)
	}
	if c.Streams <= 0 {
		c.Streams = 100
	}
	if c.Ramp <= 0 {
		c.Ramp = 5 * time.Second
	}
	if c.Warmup <= 0 {
		c.Warmup = 3 * time.Second
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Senders <= 0 {
		c.Senders = runtime.GOMAXPROCS(0)
	}
	if c.Coalesce <= 0 {
		c.Coalesce = 1
	}
	if c.Coalesce > 1 && c.Proto != ProtoTwilio {
		return fmt.Errorf("loadtest: Coalesce applies to Twilio traffic only")
	}
	if c.LagBudget <= 0 {
		c.LagBudget = 150 * time.Millisecond
	}
	if c.NodeDir == "" {
		_, file, _, _ := runtime.Caller(0)
		c.NodeDir = filepath.Join(filepath.Dir(file), "node")
	}
	if c.Log == nil {
		c.Log = os.Stderr
	}
	c.Log = &lockedWriter{w: c.Log}
	return nil
}

// lockedWriter serialises writes: the server's standard error and Run's
// progress lines share Config.Log.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// serverProc is a running server process and its command pipe.
type serverProc struct {
	kind string
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	addr string
}

func (p *serverProc) call(cmd string, v any) error {
	if _, err := io.WriteString(p.in, cmd+"\n"); err != nil {
		return err
	}
	if !p.out.Scan() {
		return fmt.Errorf("loadtest: server ended before answering %q: %v", cmd, p.out.Err())
	}
	return json.Unmarshal(p.out.Bytes(), v)
}

// NodeSetup makes sure the Node consumer in dir can run: node on PATH and
// ws in dir/node_modules, installed by `npm ci` from the committed
// package-lock.json when missing. Without node, or without npm when ws is
// missing, or when npm ci fails (it needs the npm registry or a cache
// holding the pinned ws), the error is or wraps ErrNoNode.
func NodeSetup(dir string, log io.Writer) error {
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("%w: node is not on PATH", ErrNoNode)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ws", "package.json")); err == nil {
		return nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return fmt.Errorf("%w: ws is not installed in %s and npm is not on PATH", ErrNoNode, dir)
	}
	fmt.Fprintf(log, "loadtest: npm ci in %s (ws for the Node consumer)\n", dir)
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: npm ci in %s failed (it needs the npm registry or a cache holding the pinned ws): %v", ErrNoNode, dir, err)
	}
	return nil
}

func startServer(c *Config) (*serverProc, error) {
	var args []string
	if c.ServerCPUs != "" {
		args = append(args, "taskset", "-c", c.ServerCPUs)
	}
	env := os.Environ()
	if c.Kind == KindNode {
		if err := NodeSetup(c.NodeDir, c.Log); err != nil {
			return nil, err
		}
		// Go raises its own open-file limit to the hard limit but gives
		// children the soft limit it started with: raise it for node too.
		args = append(args, "sh", "-c", `ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec node "$0"`, filepath.Join(c.NodeDir, "consumer.js"))
	} else {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		args = append(args, exe)
		env = append(env, ServeEnv+"="+c.Kind)
		if c.CPUProfile != "" {
			env = append(env, ProfileEnv+"="+c.CPUProfile)
		}
		if c.Cadence != 0 {
			env = append(env, CadenceEnv+"="+c.Cadence.String())
		}
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = env
	cmd.Stderr = c.Log
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &serverProc{kind: c.Kind, cmd: cmd, in: in, out: bufio.NewScanner(out)}
	p.out.Buffer(make([]byte, 64<<10), 16<<20)
	var hello struct{ Addr string }
	if !p.out.Scan() {
		p.kill()
		return nil, fmt.Errorf("loadtest: %s server ended before listening: %v", c.Kind, p.out.Err())
	}
	if err := json.Unmarshal(p.out.Bytes(), &hello); err != nil || hello.Addr == "" {
		p.kill()
		return nil, fmt.Errorf("loadtest: %s server said %q", c.Kind, p.out.Bytes())
	}
	p.addr = hello.Addr
	return p, nil
}

// pid is the server's process id; with taskset it is taskset's, which
// execs the server in the same process.
func (p *serverProc) pid() int { return p.cmd.Process.Pid }

func (p *serverProc) kill() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

func (p *serverProc) quit() {
	_, _ = io.WriteString(p.in, "quit\n")
	_ = p.in.Close()
	done := make(chan struct{})
	go func() {
		_ = p.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// Run starts the server of cfg.Kind as a child process, opens
// cfg.Streams real-time streams to it over loopback from this process,
// measures a window of cfg.Duration after the ramp and warm-up, ends the
// streams and the server, and returns what it measured.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if err := checkFiles(cfg.Streams); err != nil {
		return nil, err
	}
	if cfg.GenCPUs != "" {
		if out, err := exec.Command("taskset", "-a", "-cp", cfg.GenCPUs, strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("loadtest: taskset: %v: %s", err, out)
		}
	}
	srv, err := startServer(&cfg)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			srv.kill()
		}
	}()
	rss0, err := ProcRSS(srv.pid())
	if err != nil {
		return nil, err
	}
	g, err := newGenerator(cfg.Proto, srv.addr, cfg.Senders)
	if err != nil {
		return nil, err
	}
	g.floor = cfg.Kind == KindFloor
	g.coalesce = cfg.Coalesce
	g.nagle = cfg.Nagle
	genStopped := false
	defer func() {
		if !genStopped {
			g.stop()
		}
	}()
	fmt.Fprintf(cfg.Log, "loadtest: %s server pid %d on %s; opening %d %s streams over %v\n", cfg.Kind, srv.pid(), srv.addr, cfg.Streams, cfg.Proto, cfg.Ramp)
	dialErrs, lastDialErr := g.ramp(ctx, cfg.Streams, cfg.Ramp)
	if dialErrs > 0 {
		fmt.Fprintf(cfg.Log, "loadtest: %d streams failed to open, last: %v\n", dialErrs, lastDialErr)
	}
	if err := sleep(ctx, cfg.Warmup); err != nil {
		return nil, err
	}
	var ok struct{ OK bool }
	if err := srv.call("reset", &ok); err != nil {
		return nil, err
	}
	g.resetLate()
	g.pong.Reset()
	mb0, mi0, err := MachineCPU()
	if err != nil {
		return nil, err
	}
	sc0, err := ProcCPU(srv.pid())
	if err != nil {
		return nil, err
	}
	gc0, err := ProcCPU(os.Getpid())
	if err != nil {
		return nil, err
	}
	w0 := time.Now()
	sent0 := g.messages()
	bytes0 := g.bytesWritten()
	if err := sleep(ctx, cfg.Duration); err != nil {
		return nil, err
	}
	mb1, mi1, err := MachineCPU()
	if err != nil {
		return nil, err
	}
	sc1, err := ProcCPU(srv.pid())
	if err != nil {
		return nil, err
	}
	gc1, err := ProcCPU(os.Getpid())
	if err != nil {
		return nil, err
	}
	window := time.Since(w0)
	sent := g.messages() - sent0
	bytes1 := g.bytesWritten()
	rss, err := ProcRSS(srv.pid())
	if err != nil {
		return nil, err
	}
	late := g.lateSnapshot()
	rep, reportWait, err := report(srv, g)
	if err != nil {
		return nil, err
	}
	pong := g.pong.Snapshot()
	genStopped = true
	g.stop()
	stopped = true
	srv.quit()

	g.mu.Lock()
	connected := len(g.streams)
	g.mu.Unlock()
	streamSec := float64(cfg.Streams) * window.Seconds()
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	r := &Result{
		Kind: cfg.Kind, Proto: cfg.Proto, Streams: cfg.Streams, Connected: connected, DialErrors: dialErrs,
		WindowS:             window.Seconds(),
		ServerCPUUs:         float64((sc1 - sc0).Microseconds()) / streamSec,
		GenCPUUs:            float64((gc1 - gc0).Microseconds()) / streamSec,
		ServerCPUPct:        100 * (sc1 - sc0).Seconds() / window.Seconds(),
		ServerRSSKB:         rss / 1024,
		RSSPerStreamKB:      float64(rss) / 1024 / float64(cfg.Streams),
		RSSDeltaPerStreamKB: float64(rss-rss0) / 1024 / float64(cfg.Streams),
		Frames:              rep.Lag.Count(),
		Sent:                sent,
		ExpectedFrames:      uint64(float64(connected) * window.Seconds() / g.period.Seconds()),
		LagP50Ms:            ms(rep.Lag.Quantile(0.5)),
		LagP99Ms:            ms(rep.Lag.Quantile(0.99)),
		LagMaxMs:            ms(rep.Lag.Quantile(1)),
		Dropped:             rep.Dropped, Late: rep.Late, MaxQueue: rep.MaxQueue,
		PongP99Ms:       ms(pong.Quantile(0.99)),
		Pongs:           pong.Count(),
		ServerMaxPongMs: float64(rep.MaxPongUs) / 1e3,
		GenLateP50Ms:    ms(late.Quantile(0.5)),
		GenLateP99Ms:    ms(late.Quantile(0.99)),
		LagBudgetMs:     ms(cfg.LagBudget),
		Coalesce:        cfg.Coalesce,
		CadenceMs:       float64(cfg.Cadence) / 1e6,
		Nagle:           cfg.Nagle,
		ServerErrors:    rep.Errors, ServerLastErr: rep.LastError,
		GenErrors:      g.errs.Load(),
		GenBacklogged:  g.backlogged.Load(),
		ServerReported: rep.Streams,
	}
	if rate := float64(bytes1-bytes0) / window.Seconds(); cfg.Kind == KindFloor && rate > 0 {
		r.ServerBacklogMs = max(0, float64(bytes1-int64(rep.BytesRead))) / rate * 1000
	}
	cores := func(d time.Duration) float64 { return d.Seconds() / window.Seconds() }
	r.OthersCores = max(0, cores(mb1-mb0-(sc1-sc0)-(gc1-gc0)))
	r.IdleCores = cores(mi1 - mi0)
	r.ReportWaitS = reportWait.Seconds()
	r.Behind = Behind(r)
	if r.Frames > 0 {
		r.ServerCPUPerFrameUs = float64((sc1 - sc0).Microseconds()) / float64(r.Frames)
	}
	g.errMu.Lock()
	if g.lastErr != nil {
		r.GenLastErr = g.lastErr.Error()
	}
	g.errMu.Unlock()
	return r, nil
}

// checkFiles returns an error when the hard limit on open files
// (RLIMIT_NOFILE) is too low for n streams: the generator and the server
// each hold a socket per stream. Go raises the soft limit to the hard one
// when it starts (os package, Linux).
func checkFiles(n int) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return err
	}
	if need := uint64(n) + 256; rl.Max < need {
		return fmt.Errorf("loadtest: %d streams need about %d open files per process, the hard limit is %d (raise it, e.g. ulimit -Hn %d as root)", n, need, rl.Max, need)
	}
	return nil
}

// reportPatience is how long Run waits for a server's report before it
// stops the generator's media, and reportGiveUp how long it then waits.
var (
	reportPatience = 5 * time.Second
	reportGiveUp   = 2 * time.Minute
)

// report asks srv for its report. A server far behind answers only once
// it has read what was sent before the question, which a generator that
// goes on sending may put off for ever: after reportPatience the
// generator's senders stop (the connections stay open) and report waits
// up to reportGiveUp more. It returns how long the answer took.
func report(srv *serverProc, g *generator) (ServerReport, time.Duration, error) {
	var rep ServerReport
	t0 := time.Now()
	done := make(chan error, 1)
	go func() { done <- srv.call("report", &rep) }()
	select {
	case err := <-done:
		return rep, time.Since(t0), err
	case <-time.After(reportPatience):
	}
	g.cancel()
	g.wg.Wait()
	select {
	case err := <-done:
		return rep, time.Since(t0), err
	case <-time.After(reportGiveUp):
		srv.kill() // ends the call's read
		<-done
		return rep, 0, fmt.Errorf("loadtest: %s server did not report within %v", srv.kind, reportPatience+reportGiveUp)
	}
}

// Verdicts of Behind.
const (
	BehindNone      = "kept up"
	BehindGenerator = "generator fell behind"
	BehindServer    = "server fell behind"
	BehindBoth      = "generator and server fell behind"
)

// Behind judges whether run r kept within its budget (r.LagBudgetMs) and,
// when not, which side fell behind. A run kept up when its lag p99 (floor:
// the generator's send delay p99 plus the server's unread bytes in ms) is
// within the budget, nothing was dropped, the server left no socket's
// send buffer full (GenBacklogged) and answered its report within the
// budget, and the generator sent at least 95% of the media due in the
// window. Otherwise it blames
//
//   - the generator, when its own send delay p99 exceeds a third of the
//     budget and a third of the lag p99, or it sent under 95% of the media
//     due: the server's figures then do not show the server's limit;
//   - the server, when its share of the lag p99 (lag p99 less the
//     generator's send delay p99; floor: unread bytes in ms) exceeds two
//     thirds of the budget, or it dropped frames, left a send buffer
//     full or took longer than the budget to answer its report;
//   - both, when both rules hold (over the budget, one of them does).
func Behind(r *Result) string {
	b := r.LagBudgetMs
	short := r.ExpectedFrames > 0 && float64(r.Sent) < 0.95*float64(r.ExpectedFrames)
	own, total := r.LagP99Ms-r.GenLateP99Ms, r.LagP99Ms
	if r.Kind == KindFloor {
		own, total = r.ServerBacklogMs, r.ServerBacklogMs+r.GenLateP99Ms
	}
	lost := r.Dropped > 0 || r.GenBacklogged > 0 || r.ReportWaitS*1000 > b
	if total <= b && !lost && !short {
		return BehindNone
	}
	gen := r.GenLateP99Ms > max(b, total)/3 || short
	srv := own > 2*b/3 || lost || r.ReportWaitS*1000 > b
	switch {
	case gen == srv:
		return BehindBoth
	case gen:
		return BehindGenerator
	}
	return BehindServer
}

// ramp opens n streams, starting them evenly over d.
func (g *generator) ramp(ctx context.Context, n int, d time.Duration) (errs int, last error) {
	var mu sync.Mutex
	work := make(chan int)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := g.dial(i, n); err != nil {
					mu.Lock()
					errs++
					last = err
					mu.Unlock()
				}
			}
		}()
	}
	start := time.Now()
	for i := range n {
		if wait := time.Until(start.Add(time.Duration(int64(d) * int64(i) / int64(n)))); wait > 0 {
			if sleep(ctx, wait) != nil {
				break
			}
		}
		work <- i
	}
	close(work)
	wg.Wait()
	return errs, last
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Table formats results as a Markdown table, one row per run: streams,
// server, server and generator CPU per stream-second (µs) and their sum
// in cores, lag and send delay p50/p99 (ms), dropped frames, the cores
// other jobs used and those left idle, and the verdict of Behind.
func Table(results []*Result) string {
	var b strings.Builder
	b.WriteString("| N | server | server µs/stream-s | gen µs/stream-s | server+gen cores | lag p50 / p99 ms | gen send delay p50 / p99 ms | dropped | other jobs / idle cores | fell behind |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		kind := r.Kind
		if r.CadenceMs != 0 {
			kind += fmt.Sprintf(" (cadence %g ms)", r.CadenceMs)
		}
		if r.Coalesce > 1 || r.Nagle {
			kind += fmt.Sprintf(" (coalesce %d, nagle %v: not real time)", r.Coalesce, r.Nagle)
		}
		lag := fmt.Sprintf("%.1f / %.1f", r.LagP50Ms, r.LagP99Ms)
		if r.Kind == KindFloor {
			lag = fmt.Sprintf("unread %.0f ms", r.ServerBacklogMs)
		}
		cores := (r.ServerCPUUs + r.GenCPUUs) * float64(r.Streams) / 1e6
		fmt.Fprintf(&b, "| %d | %s | %.0f | %.0f | %.2f | %s | %.1f / %.1f | %d | %.2f / %.2f | %s |\n",
			r.Streams, kind, r.ServerCPUUs, r.GenCPUUs, cores, lag, r.GenLateP50Ms, r.GenLateP99Ms, r.Dropped, r.OthersCores, r.IdleCores, r.Behind)
	}
	return b.String()
}

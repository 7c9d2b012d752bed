package daspeak_test

import (
	"context"
	"flag"
	"runtime"
	"slices"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/offline"
)

var burstSessions = flag.Int("burst.sessions", 1000, "sessions in BenchmarkBurst")

// gatedReader returns n frames cycling over fs, stopping before frame gateAt
// until gate is closed, then io.EOF.
type gatedReader struct {
	cycleReader
	gateAt int
	gate   <-chan struct{}
}

func (r *gatedReader) ReadFrame(ctx context.Context) (voicegate.Frame, error) {
	if r.i == r.gateAt {
		<-r.gate
	}
	return r.cycleReader.ReadFrame(ctx)
}

// callLog records when each engine call started and ended, in the order
// calls started.
type callLog struct {
	daspeak.Engine
	mu     sync.Mutex
	starts []time.Time
	ends   []time.Time
	cpus   []time.Duration // process CPU time at each call's end
}

func (e *callLog) CompareCredentialToAudio(ctx context.Context, cred string, audio []byte, opts *daspeak.AudioOptions) (*daspeak.CompareResult, error) {
	start := time.Now()
	e.mu.Lock()
	i := len(e.starts)
	e.starts = append(e.starts, start)
	e.ends = append(e.ends, time.Time{})
	e.cpus = append(e.cpus, 0)
	e.mu.Unlock()
	r, err := e.Engine.CompareCredentialToAudio(ctx, cred, audio, opts)
	end, cpu := time.Now(), cpuTime()
	e.mu.Lock()
	e.ends[i] = end
	e.cpus[i] = cpu
	e.mu.Unlock()
	return r, err
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBurst plays the burst of the offline engine: -burst.sessions
// verify sessions (default 1,000) collect a voice up to the frame before
// they have enough speech, then all get that frame at once and call the
// in-process offline engine together. With a Limiter of GOMAXPROCS slots
// (limiter=fifo) the calls are served in arrival order, two at a time on
// two cores; without one (limiter=none) all of them compete for the cores.
//
// It reports, for the burst: cpu-s (the process CPU time from the gate to
// the last result: the engine's total CPU with the sessions' last frames),
// bound-s (cpu-s / GOMAXPROCS + 100 ms: the time a perfect schedule on
// these cores needs), last-s (wall time to the last result), p50-s and
// p99-s (time to a result), late-s (the most a result came after its
// share: the CPU of the calls admitted up to and including it, divided
// among the cores, + 100 ms; ≤ 0 means every result was within it) and
// displaced (the most places a result finished away from its arrival
// order). On a machine shared with other work the wall time stretches
// beyond what the CPU predicts, so the same figures are also given on
// the process's CPU clock divided among the cores (cpu-last-s, cpu-p50-s,
// cpu-late-s): the wall time of an idle machine.
//
//	go test -run '^$' -bench Burst -benchtime 1x -v ./daspeak/
func BenchmarkBurst(b *testing.B) {
	fs := speechFrames(b)
	eng := offline.New(nil)
	ctx := context.Background()
	cfg := daspeak.Config{ModelHash: offline.ModelHash, ProgressInterval: -1}

	// The credential, and the frames a session reads before it calls the
	// engine.
	reg, _ := daspeak.Register(&cycleReader{fs: fs, n: 50 * 28, eof: true}, eng, &cfg)
	regEv, err := reg.Next(ctx)
	if err != nil || regEv.Type != daspeak.EventResultSuccess {
		b.Fatalf("register: %v %v", regEv.Type, err)
	}
	probe := &cycleReader{fs: fs, n: 50 * 28, eof: true}
	s, _ := daspeak.Verify(probe, eng, regEv.Credential, &cfg)
	if ev, err := s.Next(ctx); err != nil || !ev.IsTerminal() {
		b.Fatalf("verify: %v %v", ev.Type, err)
	}
	need := probe.i

	for _, mode := range []string{"fifo", "none"} {
		b.Run("limiter="+mode, func(b *testing.B) {
			for range b.N {
				runBurst(b, eng, fs, regEv.Credential, need, mode == "fifo")
			}
		})
	}
}

func runBurst(b *testing.B, eng daspeak.Engine, fs []voicegate.Frame, cred string, need int, limit bool) {
	n := *burstSessions
	log := &callLog{Engine: eng}
	cfg := daspeak.Config{ModelHash: offline.ModelHash, ProgressInterval: -1}
	var lim *daspeak.Limiter
	if limit {
		lim = daspeak.NewLimiter(0)
		cfg.Limiter = lim
	}
	gate := make(chan struct{})
	ready := make(chan struct{}, n)
	results := make([]time.Time, n)
	types := make([]daspeak.EventType, n)
	var wg sync.WaitGroup
	for i := range n {
		r := &gatedReader{cycleReader: cycleReader{fs: fs, n: need, eof: true}, gateAt: need - 1, gate: gate}
		s, err := daspeak.Verify(r, log, cred, &cfg)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			go func() {
				// Signal once the session waits at the gate.
				for {
					time.Sleep(time.Millisecond)
					if r.i == r.gateAt {
						ready <- struct{}{}
						return
					}
				}
			}()
			for {
				ev, err := s.Next(context.Background())
				if err != nil || ev.IsTerminal() {
					results[i], types[i] = time.Now(), ev.Type
					return
				}
			}
		}()
	}
	for range n {
		<-ready
	}
	runtime.GC()
	cpu0 := cpuTime()
	t0 := time.Now()
	close(gate)
	wg.Wait()
	cpu := cpuTime() - cpu0
	cores := runtime.GOMAXPROCS(0)

	for i, t := range types {
		if t != daspeak.EventResultSuccess {
			b.Fatalf("session %d: %s", i, t)
		}
	}
	// Calls in arrival (start) order: their durations share the CPU.
	if len(log.starts) != n {
		b.Fatalf("%d engine calls for %d sessions", len(log.starts), n)
	}
	var callSum time.Duration
	for i := range log.starts {
		callSum += log.ends[i].Sub(log.starts[i])
	}
	perCall := cpu / time.Duration(n)
	// Each result against its share: the CPU of the calls admitted up to
	// and including it, divided among the cores, + 100 ms. In wall time
	// (late) and in the process's CPU time divided among the cores
	// (cpu-late: what the wall time is on an idle machine, so it holds on
	// a shared one too).
	late, cpuLate := time.Duration(-1<<62), time.Duration(-1<<62)
	cpuAt := make([]time.Duration, n)
	for k, end := range log.ends {
		share := perCall*time.Duration(k+1)/time.Duration(cores) + 100*time.Millisecond
		late = max(late, end.Sub(t0)-share)
		cpuAt[k] = (log.cpus[k] - cpu0) / time.Duration(cores)
		cpuLate = max(cpuLate, cpuAt[k]-share)
	}
	slices.Sort(cpuAt)
	// Displacement: finishing rank against arrival rank.
	ends := slices.Clone(log.ends)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, c int) bool { return ends[order[a]].Before(ends[order[c]]) })
	displaced := 0
	for rank, k := range order {
		displaced = max(displaced, abs(rank-k))
	}
	lat := make([]time.Duration, n)
	for i, t := range results {
		lat[i] = t.Sub(t0)
	}
	slices.Sort(lat)
	last := lat[n-1]
	bound := cpu/time.Duration(cores) + 100*time.Millisecond
	b.ReportMetric(cpu.Seconds(), "cpu-s")
	b.ReportMetric(bound.Seconds(), "bound-s")
	b.ReportMetric(last.Seconds(), "last-s")
	b.ReportMetric(lat[n/2].Seconds(), "p50-s")
	b.ReportMetric(lat[n*99/100].Seconds(), "p99-s")
	b.ReportMetric(late.Seconds(), "late-s")
	b.ReportMetric(cpuAt[n/2].Seconds(), "cpu-p50-s")
	b.ReportMetric(cpuAt[n-1].Seconds(), "cpu-last-s")
	b.ReportMetric(cpuLate.Seconds(), "cpu-late-s")
	b.ReportMetric(float64(displaced), "displaced")
	extra := ""
	if lim != nil {
		st := lim.Stats()
		extra = "; limiter max wait " + st.MaxWait.Round(time.Millisecond).String()
	}
	b.Logf("%d sessions, %d cores: CPU %v (%v per call), bound %v; wall: last result %v, p50 %v, p99 %v, worst result vs its share %v; "+
		"CPU/cores: last result %v, p50 %v, worst result vs its share %v; displaced %d%s",
		n, cores, cpu.Round(time.Millisecond), perCall.Round(time.Microsecond), bound.Round(time.Millisecond),
		last.Round(time.Millisecond), lat[n/2].Round(time.Millisecond), lat[n*99/100].Round(time.Millisecond), late.Round(time.Millisecond),
		cpuAt[n-1].Round(time.Millisecond), cpuAt[n/2].Round(time.Millisecond), cpuLate.Round(time.Millisecond), displaced, extra)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

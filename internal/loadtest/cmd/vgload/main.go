// Command vgload measures a stream server under N real-time Twilio Media
// Streams or AudioHook sessions over loopback: server CPU per
// stream-second, RSS per stream, delivery lag, dropped and late frames and
// AudioHook pong latency, the generator's own CPU and send delay, and
// which side fell behind. See package loadtest for what each figure means.
//
//	go run ./internal/loadtest/cmd/vgload -kind twilio -n 1000 -duration 20s
//	go run ./internal/loadtest/cmd/vgload -kind twilio,node -n 1000 -repeat 3 -table
//	go run ./internal/loadtest/cmd/vgload -kind floor,twilio -n 1000,2000,3000,5000 -table
//
// -n and -kind take comma-separated lists: for each count, each kind runs
// in turn (a separate run with a fresh server), -repeat times, so that
// servers compared in one command share the machine's conditions. -table
// ends with a Markdown table of every run.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/loadtest"
)

func main() {
	loadtest.MaybeServe()
	var (
		kinds    = flag.String("kind", "twilio", "servers, comma-separated: floor, twilio, audiohook, node")
		proto    = flag.String("proto", "", "traffic: twilio or audiohook (default: the server's)")
		ns       = flag.String("n", "100", "concurrent streams; a comma-separated list steps through counts")
		repeat   = flag.Int("repeat", 1, "runs of each kind at each count, interleaved")
		duration = flag.Duration("duration", 10*time.Second, "measured window")
		warmup   = flag.Duration("warmup", 3*time.Second, "wait between the last stream start and the window")
		ramp     = flag.Duration("ramp", 5*time.Second, "time over which stream starts are spread")
		senders  = flag.Int("senders", 0, "generator sender goroutines (default GOMAXPROCS)")
		coalesce = flag.Int("coalesce", 1, "NOT REAL TIME when > 1: write this many consecutive Twilio media messages of a stream with one write(2)")
		nagle    = flag.Bool("nagle", false, "NOT REAL TIME: turn TCP_NODELAY off on the generator's sockets")
		budget   = flag.Duration("budget", 150*time.Millisecond, "lag p99 budget that decides which side fell behind")
		cpus     = flag.String("cpus", "", `pin with taskset: "SERVER/GEN" CPU lists, e.g. "0/1"`)
		jsonOut  = flag.Bool("json", false, "print one JSON object per run instead of a line")
		table    = flag.Bool("table", false, "end with a Markdown table of every run")
		nodeDir  = flag.String("node-dir", "", "directory of consumer.js (default: the one beside the package source)")
		cpuProf  = flag.String("cpuprofile", "", "write the Go server's CPU profile of the measured window to this file")
		cadence  = flag.String("cadence", "", "twilio server read cadences, comma-separated (e.g. 60ms,100ms; -1ns: none): each count runs each kind at each cadence in turn (default: the server's)")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cfg := loadtest.Config{Proto: *proto, Duration: *duration, Warmup: *warmup, Ramp: *ramp,
		Senders: *senders, Coalesce: *coalesce, Nagle: *nagle, LagBudget: *budget, NodeDir: *nodeDir, CPUProfile: *cpuProf}
	if *cpus != "" {
		s, g, ok := strings.Cut(*cpus, "/")
		if !ok {
			fmt.Fprintln(os.Stderr, `vgload: -cpus wants "SERVER/GEN", e.g. "0/1"`)
			os.Exit(2)
		}
		cfg.ServerCPUs, cfg.GenCPUs = s, g
	}
	var counts []int
	for _, f := range strings.Split(*ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "vgload: -n %q: want positive integers\n", *ns)
			os.Exit(2)
		}
		counts = append(counts, n)
	}
	cadences := []time.Duration{0}
	if *cadence != "" {
		cadences = cadences[:0]
		for _, f := range strings.Split(*cadence, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(f))
			if err != nil || d == 0 {
				fmt.Fprintf(os.Stderr, "vgload: -cadence %q: want non-zero durations\n", *cadence)
				os.Exit(2)
			}
			cadences = append(cadences, d)
		}
	}
	var results []*loadtest.Result
	for _, n := range counts {
		for range max(*repeat, 1) {
			for _, k := range strings.Split(*kinds, ",") {
				k = strings.TrimSpace(k)
				cs := cadences
				if k != loadtest.KindTwilio {
					cs = []time.Duration{0}
				}
				for _, d := range cs {
					cfg.Kind, cfg.Streams, cfg.Cadence = k, n, d
					r, err := loadtest.Run(ctx, cfg)
					if err != nil {
						fmt.Fprintln(os.Stderr, "vgload:", err)
						os.Exit(1)
					}
					results = append(results, r)
					if *jsonOut {
						b, _ := json.Marshal(r)
						fmt.Println(string(b))
					} else {
						fmt.Println(r)
					}
				}
			}
		}
	}
	if *table {
		fmt.Print(loadtest.Table(results))
	}
}

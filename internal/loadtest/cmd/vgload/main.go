// Command vgload measures a stream server under N real-time Twilio Media
// Streams or AudioHook sessions over loopback: server CPU per
// stream-second, RSS per stream, delivery lag, dropped and late frames and
// AudioHook pong latency. See package loadtest for what each figure means.
//
//	go run ./internal/loadtest/cmd/vgload -kind twilio -n 1000 -duration 20s
//	go run ./internal/loadtest/cmd/vgload -kind node -n 1000,2000 -json
//
// -n takes a comma-separated list to step the stream count (a knee
// search); each count is a separate run with a fresh server.
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
		kind     = flag.String("kind", "twilio", "server: floor, twilio, audiohook or node")
		proto    = flag.String("proto", "", "traffic: twilio or audiohook (default: the server's)")
		ns       = flag.String("n", "100", "concurrent streams; a comma-separated list steps through counts")
		duration = flag.Duration("duration", 10*time.Second, "measured window")
		warmup   = flag.Duration("warmup", 3*time.Second, "wait between the last stream start and the window")
		ramp     = flag.Duration("ramp", 5*time.Second, "time over which stream starts are spread")
		senders  = flag.Int("senders", 0, "generator sender goroutines (default GOMAXPROCS)")
		cpus     = flag.String("cpus", "", `pin with taskset: "SERVER/GEN" CPU lists, e.g. "0/1"`)
		jsonOut  = flag.Bool("json", false, "print one JSON object per run instead of a line")
		nodeDir  = flag.String("node-dir", "", "directory of consumer.js (default: the one beside the package source)")
		cpuProf  = flag.String("cpuprofile", "", "write the Go server's CPU profile of the measured window to this file")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cfg := loadtest.Config{Kind: *kind, Proto: *proto, Duration: *duration, Warmup: *warmup, Ramp: *ramp,
		Senders: *senders, NodeDir: *nodeDir, CPUProfile: *cpuProf}
	if *cpus != "" {
		s, g, ok := strings.Cut(*cpus, "/")
		if !ok {
			fmt.Fprintln(os.Stderr, `vgload: -cpus wants "SERVER/GEN", e.g. "0/1"`)
			os.Exit(2)
		}
		cfg.ServerCPUs, cfg.GenCPUs = s, g
	}
	for _, f := range strings.Split(*ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "vgload: -n %q: want positive integers\n", *ns)
			os.Exit(2)
		}
		cfg.Streams = n
		r, err := loadtest.Run(ctx, cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "vgload:", err)
			os.Exit(1)
		}
		if *jsonOut {
			b, _ := json.Marshal(r)
			fmt.Println(string(b))
		} else {
			fmt.Println(r)
		}
	}
}

// Command demo runs voicegate's main job on one machine, offline and
// without credentials: a das-Peak emulator on the offline engine, a Twilio
// Media Streams endpoint, a Genesys Cloud AudioHook endpoint, a SQLite
// credential store and an agent console; then it plays recorded calls
// through both protocols (a register, a verify by the same caller, a verify
// by an impostor), prints each event as it happens and a summary.
//
//	go run ./examples/demo            # from the repository root
//	go run ./examples/demo -fast=false -keep
//
// It exits 0 when every call ended as expected, 1 when one did not, 2 when
// the demo could not start and 130 when interrupted before the calls were
// done. See README.md.
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var o options
	var verbose bool
	flag.BoolVar(&o.Fast, "fast", true, "play the calls' audio as fast as possible; -fast=false plays it in real time")
	flag.BoolVar(&o.Keep, "keep", false, "keep serving the agent console after the calls, until interrupted")
	flag.StringVar(&o.Addr, "addr", envOr("DEMO_ADDR", "127.0.0.1:0"), "listen address of the endpoints and the console (env DEMO_ADDR)")
	flag.StringVar(&o.DB, "db", os.Getenv("DEMO_DB"), "SQLite credential database (env DEMO_DB); default: a file in a temporary directory, removed at exit")
	flag.StringVar(&o.Testdata, "testdata", "", "directory holding voices/*.wav (default: testdata/ of the module)")
	flag.DurationVar(&o.Shutdown, "shutdown-timeout", 5*time.Second, "graceful shutdown timeout")
	flag.BoolVar(&verbose, "v", false, "log debug messages")
	flag.Parse()

	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	o.Out = os.Stdout

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(mainRun(ctx, o))
}

// mainRun runs the demo and returns the exit code.
func mainRun(ctx context.Context, o options) int {
	outcomes, err := run(ctx, o)
	if err != nil {
		o.Log.Error("demo failed", "err", err)
		return 2
	}
	ok := len(outcomes) > 0
	for _, oc := range outcomes {
		ok = ok && oc.ok()
	}
	switch {
	case ok:
		return 0
	case ctx.Err() != nil:
		return 130 // interrupted
	}
	return 1
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

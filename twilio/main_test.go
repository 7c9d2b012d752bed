package twilio

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(loadGenEnv); addr != "" {
		// The test binary re-run as the load generator of
		// BenchmarkRealtimeStreams, in its own process so that the
		// server's CPU time is measured alone.
		os.Exit(runLoadGenerator(addr))
	}
	goleak.VerifyTestMain(m)
}

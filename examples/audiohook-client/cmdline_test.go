package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestCommandLine runs the command as a user would, with a command line
// it refuses: exit status 2 and the error printed once (the outcomes of
// agent.ParseFlags and agent.ExitCode are tested in daspeak/agent).
func TestCommandLine(t *testing.T) {
	if os.Getenv("VG_TEST_RUN_MAIN") == "1" {
		os.Args = append([]string{"audiohook-client"}, os.Args[len(os.Args)-2:]...)
		main()
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCommandLine$", "--", "-chunk", "5ms")
	cmd.Env = append(os.Environ(), "VG_TEST_RUN_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("%v, want exit status 2:\n%s", err, stderr.String())
	}
	if n := strings.Count(stderr.String(), "audiohook-client: -chunk 5ms: want 20ms to 200ms"); n != 1 {
		t.Errorf("%q printed %d times, want once:\n%s", "audiohook-client: -chunk 5ms: want 20ms to 200ms", n, stderr.String())
	}
	if strings.Contains(stderr.String(), "Usage of") {
		t.Errorf("a value the command checks printed the usage:\n%s", stderr.String())
	}
}

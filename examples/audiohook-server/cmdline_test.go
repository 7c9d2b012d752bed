package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// runMainEnv makes the test binary run main with the arguments after
// "--" (TestCommandLine runs it so).
const runMainEnv = "VG_TEST_RUN_MAIN"

// TestCommandLine runs the command as a user would and checks what a bad
// command line prints: the flag package's error and the usage, each once,
// and exit status 2; -h prints the usage once and exits 0. A value the
// command checks itself is printed once, without the usage, with status 2.
func TestCommandLine(t *testing.T) {
	if os.Getenv(runMainEnv) == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"audiohook-server"}, os.Args[i+1:]...)
				break
			}
		}
		main()
		os.Exit(0)
	}
	for _, c := range []struct {
		args         []string
		code         int
		once, absent []string
	}{
		{[]string{"-bogus"}, 2, []string{"flag provided but not defined: -bogus", "Usage of audiohook-server:"}, []string{"audiohook-server: flag"}},
		{[]string{"-buffer", "x"}, 2, []string{`invalid value "x" for flag -buffer`, "Usage of audiohook-server:"}, []string{"audiohook-server: invalid"}},
		{[]string{"-h"}, 0, []string{"Usage of audiohook-server:"}, []string{"audiohook-server: "}},
		{[]string{"-auth-failure", "drop"}, 2, []string{`audiohook-server: -auth-failure "drop": want`}, []string{"Usage of"}},
	} {
		cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestCommandLine$", "--"}, c.args...)...)
		cmd.Env = append(os.Environ(), runMainEnv+"=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		out := stderr.String()
		if code != c.code {
			t.Errorf("%v: exit status %d, want %d\n%s", c.args, code, c.code, out)
		}
		for _, s := range c.once {
			if n := strings.Count(out, s); n != 1 {
				t.Errorf("%v: %q printed %d times, want once:\n%s", c.args, s, n, out)
			}
		}
		for _, s := range c.absent {
			if strings.Contains(out, s) {
				t.Errorf("%v: %q printed:\n%s", c.args, s, out)
			}
		}
	}
}

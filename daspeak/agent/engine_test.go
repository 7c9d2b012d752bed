package agent_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/daspeak/daspeaktest"
)

// TestEngineConfigLimiter: the das-Peak client New returns takes its
// calls through the Limiter the sessions share, so that a request waiting
// out a 429 gives its slot back (daspeak's TestClientRateLimitLimiter).
func TestEngineConfigLimiter(t *testing.T) {
	srv := daspeaktest.NewServer(daspeaktest.FakeEngine{}, &daspeaktest.Options{APIKey: "k3y"})
	t.Cleanup(srv.Close)
	cfg := agent.EngineConfig{URL: srv.URL(), APIKey: "k3y"}
	cfg.Limiter = cfg.NewLimiter(0)
	e, _, err := cfg.New()
	if err != nil {
		t.Fatal(err)
	}
	cl, ok := e.(*daspeak.Client)
	if !ok {
		t.Fatalf("engine %T", e)
	}
	if err := cl.Alive(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := cfg.Limiter.Stats(); st.Admitted != 1 || st.InFlight != 0 {
		t.Fatalf("limiter %+v: the client's call did not go through it", st)
	}
	if got := (agent.EngineConfig{}).NewLimiter(0).Stats().Limit; got != 16 {
		t.Errorf("das-Peak default %d slots, want 16", got)
	}
}

// TestExitCode: each outcome of a command's run gets its exit status and
// is printed at most once.
func TestExitCode(t *testing.T) {
	self := errors.New("-speed 9: want 1 to 4")
	for _, c := range []struct {
		name  string
		err   error
		code  int
		print string
	}{
		{"success", nil, 0, ""},
		{"help", flag.ErrHelp, 0, ""},
		{"flag error printed by the flag package", &agent.UsageError{Err: errors.New("flag provided but not defined: -x"), Printed: true}, 2, ""},
		{"value the command checked", &agent.UsageError{Err: self}, 2, "cmd: -speed 9: want 1 to 4\n"},
		{"wrapped usage error", fmt.Errorf("config: %w", &agent.UsageError{Err: self}), 2, "cmd: config: -speed 9: want 1 to 4\n"},
		{"run error", errors.New("listen: address in use"), 1, "cmd: listen: address in use\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := agent.ExitCode(&out, "cmd", c.err); code != c.code || out.String() != c.print {
				t.Errorf("ExitCode = %d, printed %q; want %d, %q", code, out.String(), c.code, c.print)
			}
		})
	}
}

// TestParseFlags: the flag package's own errors come back as printed
// usage errors, -h as flag.ErrHelp.
func TestParseFlags(t *testing.T) {
	for _, c := range []struct {
		args    []string
		usage   bool // a printed *agent.UsageError
		help    bool
		printed string
	}{
		{[]string{"-n", "3"}, false, false, ""},
		{[]string{"-n", "x"}, true, false, `invalid value "x" for flag -n`},
		{[]string{"-bogus"}, true, false, "flag provided but not defined: -bogus"},
		{[]string{"-h"}, false, true, "Usage of cmd:"},
	} {
		var out bytes.Buffer
		fs := flag.NewFlagSet("cmd", flag.ContinueOnError)
		fs.SetOutput(&out)
		fs.Int("n", 0, "a number")
		err := agent.ParseFlags(fs, c.args)
		var ue *agent.UsageError
		if got := errors.As(err, &ue) && ue.Printed; got != c.usage {
			t.Errorf("%v: err %v, want a printed usage error: %v", c.args, err, c.usage)
		}
		if errors.Is(err, flag.ErrHelp) != c.help {
			t.Errorf("%v: err %v, want help: %v", c.args, err, c.help)
		}
		if !strings.Contains(out.String(), c.printed) || (c.printed == "") != (out.Len() == 0) {
			t.Errorf("%v: printed %q, want %q", c.args, out.String(), c.printed)
		}
		if c.usage && agent.ExitCode(io.Discard, "cmd", err) != 2 {
			t.Errorf("%v: exit status is not 2", c.args)
		}
	}
}

package agent

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/offline"
)

// EngineConfig selects the biometric engine: the das-Peak REST service
// (default) or the offline engine.
type EngineConfig struct {
	// Offline selects the embedded offline engine; no network, no key.
	Offline bool
	// URL is a das-Peak service base URL ("https://…/daspeak/v1"), for a
	// self-hosted deployment or the emulator. It overrides Environment.
	URL string
	// Environment is a Veridas cloud deployment: sandbox-eu (default),
	// sandbox-us, production-eu or production-us.
	Environment string
	// APIKey is the das-Peak "apikey". It is read from the environment
	// only, never from a flag, so it does not show in process listings.
	APIKey string
	// Limiter, when set, is the bound on engine calls that the sessions
	// share (daspeak.Config.Limiter): New gives it to the das-Peak client
	// too, so a request waiting out a 429's Retry-After gives its slot
	// back instead of holding it. See NewLimiter.
	Limiter *daspeak.Limiter
}

// NewLimiter returns a Limiter of n engine calls at once, or when n <= 0
// GOMAXPROCS for the CPU-bound offline engine and 16 for das-Peak.
func (c EngineConfig) NewLimiter(n int) *daspeak.Limiter {
	if n <= 0 && !c.Offline {
		n = 16
	}
	return daspeak.NewLimiter(n)
}

// Flags registers -offline, -daspeak-url and -daspeak-env on fs with
// defaults from DASPEAK_OFFLINE, DASPEAK_URL and DASPEAK_ENVIRONMENT, and
// reads DASPEAK_APIKEY.
func (c *EngineConfig) Flags(fs *flag.FlagSet) {
	fs.BoolVar(&c.Offline, "offline", EnvBool("DASPEAK_OFFLINE", false), "use the embedded offline engine instead of das-Peak (env DASPEAK_OFFLINE)")
	fs.StringVar(&c.URL, "daspeak-url", os.Getenv("DASPEAK_URL"), "das-Peak base URL, e.g. https://host/daspeak/v1 (env DASPEAK_URL)")
	fs.StringVar(&c.Environment, "daspeak-env", Env("DASPEAK_ENVIRONMENT", "sandbox-eu"), "Veridas environment: sandbox-eu, sandbox-us, production-eu, production-us (env DASPEAK_ENVIRONMENT)")
	c.APIKey = os.Getenv("DASPEAK_APIKEY")
}

// New returns the configured engine and a description of it that is safe
// to log (it never contains the API key).
func (c EngineConfig) New() (daspeak.Engine, string, error) {
	if c.Offline {
		return offline.New(nil), "offline", nil
	}
	opts := &daspeak.ClientOptions{BaseURL: c.URL, APIKey: c.APIKey, Limiter: c.Limiter}
	if c.URL == "" {
		env, ok := parseEnvironment(c.Environment)
		if !ok {
			return nil, "", fmt.Errorf("unknown das-Peak environment %q", c.Environment)
		}
		opts.Environment = env
		if c.APIKey == "" {
			return nil, "", fmt.Errorf("das-Peak %s needs DASPEAK_APIKEY (or use -offline)", env)
		}
	}
	cl, err := daspeak.NewClient(opts)
	if err != nil {
		return nil, "", err
	}
	return cl, "das-Peak " + cl.BaseURL(), nil
}

func parseEnvironment(s string) (daspeak.Environment, bool) {
	for _, e := range []daspeak.Environment{daspeak.SandboxEU, daspeak.SandboxUS, daspeak.ProductionEU, daspeak.ProductionUS} {
		if e.String() == s {
			return e, true
		}
	}
	return 0, false
}

// SessionFlags are the das-Peak Streaming session parameters an example
// exposes.
type SessionFlags struct {
	AudioTotalDuration    time.Duration
	AuthenticityThreshold float64
	ScoreThreshold        float64
	ModelHash             string
}

// Flags registers -audio-total-duration, -authenticity-threshold,
// -score-threshold and -model-hash on fs (env DASPEAK_MODEL for the hash).
// Zero values select the daspeak defaults.
func (s *SessionFlags) Flags(fs *flag.FlagSet) {
	fs.DurationVar(&s.AudioTotalDuration, "audio-total-duration", 0, "net speech to collect before the biometric call (0: 5s)")
	fs.Float64Var(&s.AuthenticityThreshold, "authenticity-threshold", 0, "anti-spoofing threshold (0: 0.8)")
	fs.Float64Var(&s.ScoreThreshold, "score-threshold", 0, "verification score threshold (0: 0.5)")
	fs.StringVar(&s.ModelHash, "model-hash", os.Getenv("DASPEAK_MODEL"), "das-Peak model hash; empty picks the newest (env DASPEAK_MODEL)")
}

// Config returns a daspeak.Config with these parameters.
func (s SessionFlags) Config() *daspeak.Config {
	return &daspeak.Config{
		AudioTotalDuration:    s.AudioTotalDuration,
		AuthenticityThreshold: s.AuthenticityThreshold,
		ScoreThreshold:        s.ScoreThreshold,
		ModelHash:             s.ModelHash,
	}
}

// Env returns the environment variable name, or def when it is unset or
// empty.
func Env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// EnvBool returns the boolean environment variable name, or def when it is
// unset or not a boolean.
func EnvBool(name string, def bool) bool {
	if b, err := strconv.ParseBool(os.Getenv(name)); err == nil {
		return b
	}
	return def
}

// UsageError is a command line a command refused: exit status 2. Printed
// reports that the flag package has printed it already, with the usage
// (ParseFlags); a value the command checks itself is not, and ExitCode
// prints it.
type UsageError struct {
	Err     error
	Printed bool
}

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// ParseFlags parses args with fs (made with flag.ContinueOnError). It
// returns nil, flag.ErrHelp for -h (the usage was printed), or a
// *UsageError with Printed set (the flag package printed the error and
// the usage).
func ParseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &UsageError{Err: err, Printed: true}
}

// ExitCode reports err on stderr once, as "name: err", and returns a
// command's exit status: 0 for nil and flag.ErrHelp (the usage was
// printed), 2 for a *UsageError (printed only unless Printed), 1 for any
// other error.
func ExitCode(stderr io.Writer, name string, err error) int {
	var ue *UsageError
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		if !ue.Printed {
			fmt.Fprintln(stderr, name+":", err)
		}
		return 2
	}
	fmt.Fprintln(stderr, name+":", err)
	return 1
}

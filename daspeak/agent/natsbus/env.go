package natsbus

import (
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
)

// EnvOptions returns the NATS connection options for credentials taken
// from the environment, so that no secret is ever a command-line flag:
//
//	NATS_CREDS        path of a .creds file (JWT and NKey seed)
//	NATS_NKEY         path of an NKey seed file
//	NATS_USER, NATS_PASSWORD
//	NATS_TOKEN
//	NATS_CA           path of a CA certificate for TLS (tls:// URLs)
//
// Several may be set; the server decides which it accepts. It returns
// ErrConfig when a named file cannot be used.
func EnvOptions() ([]nats.Option, error) {
	var opts []nats.Option
	if p := os.Getenv("NATS_CREDS"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w: NATS_CREDS: %w", ErrConfig, err)
		}
		opts = append(opts, nats.UserCredentials(p))
	}
	if p := os.Getenv("NATS_NKEY"); p != "" {
		o, err := nats.NkeyOptionFromSeed(p)
		if err != nil {
			return nil, fmt.Errorf("%w: NATS_NKEY: %w", ErrConfig, err)
		}
		opts = append(opts, o)
	}
	if u := os.Getenv("NATS_USER"); u != "" {
		opts = append(opts, nats.UserInfo(u, os.Getenv("NATS_PASSWORD")))
	}
	if t := os.Getenv("NATS_TOKEN"); t != "" {
		opts = append(opts, nats.Token(t))
	}
	if p := os.Getenv("NATS_CA"); p != "" {
		opts = append(opts, nats.RootCAs(p))
	}
	return opts, nil
}

// Package natsbustest starts a private nats-server with JetStream for
// tests: its own loopback port and store folder, stopped at the end of
// the test.
package natsbustest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Binary is where Debian's nats-server package installs the server.
const Binary = "/usr/sbin/nats-server"

// Find returns the nats-server binary: $NATS_SERVER_BIN, Binary, or the
// first nats-server on PATH; "" when there is none (or NATS_SERVER_BIN
// names no file, e.g. "none" to skip the NATS tests).
func Find() string {
	if p := os.Getenv("NATS_SERVER_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return ""
		}
		return p
	}
	if _, err := os.Stat(Binary); err == nil {
		return Binary
	}
	p, _ := exec.LookPath("nats-server")
	return p
}

// Server is a running nats-server.
type Server struct {
	// URL is nats://127.0.0.1:<port>.
	URL string
	cmd *exec.Cmd
}

// Start starts a nats-server with JetStream on a free loopback port and a
// store folder in t.TempDir(), and stops it when the test ends. It skips
// the test, with a message, when no nats-server is installed (Debian
// package nats-server; .ci/run installs it).
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Find()
	if bin == "" {
		t.Skip("nats-server is not installed (Debian package nats-server, or set NATS_SERVER_BIN): skipping the NATS tests")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", fmt.Sprint(port), "-js", "-sd", filepath.Join(dir, "js"))
	logf, err := os.Create(filepath.Join(dir, "nats-server.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	s := &Server{URL: fmt.Sprintf("nats://127.0.0.1:%d", port), cmd: cmd}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("nats-server did not listen on %d: %v\n%s", port, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

package wsconn

import (
	"syscall"
	"testing"
	"time"
)

// rcvlowat returns the SO_RCVLOWAT of c's socket.
func rcvlowat(t *testing.T, c *Conn) int {
	t.Helper()
	if c.quiet == nil || c.quiet.rc == nil {
		t.Fatal("quiet reads are off on a TCP connection")
	}
	var v int
	var err error
	if cerr := c.quiet.rc.Control(func(fd uintptr) {
		v, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT)
	}); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// With a read cadence the socket's SO_RCVLOWAT is raised for the pause and
// stays raised while each read finds data; a read that finds nothing lowers
// it to 1 before it waits, so a message sent to an idle connection is
// still read.
func TestQuietReadsDuringCadence(t *testing.T) {
	s := newServer(t, nil)
	rc := dialRaw(t, s, nil)
	c := s.conn(t)
	if got := rcvlowat(t, c); got > 1 {
		t.Fatalf("SO_RCVLOWAT %d before any pause, want the default (0 or 1: one byte)", got)
	}
	c.SetReadCadence(30 * time.Millisecond)
	for i := range 3 {
		rc.write(t, fin(opBinary, []byte{byte(i)}))
	}
	for i := range 3 {
		_, p, err := c.ReadMessage()
		if err != nil || len(p) != 1 || p[0] != byte(i) {
			t.Fatalf("message %d: %q, %v", i, p, err)
		}
	}
	if got := rcvlowat(t, c); got != quietLowat {
		t.Fatalf("SO_RCVLOWAT %d after reads that found data, want %d", got, quietLowat)
	}

	errc := make(chan error, 1)
	go func() {
		_, p, err := c.ReadMessage()
		if err == nil && string(p) != "late" {
			t.Errorf("read %q, want late", p)
		}
		errc <- err
	}()
	// The read pauses, finds nothing and waits with the mark lowered.
	deadline := time.Now().Add(10 * time.Second)
	for rcvlowat(t, c) > 1 {
		if time.Now().After(deadline) {
			t.Fatal("SO_RCVLOWAT not lowered while the reader waits for data")
		}
		time.Sleep(5 * time.Millisecond)
	}
	rc.write(t, fin(opBinary, []byte("late")))
	if err := waitErr(t, errc); err != nil {
		t.Fatalf("ReadMessage: %v", err)
	}
}

// Without a read cadence the mark is never raised. (Linux reports the
// default mark as 0 or 1; both mean one byte.)
func TestQuietReadsOffWithoutCadence(t *testing.T) {
	s := newServer(t, nil)
	rc := dialRaw(t, s, nil)
	c := s.conn(t)
	rc.write(t, fin(opBinary, []byte("a")))
	if _, _, err := c.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	if got := rcvlowat(t, c); got > 1 {
		t.Fatalf("SO_RCVLOWAT %d without a cadence, want the default (0 or 1)", got)
	}
}

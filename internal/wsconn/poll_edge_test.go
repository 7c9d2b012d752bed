//go:build linux

package wsconn

import (
	"os"
	"runtime"
	"testing"
	"time"
)

func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// A far-future read deadline (year 9999, a common "never") does not expire
// at once on a polled connection, as with *net.TCPConn: time.UnixNano
// overflows past 2262.
func TestPollFarFutureDeadline(t *testing.T) {
	for _, iv := range []time.Duration{0, time.Millisecond} {
		s := newServer(t, &AcceptOptions{PollInterval: iv})
		rc := dialRaw(t, s, nil)
		c := s.conn(t)
		_ = c.SetReadDeadline(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
		go func() { time.Sleep(50 * time.Millisecond); _, _ = rc.nc.Write(fin(opText, []byte("x"))) }()
		if _, _, err := c.ReadMessage(); err != nil {
			t.Errorf("interval %v: read with a year-9999 deadline: %v", iv, err)
		}
	}
}

// A polled connection dropped without Close has its socket closed once it
// is unreachable, as the runtime does for an abandoned *net.TCPConn.
func TestPollAbandonedConnClosed(t *testing.T) {
	for _, iv := range []time.Duration{0, time.Millisecond} {
		s := newServer(t, &AcceptOptions{PollInterval: iv})
		before := openFDs(t)
		const n = 20
		for range n {
			_ = dialRaw(t, s, nil)
			<-s.conns // dropped without Close
		}
		time.Sleep(50 * time.Millisecond)
		for range 5 {
			runtime.GC()
			time.Sleep(20 * time.Millisecond)
		}
		// The n client sockets stay open; the n server sockets must not.
		if left := openFDs(t) - before - n; left >= n {
			t.Errorf("interval %v: %d server sockets still open after their Conns were dropped", iv, left)
		}
	}
}

// A polled Conn with a fast path, dropped without Close, is closed too:
// the poller's shard keeps the pollConn, which must not keep the Conn
// (its fast path) reachable.
func TestPollAbandonedFastPathConnClosed(t *testing.T) {
	s := newServer(t, &AcceptOptions{PollInterval: time.Millisecond})
	before := openFDs(t)
	const n = 20
	for range n {
		_ = dialRaw(t, s, nil)
		c := <-s.conns
		if !c.SetFastPath(func([]byte) bool { return true }) {
			t.Fatal("SetFastPath reported false on a polled connection")
		}
		// dropped without Close
	}
	time.Sleep(50 * time.Millisecond)
	for range 5 {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	// The n client sockets stay open; the n server sockets must not.
	if left := openFDs(t) - before - n; left >= n {
		t.Errorf("%d server sockets still open after their Conns (with a fast path) were dropped", left)
	}
}

package wsconn

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestReadCadenceBatches checks that with a read cadence every message
// arrives whole and in order, and that the reader goes to the network (and
// calls the flush function) at most once per cadence period, not once per
// message: the pauses are timer waits of at least the cadence each.
func TestReadCadenceBatches(t *testing.T) {
	const (
		msgs    = 40
		spacing = 5 * time.Millisecond
		cadence = 50 * time.Millisecond
	)
	s := newServer(t, nil)
	rc := dialRaw(t, s, nil)
	c := s.conn(t)
	flushes := 0
	c.SetFlush(func() { flushes++ })
	c.SetReadCadence(cadence)
	go func() {
		for i := range msgs {
			if _, err := rc.nc.Write(fin(opBinary, fmt.Appendf(nil, "message %d", i))); err != nil {
				return
			}
			time.Sleep(spacing)
		}
	}()
	start := time.Now()
	for i := range msgs {
		typ, p, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if want := fmt.Sprintf("message %d", i); typ != MessageBinary || string(p) != want {
			t.Fatalf("got %v %q, want %q", typ, p, want)
		}
	}
	elapsed := time.Since(start)
	// One flush before each pause, and at most one more before a read
	// that finds nothing: bounded by the number of periods, whatever the
	// scheduling.
	if limit := 2 * (int(elapsed/cadence) + 1); flushes > limit {
		t.Errorf("%d flushes for %d messages over %v, want at most %d (one per cadence period)", flushes, msgs, elapsed, limit)
	}
	if flushes == 0 {
		t.Error("the flush function was never called")
	}
}

// A pause under way ends at once with CloseNow, Close and an expired read
// deadline; the pause does not hold the connection open.
func TestReadCadencePauseInterrupted(t *testing.T) {
	s := newServer(t, nil)

	t.Run("CloseNow", func(t *testing.T) {
		_ = dialRaw(t, s, nil)
		c := s.conn(t)
		c.SetReadCadence(time.Hour)
		errc := readInBackground(c)
		time.Sleep(10 * time.Millisecond) // let the read begin its pause
		_ = c.CloseNow()
		if err := waitErr(t, errc); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadMessage error %v, want net.ErrClosed", err)
		}
	})

	t.Run("Close", func(t *testing.T) {
		rc := dialRaw(t, s, nil)
		c := s.conn(t)
		c.SetReadCadence(time.Hour)
		errc := readInBackground(c)
		time.Sleep(10 * time.Millisecond)
		go func() {
			// The peer answers the close handshake.
			if code := rc.readClose(t); code == StatusNormalClosure {
				_, _ = rc.nc.Write(fin(opClose, closePayload(StatusNormalClosure, "")))
			}
		}()
		closed := make(chan error, 1)
		go func() { closed <- c.Close(StatusNormalClosure, "") }()
		var ce *CloseError
		if err := waitErr(t, errc); !errors.As(err, &ce) || ce.Code != StatusNormalClosure {
			t.Fatalf("ReadMessage error %v, want the peer's close 1000", err)
		}
		if err := waitErr(t, closed); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})

	t.Run("SetReadCadence(0)", func(t *testing.T) {
		rc := dialRaw(t, s, nil)
		c := s.conn(t)
		c.SetReadCadence(time.Hour)
		errc := readInBackground(c)
		time.Sleep(10 * time.Millisecond)
		rc.write(t, fin(opBinary, []byte("now")))
		c.SetReadCadence(0)
		if err := waitErr(t, errc); err != nil {
			t.Fatalf("ReadMessage: %v", err)
		}
	})

	t.Run("SetReadDeadline", func(t *testing.T) {
		_ = dialRaw(t, s, nil)
		c := s.conn(t)
		c.SetReadCadence(time.Hour)
		errc := readInBackground(c)
		time.Sleep(10 * time.Millisecond)
		_ = c.SetReadDeadline(time.Unix(1, 0))
		if err := waitErr(t, errc); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("ReadMessage error %v, want os.ErrDeadlineExceeded", err)
		}
	})
}

func waitErr(t *testing.T, c <-chan error) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no result within 10 s: the cadence pause was not interrupted")
		return nil
	}
}

// Pauses allocate nothing once the connection's timer exists.
func TestReadCadenceAllocs(t *testing.T) {
	s := newServer(t, nil)
	rc := dialRaw(t, s, nil)
	c := s.conn(t)
	c.SetReadCadence(time.Microsecond)
	c.SetFlush(func() {})
	wire := fin(opBinary, bytes.Repeat([]byte{0x55}, 320))
	var bad error
	step := func() {
		rc.write(t, wire)
		if _, p, err := c.ReadMessage(); err != nil || len(p) != 320 {
			bad = fmt.Errorf("%d bytes, %v", len(p), err)
		}
	}
	step()
	if n := testing.AllocsPerRun(100, step); n != 0 {
		t.Errorf("%v allocations per message with a read cadence, want 0", n)
	}
	if bad != nil {
		t.Fatal(bad)
	}
}

// BenchmarkCadencePause measures cadence pauses with nothing buffered
// (timer re-arm, the wait and the wake-up) on 1,000 connections pausing
// together at a 2 ms cadence, as under load where every connection's pause
// ends at the same instant. The wait is idle time, so the figure that
// counts is cpu-ns/op, the process's CPU time (getrusage) per pause.
func BenchmarkCadencePause(b *testing.B) {
	const conns = 1000
	cs := make([]*Conn, conns)
	for i := range cs {
		nc, peer := net.Pipe()
		defer peer.Close()
		cs[i] = newConn(nc, bufio.NewReader(nc), bufio.NewWriter(nc), "", time.Second)
		defer cs[i].CloseNow()
		cs[i].SetReadCadence(2 * time.Millisecond)
	}
	rounds := max(b.N/conns, 1)
	b.ResetTimer()
	cpu0 := cpuTime(b)
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			for range rounds {
				if !c.pause() {
					panic("pause reported the connection closed")
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(rounds*conns), "cpu-ns/op")
}

// cpuTime is the process's user and system CPU time.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// readInBackground calls c.ReadMessage in a goroutine and sends its error.
func readInBackground(c *Conn) <-chan error {
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.ReadMessage()
		errc <- err
	}()
	return errc
}

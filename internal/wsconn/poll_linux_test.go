package wsconn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func pollServer(t *testing.T, o AcceptOptions) *server {
	t.Helper()
	if o.PollInterval == 0 {
		o.PollInterval = time.Millisecond
	}
	return newServer(t, &o)
}

// pollConnOf fails the test unless c is served by the shared poller.
func pollConnOf(t *testing.T, c *Conn) *pollConn {
	t.Helper()
	pc, ok := c.nc.(*pollConn)
	if !ok {
		t.Fatalf("connection is a %T, want *pollConn", c.nc)
	}
	return pc
}

// A ping is answered while the reader waits on the shared poller, and a
// message sent after it is read: the reader is woken by the poller's
// token, without data of its own to read first.
func TestPollPingAnswered(t *testing.T) {
	s := pollServer(t, AcceptOptions{PollInterval: 2 * time.Millisecond})
	rc := dialRaw(t, s, nil)
	c := s.conn(t)
	pollConnOf(t, c)
	got := make(chan string, 1)
	go func() {
		_, p, err := c.ReadMessage()
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(p)
	}()
	for i := range 5 {
		time.Sleep(10 * time.Millisecond) // the reader is parked
		rc.write(t, fin(opPing, []byte{byte(i)}))
		f, err := rc.readFrame()
		if err != nil || f.op != opPong || !bytes.Equal(f.payload, []byte{byte(i)}) {
			t.Fatalf("ping %d: %+v, %v", i, f, err)
		}
	}
	rc.write(t, fin(opText, []byte("after")))
	if p := <-got; p != "after" {
		t.Fatalf("read %q, want after", p)
	}
}

// Many connections on the poller receive every message, in order, when the
// client splits frames at random byte boundaries and sends with random
// pauses: no wake-up is lost when data arrives between a read and the
// reader's wait.
func TestPollNoLostWakeups(t *testing.T) {
	s := pollServer(t, AcceptOptions{})
	const conns, msgs = 8, 300
	var wg sync.WaitGroup
	for i := range conns {
		rc := dialRaw(t, s, nil)
		c := s.conn(t)
		pollConnOf(t, c)
		var wire []byte
		for j := range msgs {
			n := 1 + (i*31+j*17)%2000
			wire = append(wire, fin(opBinary, bytes.Repeat([]byte{byte(j)}, n))...)
		}
		wg.Add(2)
		go func(seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 1))
			b := wire
			for len(b) > 0 {
				k := min(len(b), 1+r.IntN(700))
				if _, err := rc.nc.Write(b[:k]); err != nil {
					t.Error(err)
					return
				}
				b = b[k:]
				if r.IntN(4) == 0 {
					time.Sleep(time.Duration(r.IntN(3000)) * time.Microsecond)
				}
			}
		}(uint64(i))
		go func(i int) {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			for j := range msgs {
				_, p, err := c.ReadMessage()
				if err != nil {
					t.Errorf("conn %d message %d: %v", i, j, err)
					return
				}
				n := 1 + (i*31+j*17)%2000
				if len(p) != n || p[0] != byte(j) || p[n-1] != byte(j) {
					t.Errorf("conn %d message %d: %d bytes starting %d, want %d of %d", i, j, len(p), p[0], n, j)
					return
				}
			}
		}(i)
	}
	wg.Wait()
}

// The peer's end of the connection ends a read waiting on the poller, and
// a close frame is answered and reported.
func TestPollEOFAndClose(t *testing.T) {
	s := pollServer(t, AcceptOptions{})
	rc := dialRaw(t, s, nil)
	c := s.conn(t)
	pollConnOf(t, c)
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.ReadMessage()
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	_ = rc.nc.Close()
	if err := <-errc; !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read after the peer's FIN: %v, want io.ErrUnexpectedEOF", err)
	}

	rc = dialRaw(t, s, nil)
	c = s.conn(t)
	rc.write(t, fin(opClose, closePayload(StatusGoingAway, "bye")))
	_, _, err := c.ReadMessage()
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != StatusGoingAway || ce.Reason != "bye" {
		t.Fatalf("read of a close frame: %v", err)
	}
	if code := rc.readClose(t); code != StatusGoingAway {
		t.Fatalf("close echoed with %d", code)
	}
}

// CloseNow and an expired read deadline end a read waiting on the poller.
func TestPollCloseNowAndDeadline(t *testing.T) {
	s := pollServer(t, AcceptOptions{})
	_ = dialRaw(t, s, nil)
	c := s.conn(t)
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.ReadMessage()
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	_ = c.CloseNow()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read ended by CloseNow: %v, want net.ErrClosed", err)
	}

	_ = dialRaw(t, s, nil)
	c = s.conn(t)
	go func() {
		_, _, err := c.ReadMessage()
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	_ = c.SetReadDeadline(time.Unix(1, 0))
	if err := <-errc; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read ended by a past deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	_ = dialRaw(t, s, nil)
	c = s.conn(t)
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, _, err := c.ReadMessage(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v, want os.ErrDeadlineExceeded", err)
	}
}

// A write blocked on a peer that does not read waits on the poller for
// room, and is ended by its context; a peer that reads lets it finish.
func TestPollBlockedWrite(t *testing.T) {
	s := pollServer(t, AcceptOptions{})
	rc := dialRaw(t, s, nil)
	c := s.conn(t)
	pollConnOf(t, c)
	big := bytes.Repeat([]byte{7}, 8<<20)
	done := make(chan error, 1)
	go func() { done <- c.WriteMessage(context.Background(), MessageBinary, big) }()
	time.Sleep(20 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("an 8 MiB write to a peer that does not read returned %v", err)
	default:
	}
	f, err := rc.readFrame()
	if err != nil || len(f.payload) != len(big) {
		t.Fatalf("frame of %d bytes, %v", len(f.payload), err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := c.WriteMessage(ctx, MessageBinary, big); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write past its context's deadline: %v", err)
	}
}

// A read cadence on a polled connection keeps the quiet reads: the mark is
// raised for the pause and messages are still all read.
func TestPollWithCadence(t *testing.T) {
	s := pollServer(t, AcceptOptions{})
	rc := dialRaw(t, s, nil)
	c := s.conn(t)
	pollConnOf(t, c)
	c.SetReadCadence(20 * time.Millisecond)
	for round := range 3 {
		for i := range 3 {
			rc.write(t, fin(opBinary, []byte{byte(round), byte(i)}))
		}
		for i := range 3 {
			_, p, err := c.ReadMessage()
			if err != nil || len(p) != 2 || p[0] != byte(round) || p[1] != byte(i) {
				t.Fatalf("round %d message %d: %q, %v", round, i, p, err)
			}
		}
		if got := rcvlowat(t, c); got != quietLowat && round > 0 {
			t.Fatalf("SO_RCVLOWAT %d after a pause, want %d", got, quietLowat)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// Reading from the shared poller allocates nothing per message.
func TestPollReadAllocs(t *testing.T) {
	s := pollServer(t, AcceptOptions{})
	rc := dialRaw(t, s, nil)
	c := s.conn(t)
	pollConnOf(t, c)
	wire := fin(opBinary, bytes.Repeat([]byte{0x55}, 3200))
	var bad error
	step := func() {
		rc.write(t, wire)
		if _, p, err := c.ReadMessage(); err != nil || len(p) != 3200 {
			bad = err
		}
	}
	step()
	if n := testing.AllocsPerRun(200, step); n != 0 {
		t.Errorf("%v allocations per message, want 0", n)
	}
	if bad != nil {
		t.Fatal(bad)
	}
}

// The poller's goroutine ends once its last connection is closed (goleak
// checks the rest of the package).
func TestPollerExits(t *testing.T) {
	s := pollServer(t, AcceptOptions{PollInterval: 3 * time.Millisecond})
	_ = dialRaw(t, s, nil)
	c := s.conn(t)
	sh := pollConnOf(t, c).sh
	_ = c.CloseNow()
	deadline := time.Now().Add(5 * time.Second)
	for {
		sh.mu.Lock()
		running := sh.running
		sh.mu.Unlock()
		if !running {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the poller goroutine still runs 5 s after its last connection closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkPollPingPong measures the ping → pong round trip of an idle
// connection read by a goroutine in ReadMessage, through the runtime's
// poller and through the shared poller, with pings sent at random phases
// of the poll interval: go test -run '^$' -bench PollPingPong
// -benchtime 2000x ./internal/wsconn. It reports the round trip's p50 and
// p99 in µs.
func BenchmarkPollPingPong(b *testing.B) {
	for _, iv := range []time.Duration{0, time.Millisecond, 2 * time.Millisecond} {
		name := "runtime"
		if iv > 0 {
			name = "poller-" + iv.String()
		}
		b.Run(name, func(b *testing.B) {
			s := newServer(b, &AcceptOptions{PollInterval: iv})
			rc := dialRaw(b, s, nil)
			c := s.conn(b)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					if _, _, err := c.ReadMessage(); err != nil {
						return
					}
				}
			}()
			ping := fin(opPing, []byte("p"))
			r := rand.New(rand.NewPCG(1, 2))
			rtt := make([]time.Duration, 0, b.N)
			for b.Loop() {
				time.Sleep(time.Duration(r.IntN(3000)) * time.Microsecond)
				t0 := time.Now()
				rc.write(b, ping)
				if f, err := rc.readFrame(); err != nil || f.op != opPong {
					b.Fatalf("pong: %+v %v", f, err)
				}
				rtt = append(rtt, time.Since(t0))
			}
			_ = c.CloseNow()
			<-done
			slices.Sort(rtt)
			b.ReportMetric(float64(rtt[len(rtt)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(rtt[len(rtt)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// With a fast path the poller hands binary messages to it while the reader
// sleeps, and the reader gets everything else, in order: messages the fast
// path declined (unchanged), text messages, and pings, which it answers.
// The client splits frames at random byte boundaries and pauses at random,
// so frames arrive whole, in pieces and several per read.
func TestPollFastPath(t *testing.T) {
	s := pollServer(t, AcceptOptions{})
	const conns, msgs = 6, 400
	var wg sync.WaitGroup
	for i := range conns {
		rc := dialRaw(t, s, nil)
		c := s.conn(t)
		pollConnOf(t, c)
		var (
			mu    sync.Mutex
			order []int // message numbers as seen, by either side
			fast  int
		)
		size := func(j int) int { return 3 + (i*31+j*17)%3000 }
		check := func(p []byte) int {
			j := int(p[0]) | int(p[1])<<8
			if len(p) != size(j) || p[len(p)-1] != byte(j) {
				t.Errorf("conn %d: message %d of %d bytes ending %d, want %d ending %d", i, j, len(p), p[len(p)-1], size(j), byte(j))
			}
			return j
		}
		if !c.SetFastPath(func(p []byte) bool {
			j := check(p)
			if j%3 == 0 {
				return false // the reader gets it
			}
			mu.Lock()
			if j != len(order) {
				// One before it was lost (a declined message the reader
				// never got, say): fail now, not at the read deadline.
				t.Errorf("conn %d: the fast path got message %d at position %d", i, j, len(order))
				go c.CloseNow()
			}
			order = append(order, j)
			fast++
			mu.Unlock()
			return true
		}) {
			t.Fatal("SetFastPath reported false on a polled connection")
		}
		var frames [][]byte
		pings := 0
		for j := range msgs {
			p := bytes.Repeat([]byte{byte(j)}, size(j))
			p[0], p[1] = byte(j), byte(j>>8)
			op := byte(opBinary)
			if j%7 == 0 {
				op = opText
				for k := 2; k < len(p); k++ {
					p[k] = 'a'
				}
				p[0], p[1] = 'a'+byte(j%20), 'a'+byte(j/20)
			}
			if j%5 == 0 {
				frames = append(frames, fin(opPing, []byte{byte(j)}))
				pings++
			}
			frames = append(frames, fin(op, p))
		}
		wg.Add(3)
		go func(seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 2))
			write := func(b []byte) bool {
				if _, err := rc.nc.Write(b); err != nil {
					t.Error(err)
					return false
				}
				if r.IntN(3) == 0 {
					time.Sleep(time.Duration(r.IntN(3000)) * time.Microsecond)
				}
				return true
			}
			for _, f := range frames {
				// Whole frames, or split in two at a random byte.
				k := len(f)
				if r.IntN(2) == 0 {
					k = 1 + r.IntN(len(f))
				}
				if !write(f[:k]) || (k < len(f) && !write(f[k:])) {
					return
				}
			}
		}(uint64(i))
		go func() {
			defer wg.Done()
			for range pings {
				if f, err := rc.readFrame(); err != nil || f.op != opPong {
					t.Errorf("conn %d: %+v, %v, want a pong", i, f, err)
					return
				}
			}
		}()
		go func(i int) {
			defer wg.Done()
			defer c.CloseNow()
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			for {
				mu.Lock()
				n := len(order)
				mu.Unlock()
				if n == msgs {
					break
				}
				typ, p, err := c.ReadMessage()
				if err != nil {
					t.Errorf("conn %d after %d messages: %v", i, n, err)
					return
				}
				var j int
				if typ == MessageText {
					j = int(p[0]-'a') + 20*int(p[1]-'a')
				} else {
					// Also those the fast path would take that arrived
					// while the reader was not parked.
					j = check(p)
				}
				mu.Lock()
				if j != len(order) {
					t.Errorf("conn %d: the reader got message %d at position %d", i, j, len(order))
					mu.Unlock()
					return
				}
				order = append(order, j)
				mu.Unlock()
			}
			for k, j := range order {
				if j != k {
					t.Errorf("conn %d: message %d seen at position %d", i, j, k)
					return
				}
			}
			if fast == 0 {
				t.Errorf("conn %d: the fast path took no message", i)
			}
		}(i)
	}
	wg.Wait()
}

// A reader parked for the poller's fast path is ended by CloseNow, a past
// read deadline and the peer's FIN.
func TestPollFastPathEnds(t *testing.T) {
	s := pollServer(t, AcceptOptions{})
	for _, end := range []string{"closenow", "deadline", "fin"} {
		rc := dialRaw(t, s, nil)
		c := s.conn(t)
		taken := make(chan struct{}, 1)
		c.SetFastPath(func([]byte) bool { taken <- struct{}{}; return true })
		errc := make(chan error, 1)
		read := func() {
			_, _, err := c.ReadMessage()
			errc <- err
		}
		// The first message is read by the reader itself (the socket is
		// not known to be empty before a read found it so).
		go read()
	wait:
		for try := 0; ; try++ {
			rc.write(t, fin(opBinary, []byte{1, 2, 3}))
			select {
			case <-taken:
				break wait
			case err := <-errc:
				if err != nil || try == 3 {
					t.Fatalf("%s: the reader returned %v, want the fast path to take the message", end, err)
				}
				go read()
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: the fast path took nothing in 5 s", end)
			}
		}
		var want error
		switch end {
		case "closenow":
			_ = c.CloseNow()
			want = net.ErrClosed
		case "deadline":
			_ = c.SetReadDeadline(time.Unix(1, 0))
			want = os.ErrDeadlineExceeded
		case "fin":
			_ = rc.nc.Close()
			want = io.ErrUnexpectedEOF
		}
		if err := <-errc; !errors.Is(err, want) {
			t.Fatalf("%s: read ended with %v, want %v", end, err, want)
		}
		_ = c.CloseNow()
	}
}

// The poller's fast path allocates nothing per message.
func TestPollFastPathAllocs(t *testing.T) {
	s := pollServer(t, AcceptOptions{})
	rc := dialRaw(t, s, nil)
	c := s.conn(t)
	taken := make(chan int, 1)
	c.SetFastPath(func(p []byte) bool { taken <- len(p); return true })
	errc := make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				errc <- err
				return
			}
		}
	}()
	wire := fin(opBinary, bytes.Repeat([]byte{0x55}, 3200))
	// Until the reader has parked once, a message may reach it instead.
	for range 100 {
		rc.write(t, wire)
		select {
		case <-taken:
		case <-time.After(20 * time.Millisecond):
			continue
		}
		break
	}
	step := func() {
		rc.write(t, wire)
		if n := <-taken; n != 3200 { // (a select with time.After would allocate)
			t.Errorf("fast path got %d bytes, want 3200", n)
		}
	}
	if n := testing.AllocsPerRun(200, step); n != 0 {
		t.Errorf("%v allocations per message, want 0", n)
	}
	_ = c.CloseNow()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("reader ended with %v", err)
	}
}

// While the poller holds the read side (its fast path runs on a frame it
// read for the parked reader), a read deadline that passes or CloseNow
// wakes the reader, which must wait until the poller handed the read side
// back before it touches the buffer, and then report the deadline or the
// close.
func TestPollFastPathLentHandBack(t *testing.T) {
	s := pollServer(t, AcceptOptions{})
	for _, end := range []string{"deadline", "closenow"} {
		rc := dialRaw(t, s, nil)
		c := s.conn(t)
		taken := make(chan struct{}, 1)
		in := make(chan struct{}, 1)
		release := make(chan struct{})
		var block atomic.Bool
		c.SetFastPath(func(p []byte) bool {
			if block.Load() {
				in <- struct{}{}
				<-release
				return true
			}
			taken <- struct{}{}
			return true
		})
		errc := make(chan error, 1)
		read := func() {
			_, _, err := c.ReadMessage()
			errc <- err
		}
		go read()
	wait:
		for try := 0; ; try++ {
			rc.write(t, fin(opBinary, []byte{1, 2, 3}))
			select {
			case <-taken:
				break wait
			case err := <-errc:
				if err != nil || try == 3 {
					t.Fatalf("%s: the reader returned %v, want the fast path to take the message", end, err)
				}
				go read()
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: the fast path took nothing in 5 s", end)
			}
		}
		block.Store(true)
		rc.write(t, fin(opBinary, []byte{4, 5, 6}))
		select {
		case <-in:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the fast path got no second message in 5 s", end)
		}
		var want error
		switch end {
		case "deadline":
			_ = c.SetReadDeadline(time.Unix(1, 0))
			want = os.ErrDeadlineExceeded
		case "closenow":
			_ = c.CloseNow()
			want = net.ErrClosed
		}
		select {
		case err := <-errc:
			t.Errorf("%s: the reader returned (%v) while the poller held the read side", end, err)
		case <-time.After(100 * time.Millisecond):
		}
		close(release)
		select {
		case err := <-errc:
			if !errors.Is(err, want) {
				t.Errorf("%s: read ended with %v, want %v", end, err, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the reader did not return in 5 s after the poller handed back", end)
		}
		_ = c.CloseNow()
	}
}

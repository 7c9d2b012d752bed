package wsconn

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// pollers are the two ways a Linux TCP connection's socket is waited on:
// by the Go runtime's poller, and by the shared poller every millisecond.
var pollers = []struct {
	name string
	opts AcceptOptions
}{{"runtime poller", AcceptOptions{}}, {"shared poller", AcceptOptions{PollInterval: time.Millisecond}}}

// fastPathConn accepts a connection on a new server with opts, gives it
// the cadence fast path fast and the read cadence d, and returns the
// client's raw side and the server's connection.
func fastPathConn(t *testing.T, opts *AcceptOptions, d time.Duration, fast func(MessageType, []byte) bool) (*rawClient, *Conn) {
	t.Helper()
	s := newServer(t, opts)
	rc := dialRaw(t, s, nil)
	c := s.conn(t)
	if !c.SetCadenceFastPath(fast) {
		t.Fatal("SetCadenceFastPath reported false on a TCP connection")
	}
	c.SetReadCadence(d)
	return rc, c
}

// readUntilErr calls c.ReadMessage in the background until it fails, and
// sends that error.
func readUntilErr(c *Conn) <-chan error {
	errc := make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				errc <- err
				return
			}
		}
	}()
	return errc
}

// With a cadence fast path, the messages the fast path takes and those it
// declines (and pings) arrive once each and in order, whether the socket
// is polled or not; the fast path takes some of them while the reader
// stays paused, and the flush function runs.
func TestCadenceFastPath(t *testing.T) {
	for _, tc := range pollers {
		t.Run(tc.name, func(t *testing.T) {
			const msgs = 300
			var (
				mu      sync.Mutex
				order   []int
				fast    int
				flushes int
			)
			num := func(p []byte) int {
				var j int
				if _, err := fmt.Sscanf(string(p[1:]), "%d", &j); err != nil {
					t.Errorf("message %q: %v", p, err)
				}
				return j
			}
			rc, c := fastPathConn(t, &tc.opts, 20*time.Millisecond, func(typ MessageType, p []byte) bool {
				if p[0] == 'x' {
					return false // the reader gets it
				}
				j := num(p)
				if (typ == MessageText) != (p[0] == 't') {
					t.Errorf("message %q as %v", p, typ)
				}
				mu.Lock()
				if j != len(order) {
					t.Errorf("the fast path got message %d at position %d", j, len(order))
				}
				order = append(order, j)
				fast++
				mu.Unlock()
				return true
			})
			c.SetFlush(func() { mu.Lock(); flushes++; mu.Unlock() })
			var wg sync.WaitGroup
			wg.Add(2)
			pings := 0
			var frames [][]byte
			for j := range msgs {
				switch {
				case j%11 == 0:
					frames = append(frames, fin(opText, fmt.Appendf(nil, "x%d", j)))
				case j%2 == 0:
					frames = append(frames, fin(opText, fmt.Appendf(nil, "t%d", j)))
				default:
					frames = append(frames, fin(opBinary, fmt.Appendf(nil, "b%d", j)))
				}
				if j%13 == 0 {
					frames = append(frames, fin(opPing, []byte{byte(j)}))
					pings++
				}
			}
			// The reader reads until the last message, which the fast path
			// declines.
			frames = append(frames, fin(opText, []byte("xend")))
			go func() {
				defer wg.Done()
				for i, f := range frames {
					// Every fifth frame in two writes, the second later.
					k := len(f)
					if i%5 == 0 {
						k = len(f) / 2
					}
					if _, err := rc.nc.Write(f[:k]); err != nil {
						t.Error(err)
						return
					}
					if k < len(f) {
						time.Sleep(time.Millisecond)
						if _, err := rc.nc.Write(f[k:]); err != nil {
							t.Error(err)
							return
						}
					}
					time.Sleep(time.Millisecond)
				}
			}()
			go func() {
				defer wg.Done()
				for range pings {
					if f, err := rc.readFrame(); err != nil || f.op != opPong {
						t.Errorf("%+v, %v, want a pong", f, err)
						return
					}
				}
			}()
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			for {
				typ, p, err := c.ReadMessage()
				if err != nil {
					mu.Lock()
					n := len(order)
					mu.Unlock()
					t.Fatalf("after %d messages: %v", n, err)
				}
				if string(p) == "xend" {
					break
				}
				j := num(p)
				if want := map[byte]MessageType{'x': MessageText, 't': MessageText, 'b': MessageBinary}[p[0]]; typ != want {
					t.Errorf("message %q as %v", p, typ)
				}
				mu.Lock()
				if j != len(order) {
					t.Fatalf("the reader got message %d at position %d", j, len(order))
				}
				order = append(order, j)
				mu.Unlock()
			}
			wg.Wait()
			_ = c.CloseNow()
			if len(order) != msgs {
				t.Errorf("%d messages, want %d", len(order), msgs)
			}
			// How many the fast path takes depends on how the writes fall
			// between instants: a partial frame, a ping or a declined message
			// in a read wakes the reader, and a loaded machine delays the
			// writer and the timer alike (56 of 300 in one -race run on a
			// busy machine). A broken fast path takes none.
			if fast == 0 || flushes == 0 {
				t.Errorf("the fast path took %d of %d messages, %d flushes", fast, msgs, flushes)
			}
		})
	}
}

// A text message that is not UTF-8 is not given to the fast path: the
// reader fails the connection with 1007 as without one.
func TestCadenceFastPathInvalidUTF8(t *testing.T) {
	got := make(chan []byte, 4)
	rc, c := fastPathConn(t, nil, 10*time.Millisecond, func(_ MessageType, p []byte) bool { got <- bytes.Clone(p); return true })
	errc := readUntilErr(c)
	rc.write(t, fin(opText, []byte("ok")))
	rc.write(t, fin(opText, []byte{'b', 'a', 'd', 0xff}))
	err := waitErr(t, errc)
	if pe := asProtocolError(t, err); pe.Code != StatusInvalidFramePayloadData {
		t.Fatalf("code %d, want 1007", pe.Code)
	}
	if code := rc.readClose(t); code != StatusInvalidFramePayloadData {
		t.Errorf("close status %d, want 1007", code)
	}
	close(got)
	for p := range got {
		if string(p) != "ok" {
			t.Errorf("the fast path got %q", p)
		}
	}
}

// A reader paused with a cadence fast path is ended by CloseNow and by a
// past read deadline.
func TestCadenceFastPathPauseInterrupted(t *testing.T) {
	s := newServer(t, &AcceptOptions{PollInterval: time.Millisecond})
	for _, end := range []string{"CloseNow", "deadline"} {
		t.Run(end, func(t *testing.T) {
			rc := dialRaw(t, s, nil)
			c := s.conn(t)
			c.SetCadenceFastPath(func(MessageType, []byte) bool { return true })
			c.SetReadCadence(5 * time.Millisecond)
			errc := readInBackground(c)
			for range 20 {
				rc.write(t, fin(opBinary, []byte("media")))
				time.Sleep(2 * time.Millisecond)
			}
			want := net.ErrClosed
			if end == "CloseNow" {
				_ = c.CloseNow()
			} else {
				_ = c.SetReadDeadline(time.Unix(1, 0))
				want = os.ErrDeadlineExceeded
			}
			if err := waitErr(t, errc); !errors.Is(err, want) {
				t.Fatalf("ReadMessage error %v, want %v", err, want)
			}
			_ = c.CloseNow()
		})
	}
}

// The fast path allocates nothing per message once the buffers have grown.
func TestCadenceFastPathAllocs(t *testing.T) {
	taken := make(chan int, 1)
	rc, c := fastPathConn(t, &AcceptOptions{PollInterval: time.Millisecond}, time.Millisecond, func(_ MessageType, p []byte) bool { taken <- len(p); return true })
	errc := readInBackground(c)
	wire := fin(opText, bytes.Repeat([]byte{'a'}, 350))
	step := func() {
		rc.write(t, wire)
		if n := <-taken; n != 350 {
			t.Errorf("fast path got %d bytes, want 350", n)
		}
	}
	for range 20 {
		step()
	}
	if n := testing.AllocsPerRun(200, step); n != 0 {
		t.Errorf("%v allocations per message, want 0", n)
	}
	_ = c.CloseNow()
	if err := waitErr(t, errc); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("reader ended with %v", err)
	}
}

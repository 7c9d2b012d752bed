package wsconn

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// A future read deadline ends a reader kept paused by the cadence fast
// path, whether media keeps arriving or the socket is quiet.
func TestCadenceFastPathFutureDeadline(t *testing.T) {
	for _, tc := range pollers {
		for _, media := range []bool{true, false} {
			name := tc.name + "/quiet"
			if media {
				name = tc.name + "/media"
			}
			t.Run(name, func(t *testing.T) {
				rc, c := fastPathConn(t, &tc.opts, 10*time.Millisecond, func(MessageType, []byte) bool { return true })
				stop := make(chan struct{})
				done := make(chan struct{})
				go func() {
					defer close(done)
					wire := fin(opBinary, []byte("media"))
					for {
						if media {
							_, _ = rc.nc.Write(wire)
						}
						select {
						case <-stop:
							return
						case <-time.After(5 * time.Millisecond):
						}
					}
				}()
				errc := readUntilErr(c)
				time.Sleep(30 * time.Millisecond) // the reader pauses and lends
				if err := c.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
					t.Fatal(err)
				}
				err := waitErr(t, errc)
				close(stop)
				<-done
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("ReadMessage error %v, want a deadline error", err)
				}
				_ = c.CloseNow()
			})
		}
	}
}

// A reader still registered on the timer of an earlier cadence (its pause
// ended by SetReadCadence(0)) waits for the new cadence's instant, not the
// old one's.
func TestReadCadenceChangedAfterEarlyEnd(t *testing.T) {
	s := newServer(t, nil)
	rc := dialRaw(t, s, nil)
	c := s.conn(t)
	c.SetReadCadence(time.Hour)
	type res struct {
		p   string
		err error
	}
	got := make(chan res, 1)
	read := func() {
		_, p, err := c.ReadMessage()
		got <- res{string(p), err}
	}
	go read()
	time.Sleep(50 * time.Millisecond) // paused until the hour's instant
	c.SetReadCadence(0)               // ends the pause; the reader waits on the socket
	time.Sleep(50 * time.Millisecond)
	c.SetReadCadence(10 * time.Millisecond)
	rc.write(t, fin(opText, []byte("one")))
	for _, want := range []string{"one", "two"} {
		if want == "two" {
			go read()
			time.Sleep(50 * time.Millisecond)
			rc.write(t, fin(opText, []byte("two")))
		}
		select {
		case r := <-got:
			if r.err != nil || r.p != want {
				t.Fatalf("ReadMessage = %q, %v; want %q", r.p, r.err, want)
			}
		case <-time.After(3 * time.Second):
			_ = c.CloseNow()
			<-got
			t.Fatalf("message %q not read within 3 s at a 10 ms cadence", want)
		}
	}
	_ = c.CloseNow()
}

// A connection reset by the peer while the cadence timer reads for the
// reader is reported as a reset, not as an unexpected EOF.
func TestCadenceFastPathReset(t *testing.T) {
	for _, tc := range pollers {
		t.Run(tc.name, func(t *testing.T) {
			taken := make(chan struct{}, 1)
			rc, c := fastPathConn(t, &tc.opts, 10*time.Millisecond, func(MessageType, []byte) bool {
				select {
				case taken <- struct{}{}:
				default:
				}
				return true
			})
			errc := readInBackground(c)
			rc.write(t, fin(opBinary, []byte("media")))
			select {
			case <-taken:
			case <-time.After(10 * time.Second):
				t.Fatal("the fast path took nothing")
			}
			tc := rc.nc.(*net.TCPConn)
			if err := tc.SetLinger(0); err != nil {
				t.Fatal(err)
			}
			_ = tc.Close() // sends RST
			err := waitErr(t, errc)
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("ReadMessage error %v, want one wrapping ECONNRESET", err)
			}
		})
	}
}

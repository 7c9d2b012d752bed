package wsconn

import (
	"errors"
	"os"
	"testing"
	"time"
)

// A future read deadline ends a reader kept paused by the cadence fast
// path, whether media keeps arriving or the socket is quiet.
func TestCadenceFastPathFutureDeadline(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts AcceptOptions
	}{{"runtime poller", AcceptOptions{}}, {"shared poller", AcceptOptions{PollInterval: time.Millisecond}}} {
		for _, media := range []bool{true, false} {
			name := tc.name + "/quiet"
			if media {
				name = tc.name + "/media"
			}
			t.Run(name, func(t *testing.T) {
				s := newServer(t, &tc.opts)
				rc := dialRaw(t, s, nil)
				c := s.conn(t)
				c.SetCadenceFastPath(func(MessageType, []byte) bool { return true })
				c.SetReadCadence(10 * time.Millisecond)
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
				errc := make(chan error, 1)
				go func() {
					for {
						if _, _, err := c.ReadMessage(); err != nil {
							errc <- err
							return
						}
					}
				}()
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

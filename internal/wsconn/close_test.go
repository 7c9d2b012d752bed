package wsconn

import (
	"errors"
	"net"
	"testing"
	"time"
)

// TestCloseBehindBlockedWrite checks Close is bounded by the close timeout
// when a write without a deadline is blocked on a peer that does not
// read: the close frame cannot be sent, and Close must then close the
// connection, which ends the blocked write.
func TestCloseBehindBlockedWrite(t *testing.T) {
	s := newServer(t, &AcceptOptions{CloseTimeout: 200 * time.Millisecond})
	_ = dialRaw(t, s, nil) // never reads
	c := s.conn(t)
	errc := make(chan error, 1)
	go func() {
		p := make([]byte, 1<<20)
		for {
			// No deadline: only the connection's end stops this write.
			if err := c.WriteMessage(t.Context(), MessageBinary, p); err != nil {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond) // let the socket buffers fill
	closed := make(chan error, 1)
	go func() { closed <- c.Close(StatusNormalClosure, "") }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		_ = c.CloseNow()
		<-closed
		t.Fatal("Close did not return within 50 close timeouts while a write was blocked")
	}
	if err := <-errc; err == nil {
		t.Fatal("blocked write returned nil")
	}
	if err := c.WriteMessage(t.Context(), MessageText, []byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
}

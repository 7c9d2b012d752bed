package wsconn

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// A peer that sends messages and closes its socket at once is noticed: the
// data and the FIN can come in one edge-triggered event while the reader
// is reading, whose read returns the data short of the buffer; the reader
// must still read the end rather than wait for an event that will not
// come. The reads have no deadline, so without the FIN read they would
// wait for ever; the test gives each 10 s. It runs the plain reader, the
// poller's fast path (SetFastPath) and the cadence fast path
// (SetCadenceFastPath), many times each to meet the event's timing.
func TestPollFINWithData(t *testing.T) {
	for _, mode := range []string{"read", "fast path", "cadence fast path"} {
		t.Run(mode, func(t *testing.T) {
			s := pollServer(t, AcceptOptions{})
			for i := range 30 {
				rc := dialRaw(t, s, nil)
				c := s.conn(t)
				pollConnOf(t, c)
				switch mode {
				case "fast path":
					if !c.SetFastPath(func([]byte) bool { return true }) {
						t.Fatal("SetFastPath reported false")
					}
				case "cadence fast path":
					if !c.SetCadenceFastPath(func(MessageType, []byte) bool { return true }) {
						t.Fatal("SetCadenceFastPath reported false")
					}
					c.SetReadCadence(20 * time.Millisecond)
				}
				errc := readUntilErr(c)
				msg := fin(opBinary, bytes.Repeat([]byte{byte(i)}, 160))
				rc.write(t, msg)
				time.Sleep(time.Duration(i%5) * time.Millisecond)
				rc.write(t, bytes.Repeat(msg, 1+i%4))
				_ = rc.nc.Close()
				select {
				case err := <-errc:
					if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
						t.Fatalf("connection %d: read after the peer's FIN: %v, want an EOF", i, err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("connection %d: the peer closed its socket 10 s ago and the read has not ended", i)
				}
				_ = c.CloseNow()
			}
		})
	}
}

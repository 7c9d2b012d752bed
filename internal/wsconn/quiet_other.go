//go:build !linux

package wsconn

import "net"

// quietReader keeps sockets quiet during read cadence pauses on Linux
// (quiet_linux.go); elsewhere it does nothing.
type quietReader struct{}

func (q *quietReader) init(net.Conn)                 {}
func (q *quietReader) quiet()                        {}
func (q *quietReader) active() bool                  { return false }
func (q *quietReader) canQuiet() bool                { return false }
func (q *quietReader) setNonBlocking(bool)           {}
func (q *quietReader) readQuiet([]byte) (int, error) { return 0, nil }

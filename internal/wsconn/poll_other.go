//go:build !linux

package wsconn

import (
	"net"
	"time"
)

// takeOver moves a connection to a shared poller on Linux only
// (poll_linux.go); elsewhere it returns nc unchanged.
func takeOver(nc net.Conn, _ time.Duration) net.Conn { return nc }

// closeWhenUnreachable has nothing to do where connections are not polled.
func closeWhenUnreachable(*Conn, net.Conn) {}

// setFastPath has no poller to parse where connections are not polled.
func setFastPath(*Conn) bool { return false }

package wsconn

import (
	"io"
	"net"
	"os"
	"syscall"
)

// quietLowat is the SO_RCVLOWAT a connection holds during a read cadence
// pause: more than arrives in a pause (Twilio sends about 350 bytes every
// 20 ms), and small enough that Linux does not grow the receive buffer for
// it (tcp_set_rcvlowat sizes it for twice the mark).
const quietLowat = 16 << 10

// quietReader keeps a TCP socket quiet while its reader pauses for the
// read cadence: with SO_RCVLOWAT raised above what arrives in a pause,
// Linux does not signal the socket readable for each segment
// (tcp_data_ready), so the runtime's poller is not woken and handed an
// event for a reader that is not waiting. The paused reader reads at the
// end of its pause with a non-blocking read(2), which returns whatever is
// queued whatever the mark. Only when that read finds nothing does it
// lower the mark to 1 and wait for readiness: setting the mark signals
// readiness at once if data arrived in between (tcp_set_rcvlowat), so no
// wake-up is lost.
//
// At 1,000 Twilio streams with a 60 ms cadence (go run
// ./internal/loadtest/cmd/vgload -kind twilio -n 1000 -duration 20s
// -cpuprofile F) the runtime's epoll_wait took 19% of the server's CPU
// without it, each 20 ms message queuing an event on a socket whose reader
// was paused, and 1.2% with it. Server CPU per stream-second, before and
// after this and the shared cadence timer (conn.go), interleaved in two
// sessions on the shared 2-core machine: 379, 387, 432, 438, 464 µs
// before, 264, 369, 344, 344, 369 after (the Node consumer 521, 518, 737,
// 833); with -cpus 0/1 527, 526 before, 220, 303 after.
type quietReader struct {
	rc    syscall.RawConn
	high  bool // the mark is raised
	buf   []byte
	n     int
	err   error
	read  func(uintptr) bool // readFD, made once so reads allocate nothing
	raise func(uintptr)      // raiseFD
	readN func(uintptr)      // readNB
	nb    bool               // reads return errWouldBlock instead of waiting (cadenceParse)
	short bool               // the last non-blocking read emptied the socket
	end   error              // an error or io.EOF a non-blocking read met, returned by every later read
}

// init enables quiet reads when nc is a socket.
func (q *quietReader) init(nc net.Conn) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	switch nc.(type) {
	case *net.TCPConn, *pollConn:
	default:
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	q.rc = rc
	q.read = q.readFD
	q.raise = q.raiseFD
	q.readN = q.readNB
}

// canQuiet reports whether quiet reads are possible: nc is a TCP socket.
func (q *quietReader) canQuiet() bool { return q.rc != nil }

// setNonBlocking makes the reads until setNonBlocking(false) return
// errWouldBlock instead of waiting: the first one reads what the socket
// holds, the later ones read again only if it filled the buffer. The mark
// stays raised, so the socket stays quiet.
func (q *quietReader) setNonBlocking(on bool) { q.nb, q.short = on, false }

// quiet raises the mark before a pause. It does nothing when quiet reads
// are off or the mark is raised already.
func (q *quietReader) quiet() {
	if q.rc == nil || q.high {
		return
	}
	_ = q.rc.Control(q.raise)
}

func (q *quietReader) raiseFD(fd uintptr) {
	q.high = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, quietLowat) == nil
}

// active reports whether reads must go through readQuiet.
func (q *quietReader) active() bool { return q.high }

// readQuiet reads into b with the mark raised, lowering it before it waits.
func (q *quietReader) readQuiet(b []byte) (int, error) {
	if q.end != nil {
		// cadenceParse's bufio.Reader consumed the error: the reader
		// must see it, not a read of a socket that now reports EOF.
		return 0, q.end
	}
	q.buf, q.n, q.err = b, 0, nil
	var err error
	if q.nb {
		if q.short || len(b) == 0 {
			q.buf = nil
			return 0, errWouldBlock
		}
		err = q.rc.Control(q.readN)
	} else {
		err = q.rc.Read(q.read)
	}
	q.buf = nil
	if err != nil {
		return 0, err
	}
	return q.n, q.err
}

// readNB is one non-blocking read for cadenceParse.
func (q *quietReader) readNB(fd uintptr) {
	for {
		n, err := rawRead(int(fd), q.buf)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			q.short, q.err = true, errWouldBlock
		case err != nil:
			q.err = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", err)}
			q.end = q.err
		case n == 0:
			q.err, q.end = io.EOF, io.EOF
		default:
			q.n, q.short = n, n < len(q.buf)
		}
		return
	}
}

func (q *quietReader) readFD(fd uintptr) bool {
	if len(q.buf) == 0 {
		q.n = 0
		return true
	}
	for {
		// A raw read (see rawRead): at 1,000 Twilio streams sysmon took
		// 7.4% of the server's CPU with syscall.Read here and in
		// pollConn.Read, 1.6% with both raw (perf record -g -p PID on the
		// vgload server).
		n, err := rawRead(int(fd), q.buf)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			if q.high {
				if err := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, 1); err != nil {
					q.err = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("setsockopt", err)}
					return true
				}
				q.high = false
			}
			return false
		case err != nil:
			q.err = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", err)}
			return true
		case n == 0 && len(q.buf) > 0:
			q.err = io.EOF
			return true
		}
		q.n = n
		return true
	}
}

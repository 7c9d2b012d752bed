package wsconn

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
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
}

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
	q.buf, q.n, q.err = b, 0, nil
	err := q.rc.Read(q.read)
	q.buf = nil
	if err != nil {
		return 0, err
	}
	return q.n, q.err
}

func (q *quietReader) readFD(fd uintptr) bool {
	for {
		n, err := readNonblock(int(fd), q.buf)
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
		case err != 0:
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

// readNonblock is read(2) on a non-blocking descriptor, made as a raw
// system call: without the runtime's entersyscall and exitsyscall, so the
// runtime's monitor thread (sysmon) never finds the goroutine's P in a
// system call and hands it to another thread; sysmon sleeps only 20 µs
// at a time while it keeps doing that. A cadence read takes 4–7 µs on
// loopback, and with 1,000 Twilio streams each P spends most of a burst
// in them: in a perf(1) profile of that server (perf record -g -p PID,
// vgload -kind twilio -n 1000) sysmon took 7.4% of the server's CPU; with
// raw reads, in the next run, 1.6%, and the server's samples over the
// same 5 s fell from 6,389 to 5,186 (vgload's own figure, 154–200 against
// 135–207 µs per stream-second in three interleaved runs each, could not
// tell them apart: other jobs took 1.4–1.7 of the 2 cores and the
// generator was behind in every run). The descriptor must be
// non-blocking (the runtime's sockets and the shared poller's duplicates
// are), so the call never holds its thread for long. Unlike syscall.Read
// it tells the race detector nothing. err is 0 on success.
func readNonblock(fd int, b []byte) (n int, err syscall.Errno) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	} else {
		p = unsafe.Pointer(&zeroByte)
	}
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(p), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

var zeroByte byte

package wsconn

import (
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
	"weak"
)

// pollConn is a TCP connection served by a shared poller instead of the Go
// runtime's network poller (AcceptOptions.PollInterval).
//
// Accept duplicates the socket's descriptor and closes the *net.TCPConn,
// which removes the socket from the runtime's epoll set (the socket stays
// open through the duplicate). The descriptor is then registered,
// edge-triggered, with the epoll set of one of a few pollers, each a
// goroutine that looks at its set once per poll interval (and blocks in
// epoll_wait only when it found nothing several times in a row). For every
// ready socket the poller drops a token in the connection's channel; the
// reader waiting there is made runnable by the poller's goroutine, in one
// pass for all the sockets that became readable during the interval, so an
// idle process wakes a thread once per interval instead of once per
// message. A read that returns less than asked for has emptied the socket,
// so the next read waits for a token before it asks the kernel, instead of
// spending a read(2) to learn EAGAIN. Every arrival after a read yields an
// event, hence a token, so no wake-up is lost; a token left from an
// arrival that a read already took costs one read that finds nothing.
// With a fast path (Conn.SetFastPath), a reader that found the socket
// empty parks instead (lend), and the poller reads and parses for it on
// its own goroutine (Conn.pollParse), waking it only for what the fast
// path did not take.
//
// Reads and writes are non-blocking system calls made under fdmu (read
// locked), so that Close (write locked) never closes a descriptor that a
// call is using. Deadlines are kept as Unix nanoseconds and checked before
// each call and while waiting, with one timer per side created the first
// time a wait has a deadline.
//
// It is written by hand because the runtime's poller cannot batch: it
// wakes a thread for each readable socket, and it leaves no way to wait
// for readiness without first spending a read(2). At 1,000 AudioHook
// sessions (go run ./internal/loadtest/cmd/vgload -kind audiohook -n 1000
// -duration 12s, builds alternating) the server took 114–167 µs per
// session-second through the runtime's poller and 75–111 through this one
// (see the package doc for every run).
type pollConn struct {
	fd           int // -1 once closed; guarded by fdmu
	fdmu         sync.RWMutex
	sh           *pollShard
	slot         int32
	laddr, raddr net.Addr

	closed    chan struct{}
	closeOnce sync.Once
	rready    chan struct{} // a readiness token from the poller
	wready    chan struct{}
	rkick     chan struct{} // the read deadline changed
	wkick     chan struct{}
	rdl, wdl  atomic.Int64 // deadlines in Unix ns; 0 none
	rtimer    *time.Timer  // owned by the reader
	wtimer    *time.Timer  // owned by the writer
	drained   bool         // the last read emptied the socket; owned by the reader
	hup       atomic.Bool  // the peer's end (or an error) was signalled: see hupEvents
	raw       pollRawConn

	// Conn.SetFastPath: the poller parses for a parked reader.
	park  atomic.Int32 // readerActive, readerParked or readerLent
	parse func() bool  // Conn.pollParse through a weak pointer (setFastPath); nil without a fast path
	nb    bool         // Read returns errWouldBlock instead of waiting; owned by the read side
}

// setFastPath lets the poller parse for c (Conn.SetFastPath) when c's
// socket is polled.
func setFastPath(c *Conn) bool {
	pc, ok := c.nc.(*pollConn)
	if !ok || c.fast == nil {
		return false
	}
	// The shard keeps pc, so pc must not keep c: a method value
	// (c.pollParse) would, and c's cleanup (closeWhenUnreachable) would
	// then never run for a Conn dropped without Close.
	wc := weak.Make(c)
	pc.parse = func() bool {
		c := wc.Value()
		if c == nil {
			return false // dropped: the reader side is gone; its cleanup closes pc
		}
		return c.pollParse()
	}
	c.lend = pc.lend
	return true
}

// lend parks the reader, when the last read emptied the socket and no
// hangup was signalled (hupEvents), until
// something arrives that the poller's pollParse did not take (or the
// connection closes, or a deadline passes or changes): meanwhile the poller
// reads and parses on its own goroutine and the reader is not woken. It
// returns once the reader holds the read side again.
func (c *pollConn) lend() {
	if !c.drained || c.hup.Load() || c.parse == nil {
		return
	}
	c.park.Store(readerParked)
	err := c.wait("read", c.rready, c.rkick, &c.rdl, &c.rtimer)
	for !c.park.CompareAndSwap(readerParked, readerActive) {
		if c.park.Load() == readerActive {
			// The poller handed the read side back (pollParse left
			// something for the reader) with the token just taken;
			// drained is what its last read found.
			return
		}
		runtime.Gosched() // the poller is parsing: a few µs
	}
	if err == nil {
		// A token from an event the poller did not parse for (it came
		// before the reader parked): the socket may hold data.
		c.drained = false
	}
}

// hupEvents are the epoll events after which a read never waits (pollConn.hup):
// the peer shut its side down, or the socket failed. Polling is
// edge-triggered, so the event comes once, and it often comes together
// with the last data (EPOLLIN|EPOLLRDHUP) while the reader is reading: its
// read then returns that data short of its buffer, which marks the socket
// drained, and a drained reader would wait for a token (Read) or park
// (lend) without another read(2). No further event would come, and the
// end, which only a read returns (0 bytes, or the error), would be seen
// only at a deadline. After one of these events the reader reads until
// the socket says so itself.
const hupEvents = syscall.EPOLLRDHUP | syscall.EPOLLHUP | syscall.EPOLLERR

// takeOver moves nc to a shared poller with the given interval. It returns
// nc unchanged when nc is not a *net.TCPConn or the move fails.
func takeOver(nc net.Conn, interval time.Duration) net.Conn {
	tc, ok := nc.(*net.TCPConn)
	if !ok || interval <= 0 {
		return nc
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nc
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			derr = e
			return
		}
		nfd = int(r)
	}); err != nil || derr != nil {
		return nc
	}
	c := &pollConn{
		fd: nfd, laddr: tc.LocalAddr(), raddr: tc.RemoteAddr(),
		closed: make(chan struct{}),
		rready: make(chan struct{}, 1), wready: make(chan struct{}, 1),
		rkick: make(chan struct{}, 1), wkick: make(chan struct{}, 1),
	}
	c.raw.c = c
	sh := pickShard(interval)
	if err := sh.add(c); err != nil {
		_ = syscall.Close(nfd)
		return nc
	}
	// The runtime deregisters the socket from its epoll set before it
	// closes its descriptor; the socket stays open through nfd.
	_ = tc.Close()
	return c
}

// closeWhenUnreachable closes nc, when it is a polled connection, once c
// can no longer be reached: the shard keeps every polled connection, so
// without this a Conn dropped without Close would keep its socket, its
// epoll entry and its poller for ever (*net.TCPConn has the runtime close
// an abandoned socket in the same way).
func closeWhenUnreachable(c *Conn, nc net.Conn) {
	if pc, ok := nc.(*pollConn); ok {
		runtime.AddCleanup(c, func(pc *pollConn) { _ = pc.Close() }, pc)
	}
}

func (c *pollConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.laddr, Addr: c.raddr, Err: err}
}

// expired reports whether the deadline in dl has passed.
func expired(dl *atomic.Int64) bool {
	d := dl.Load()
	return d != 0 && time.Now().UnixNano() >= d
}

// wait waits for a token on ready, the connection's close or the deadline
// in dl. t is the side's timer, created on first use.
func (c *pollConn) wait(op string, ready, kick chan struct{}, dl *atomic.Int64, t **time.Timer) error {
	for {
		var tc <-chan time.Time
		if d := dl.Load(); d != 0 {
			left := time.Duration(d - time.Now().UnixNano())
			if left <= 0 {
				return c.opError(op, os.ErrDeadlineExceeded)
			}
			if *t == nil {
				*t = time.NewTimer(left)
			} else {
				(*t).Reset(left)
			}
			tc = (*t).C
		}
		select {
		case <-ready:
			if tc != nil {
				(*t).Stop()
			}
			return nil
		case <-c.closed:
			return c.opError(op, net.ErrClosed)
		case <-kick:
		case <-tc:
		}
	}
}

// Read reads like a non-blocking read(2), waiting for a token from the
// poller when the socket is empty.
func (c *pollConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		if c.drained && !c.hup.Load() {
			if c.nb {
				return 0, errWouldBlock
			}
			if err := c.wait("read", c.rready, c.rkick, &c.rdl, &c.rtimer); err != nil {
				return 0, err
			}
			c.drained = false
		}
		if expired(&c.rdl) {
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		}
		c.fdmu.RLock()
		if c.fd < 0 {
			c.fdmu.RUnlock()
			return 0, c.opError("read", net.ErrClosed)
		}
		n, err := rawRead(c.fd, b) // len(b) > 0; see rawRead
		c.fdmu.RUnlock()
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			c.drained = true
			if c.nb {
				return 0, errWouldBlock
			}
			// Wait here even after a hangup, which a read does not
			// meet with EAGAIN: never spin on the socket.
			if err := c.wait("read", c.rready, c.rkick, &c.rdl, &c.rtimer); err != nil {
				return 0, err
			}
			c.drained = false
			continue
		case err != nil:
			return 0, c.opError("read", os.NewSyscallError("read", err))
		case n == 0:
			return 0, io.EOF
		}
		c.drained = n < len(b)
		return n, nil
	}
}

// Write writes all of b, waiting for the poller when the socket's send
// buffer is full.
func (c *pollConn) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		if expired(&c.wdl) {
			return written, c.opError("write", os.ErrDeadlineExceeded)
		}
		c.fdmu.RLock()
		if c.fd < 0 {
			c.fdmu.RUnlock()
			return written, c.opError("write", net.ErrClosed)
		}
		n, err := syscall.Write(c.fd, b)
		c.fdmu.RUnlock()
		if n > 0 {
			written += n
			b = b[n:]
		}
		switch {
		case err == syscall.EINTR:
		case err == syscall.EAGAIN:
			if err := c.wait("write", c.wready, c.wkick, &c.wdl, &c.wtimer); err != nil {
				return written, err
			}
		case err != nil:
			return written, c.opError("write", os.NewSyscallError("write", err))
		case n == 0:
			return written, c.opError("write", io.ErrUnexpectedEOF)
		}
	}
	return written, nil
}

// Close removes the socket from its poller and closes it, ending waits in
// Read and Write.
func (c *pollConn) Close() error {
	err := c.opError("close", net.ErrClosed)
	c.closeOnce.Do(func() {
		close(c.closed)
		c.fdmu.Lock()
		c.sh.remove(c)
		err = syscall.Close(c.fd)
		if err != nil {
			err = c.opError("close", os.NewSyscallError("close", err))
		}
		c.fd = -1
		c.fdmu.Unlock()
	})
	return err
}

// CloseWrite shuts down the sending side (a FIN to the peer).
func (c *pollConn) CloseWrite() error {
	c.fdmu.RLock()
	defer c.fdmu.RUnlock()
	if c.fd < 0 {
		return c.opError("close", net.ErrClosed)
	}
	if err := syscall.Shutdown(c.fd, syscall.SHUT_WR); err != nil {
		return c.opError("close", os.NewSyscallError("shutdown", err))
	}
	return nil
}

func (c *pollConn) LocalAddr() net.Addr  { return c.laddr }
func (c *pollConn) RemoteAddr() net.Addr { return c.raddr }

// epollET is EPOLLET as a uint32: syscall.EPOLLET is -0x80000000 on 386,
// amd64 and arm but 0x80000000 on arm64 and the other 64-bit ports.
const epollET = 1 << 31

var maxDeadline = time.Unix(0, 1<<63-1)

func deadlineNs(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.After(maxDeadline):
		return 1<<63 - 1
	case t.Before(time.Unix(0, 1)):
		return 1
	}
	return t.UnixNano()
}

func kickOf(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (c *pollConn) SetDeadline(t time.Time) error {
	_ = c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *pollConn) SetReadDeadline(t time.Time) error {
	c.rdl.Store(deadlineNs(t))
	kickOf(c.rkick)
	return nil
}

func (c *pollConn) SetWriteDeadline(t time.Time) error {
	c.wdl.Store(deadlineNs(t))
	kickOf(c.wkick)
	return nil
}

// SyscallConn gives the descriptor to quietReader.
func (c *pollConn) SyscallConn() (syscall.RawConn, error) { return &c.raw, nil }

// pollRawConn is pollConn's syscall.RawConn.
type pollRawConn struct{ c *pollConn }

func (r *pollRawConn) Control(f func(uintptr)) error {
	c := r.c
	c.fdmu.RLock()
	defer c.fdmu.RUnlock()
	if c.fd < 0 {
		return c.opError("raw-control", net.ErrClosed)
	}
	f(uintptr(c.fd))
	return nil
}

// Read calls f until it reports done, waiting for a token in between.
func (r *pollRawConn) Read(f func(uintptr) bool) error {
	c := r.c
	c.drained = false
	for {
		if expired(&c.rdl) {
			return c.opError("read", os.ErrDeadlineExceeded)
		}
		c.fdmu.RLock()
		if c.fd < 0 {
			c.fdmu.RUnlock()
			return c.opError("read", net.ErrClosed)
		}
		done := f(uintptr(c.fd))
		c.fdmu.RUnlock()
		if done {
			return nil
		}
		if err := c.wait("read", c.rready, c.rkick, &c.rdl, &c.rtimer); err != nil {
			return err
		}
	}
}

func (r *pollRawConn) Write(f func(uintptr) bool) error {
	c := r.c
	for {
		c.fdmu.RLock()
		if c.fd < 0 {
			c.fdmu.RUnlock()
			return c.opError("write", net.ErrClosed)
		}
		done := f(uintptr(c.fd))
		c.fdmu.RUnlock()
		if done {
			return nil
		}
		if err := c.wait("write", c.wready, c.wkick, &c.wdl, &c.wtimer); err != nil {
			return err
		}
	}
}

// pollShard is one poller: an epoll set and the goroutine that reads it.
type pollShard struct {
	interval time.Duration
	mu       sync.Mutex
	epfd     int
	conns    []*pollConn // by slot
	free     []int32
	n        int  // connections registered
	running  bool // the goroutine runs
}

var shards struct {
	sync.Mutex
	m    map[time.Duration][]*pollShard
	next uint32
}

// pickShard returns a poller of the given interval, round robin over one
// per GOMAXPROCS.
func pickShard(interval time.Duration) *pollShard {
	shards.Lock()
	defer shards.Unlock()
	if shards.m == nil {
		shards.m = make(map[time.Duration][]*pollShard)
	}
	s := shards.m[interval]
	if s == nil {
		s = make([]*pollShard, runtime.GOMAXPROCS(0))
		for i := range s {
			s[i] = &pollShard{interval: interval, epfd: -1}
		}
		shards.m[interval] = s
	}
	shards.next++
	return s[int(shards.next)%len(s)]
}

func (sh *pollShard) add(c *pollConn) error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.epfd < 0 {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return err
		}
		sh.epfd = fd
	}
	var slot int32
	if k := len(sh.free); k > 0 {
		slot = sh.free[k-1]
		sh.free = sh.free[:k-1]
		sh.conns[slot] = c
	} else {
		slot = int32(len(sh.conns))
		sh.conns = append(sh.conns, c)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | epollET, Fd: slot}
	if err := syscall.EpollCtl(sh.epfd, syscall.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		sh.conns[slot] = nil
		sh.free = append(sh.free, slot)
		return err
	}
	c.sh, c.slot = sh, slot
	sh.n++
	if !sh.running {
		sh.running = true
		go sh.loop()
	}
	return nil
}

// remove deregisters c; the caller holds c.fdmu locked.
func (sh *pollShard) remove(c *pollConn) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_ = syscall.EpollCtl(sh.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
	sh.conns[c.slot] = nil
	sh.free = append(sh.free, c.slot)
	sh.n--
}

// idleSpins is how many empty looks a poller takes before it blocks in
// epoll_wait, and idleBlock how long it then blocks at most (so that it
// notices when its last connection is gone and exits).
const (
	idleSpins = 8
	idleBlock = 100 // ms
)

// loop is the poller goroutine. It exits when no connection is left.
func (sh *pollShard) loop() {
	events := make([]syscall.EpollEvent, 512)
	var lent []*pollConn
	empty := 0
	for {
		timeout := 0
		if empty >= idleSpins {
			timeout = idleBlock
		}
		var n int
		var err error
		if timeout == 0 {
			n, err = rawEpollWait(sh.epfd, events)
		} else {
			n, err = syscall.EpollWait(sh.epfd, events, timeout)
		}
		if err != nil && err != syscall.EINTR {
			n = 0
		}
		sh.mu.Lock()
		if sh.n == 0 {
			sh.running = false
			sh.mu.Unlock()
			return
		}
		for _, ev := range events[:max(n, 0)] {
			if int(ev.Fd) >= len(sh.conns) {
				continue
			}
			c := sh.conns[ev.Fd]
			if c == nil {
				continue
			}
			if ev.Events&hupEvents != 0 {
				c.hup.Store(true)
			}
			if ev.Events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				// Only a reader with a fast path parks (lend).
				if c.park.CompareAndSwap(readerParked, readerLent) {
					lent = append(lent, c)
				} else {
					kickOf(c.rready)
				}
			}
			if ev.Events&(syscall.EPOLLOUT|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				kickOf(c.wready)
			}
		}
		sh.mu.Unlock()
		// Parse outside sh.mu: Close holds fdmu while it takes sh.mu.
		for i, c := range lent {
			c.nb, c.drained = true, false // the event: data may be there
			keep := c.parse()
			c.nb = false
			if keep {
				c.park.Store(readerParked)
			} else {
				c.park.Store(readerActive)
				kickOf(c.rready)
			}
			lent[i] = nil
		}
		lent = lent[:0]
		switch {
		case n == len(events):
			// More may be ready: look again at once.
		case n > 0 || timeout == 0:
			if n > 0 {
				empty = 0
			} else {
				empty++
			}
			time.Sleep(sh.interval)
		default:
			empty = idleSpins // stay blocking until something arrives
		}
	}
}

// rawRead is read(2) on a non-blocking socket without telling the
// runtime that a system call is under way (syscall.RawSyscall), and
// rawEpollWait likewise an epoll_pwait(2) that does not block (timeout 0).
// syscall.Read and syscall.EpollWait mark the goroutine's P as in a system
// call; sysmon, which looks for such Ps to hand off every 20 µs while it
// finds any, then keeps waking at that rate (a thread wake-up each), and
// a P it retakes from a short call costs a hand-off. These calls never
// block, so the P has nothing to hand off. Measured with perf record -g
// -p on the vgload server at 1,000 AudioHook sessions (6 s each): sysmon
// and its usleep 4.7% and 6.1% of the server's samples with syscall.Read,
// 1.9% and 4.4% of fewer samples with these; vgload -kind audiohook -n 1000
// -duration 12s, builds alternating on the loaded machine (other jobs
// 1.2–1.8 of the 2 cores), runs that kept up: 148, 174, 172, 157, 135, 158
// µs per session-second before, 144, 139, 98 after (the other runs had
// the generator behind, which batches messages and is not comparable).
// golang.org/x/sys/unix has no such read either: its Read also goes
// through the runtime's system call entry.
//
// Under the race detector rawRead is syscall.Read, which tells the
// detector that the kernel wrote b (a raw system call does not).
func rawRead(fd int, b []byte) (int, error) {
	if raceEnabled {
		return syscall.Read(fd, b)
	}
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

func rawEpollWait(epfd int, events []syscall.EpollEvent) (int, error) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

package wsconn

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// MessageType is the type of a data message.
type MessageType int

// Message types; the values are the frame opcodes.
const (
	MessageText   MessageType = opText
	MessageBinary MessageType = opBinary
)

func (t MessageType) String() string {
	switch t {
	case MessageText:
		return "text"
	case MessageBinary:
		return "binary"
	}
	return fmt.Sprintf("MessageType(%d)", int(t))
}

// DefaultReadLimit is the largest message ReadMessage accepts until
// SetReadLimit changes it.
const DefaultReadLimit = 32768

// aLongTimeAgo is a deadline in the past, used to interrupt I/O.
var aLongTimeAgo = time.Unix(1, 0)

// Conn is the server side of a WebSocket connection, returned by Accept.
//
// One goroutine at a time may call ReadMessage, and some goroutine must
// keep calling it for pings to be answered and the peer's close to be
// seen. WriteMessage, WritePing, Close, CloseNow, SetReadLimit and
// SetReadDeadline are safe for concurrent use with each other and with
// ReadMessage; writes are serialized, so each message goes out whole.
//
// A failed read or write ends the connection: later reads return the same
// error, later writes fail. Call Close (close handshake) or CloseNow when
// done; both are idempotent and later calls return an error wrapping
// net.ErrClosed.
type Conn struct {
	nc           net.Conn
	br           *bufio.Reader
	bw           *bufio.Writer
	subprotocol  string
	closeTimeout time.Duration
	readLimit    atomic.Int64

	// Read side, owned by the holder of rlock.
	rlock    chan struct{}
	rbuf     []byte
	hdr      [maxHeader]byte
	ctl      [maxControlPayload]byte
	rerr     error         // sticky read error
	readDone chan struct{} // closed once rerr is set
	doneOnce sync.Once
	cadence  atomic.Int64              // SetReadCadence, in nanoseconds
	kick     chan struct{}             // ends a cadence pause early
	flush    func()                    // SetFlush
	tooBig   func(MessageType, uint64) // SetTooBig
	quiet    *quietReader              // keeps the socket quiet in a pause; nil when not a socket
	fast     func([]byte) bool         // SetFastPath
	lend     func()                    // parks the reader, letting the poller parse; nil when not polled
	pending  int                       // length of a message a fast path declined, in rbuf; -1 none
	pendTyp  MessageType               // the type of the pending message

	// Cadence fast path (SetCadenceFastPath).
	cfast  func(MessageType, []byte) bool
	cpark  atomic.Int32  // readerActive, readerParked or readerLent
	rdl    atomic.Int64  // the read deadline in Unix ns (SetReadDeadline); 0 none
	waitOn *cadenceTimer // the timer c is registered on; guarded by cadences

	// Write side, owned by the holder of wlock.
	wlock     chan struct{}
	whdr      [10]byte
	closeSent bool
	wdeadline time.Time     // the write deadline now set on nc
	wintr     chan struct{} // interruptWrite ran
	interrupt func()        // interruptWrite as a func value, made once

	closing   atomic.Bool   // Close or CloseNow was called
	closed    chan struct{} // closed with nc
	closeOnce sync.Once
}

func newConn(nc net.Conn, br *bufio.Reader, bw *bufio.Writer, sub string, closeTimeout time.Duration) *Conn {
	c := &Conn{
		nc: nc, br: br, bw: bw, subprotocol: sub, closeTimeout: closeTimeout,
		rlock:    make(chan struct{}, 1),
		readDone: make(chan struct{}),
		kick:     make(chan struct{}, 1),
		wlock:    make(chan struct{}, 1),
		wintr:    make(chan struct{}, 1),
		closed:   make(chan struct{}),
		pending:  -1,
	}
	c.readLimit.Store(DefaultReadLimit)
	c.interrupt = c.interruptWrite
	return c
}

// Subprotocol returns the subprotocol selected during the handshake, or "".
func (c *Conn) Subprotocol() string { return c.subprotocol }

// SetReadLimit sets the largest message, in bytes, that ReadMessage
// accepts (the sum of its fragments). A longer message fails the
// connection with StatusMessageTooBig as soon as its size is known, before
// its payload is read or buffered. n <= 0 restores DefaultReadLimit.
func (c *Conn) SetReadLimit(n int64) {
	if n <= 0 {
		n = DefaultReadLimit
	}
	c.readLimit.Store(n)
}

// SetReadDeadline sets the time after which a blocked or future
// ReadMessage fails; the zero time means none. An expired deadline ends the
// connection (the read may have stopped inside a frame): ReadMessage
// returns an error satisfying errors.Is(err, os.ErrDeadlineExceeded) and
// the connection is closed. Close and CloseNow also unblock ReadMessage.
func (c *Conn) SetReadDeadline(t time.Time) error {
	err := c.nc.SetReadDeadline(t)
	var dl int64
	if !t.IsZero() {
		dl = t.UnixNano()
	}
	c.rdl.Store(dl) // the cadence timer wakes the reader once it is due
	c.wakeReader()  // a deadline already past ends a cadence pause
	return err
}

// SetReadCadence makes ReadMessage pause whenever it has returned every
// message already received and would otherwise ask the network for more;
// the pause ends at the next multiple of d on a wall-clock grid shared by
// all connections, so it lasts at most d: the messages that arrive during the pause are then taken by one
// read(2) and returned one after the other without waiting. A stream of
// small messages (one every 20 ms) thus costs one system call and one
// goroutine wake-up per d instead of two system calls (the second one
// finding nothing) and a wake-up per message, at the price of up to d of
// extra latency for every message, control frames included. d <= 0 (the
// default) reads at once. It may be called at any time, from any
// goroutine; a pause under way ends at its own time, unless d <= 0, which
// ends it at once.
//
// Close, CloseNow and SetReadDeadline end a pause under way.
//
// On Linux TCP connections the socket's SO_RCVLOWAT is raised for the
// pause, so that segments arriving during it do not wake the runtime's
// poller (see quietReader); every connection with the same cadence shares
// one timer.
func (c *Conn) SetReadCadence(d time.Duration) {
	c.cadence.Store(int64(max(d, 0)))
	if d <= 0 {
		c.wakeReader()
	}
}

// SetFlush sets f to be called by ReadMessage, on its goroutine, whenever
// it is about to read from the network because the bytes buffered do not
// hold the rest of the message (and before a cadence pause): the reader
// may block there. A reader that hands messages on in batches uses it to
// publish the batch it holds. Set it before the first ReadMessage.
func (c *Conn) SetFlush(f func()) { c.flush = f }

// SetTooBig sets f to be called by ReadMessage, on its goroutine, when it
// refuses a message over the read limit: after the frame header told the
// size (size is the message's bytes so far, the refused frame included)
// and before the close frame with StatusMessageTooBig is written, so that
// f may tell the peer why in its own protocol with WriteMessage. f must
// return promptly and must not call the connection's read methods. Close
// called from f (or while f runs) waits up to the close timeout
// (AcceptOptions.CloseTimeout) for the read side, which ReadMessage holds
// until f returns; CloseNow does not wait. Set it before the first
// ReadMessage.
func (c *Conn) SetTooBig(f func(typ MessageType, size uint64)) { c.tooBig = f }

// SetFastPath lets the shared poller (AcceptOptions.PollInterval) read and
// parse for a reader waiting in ReadMessage with nothing buffered and the
// socket empty: every complete, unfragmented binary message that arrives
// is passed to f on the poller's goroutine, and the reader stays asleep
// while f returns true. p is unmasked in the poller's buffer and valid
// only during the call; f must not block (it runs for every connection of
// its poller in turn) and must not call the connection's read methods.
// ReadMessage returns every other message (and one f declined, unchanged)
// and handles control frames as before, so pings are answered and the
// peer's close seen by the reader. The flush function (SetFlush) runs on
// the poller after a batch that f took whole (after one it declined, the
// reader flushes before it next reads). f runs only while ReadMessage is
// blocked, so state shared with the reader needs no lock. Without a read
// cadence only; elsewhere than on a polled connection it does nothing and
// reports false. Set it before the first ReadMessage.
func (c *Conn) SetFastPath(f func(p []byte) bool) bool {
	c.fast = f
	return setFastPath(c)
}

// SetCadenceFastPath lets the shared cadence timer read and parse for a
// reader paused by the read cadence (SetReadCadence) on a Linux TCP
// connection: at each cadence instant, instead of waking the reader, the
// timer's goroutine reads what the socket holds with one non-blocking
// read(2) and passes each complete, unfragmented text or binary message
// to f (a text message only when it is valid UTF-8), and the reader
// stays paused while f returns true and the read took every byte. p is
// unmasked in the connection's buffer and valid only during the call; f
// must not block (it runs for many connections in turn) and must not call
// the connection's read methods. ReadMessage returns every other message
// (and one f declined, unchanged) and handles control frames as before,
// so pings, the peer's close and anything f declines are seen at most one
// cadence later, as without the fast path. The flush function (SetFlush)
// runs on the timer's goroutine after a batch that f took whole. f runs only
// while ReadMessage is paused, so state shared with the reader needs no
// lock. Elsewhere than on Linux TCP connections it does nothing and
// reports false. Set it before the first ReadMessage.
func (c *Conn) SetCadenceFastPath(f func(typ MessageType, p []byte) bool) bool {
	if c.quiet == nil || !c.quiet.canQuiet() {
		return false
	}
	c.cfast = f
	return true
}

// errWouldBlock is what a polled connection's Read returns on the
// poller's goroutine (pollParse) when the socket is empty.
var errWouldBlock = errors.New("websocket: read would block")

// pollParse runs on the poller's goroutine for a reader parked with
// nothing buffered (see SetFastPath): it reads the socket without waiting
// and passes each complete, final, masked binary frame that is a whole
// message to the fast path. It reports whether the reader may stay
// parked: every byte read was taken and the socket is empty. Anything
// else (a control or text frame, a fragment, a frame over the read limit
// or the buffer, a partial frame, an error) is left buffered for the
// reader, which the poller then wakes.
func (c *Conn) pollParse() bool {
	return c.parseBuffered(false)
}

// cadenceParse runs on the cadence timer's goroutine for a reader paused
// for the cadence (see SetCadenceFastPath): one non-blocking read, then
// the messages it completed go to the cadence fast path. It reports
// whether the reader may stay paused.
func (c *Conn) cadenceParse() bool {
	c.quiet.setNonBlocking(true)
	keep := c.parseBuffered(true)
	c.quiet.setNonBlocking(false)
	return keep
}

// parseBuffered passes complete, final, masked data frames that are whole
// messages to a fast path: binary ones to SetFastPath's, or (cadence)
// text and binary ones to SetCadenceFastPath's. The reads under it must
// not wait (they return errWouldBlock). It reports whether every byte
// read was taken and the socket is empty.
func (c *Conn) parseBuffered(cadence bool) bool {
	took := false
	keep := false
	for {
		b, err := c.br.Peek(2)
		if err != nil {
			keep = err == errWouldBlock && c.br.Buffered() == 0
			break
		}
		typ := MessageType(b[0] & 0x0F)
		if b[0]&0xF0 != 0x80 || b[1]&0x80 == 0 || (typ != MessageBinary && (!cadence || typ != MessageText)) {
			break
		}
		hl, l := 6, int(b[1]&0x7F)
		switch l {
		case 126:
			hl = 8
		case 127:
			l = -1
		}
		if l < 0 {
			break
		}
		if b, err = c.br.Peek(hl); err != nil {
			break
		}
		if hl == 8 {
			l = int(binary.BigEndian.Uint16(b[2:]))
		}
		if int64(l) > c.readLimit.Load() || hl+l > c.br.Size() {
			break
		}
		if b, err = c.br.Peek(hl + l); err != nil {
			break
		}
		p := b[hl:]
		maskBytes(binary.LittleEndian.Uint32(b[hl-4:]), p)
		took = true
		var ok bool
		if cadence {
			ok = (typ != MessageText || utf8.Valid(p)) && c.cfast(typ, p)
		} else {
			ok = c.fast(p)
		}
		if !ok {
			if l > cap(c.rbuf) {
				c.rbuf = make([]byte, l, min(max(l, 2*cap(c.rbuf)), int(c.readLimit.Load())))
			}
			c.pending, c.pendTyp = copy(c.rbuf[:l], p), typ
			_, _ = c.br.Discard(hl + l)
			break
		}
		_, _ = c.br.Discard(hl + l)
	}
	if took && c.pending < 0 && c.flush != nil {
		// After a declined message the reader flushes, before it next
		// reads the network: the declined message was read in this batch.
		c.flush()
	}
	return keep
}

// need prepares a read of n bytes from br: when fewer are buffered the
// read may block on the network, so the batch is flushed first.
func (c *Conn) need(n int) {
	if c.flush != nil && c.br.Buffered() < n {
		c.flush()
	}
}

// pause waits for the read cadence when nothing is buffered. It reports
// false when the connection was closed during the pause.
func (c *Conn) pause() bool {
	d := c.cadence.Load()
	if d <= 0 || c.br.Buffered() > 0 {
		return true
	}
	if c.flush != nil {
		c.flush()
	}
	if c.quiet != nil {
		c.quiet.quiet()
	}
	// The pause ends on the next multiple of d in Unix time, the same
	// instant for every connection with this cadence, so they share one
	// timer that kicks every connection waiting for that instant: the
	// runtime readies all their readers in one pass and its threads sleep
	// between instants, where a timer per connection costs a timer-heap
	// insertion and removal, a three-way select and a channel send each.
	// go test -run '^$' -bench CadencePause -benchtime 200000x
	// ./internal/wsconn (1,000 connections, 2 ms cadence), the two builds
	// interleaved: 1.2–2.4 µs of CPU per pause with a timer per
	// connection, 0.7–1.7 µs shared.
	lend := c.cfast != nil && c.quiet.active()
	if lend {
		c.cpark.Store(readerParked)
	}
	waitInstant(c, d)
	<-c.kick
	if lend {
		// The timer may be parsing for this reader (cadenceParse): a few
		// µs.
		for !c.cpark.CompareAndSwap(readerParked, readerActive) {
			if c.cpark.Load() == readerActive {
				break
			}
			runtime.Gosched()
		}
	}
	select {
	case <-c.closed:
		return false
	default:
		return true
	}
}

// States of pollConn.park and Conn.cpark.
const (
	readerActive int32 = iota // the reader holds the read side
	readerParked              // the reader sleeps; the poller or the cadence timer may take the read side
	readerLent                // the poller (pollParse) or the cadence timer (cadenceParse) holds the read side
)

// cadences holds a shared instant timer per read cadence in use.
var cadences struct {
	sync.Mutex
	m map[int64]*cadenceTimer
}

// cadenceTimer kicks the connections waiting for its next instant.
type cadenceTimer struct {
	d       int64 // the cadence in ns
	t       *time.Timer
	armed   bool
	waiting []*Conn
	spare   []*Conn
}

// waitInstant registers c to be kicked at the next multiple of d ns in
// Unix time (or at an earlier instant already armed), or to have the
// timer parse for it (cadenceParse) if its reader lent the read side. A pause ended early by another
// kick leaves c registered: its next pause may then end at once, which
// only makes that read sooner.
func waitInstant(c *Conn, d int64) {
	cadences.Lock()
	defer cadences.Unlock()
	ct := cadences.m[d]
	if ct == nil {
		if cadences.m == nil {
			cadences.m = make(map[int64]*cadenceTimer)
		}
		ct = &cadenceTimer{d: d}
		ct.t = time.AfterFunc(time.Hour, ct.fire)
		ct.t.Stop()
		cadences.m[d] = ct
	}
	if c.waitOn != ct {
		// Also when c is still registered on the timer of an earlier
		// cadence: that instant may be far off. The two timers cannot
		// lend the read side at once (cpark).
		c.waitOn = ct
		ct.waiting = append(ct.waiting, c)
	}
	ct.armLocked()
}

// armLocked arms the timer for the next instant if it is not armed.
func (ct *cadenceTimer) armLocked() {
	if !ct.armed && len(ct.waiting) > 0 {
		now := time.Now().UnixNano()
		ct.t.Reset(time.Duration(ct.d - now%ct.d))
		ct.armed = true
	}
}

// fire ends the pauses waiting for this instant. A reader that lent its
// read side (SetCadenceFastPath) is not woken: the messages that arrived
// are parsed here, and the reader stays paused until the next instant
// unless something needs it. The connections are split among GOMAXPROCS
// goroutines, so that reads at one instant use every core as the readers
// they replace did.
func (ct *cadenceTimer) fire() {
	cadences.Lock()
	w := ct.waiting
	ct.waiting, ct.spare = ct.spare[:0], nil
	ct.armed = false
	for _, c := range w {
		if c.waitOn == ct {
			c.waitOn = nil
		}
	}
	cadences.Unlock()
	parts := min(runtime.GOMAXPROCS(0), (len(w)+minPerPart-1)/minPerPart)
	if parts > 1 {
		var wg sync.WaitGroup
		per := (len(w) + parts - 1) / parts
		for lo := per; lo < len(w); lo += per {
			wg.Add(1)
			go func(part []*Conn) {
				defer wg.Done()
				endPauses(part)
			}(w[lo:min(lo+per, len(w))])
		}
		endPauses(w[:min(per, len(w))])
		wg.Wait()
	} else {
		endPauses(w)
	}
	cadences.Lock()
	keep := w[:0]
	for _, c := range w {
		if c != nil && c.waitOn == nil {
			c.waitOn = ct
			ct.waiting = append(ct.waiting, c)
		}
	}
	clear(w)
	ct.spare = keep
	ct.armLocked()
	cadences.Unlock()
}

// minPerPart is the fewest connections a goroutine of fire takes.
const minPerPart = 64

// yieldEvery is how many connections endPauses handles between yields:
// about 1–2 ms of work, well under sysmon's 10 ms time slice.
const yieldEvery = 64

// endPauses ends or lends the pauses of w, leaving in w the connections
// that stay paused for the next instant and nil for the others. A reader
// whose read deadline has passed is woken, to fail.
//
// It yields the processor every yieldEvery connections. Its read(2)
// calls are raw (rawRead), so the runtime sees one goroutine running
// for the whole pass: 500 connections take 10 ms or more, and past 10
// ms sysmon preempts it with a signal, which lands in a read(2) (not a
// safe point) as often as not and is then sent again every sysmon tick.
// In a CPU profile at 1,000 streams (vgload -kind twilio -n 1000
// -duration 8s -cpuprofile F) runtime.asyncPreempt, where the signals'
// kernel time is counted, took 10.5% of the server's samples; with the
// yields 5.3%, on a loaded machine (see the package doc, Cadence timer
// that parses).
func endPauses(w []*Conn) {
	var now int64
	for i, c := range w {
		if i > 0 && i%yieldEvery == 0 {
			runtime.Gosched()
		}
		due := false
		if dl := c.rdl.Load(); dl != 0 {
			if now == 0 {
				now = time.Now().UnixNano()
			}
			due = now >= dl
		}
		if !due && c.cfast != nil && c.cpark.CompareAndSwap(readerParked, readerLent) {
			if c.cadenceParse() {
				c.cpark.Store(readerParked)
				continue
			}
			c.cpark.Store(readerActive)
		}
		c.wakeReader()
		w[i] = nil
	}
}

// wakeReader ends a cadence pause under way, or the next one.
func (c *Conn) wakeReader() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// ReadMessage returns the next data message. Fragmented messages are
// reassembled; pings are answered with pongs, pongs are ignored.
//
// The payload is held in a buffer owned by the connection and is valid
// until the next call to ReadMessage. In steady state (the buffer has grown
// to the largest message) ReadMessage allocates nothing.
//
// ReadMessage returns a *CloseError when the peer sent a close frame (the
// close was answered and the connection closed), a *ProtocolError when the
// peer broke the protocol or the read limit (a close frame with its Code was
// sent and the connection closed), and an error wrapping the network error
// otherwise (net.ErrClosed after Close or CloseNow, io.ErrUnexpectedEOF
// when the connection dropped). Once it failed, it keeps returning the same
// error.
func (c *Conn) ReadMessage() (MessageType, []byte, error) {
	c.rlock <- struct{}{}
	if c.rerr != nil {
		err := c.rerr
		<-c.rlock
		return 0, nil, err
	}
	typ, p, err := c.readMessage()
	if err != nil {
		c.setReadErr(err)
	}
	<-c.rlock
	return typ, p, err
}

func (c *Conn) setReadErr(err error) {
	c.rerr = err
	c.doneOnce.Do(func() { close(c.readDone) })
}

func (c *Conn) readMessage() (MessageType, []byte, error) {
	var typ MessageType
	n := 0
	limit := c.readLimit.Load()
	if !c.pause() {
		return 0, nil, c.readFailed(net.ErrClosed)
	}
	if c.lend != nil && c.br.Buffered() == 0 && c.cadence.Load() == 0 {
		if c.flush != nil {
			c.flush()
		}
		c.lend()
	}
	if c.pending >= 0 {
		n := c.pending
		c.pending = -1
		p := c.rbuf[:n]
		if c.pendTyp == MessageText && !utf8.Valid(p) {
			return 0, nil, c.fail(StatusInvalidFramePayloadData, 0, "text message is not valid UTF-8")
		}
		return c.pendTyp, p, nil
	}
	for {
		c.need(2)
		h, err := c.readHeader()
		if err != nil {
			return 0, nil, c.readFailed(err)
		}
		if h.rsv != 0 {
			return 0, nil, c.fail(StatusProtocolError, int64(h.length), "reserved bits set without a negotiated extension")
		}
		if h.length > 1<<63-1 {
			return 0, nil, c.fail(StatusProtocolError, -1, "payload length has its most significant bit set")
		}
		if !h.masked {
			return 0, nil, c.fail(StatusProtocolError, int64(h.length), "client frame is not masked")
		}
		switch h.op {
		case opClose, opPing, opPong:
			if !h.fin {
				return 0, nil, c.fail(StatusProtocolError, int64(h.length), "fragmented control frame")
			}
			if h.length > maxControlPayload {
				return 0, nil, c.fail(StatusProtocolError, int64(h.length), fmt.Sprintf("control frame payload of %d bytes > 125", h.length))
			}
			p := c.ctl[:h.length]
			c.need(len(p))
			if _, err := io.ReadFull(c.br, p); err != nil {
				return 0, nil, c.readFailed(err)
			}
			maskBytes(h.key, p)
			if err := c.handleControl(h.op, p); err != nil {
				return 0, nil, err
			}
			continue
		case opText, opBinary:
			if typ != 0 {
				return 0, nil, c.fail(StatusProtocolError, int64(h.length), "new data frame inside a fragmented message")
			}
			typ = MessageType(h.op)
		case opContinuation:
			if typ == 0 {
				return 0, nil, c.fail(StatusProtocolError, int64(h.length), "continuation frame without a message to continue")
			}
		default:
			return 0, nil, c.fail(StatusProtocolError, int64(h.length), fmt.Sprintf("reserved opcode %#x", h.op))
		}
		if h.length > uint64(limit)-uint64(n) {
			if c.tooBig != nil {
				c.tooBig(typ, uint64(n)+h.length)
			}
			return 0, nil, c.fail(StatusMessageTooBig, int64(h.length), fmt.Sprintf("message exceeds the read limit of %d bytes", limit))
		}
		end := n + int(h.length)
		if end > cap(c.rbuf) {
			nb := make([]byte, end, min(max(end, 2*cap(c.rbuf)), int(limit)))
			copy(nb, c.rbuf[:n])
			c.rbuf = nb
		}
		c.rbuf = c.rbuf[:cap(c.rbuf)]
		p := c.rbuf[n:end]
		c.need(len(p))
		if _, err := io.ReadFull(c.br, p); err != nil {
			return 0, nil, c.readFailed(err)
		}
		maskBytes(h.key, p)
		n = end
		if h.fin {
			break
		}
	}
	p := c.rbuf[:n]
	if typ == MessageText && !utf8.Valid(p) {
		return 0, nil, c.fail(StatusInvalidFramePayloadData, 0, "text message is not valid UTF-8")
	}
	return typ, p, nil
}

// readHeader reads one frame header.
func (c *Conn) readHeader() (header, error) {
	if _, err := io.ReadFull(c.br, c.hdr[:2]); err != nil {
		return header{}, err
	}
	b0, b1 := c.hdr[0], c.hdr[1]
	h := header{fin: b0&0x80 != 0, rsv: b0 & 0x70, op: b0 & 0x0F, masked: b1&0x80 != 0, length: uint64(b1 & 0x7F)}
	ext := 0
	switch h.length {
	case 126:
		ext = 2
	case 127:
		ext = 8
	}
	need := ext
	if h.masked {
		need += 4
	}
	if need > 0 {
		c.need(need)
		if _, err := io.ReadFull(c.br, c.hdr[2:2+need]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return header{}, err
		}
	}
	switch ext {
	case 2:
		h.length = uint64(binary.BigEndian.Uint16(c.hdr[2:]))
	case 8:
		h.length = binary.BigEndian.Uint64(c.hdr[2:])
	}
	if h.masked {
		h.key = binary.LittleEndian.Uint32(c.hdr[2+ext:])
	}
	return h, nil
}

// readFailed turns a network read error into the read side's final error
// and closes the connection.
func (c *Conn) readFailed(err error) error {
	c.closeConn()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("websocket: read: %w", err)
}

func (c *Conn) handleControl(op byte, p []byte) error {
	switch op {
	case opPing:
		// Writing the pong may wait for the write lock: publish the batch
		// first (SetFlush). A failed pong ends the connection; the next
		// read reports it.
		if c.flush != nil {
			c.flush()
		}
		_ = c.writeFrame(context.Background(), opPong, p, c.closeTimeout)
		return nil
	case opPong:
		return nil
	}
	code := StatusNoStatusRcvd
	var reason string
	switch {
	case len(p) == 1:
		return c.fail(StatusProtocolError, 0, "close frame payload of 1 byte")
	case len(p) >= 2:
		code = StatusCode(binary.BigEndian.Uint16(p))
		if !code.validWire() {
			return c.fail(StatusProtocolError, 0, fmt.Sprintf("invalid close status code %d", code))
		}
		if !utf8.Valid(p[2:]) {
			return c.fail(StatusInvalidFramePayloadData, 0, "close reason is not valid UTF-8")
		}
		reason = string(p[2:])
	}
	echo := code
	if code == StatusNoStatusRcvd {
		echo = 0
	}
	_ = c.writeClose(echo, "")
	c.closeConn()
	return &CloseError{Code: code, Reason: reason}
}

// fail sends a close frame with code and reason, waits up to the close
// timeout for the peer's close while discarding its data, closes the
// connection and returns a *ProtocolError. skip is the payload length of
// the offending frame, still unread, or -1 when frame boundaries are lost.
// The caller holds rlock.
func (c *Conn) fail(code StatusCode, skip int64, reason string) error {
	_ = c.writeClose(code, reason)
	c.drain(skip)
	c.closeConn()
	return &ProtocolError{Code: code, Reason: reason}
}

// drain discards the peer's frames until its close frame, the end of the
// connection or the close timeout. skip is as in fail; when it is negative
// or too large to skip, bytes are discarded until the peer closes.
func (c *Conn) drain(skip int64) {
	_ = c.nc.SetReadDeadline(time.Now().Add(c.closeTimeout))
	discard := func(n int64) bool {
		for n > 0 {
			m, err := c.br.Discard(int(min(n, 1<<20)))
			n -= int64(m)
			if err != nil {
				return false
			}
		}
		return true
	}
	if skip < 0 || skip > max(c.readLimit.Load(), 1<<20) {
		// The peer's close frame cannot be found: signal the end of our
		// side with FIN and wait for the peer to close.
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		discard(1 << 62)
		return
	}
	if !discard(skip) {
		return
	}
	for {
		h, err := c.readHeader()
		if err != nil || h.op == opClose {
			return
		}
		if h.length > 1<<62 || !discard(int64(h.length)) {
			return
		}
	}
}

// WriteMessage writes one unfragmented data message. ctx bounds the wait
// for the write lock and the write itself: its deadline becomes the
// connection's write deadline, and cancelling it interrupts the write. A
// context that can be cancelled costs a small allocation per call
// (context.AfterFunc); context.Background costs none. A write that fails or
// is interrupted ends the connection, since a frame may be half written; a
// write whose context ended before it started (while it waited for the
// write lock, or before it) writes nothing and leaves the connection usable.
func (c *Conn) WriteMessage(ctx context.Context, typ MessageType, p []byte) error {
	if typ != MessageText && typ != MessageBinary {
		return errBadMessageType
	}
	return c.writeFrame(ctx, byte(typ), p, 0)
}

// WritePing sends a ping with payload p (at most 125 bytes). It does not
// wait for the pong, which ReadMessage discards.
func (c *Conn) WritePing(ctx context.Context, p []byte) error {
	if len(p) > maxControlPayload {
		return fmt.Errorf("websocket: ping payload of %d bytes > 125", len(p))
	}
	return c.writeFrame(ctx, opPing, p, 0)
}

// writeClose sends a close frame with code (none when 0) and reason,
// truncated to fit a control frame, within the close timeout. The wait for
// the write lock counts too: a write without a deadline may be blocked on a
// peer that does not read, and the close must then give up so that the
// caller closes the connection under that write.
func (c *Conn) writeClose(code StatusCode, reason string) error {
	var p []byte
	if code != 0 {
		if len(reason) > maxControlPayload-2 {
			reason = reason[:maxControlPayload-2]
			for len(reason) > 0 && !utf8.ValidString(reason) {
				reason = reason[:len(reason)-1]
			}
		}
		p = binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
		p = append(p, reason...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.closeTimeout)
	defer cancel()
	return c.writeFrame(ctx, opClose, p, c.closeTimeout)
}

// writeFrame writes one final frame. When ctx has no deadline and fallback
// is positive, the write (not the wait for the write lock, which is bounded
// by the current writer's own deadline) is bounded by fallback from now.
func (c *Conn) writeFrame(ctx context.Context, op byte, p []byte, fallback time.Duration) error {
	select {
	case c.wlock <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("websocket: write: %w", ctx.Err())
	case <-c.closed:
		return fmt.Errorf("websocket: write: %w", net.ErrClosed)
	}
	var err error
	select {
	case <-c.closed:
		err = fmt.Errorf("websocket: write: %w", net.ErrClosed)
	default:
		err = c.writeLocked(ctx, op, p, fallback)
	}
	<-c.wlock
	return err
}

func (c *Conn) writeLocked(ctx context.Context, op byte, p []byte, fallback time.Duration) error {
	if c.closeSent {
		return ErrCloseSent
	}
	if err := ctx.Err(); err != nil {
		// Nothing was written: the connection stays usable, as when the
		// context ends during the wait for the write lock.
		return fmt.Errorf("websocket: write: %w", err)
	}
	if op == opClose {
		c.closeSent = true
	}
	dl, ok := ctx.Deadline()
	if !ok && fallback > 0 {
		dl = time.Now().Add(fallback)
	}
	if !dl.Equal(c.wdeadline) {
		if err := c.nc.SetWriteDeadline(dl); err != nil {
			c.closeConn()
			return fmt.Errorf("websocket: write: %w", err)
		}
		c.wdeadline = dl
	}
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, c.interrupt)
	}
	n := putHeader(c.whdr[:], op, len(p))
	_, err := c.bw.Write(c.whdr[:n])
	if err == nil && len(p) > 0 {
		_, err = c.bw.Write(p)
	}
	if err == nil {
		err = c.bw.Flush()
	}
	if stop != nil && !stop() {
		<-c.wintr // the interrupt ran: the deadline is in the past
		c.wdeadline = aLongTimeAgo
		if err != nil {
			err = ctx.Err()
		}
	}
	if err != nil {
		c.closeConn()
		return fmt.Errorf("websocket: write: %w", err)
	}
	return nil
}

// interruptWrite unblocks a write whose context ended.
func (c *Conn) interruptWrite() {
	_ = c.nc.SetWriteDeadline(aLongTimeAgo)
	c.wintr <- struct{}{}
}

// Close runs the close handshake: it sends a close frame with code and
// reason (truncated to 123 bytes; code 0 sends none), waits up to the close
// timeout for the peer's close frame, then closes the connection. A
// concurrent ReadMessage sees the peer's close as a *CloseError; without
// one, Close reads and discards data messages itself while it waits. When
// the close frame cannot be written within the close timeout (a concurrent
// write is blocked on a peer that does not read), Close closes the
// connection, ending that write, and returns the error. A second call
// returns an error wrapping net.ErrClosed.
func (c *Conn) Close(code StatusCode, reason string) error {
	if !c.closing.CompareAndSwap(false, true) {
		return errClosed
	}
	defer c.closeConn()
	if code != 0 && !code.validWire() {
		return fmt.Errorf("websocket: invalid close status code %d", code)
	}
	if err := c.writeClose(code, reason); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	c.wakeReader() // the peer's close is read without waiting for the cadence
	t := time.NewTimer(c.closeTimeout)
	defer t.Stop()
	select {
	case c.rlock <- struct{}{}:
		if c.rerr == nil {
			c.drain(0)
			c.setReadErr(fmt.Errorf("websocket: read: %w", net.ErrClosed))
		}
		<-c.rlock
	case <-c.readDone:
	case <-t.C:
	}
	return nil
}

// CloseNow closes the connection without a close handshake, unblocking
// ReadMessage and writes (and cutting short a Close in progress). A second
// call returns an error wrapping net.ErrClosed.
func (c *Conn) CloseNow() error {
	first := c.closing.CompareAndSwap(false, true)
	c.closeConn()
	if !first {
		return errClosed
	}
	return nil
}

func (c *Conn) closeConn() {
	c.closeOnce.Do(func() {
		close(c.closed)
		_ = c.nc.Close()
		c.wakeReader() // ends a cadence pause under way
	})
}

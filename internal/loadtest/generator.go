package loadtest

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/audiohooktest"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/codec"
)

// Traffic kinds.
const (
	// ProtoTwilio is Twilio Media Streams: connected, start (with the
	// customParameter t0us), then a media message with 160 bytes of μ-law
	// (20 ms) every 20 ms, then stop.
	ProtoTwilio = "twilio"
	// ProtoAudioHook is Genesys AudioHook: a signed upgrade, open (with the
	// inputVariable t0us) and opened, a 3,200-byte binary message of
	// stereo PCMU (200 ms) every 200 ms, ping every 5 s, close and closed.
	ProtoAudioHook = "audiohook"
)

const (
	twilioPeriod    = 20 * time.Millisecond
	audioHookPeriod = 200 * time.Millisecond
	slotWidth       = time.Millisecond
	pingEvery       = 25 // AudioHook messages between pings: 5 s
	ioTimeout       = 10 * time.Second
)

// twilioPayload is the base64 of 20 ms of a 440 Hz tone in μ-law, and
// audioHookFrame a masked binary frame of 200 ms of it on both channels.
var twilioPayload, audioHookFrame = func() (string, []byte) {
	pcm := make([]int16, 1600)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/8000))
	}
	ulaw := make([]byte, len(pcm))
	codec.EncodeULaw(ulaw, pcm)
	stereo := make([]byte, 2*len(ulaw))
	for i, c := range ulaw {
		stereo[2*i], stereo[2*i+1] = c, c
	}
	return base64.StdEncoding.EncodeToString(ulaw[:160]), appendFrame(nil, opBinary, stereo)
}()

// genStream is one stream of the generator.
type genStream struct {
	g    *generator
	id   int
	conn net.Conn
	br   *bufio.Reader
	t0   time.Time // wall time of media time 0
	next int       // index of the next media message
	wmu  sync.Mutex
	wbuf []byte // Twilio: header, masked prefix, then the tail of a media message
	hdr  int    // Twilio: header length in wbuf
	plen int    // Twilio: length of the masked prefix in wbuf
	sid  string // Twilio streamSid or AudioHook session id
	call string // Twilio callSid
	seq  int64  // AudioHook: last client seq sent
	text []byte // scratch for text messages
	raw  syscall.RawConn
	// backlog holds bytes the socket did not take: the generator never
	// blocks on one stream, as a real sender buffers per stream.
	backlog []byte
	// rawFn is st.rawWrite, made once; rawBuf, rawN and rawErr are its
	// argument and results.
	rawFn  func(fd uintptr) bool
	rawBuf []byte
	rawN   int
	rawErr error
	// batch holds the frames of a coalesced write (Config.Coalesce).
	batch []byte
	// written counts the bytes the socket took.
	written atomic.Int64
	sent    atomic.Bool
	dead    atomic.Bool

	lastServerSeq atomic.Int64
	pingSent      atomic.Int64 // Unix ns of the ping awaiting its pong, 0 if none
	opened        chan struct{}
	closed        chan struct{} // AudioHook closed received
	done          chan struct{} // reader ended
}

type generator struct {
	proto  string
	addr   string
	period time.Duration
	nslots int
	epoch  time.Time

	// coalesce is the number of consecutive media messages of a stream
	// written with one write(2) (Config.Coalesce); 1 is real time.
	coalesce int

	pong Histogram // AudioHook ping → pong round trip
	// backlogged counts writes the socket did not take whole.
	backlogged atomic.Uint64
	errs       atomic.Uint64
	errMu      sync.Mutex
	lastErr    error

	// floor: the server answers nothing, not even a close frame.
	floor bool
	// nagle turns TCP_NODELAY off on the streams (Config.Nagle).
	nagle bool

	senders []*sender
	wg      sync.WaitGroup
	cancel  context.CancelFunc

	mu      sync.Mutex
	streams []*genStream
}

func (g *generator) fail(err error) {
	g.errs.Add(1)
	g.errMu.Lock()
	g.lastErr = err
	g.errMu.Unlock()
}

// sender sends the media messages of its streams, waking once per slot
// of slotWidth; a stream's slot is fixed by its start time. Its counters
// are its own, so that senders on different CPUs share no cache line per
// message.
type sender struct {
	mu      sync.Mutex
	pending []*genStream
	slots   [][]*genStream

	late     Histogram // send time − scheduled time of media messages
	messages atomic.Uint64
	_        [64]byte
}

// lateSnapshot merges the senders' send-delay histograms.
func (g *generator) lateSnapshot() Sparse {
	var h Histogram
	for _, s := range g.senders {
		for i := range s.late.counts {
			if c := s.late.counts[i].Load(); c != 0 {
				h.counts[i].Add(c)
			}
		}
	}
	return h.Snapshot()
}

// resetLate zeroes the senders' send-delay histograms.
func (g *generator) resetLate() {
	for _, s := range g.senders {
		s.late.Reset()
	}
}

// messages returns the number of media messages sent so far.
func (g *generator) messages() uint64 {
	var n uint64
	for _, s := range g.senders {
		n += s.messages.Load()
	}
	return n
}

// bytesWritten returns the bytes the streams' sockets took so far.
func (g *generator) bytesWritten() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	var n int64
	for _, st := range g.streams {
		n += st.written.Load()
	}
	return n
}

func newGenerator(proto, addr string, nsenders int) (*generator, error) {
	g := &generator{proto: proto, addr: addr, coalesce: 1}
	switch proto {
	case ProtoTwilio:
		g.period = twilioPeriod
	case ProtoAudioHook:
		g.period = audioHookPeriod
	default:
		return nil, fmt.Errorf("loadtest: unknown traffic %q (want twilio or audiohook)", proto)
	}
	g.nslots = int(g.period / slotWidth)
	g.epoch = time.Now().Truncate(g.period)
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	for range nsenders {
		s := &sender{slots: make([][]*genStream, g.nslots)}
		g.senders = append(g.senders, s)
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.runSender(ctx, s)
		}()
	}
	return g, nil
}

// startTime returns the first time at least lead from now whose phase in
// the period is stream i's: streams are spread evenly over the period.
func (g *generator) startTime(i, n int, lead time.Duration) time.Time {
	phase := time.Duration(int64(i%n) * int64(g.period) / int64(n))
	phase = phase.Truncate(slotWidth)
	earliest := time.Now().Add(lead)
	k := (earliest.Sub(g.epoch) - phase + g.period - 1) / g.period
	return g.epoch.Add(k*g.period + phase)
}

func (g *generator) runSender(ctx context.Context, s *sender) {
	j := int64(time.Since(g.epoch) / slotWidth)
	for {
		at := g.epoch.Add(time.Duration(j) * slotWidth)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		for _, st := range s.pending {
			slot := int(st.t0.Sub(g.epoch)/slotWidth) % g.nslots
			s.slots[slot] = append(s.slots[slot], st)
		}
		s.pending = s.pending[:0]
		s.mu.Unlock()
		list := s.slots[j%int64(g.nslots)]
		for i := 0; i < len(list); i++ {
			st := list[i]
			if st.dead.Load() {
				list[i] = list[len(list)-1]
				list = list[:len(list)-1]
				i--
				continue
			}
			g.sendDue(s, st, time.Now())
		}
		s.slots[j%int64(g.nslots)] = list
		j++
	}
}

// sendDue writes the media messages of st that are due at now, each as
// its own WebSocket message, and counts each one's send delay (now − its
// scheduled time) in s.late. With g.coalesce = k > 1 (Twilio only) the
// messages go in groups of k, one write(2) per group once its last
// message is due.
func (g *generator) sendDue(s *sender, st *genStream, now time.Time) {
	k := g.coalesce
	for {
		last := st.next + k - 1
		if now.Before(st.t0.Add(time.Duration(last) * g.period)) {
			return
		}
		var err error
		st.wmu.Lock()
		switch {
		case g.proto == ProtoAudioHook:
			err = st.write(audioHookFrame)
			if err == nil && st.next%pingEvery == pingEvery-1 {
				pos := time.Duration(st.next+1) * g.period
				st.pingSent.Store(time.Now().UnixNano())
				err = st.writeAudioHook("ping", pos, nil)
			}
		case k == 1:
			err = st.write(st.mediaFrame(st.next))
		default:
			st.batch = st.batch[:0]
			for m := st.next; m <= last; m++ {
				st.batch = append(st.batch, st.mediaFrame(m)...)
			}
			err = st.write(st.batch)
		}
		st.wmu.Unlock()
		if err != nil {
			st.dead.Store(true)
			g.fail(fmt.Errorf("stream %d: write: %w", st.id, err))
			return
		}
		for m := st.next; m <= last; m++ {
			s.late.Add(now.Sub(st.t0.Add(time.Duration(m) * g.period)))
		}
		s.messages.Add(uint64(k))
		st.next = last + 1
	}
}

// mediaFrame returns the masked frame of Twilio media message m, built in
// st.wbuf: the prefix up to and including the payload is masked once at
// dial time, only the tail (chunk, timestamp, sequenceNumber) per message.
func (st *genStream) mediaFrame(m int) []byte {
	b := st.wbuf[:st.hdr+st.plen]
	tail := len(b)
	b = append(b, `,"chunk":"`...)
	b = strconv.AppendInt(b, int64(m+1), 10)
	b = append(b, `","timestamp":"`...)
	b = strconv.AppendInt(b, int64(m)*twilioPeriod.Milliseconds(), 10)
	b = append(b, `"},"sequenceNumber":"`...)
	b = strconv.AppendInt(b, int64(m+2), 10)
	b = append(b, `"}`...)
	maskAt(b[tail:], st.plen)
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)-st.hdr))
	st.wbuf = b
	return b
}

// twilioPrefix returns the part of a media message before its varying
// fields: the fields of a message may come in any order.
func twilioPrefix(sid string) string {
	return `{"event":"media","streamSid":"` + sid + `","media":{"track":"inbound","payload":"` + twilioPayload + `"`
}

// maxBacklog is the most a stream buffers for a server that does not
// read; past it the stream fails.
const maxBacklog = 16 << 20

// write writes b without blocking: what the socket does not take now waits
// in st.backlog, written first on the next write. st.wmu must be held.
func (st *genStream) write(b []byte) error {
	if len(st.backlog) > 0 {
		if len(st.backlog)+len(b) > maxBacklog {
			return fmt.Errorf("server left %d bytes unread", len(st.backlog))
		}
		st.backlog = append(st.backlog, b...)
		n, err := st.writeRaw(st.backlog)
		st.written.Add(int64(n))
		st.backlog = st.backlog[:copy(st.backlog, st.backlog[n:])]
		if len(st.backlog) == 0 {
			st.backlog = nil
		}
		return err
	}
	n, err := st.writeRaw(b)
	st.written.Add(int64(n))
	if n < len(b) && err == nil {
		st.g.backlogged.Add(1)
		st.backlog = append([]byte(nil), b[n:]...)
	}
	return err
}

// writeRaw writes what the socket takes now, with one write(2).
func (st *genStream) writeRaw(b []byte) (int, error) {
	st.rawBuf = b
	err := st.raw.Write(st.rawFn)
	st.rawBuf = nil
	n, werr := st.rawN, st.rawErr
	if werr == syscall.EAGAIN {
		return 0, nil
	}
	if err == nil {
		err = werr
	}
	return n, err
}

// rawWrite is st.rawFn: one write(2) of st.rawBuf on the non-blocking
// socket, never waiting for it to become writable.
//
// It is a raw system call (syscall.RawSyscall): a write on a non-blocking
// socket never blocks, so the runtime need not be told of it
// (entersyscall/exitsyscall) nor sysmon hand the P to another thread when
// a write runs long, as it does when loopback's receive path runs inside it.
// Generator CPU per stream-second, vgload -kind floor -n 2000 -duration 8s
// -ramp 3s -warmup 2s, three interleaved runs each in one session (load
// average 9–13): 277, 289, 290 µs against 343, 365, 366 µs with
// syscall.Write (and 350, 359, 375 µs before the senders kept their own
// counters); the writing thread's own CPU changes less (BenchmarkMediaWrite,
// 50,000 messages, three interleaved runs: 4.8–5.3 µs per message against
// 5.2–5.3 µs), the rest was sysmon and the threads it woke (runtime.sysmon
// and nanosleep, 10% of the generator's perf samples before, are gone).
// What remains is the kernel: 90% of the samples (perf record -g -p PID
// during vgload -kind floor -n 2000), a third of them loopback's receive
// side of the server's socket, 9.5% the generator's own code. Coalescing three
// messages per write (not real time) costs 2.2 µs per message instead of
// 5.9 in the same benchmark run.
func (st *genStream) rawWrite(fd uintptr) bool {
	b := st.rawBuf
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
		if e == syscall.EINTR {
			continue
		}
		st.rawN, st.rawErr = int(n), nil
		if e != 0 {
			st.rawN, st.rawErr = 0, e
		}
		return true
	}
}

// writeText writes msg as a masked text frame; st.wmu must be held.
func (st *genStream) writeText(msg []byte) error {
	st.text = appendFrame(st.text[:0], opText, msg)
	return st.write(st.text)
}

// writeAudioHook writes client message typ; st.wmu must be held.
func (st *genStream) writeAudioHook(typ string, pos time.Duration, params []byte) error {
	st.seq++
	var m []byte
	m = append(m, `{"version":"2","type":"`...)
	m = append(m, typ...)
	m = append(m, `","seq":`...)
	m = strconv.AppendInt(m, st.seq, 10)
	m = append(m, `,"serverseq":`...)
	m = strconv.AppendInt(m, st.lastServerSeq.Load(), 10)
	m = append(m, `,"position":"`...)
	m = append(m, wire.Duration(pos).String()...)
	m = append(m, `","id":"`...)
	m = append(m, st.sid...)
	m = append(m, `","parameters":`...)
	if params == nil {
		params = []byte("{}")
	}
	m = append(m, params...)
	m = append(m, '}')
	return st.writeText(m)
}

func (g *generator) newStream(i int, conn net.Conn) (*genStream, error) {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return nil, fmt.Errorf("loadtest: %T is not a TCP connection", conn)
	}
	if g.nagle {
		if err := tc.SetNoDelay(false); err != nil {
			return nil, err
		}
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	st := &genStream{g: g, id: i, conn: conn, raw: raw, opened: make(chan struct{}), closed: make(chan struct{}), done: make(chan struct{})}
	st.rawFn = st.rawWrite
	return st, nil
}

// dial opens stream i of n, sends what precedes the media and hands the
// stream to a sender.
func (g *generator) dial(i, n int) error {
	conn, err := net.DialTimeout("tcp", g.addr, ioTimeout)
	if err != nil {
		return err
	}
	st, err := g.newStream(i, conn)
	if err != nil {
		conn.Close()
		return err
	}
	h := http.Header{}
	path := "/"
	if g.proto == ProtoAudioHook {
		path = "/api/v1/audiohook/ws"
		st.sid = audiohooktest.NewUUID()
		h.Set("User-Agent", "GenesysCloud-AudioHook-Client")
		h.Set(wire.HeaderOrganizationID, "d7934305-0972-4844-938e-9060eef73d05")
		h.Set(wire.HeaderCorrelationID, audiohooktest.NewUUID())
		h.Set(wire.HeaderSessionID, st.sid)
		h.Set(wire.HeaderAPIKey, APIKey)
		req := &http.Request{Method: http.MethodGet, URL: mustURL("http://" + g.addr + path), Host: g.addr, Header: h}
		if err := audiohook.SignRequest(req, Secret, time.Now(), ""); err != nil {
			conn.Close()
			return err
		}
	}
	st.br, err = handshake(conn, g.addr, path, h, ioTimeout)
	if err != nil {
		conn.Close()
		return err
	}
	go st.read()
	if g.proto == ProtoTwilio {
		err = st.startTwilio(i, n)
	} else {
		err = st.startAudioHook(i, n)
	}
	if err != nil {
		conn.Close()
		return err
	}
	g.mu.Lock()
	g.streams = append(g.streams, st)
	g.mu.Unlock()
	s := g.senders[i%len(g.senders)]
	s.mu.Lock()
	s.pending = append(s.pending, st)
	s.mu.Unlock()
	return nil
}

func (st *genStream) startTwilio(i, n int) error {
	st.sid = fmt.Sprintf("MZ%032x", i+1)
	st.call = fmt.Sprintf("CA%032x", i+1)
	st.t0 = st.g.startTime(i, n, 5*time.Millisecond)
	start := `{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC00000000000000000000000000000001","streamSid":"` + st.sid +
		`","callSid":"` + st.call + `","tracks":["inbound"],"customParameters":{"t0us":"` + strconv.FormatInt(st.t0.UnixMicro(), 10) +
		`"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"` + st.sid + `"}`
	st.wmu.Lock()
	err := st.writeText([]byte(`{"event":"connected","protocol":"Call","version":"1.0.0"}`))
	if err == nil {
		err = st.writeText([]byte(start))
	}
	st.wmu.Unlock()
	if err != nil {
		return err
	}
	prefix := twilioPrefix(st.sid)
	st.hdr = 8
	st.plen = len(prefix)
	st.wbuf = make([]byte, st.hdr, st.hdr+st.plen+96)
	putFrameHeader(st.wbuf, opText, 126) // 16-bit length, set per message
	st.wbuf = append(st.wbuf, prefix...)
	maskAt(st.wbuf[st.hdr:], 0)
	return nil
}

func (st *genStream) startAudioHook(i, n int) error {
	st.t0 = st.g.startTime(i, n, 100*time.Millisecond)
	params, _ := json.Marshal(wire.OpenParameters{
		OrganizationID: "d7934305-0972-4844-938e-9060eef73d05",
		ConversationID: audiohooktest.NewUUID(),
		Participant:    wire.Participant{ID: audiohooktest.NewUUID(), ANI: "+15551230000", ANIName: "Load", DNIS: "+15559870000"},
		Media:          []wire.MediaParameter{wire.MediaPCMUStereo},
		Language:       "en-US",
		InputVariables: map[string]string{"t0us": strconv.FormatInt(st.t0.UnixMicro(), 10)},
	})
	st.wmu.Lock()
	err := st.writeAudioHook("open", 0, params)
	st.wmu.Unlock()
	if err != nil {
		return err
	}
	select {
	case <-st.opened:
		return nil
	case <-st.done:
		return errors.New("connection ended before opened")
	case <-time.After(ioTimeout):
		return errors.New("no opened within 10 s")
	}
}

// read reads the server's frames until the connection ends: it tracks
// AudioHook's server seq, opened, pong and closed, answers pings, and
// answers a close frame.
func (st *genStream) read() {
	defer close(st.done)
	var buf []byte
	for {
		op, p, err := readServerFrame(st.br, buf)
		buf = p
		if err != nil {
			return
		}
		switch op {
		case opText:
			if st.g.proto == ProtoAudioHook {
				st.onAudioHook(p)
			}
		case opPing:
			st.wmu.Lock()
			_ = st.write(appendFrame(nil, opPong, p))
			st.wmu.Unlock()
		case opClose:
			if !st.sent.Swap(true) {
				st.wmu.Lock()
				_ = st.write(closeFrame)
				st.wmu.Unlock()
			}
			return
		}
	}
}

func (st *genStream) onAudioHook(p []byte) {
	var m struct {
		Type string `json:"type"`
		Seq  int64  `json:"seq"`
	}
	if err := json.Unmarshal(p, &m); err != nil {
		st.g.fail(fmt.Errorf("stream %d: server message: %w", st.id, err))
		return
	}
	st.lastServerSeq.Store(m.Seq)
	switch m.Type {
	case "opened":
		close(st.opened)
	case "pong":
		if t := st.pingSent.Swap(0); t != 0 {
			st.g.pong.Add(time.Duration(time.Now().UnixNano() - t))
		}
	case "closed":
		close(st.closed)
	case "disconnect":
		st.dead.Store(true)
		st.g.fail(fmt.Errorf("stream %d: server disconnect: %s", st.id, p))
	}
}

// stop ends every stream as its protocol says (Twilio stop, AudioHook
// close/closed), then closes the connections, all within ioTimeout.
func (g *generator) stop() {
	g.cancel()
	g.wg.Wait()
	g.mu.Lock()
	streams := g.streams
	g.mu.Unlock()
	work := make(chan *genStream)
	var wg sync.WaitGroup
	deadline := time.Now().Add(ioTimeout)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for st := range work {
				st.end(deadline)
			}
		}()
	}
	for _, st := range streams {
		work <- st
	}
	close(work)
	wg.Wait()
}

// end runs the protocol's end of st (Twilio stop; AudioHook close and
// closed) and closes the connection, giving up at deadline.
func (st *genStream) end(deadline time.Time) {
	defer st.conn.Close()
	timeout := time.NewTimer(time.Until(deadline))
	defer timeout.Stop()
	_ = st.conn.SetWriteDeadline(deadline)
	pos := time.Duration(st.next) * st.g.period
	st.wmu.Lock()
	var err error
	if st.g.proto == ProtoTwilio {
		err = st.writeText([]byte(`{"event":"stop","sequenceNumber":"` + strconv.Itoa(st.next+2) +
			`","stop":{"accountSid":"AC00000000000000000000000000000001","callSid":"` + st.call + `"},"streamSid":"` + st.sid + `"}`))
	} else {
		err = st.writeAudioHook("close", pos, []byte(`{"reason":"end"}`))
	}
	if err == nil {
		err = st.flush()
	}
	st.wmu.Unlock()
	if err != nil {
		return
	}
	if st.g.proto == ProtoAudioHook {
		select {
		case <-st.closed:
		case <-st.done:
		case <-timeout.C:
			st.g.fail(fmt.Errorf("stream %d: no closed before the end of the run", st.id))
			return
		}
	}
	if !st.sent.Swap(true) {
		st.wmu.Lock()
		if st.write(closeFrame) == nil {
			_ = st.flush()
		}
		st.wmu.Unlock()
	}
	if st.g.floor {
		return
	}
	select {
	case <-st.done:
	case <-timeout.C:
	}
}

// flush writes st.backlog, blocking until the socket takes it or the
// write deadline passes. st.wmu must be held.
func (st *genStream) flush() error {
	if len(st.backlog) == 0 {
		return nil
	}
	_, err := st.conn.Write(st.backlog)
	st.backlog = nil
	return err
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

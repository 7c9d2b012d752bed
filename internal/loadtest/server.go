package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/internal/httperr"
	"github.com/voicegate/voicegate/twilio"
)

// ServeEnv is the environment variable that turns a process into a load
// test server: MaybeServe serves the kind it names ("floor", "twilio" or
// "audiohook") and exits.
const ServeEnv = "VOICEGATE_LOADTEST_SERVE"

// ProfileEnv, when set beside ServeEnv, names a file the server writes a
// pprof CPU profile to, from its "reset" command (the start of the
// measured window) to the next "report".
const ProfileEnv = "VOICEGATE_LOADTEST_CPUPROFILE"

// CadenceEnv, when set beside ServeEnv to a duration (time.ParseDuration),
// is the twilio server's AcceptOptions.ReadCadence; unset, the default.
const CadenceEnv = "VOICEGATE_LOADTEST_CADENCE"

// APIKey and Secret are the AudioHook credentials the generator signs with
// and the audiohook server accepts (the secret is the base64-decoded
// client secret).
const APIKey = "loadtest-api-key"

var Secret = []byte("loadtest-client-secret-32-bytes!")

// ServerReport is what a server process answers to "report": counters
// over the streams it served, and the delivery lag histogram since the
// last "reset". The Node consumer answers the same JSON.
type ServerReport struct {
	Kind string `json:"kind"`
	// Streams is the number of streams open now; Ended the number that
	// ended; Errors those that failed to open or ended with an error other
	// than the protocol's clean end.
	Streams int `json:"streams"`
	Ended   int `json:"ended"`
	Errors  int `json:"errors"`
	// LastError is the text of the last error counted in Errors.
	LastError string `json:"last_error,omitempty"`
	// Lag is the histogram of now − (stream start + frame media time) at
	// each ReadFrame, in the buckets of Histogram.
	Lag Sparse `json:"lag"`
	// Dropped, Late and MaxQueue sum (Dropped, Late) or take the maximum
	// (MaxQueue) of the streams' Stats FramesDropped, FramesLate and
	// MaxQueueDepth, over live and ended streams.
	Dropped  uint64 `json:"dropped"`
	Late     uint64 `json:"late"`
	MaxQueue int    `json:"max_queue"`
	// Pings and MaxPongUs are AudioHook's Stats.Pings (summed) and
	// Stats.MaxPongLatency (maximum, µs).
	Pings     uint64 `json:"pings,omitempty"`
	MaxPongUs int64  `json:"max_pong_us,omitempty"`
	// BytesRead is the bytes the floor server read.
	BytesRead uint64 `json:"bytes_read,omitempty"`
}

// streamCounters is the part of a stream's Stats the report sums.
type streamCounters struct {
	dropped, late uint64
	maxQueue      int
	pings         uint64
	maxPong       time.Duration
}

type server struct {
	kind    string
	cadence time.Duration // twilio.AcceptOptions.ReadCadence; 0 default
	lag     Histogram
	bytes   atomic.Uint64

	mu        sync.Mutex
	live      map[*liveStream]struct{}
	ended     int
	errs      int
	lastErr   string
	endedSums streamCounters
}

type liveStream struct{ stats func() streamCounters }

func (s *server) add(sum *streamCounters, c streamCounters) {
	sum.dropped += c.dropped
	sum.late += c.late
	sum.maxQueue = max(sum.maxQueue, c.maxQueue)
	sum.pings += c.pings
	sum.maxPong = max(sum.maxPong, c.maxPong)
}

func (s *server) open(stats func() streamCounters) *liveStream {
	l := &liveStream{stats: stats}
	s.mu.Lock()
	s.live[l] = struct{}{}
	s.mu.Unlock()
	return l
}

func (s *server) end(l *liveStream, err error) {
	c := l.stats()
	s.mu.Lock()
	delete(s.live, l)
	s.ended++
	s.add(&s.endedSums, c)
	s.mu.Unlock()
	if err != nil {
		s.fail(err)
	}
}

func (s *server) fail(err error) {
	s.mu.Lock()
	s.errs++
	s.lastErr = err.Error()
	s.mu.Unlock()
}

func (s *server) report() ServerReport {
	s.mu.Lock()
	live := make([]*liveStream, 0, len(s.live))
	for l := range s.live {
		live = append(live, l)
	}
	r := ServerReport{Kind: s.kind, Streams: len(s.live), Ended: s.ended, Errors: s.errs, LastError: s.lastErr}
	sum := s.endedSums
	s.mu.Unlock()
	for _, l := range live {
		s.add(&sum, l.stats())
	}
	r.Lag = s.lag.Snapshot()
	r.Dropped, r.Late, r.MaxQueue = sum.dropped, sum.late, sum.maxQueue
	r.Pings, r.MaxPongUs = sum.pings, sum.maxPong.Microseconds()
	r.BytesRead = s.bytes.Load()
	return r
}

// observe counts the lag of a frame of media time ts in a stream whose
// media time 0 is the wall time t0us (Unix µs).
func (s *server) observe(t0us int64, ts time.Duration) {
	s.lag.Add(time.Duration(time.Now().UnixMicro()-t0us-ts.Microseconds()) * time.Microsecond)
}

// MaybeServe runs a load test server and exits when the environment
// variable ServeEnv is set, and returns at once otherwise. Call it first
// in main or TestMain: Run starts servers by running the current
// executable with ServeEnv set.
func MaybeServe() {
	kind := os.Getenv(ServeEnv)
	if kind == "" {
		return
	}
	if err := Serve(kind, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest server:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Serve runs a server of the given kind on a loopback port until in ends
// or says "quit". It first writes {"addr":"127.0.0.1:PORT"} to out, then
// answers each line of in: "reset" zeroes the lag histogram and answers
// {"ok":true}; "report" answers a ServerReport; both as one JSON line.
//
// Kinds: "floor" upgrades the connection (RFC 6455 handshake, written
// here) and reads and discards bytes in a goroutine per connection, the
// least a Go server can do per message; "twilio" runs twilio.Accept and a
// goroutine per stream calling ReadFrame until io.EOF; "audiohook" runs
// audiohook.Accept (signatures checked with APIKey and Secret) and the
// same loop.
func Serve(kind string, in io.Reader, out io.Writer) error {
	s := &server{kind: kind, live: map[*liveStream]struct{}{}}
	var h http.HandlerFunc
	switch kind {
	case "floor":
		h = s.serveFloor
	case "twilio":
		if v := os.Getenv(CadenceEnv); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s: %w", CadenceEnv, err)
			}
			s.cadence = d
		}
		h = s.serveTwilio
	case "audiohook":
		keys := audiohook.StaticKeys{APIKey: Secret}
		opts := &audiohook.ServerOptions{Keys: keys, Media: []wire.MediaParameter{wire.MediaPCMUStereo}}
		h = func(w http.ResponseWriter, r *http.Request) { s.serveAudioHook(w, r, opts) }
	default:
		return fmt.Errorf("unknown server kind %q (want floor, twilio or audiohook)", kind)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	enc := json.NewEncoder(out)
	if err := enc.Encode(map[string]string{"addr": ln.Addr().String()}); err != nil {
		return err
	}
	prof := profiler{path: os.Getenv(ProfileEnv)}
	defer prof.stop()
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		switch strings.TrimSpace(sc.Text()) {
		case "reset":
			s.lag.Reset()
			if err = prof.start(); err == nil {
				err = enc.Encode(map[string]bool{"ok": true})
			}
		case "report":
			prof.stop()
			err = enc.Encode(s.report())
		case "quit":
			return nil
		case "":
		default:
			err = enc.Encode(map[string]string{"error": "unknown command " + strconv.Quote(sc.Text())})
		}
		if err != nil {
			return err
		}
	}
	return sc.Err()
}

func (s *server) serveFloor(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if key == "" {
		httperr.Write(w, http.StatusBadRequest, "bad_request", "not a WebSocket upgrade")
		return
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		s.fail(err)
		return
	}
	defer conn.Close()
	_, err = io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+acceptKey(key)+"\r\n\r\n")
	if err != nil {
		s.fail(err)
		return
	}
	l := s.open(func() streamCounters { return streamCounters{} })
	buf := make([]byte, 16<<10)
	for {
		n, err := rw.Reader.Read(buf)
		s.bytes.Add(uint64(n))
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			s.end(l, err)
			return
		}
	}
}

func (s *server) serveTwilio(w http.ResponseWriter, r *http.Request) {
	st, err := twilio.Accept(w, r, &twilio.AcceptOptions{InsecureSkipVerify: true, ReadCadence: s.cadence})
	if err != nil {
		s.fail(err)
		return
	}
	defer st.Close()
	l := s.open(func() streamCounters {
		c := st.Stats()
		return streamCounters{dropped: c.FramesDropped, late: c.FramesLate, maxQueue: c.MaxQueueDepth}
	})
	ctx := context.Background()
	start, err := st.Start(ctx)
	if err != nil {
		s.end(l, err)
		return
	}
	t0, err := strconv.ParseInt(start.CustomParameters["t0us"], 10, 64)
	if err != nil {
		s.end(l, fmt.Errorf("customParameters t0us: %w", err))
		return
	}
	for {
		f, err := st.ReadFrame(ctx)
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			s.end(l, err)
			return
		}
		s.observe(t0, f.Timestamp)
	}
}

func (s *server) serveAudioHook(w http.ResponseWriter, r *http.Request, opts *audiohook.ServerOptions) {
	sess, err := audiohook.Accept(w, r, opts)
	if err != nil {
		s.fail(err)
		return
	}
	defer sess.Close()
	l := s.open(func() streamCounters {
		c := sess.Stats()
		return streamCounters{dropped: c.FramesDropped, late: c.FramesLate, maxQueue: c.MaxQueueDepth,
			pings: c.Pings, maxPong: c.MaxPongLatency}
	})
	ctx := context.Background()
	info, err := sess.Open(ctx)
	if err != nil {
		s.end(l, err)
		return
	}
	t0, err := strconv.ParseInt(info.Params.InputVariables["t0us"], 10, 64)
	if err != nil {
		s.end(l, fmt.Errorf("inputVariables t0us: %w", err))
		return
	}
	for {
		f, err := sess.ReadFrame(ctx)
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			s.end(l, err)
			return
		}
		s.observe(t0, f.Timestamp)
	}
}

// profiler writes a CPU profile to path (when not empty) between start and
// stop.
type profiler struct {
	path string
	f    *os.File
}

func (p *profiler) start() error {
	if p.path == "" || p.f != nil {
		return nil
	}
	f, err := os.Create(p.path)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	p.f = f
	return nil
}

func (p *profiler) stop() {
	if p.f == nil {
		return
	}
	pprof.StopCPUProfile()
	_ = p.f.Close()
	p.f = nil
}

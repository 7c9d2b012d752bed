// Command audiohook-client dials an AudioHook server as Genesys Cloud does:
// a signed WebSocket upgrade, open with a media offer, the caller's audio
// (a WAV file or a tone) in real time or a bounded multiple of it (-fast,
// -speed: a server queues little audio and drops the rest), pings, and
// the close transaction. It prints the server's messages and the ping
// round-trip times, to probe an AudioHook endpoint such as the
// audiohook-server example:
//
//	AUDIOHOOK_API_KEY=… AUDIOHOOK_CLIENT_SECRET=… audiohook-client \
//	    -url ws://127.0.0.1:8080/api/v1/audiohook/ws -wav caller.wav -ani +34600000000
//
// See README.md.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/audiohooktest"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/daspeak/agent"
)

// Sending faster than real time is bounded: an AudioHook server has no
// flow control, it queues a little audio per session (the audiohook-server
// example 2 s by default) and drops the oldest when the queue is full, so
// audio sent all at once is mostly lost. At fastSpeed a 200 ms message
// arrives every 50 ms, which a server that keeps up with its engine
// absorbs.
const (
	fastSpeed = 4.0  // -fast
	maxSpeed  = 16.0 // the most -speed allows

	// maxLag is how far behind its schedule the pacer may fall (a slow
	// reader) before it starts a new one instead of catching up in a
	// burst: at most maxLag*speed of audio is sent at once.
	maxLag = 200 * time.Millisecond
)

type config struct {
	URL          string
	APIKey       string
	Secret       string
	WAV          string
	Tone         time.Duration
	ANI          string
	CustomConfig string
	Fast         bool
	Speed        float64
	Chunk        time.Duration
	Ping         time.Duration
	Wait         time.Duration
	Timeout      time.Duration
	Probe        bool
	Conversation string
	Loop         time.Duration
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("audiohook-client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.URL, "url", envOr("AUDIOHOOK_URL", "ws://127.0.0.1:8080/api/v1/audiohook/ws"), "AudioHook server URL (env AUDIOHOOK_URL)")
	fs.StringVar(&c.APIKey, "apikey", os.Getenv("AUDIOHOOK_API_KEY"), "API key, sent as X-API-KEY (env AUDIOHOOK_API_KEY)")
	fs.StringVar(&c.Secret, "secret", "", "client secret, base64; prefer env AUDIOHOOK_CLIENT_SECRET, flags show in process lists")
	fs.StringVar(&c.WAV, "wav", "", "8 kHz WAV file to stream (channel 0 is the customer, 1 the agent)")
	fs.DurationVar(&c.Tone, "tone", 0, "stream a 440 Hz tone of this length instead of a WAV file")
	fs.StringVar(&c.ANI, "ani", "tel:+34600000000", "participant ANI (the caller id the server uses by default)")
	fs.StringVar(&c.CustomConfig, "custom-config", "", `customConfig JSON object for open, e.g. {"operation":"verify"}`)
	fs.BoolVar(&c.Fast, "fast", false, fmt.Sprintf("send audio faster than real time: %g times, or -speed (a server queues a little audio only, and drops the rest)", fastSpeed))
	fs.Float64Var(&c.Speed, "speed", 0, fmt.Sprintf("send audio at this multiple of real time, 1 to %g (default 1, or %g with -fast)", maxSpeed, fastSpeed))
	fs.DurationVar(&c.Chunk, "chunk", 200*time.Millisecond, "audio per binary message, 20ms to 200ms")
	fs.DurationVar(&c.Ping, "ping", 5*time.Second, "interval between pings whose round-trip time is printed (0: only one)")
	fs.DurationVar(&c.Wait, "wait", 30*time.Second, "how long to wait for the server's disconnect after the audio ended")
	fs.DurationVar(&c.Timeout, "timeout", 5*time.Minute, "give up after this long (default with -loop: the loop and 1m, when longer)")
	fs.BoolVar(&c.Probe, "probe", false, "send a connection probe (null conversation id) instead of a call")
	fs.StringVar(&c.Conversation, "conversation-id", "", "conversation id (a UUID) of the call; default random. An agent-mode server's widget opens this conversation")
	fs.DurationVar(&c.Loop, "loop", 0, "repeat the WAV file or tone until this much audio was sent (e.g. 10m), to keep a call talking while an agent-mode server's widget is used; 0: send it once")
	if err := agent.ParseFlags(fs, args); err != nil {
		return nil, err
	}
	switch {
	case c.Speed == 0 && c.Fast:
		c.Speed = fastSpeed
	case c.Speed == 0:
		c.Speed = 1
	case !(c.Speed >= 1 && c.Speed <= maxSpeed): // NaN too
		return nil, &agent.UsageError{Err: fmt.Errorf("-speed %g: want 1 (real time) to %g", c.Speed, maxSpeed)}
	}
	if c.Chunk < 20*time.Millisecond || c.Chunk > 200*time.Millisecond {
		return nil, &agent.UsageError{Err: fmt.Errorf("-chunk %v: want 20ms to 200ms", c.Chunk)}
	}
	if c.Loop < 0 || (c.Loop > 0 && c.Probe) {
		return nil, &agent.UsageError{Err: errors.New("-loop must be a positive duration, and not with -probe")}
	}
	timeoutSet := false
	fs.Visit(func(f *flag.Flag) { timeoutSet = timeoutSet || f.Name == "timeout" })
	if c.Loop > 0 && !timeoutSet && c.Timeout < c.Loop+time.Minute {
		c.Timeout = c.Loop + time.Minute // the default must not cut the loop short
	}
	if c.Conversation != "" && (c.Probe || !wire.IsUUID(c.Conversation) || c.Conversation == wire.NullUUID) {
		return nil, &agent.UsageError{Err: errors.New("-conversation-id must be a UUID, and not with -probe")}
	}
	if c.Secret == "" {
		c.Secret = os.Getenv("AUDIOHOOK_CLIENT_SECRET")
	}
	if !c.Probe && (c.WAV == "") == (c.Tone == 0) {
		return nil, errors.New("give one of -wav FILE and -tone DURATION (or -probe)")
	}
	if c.CustomConfig != "" {
		var obj map[string]any
		if err := json.Unmarshal([]byte(c.CustomConfig), &obj); err != nil {
			return nil, fmt.Errorf("-custom-config must be a JSON object: %w", err)
		}
	}
	return c, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// printer serialises output lines from several goroutines.
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *printer) printf(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", a...)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	// With -loop, ctx ending (Ctrl-C) ends the audio, and the session is
	// then closed as after the last frame.
	var stopLoop <-chan struct{}
	if cfg.Loop > 0 {
		stopLoop = ctx.Done()
		ctx = context.WithoutCancel(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	opts := &audiohooktest.DialOptions{
		APIKey:         cfg.APIKey,
		Probe:          cfg.Probe,
		ConversationID: cfg.Conversation,
		PingInterval:   -1, // pinged below, to print the round-trip times
	}
	if cfg.Secret != "" {
		if opts.Secret, err = base64.StdEncoding.DecodeString(cfg.Secret); err != nil {
			return errors.New("the client secret is not base64")
		}
	}
	if !cfg.Probe && opts.ConversationID == "" {
		opts.ConversationID = audiohooktest.NewUUID()
	}
	if !cfg.Probe {
		opts.Participant = &wire.Participant{ID: audiohooktest.NewUUID(), ANI: cfg.ANI, ANIName: "audiohook-client", DNIS: "+18005550100"}
	}
	if cfg.CustomConfig != "" {
		opts.CustomConfig = json.RawMessage(cfg.CustomConfig)
	}
	var src voicegate.FrameReader
	switch {
	case cfg.Probe:
	case cfg.WAV != "":
		if src, err = audiohooktest.WAVSource(cfg.WAV); err != nil {
			return err
		}
		if cfg.Loop > 0 {
			src = &loopReader{open: func() (voicegate.FrameReader, error) { return audiohooktest.WAVSource(cfg.WAV) }, cur: src, limit: cfg.Loop, stop: stopLoop}
		}
	default:
		src = audiohooktest.ToneSource(cfg.Tone, 440)
		if cfg.Loop > 0 {
			src = &loopReader{open: func() (voicegate.FrameReader, error) { return audiohooktest.ToneSource(cfg.Tone, 440), nil }, cur: src, limit: cfg.Loop, stop: stopLoop}
		}
	}

	out := &printer{w: stdout}
	c, err := audiohooktest.Dial(ctx, cfg.URL, opts)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.CloseNow()
	conv := ""
	if !cfg.Probe {
		conv = " conversation=" + opts.ConversationID
	}
	if m := c.Media(); m != nil {
		out.printf("opened session=%s%s media=%s channels=%v rate=%d", c.ID(), conv, m.Format, m.Channels, m.Rate)
	} else {
		out.printf("opened session=%s%s media=none", c.ID(), conv)
	}

	// Server messages, until the connection ends. answered records an
	// event or disconnect: the server's answer to the call.
	disconnected := make(chan struct{})
	readerDone := make(chan struct{})
	answered := false // written by the reader, read after readerDone
	go func() {
		defer close(readerDone)
		var once sync.Once
		for {
			m, err := c.Next(ctx)
			if err != nil {
				return
			}
			switch m.Type {
			case wire.TypeEvent:
				var p wire.EventParameters
				json.Unmarshal(m.Parameters, &p)
				for _, e := range p.Entities {
					out.printf("event %s %s", e.Type, e.Data)
				}
				answered = true
			case wire.TypeDisconnect:
				var p wire.DisconnectParameters
				json.Unmarshal(m.Parameters, &p)
				out.printf("disconnect reason=%s info=%q", p.Reason, p.Info)
				answered = true
				once.Do(func() { close(disconnected) })
			default:
				out.printf("%s %s", m.Type, m.Parameters)
			}
		}
	}()

	// Pings, while the session is open. A ping in flight is never
	// cancelled (see stopPinging): it ends with its pong or with the
	// connection.
	stopPinging := make(chan struct{})
	pingDone := make(chan struct{})
	go func() {
		defer close(pingDone)
		for {
			rtt, err := c.Ping(ctx)
			if err != nil {
				return
			}
			out.printf("ping rtt=%s", rtt.Round(10*time.Microsecond))
			if cfg.Ping <= 0 {
				return
			}
			t := time.NewTimer(cfg.Ping)
			select {
			case <-stopPinging:
				t.Stop()
				return
			case <-disconnected:
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()

	var streamErr error
	interrupted := false
	if src != nil || cfg.Probe {
		if cfg.Probe {
			src = emptySource{}
		}
		sopts := &audiohooktest.StreamOptions{Chunk: cfg.Chunk}
		if cfg.Speed > 1 && !cfg.Probe {
			// The library's Fast sends unpaced; the pacer bounds it.
			src, sopts.Fast = newPacer(src, cfg.Speed), true
		}
		streamErr = c.Stream(ctx, src, sopts)
		var de *audiohook.DisconnectError
		if errors.As(streamErr, &de) {
			streamErr = nil // the server ended the session, as it should
		}
		if errors.Is(streamErr, context.Canceled) {
			streamErr = nil // interrupted: the session is closed below
			interrupted = true
			out.printf("interrupted")
		}
		out.printf("audio sent position=%s", c.Position())
	}
	stopped := false
	if p, ok := src.(*pacer); ok {
		src = p.src
	}
	if l, ok := src.(*loopReader); ok && l.stopped {
		stopped = true
		out.printf("audio stopped")
	}
	if streamErr == nil && !cfg.Probe && !stopped {
		t := time.NewTimer(cfg.Wait)
		select {
		case <-disconnected:
		case <-t.C:
			out.printf("no disconnect within %s; closing", cfg.Wait)
		case <-ctx.Done():
			interrupted = errors.Is(ctx.Err(), context.Canceled)
		}
		t.Stop()
	}
	// Cancelling the context of a Ping in flight can leave a gap in the
	// message sequence numbers, which the server rejects; so the pinger is
	// only told to stop between pings.
	close(stopPinging)
	<-pingDone
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	closeErr := c.Close(cctx, "")
	<-readerDone
	if streamErr != nil {
		return fmt.Errorf("stream: %w", streamErr)
	}
	if closeErr != nil {
		return fmt.Errorf("close: %w", closeErr)
	}
	out.printf("closed")
	// A call whose audio was all sent expects the server's answer: an
	// event (the result) or a disconnect. Without one the server may have
	// dropped audio sent too fast, or failed; exiting 0 would hide it.
	// Probes, interrupted calls and -loop calls (their results go to the
	// agent's widget) expect none.
	if !answered && !cfg.Probe && !interrupted && !stopped && cfg.Loop == 0 {
		return errNoResult
	}
	return nil
}

// errNoResult ends a call that the server closed or let close without an
// event or disconnect.
var errNoResult = errors.New("no result: the server sent no event and no disconnect before the session closed " +
	"(if the server logs dropped audio, lower -speed or raise its -buffer; else raise -wait)")

// loopReader repeats the audio of open until limit was read. Frames are
// renumbered and stamped across passes as one stream (Seq from 1,
// Timestamp the audio read before them); the frame that crosses limit is
// the last one. When stop is closed, the next read returns io.EOF.
type loopReader struct {
	open    func() (voicegate.FrameReader, error)
	cur     voicegate.FrameReader // the pass being read; nil: open the next
	limit   time.Duration
	stop    <-chan struct{}
	stopped bool          // ended by stop
	sent    time.Duration // audio returned so far
	seq     uint64
	empty   bool // cur has not returned a frame yet
}

func (l *loopReader) ReadFrame(ctx context.Context) (voicegate.Frame, error) {
	for {
		select {
		case <-l.stop:
			l.stopped = true
			return voicegate.Frame{}, io.EOF
		default:
		}
		if l.sent >= l.limit {
			return voicegate.Frame{}, io.EOF
		}
		if l.cur == nil {
			r, err := l.open()
			if err != nil {
				return voicegate.Frame{}, err
			}
			l.cur, l.empty = r, true
		}
		f, err := l.cur.ReadFrame(ctx)
		if errors.Is(err, io.EOF) {
			if l.empty {
				return voicegate.Frame{}, io.EOF // a pass without audio would loop forever
			}
			l.cur = nil
			continue
		}
		if err != nil {
			return voicegate.Frame{}, err
		}
		d := f.Duration()
		if d <= 0 {
			return voicegate.Frame{}, fmt.Errorf("loop: frame %d has no duration", l.seq+1)
		}
		l.empty = false
		l.seq++
		f.Seq, f.Timestamp = l.seq, l.sent
		l.sent += d
		return f, nil
	}
}

// pacer releases the frames of src at speed times real time: a frame is
// returned no sooner than (audio before it) / speed after the first read.
// A reader more than maxLag late is not made up for with a burst.
type pacer struct {
	src   voicegate.FrameReader
	speed float64
	now   func() time.Time
	sleep func(context.Context, time.Duration) error
	start time.Time     // of the first read
	sent  time.Duration // audio returned so far
}

func newPacer(src voicegate.FrameReader, speed float64) *pacer {
	return &pacer{src: src, speed: speed, now: time.Now, sleep: sleepCtx}
}

func (p *pacer) ReadFrame(ctx context.Context) (voicegate.Frame, error) {
	if p.start.IsZero() {
		p.start = p.now()
	}
	due := p.start.Add(time.Duration(float64(p.sent) / p.speed))
	if wait := due.Sub(p.now()); wait > 0 {
		if err := p.sleep(ctx, wait); err != nil {
			return voicegate.Frame{}, err
		}
	} else if wait < -maxLag {
		// Far behind (a slow connection): restart the schedule from now.
		p.start, p.sent = p.now(), 0
	}
	f, err := p.src.ReadFrame(ctx)
	if err != nil {
		return f, err
	}
	p.sent += f.Duration()
	return f, nil
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// emptySource is a FrameReader with no frames: for a probe, Stream sends
// the one empty message Genesys sends.
type emptySource struct{}

func (emptySource) ReadFrame(context.Context) (voicegate.Frame, error) {
	return voicegate.Frame{}, io.EOF
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(agent.ExitCode(os.Stderr, "audiohook-client", err))
}

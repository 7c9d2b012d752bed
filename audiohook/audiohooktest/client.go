package audiohooktest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/wire"
)

// GenesysOffer is the media offer of the Genesys client: stereo PCMU, then
// PCMU of each side.
var GenesysOffer = []wire.MediaParameter{wire.MediaPCMUStereo, wire.MediaPCMUExternal, wire.MediaPCMUInternal}

// DialOptions configures Dial. A nil *DialOptions dials unsigned with random
// ids and the Genesys media offer.
type DialOptions struct {
	// APIKey is sent as X-API-KEY and is the signature keyid.
	APIKey string
	// Secret is the client secret, base64-decoded. Empty means the upgrade
	// is not signed.
	Secret []byte
	// Nonce for the signature; "" means a fresh newNonce.
	Nonce string
	// Now is the clock for the signature; nil means time.Now.
	Now func() time.Time

	// OrganizationID, SessionID and CorrelationID default to random UUIDs.
	OrganizationID, SessionID, CorrelationID string
	// ConversationID defaults to a random UUID; Probe forces NullUUID.
	ConversationID string
	// Probe makes the session a connection probe: null conversation and
	// participant ids, empty ani/aniName/dnis; Stream sends one empty frame.
	Probe bool
	// Participant defaults to a random id and sample numbers.
	Participant *wire.Participant
	// Media is the offer, most preferred first; nil means GenesysOffer.
	Media []wire.MediaParameter
	// Language, SupportedLanguages, CustomConfig, ContinuedSessions and
	// InputVariables are sent in open when set.
	Language           string
	SupportedLanguages bool
	CustomConfig       json.RawMessage
	ContinuedSessions  []wire.ContinuedSession
	InputVariables     map[string]string

	// HTTPClient and HTTPHeader are passed to the WebSocket dialer.
	HTTPClient *http.Client
	HTTPHeader http.Header

	// OpenTimeout bounds the open transaction; 0 means 5 s.
	OpenTimeout time.Duration
	// CloseTimeout bounds the close transaction; 0 means 10 s.
	CloseTimeout time.Duration
	// WriteTimeout bounds each write; 0 means 5 s.
	WriteTimeout time.Duration
	// PingInterval between automatic pings (the first one 1 s after
	// opened); 0 means 5 s, negative disables them. A ping still
	// unanswered when the next is due ends the session with error 408.
	PingInterval time.Duration
	// QueueSize bounds the server messages kept for Next; 0 means 64. The
	// oldest is dropped when full.
	QueueSize int
}

type clientState int

const (
	clientOpening clientState = iota
	clientOpen
	clientClosing
	clientClosed
)

// Client is the client side of an AudioHook session, behaving as Genesys
// Cloud does: it signs the upgrade, opens with a media offer, streams
// audio, pings, honours pause, resume, disconnect and discardTo, logs (queues)
// reconnect without acting on it, as Genesys does today, and closes.
//
// A goroutine owned by the client reads the connection and answers the
// server at once. Server messages an application may care about (event,
// pause, resume, disconnect, reconnect, updated) are also queued for Next.
// Protocol violations by the server are answered with an error message and
// close "error", and reported as *ProtocolError by Stream, Ping, Next and
// Close.
//
// All methods are safe for concurrent use, but only one Stream may run at
// a time. Call Close (or CloseNow) when done.
type Client struct {
	conn   *websocket.Conn
	opts   DialOptions
	cancel context.CancelFunc // ends the reader's context
	id     string
	offer  []wire.MediaParameter

	mu         sync.Mutex
	state      clientState
	opened     *wire.OpenedParameters
	media      *wire.MediaParameter
	err        error // terminal protocol error
	disc       *audiohook.DisconnectError
	paused     bool
	pauseStart time.Duration
	queue      []*wire.Message
	dropped    uint64
	closeSent  bool

	lastServerSeq atomic.Int64
	seq           int64 // guarded by wlock
	sentSeq       atomic.Int64
	wlock         chan struct{}
	wbuf          []byte
	posNs         atomic.Int64
	skipSamples   atomic.Int64 // source audio still to skip (opened.discardTo)
	closeSentAt   time.Time    // guarded by mu

	pingLock      chan struct{}
	pingMu        sync.Mutex
	pingSeq       int64
	pingSent      time.Time
	pongCh        chan time.Duration
	lastRTT       time.Duration
	streamStop    chan struct{}
	stopOnce      sync.Once
	notify        chan struct{}
	openedCh      chan struct{}
	openedOnce    sync.Once
	closedCh      chan struct{}
	closedOnce    sync.Once
	doneCh        chan struct{}
	pingerDone    chan struct{}
	closeCalled   atomic.Bool
	pingerStarted bool // guarded by mu
}

// Dial connects to an AudioHook server at u (ws:// or wss://), signs the
// upgrade when opts.Secret is set, runs the open transaction and returns
// once opened arrived. A 401 answer is returned as an *AuthError; a
// disconnect before opened as a *DisconnectError; an invalid opened as a
// *ProtocolError (after error 400 and close "error" were sent).
func Dial(ctx context.Context, u string, opts *DialOptions) (*Client, error) {
	var o DialOptions
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OrganizationID == "" {
		o.OrganizationID = NewUUID()
	}
	if o.SessionID == "" {
		o.SessionID = NewUUID()
	}
	if o.CorrelationID == "" {
		o.CorrelationID = NewUUID()
	}
	if o.ConversationID == "" {
		o.ConversationID = NewUUID()
	}
	if o.Probe {
		o.ConversationID = wire.NullUUID
		o.Participant = &wire.Participant{ID: wire.NullUUID}
	}
	if o.Participant == nil {
		o.Participant = &wire.Participant{ID: NewUUID(), ANI: "+1-555-555-1234", ANIName: "Test Caller", DNIS: "+1-800-555-6789"}
	}
	if o.Media == nil {
		o.Media = GenesysOffer
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = 5 * time.Second
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 10 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 5 * time.Second
	}
	if o.PingInterval == 0 {
		o.PingInterval = 5 * time.Second
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 64
	}
	pu, err := url.Parse(u)
	if err != nil {
		return nil, fmt.Errorf("audiohook: dial: %w", err)
	}
	// Sign the Host exactly as it will be sent: no default port.
	switch {
	case (pu.Scheme == "ws" || pu.Scheme == "http") && pu.Port() == "80",
		(pu.Scheme == "wss" || pu.Scheme == "https") && pu.Port() == "443":
		pu.Host = pu.Hostname()
	}
	h := http.Header{}
	for k, v := range o.HTTPHeader {
		h[k] = append([]string(nil), v...)
	}
	h.Set("User-Agent", "GenesysCloud-AudioHook-Client")
	h.Set(wire.HeaderOrganizationID, o.OrganizationID)
	h.Set(wire.HeaderCorrelationID, o.CorrelationID)
	h.Set(wire.HeaderSessionID, o.SessionID)
	if o.APIKey != "" {
		h.Set(wire.HeaderAPIKey, o.APIKey)
	}
	if len(o.Secret) > 0 {
		req := &http.Request{Method: http.MethodGet, URL: pu, Host: pu.Host, Header: h}
		if err := audiohook.SignRequest(req, o.Secret, o.Now(), o.Nonce); err != nil {
			return nil, err
		}
	}
	conn, resp, err := websocket.Dial(ctx, pu.String(), &websocket.DialOptions{HTTPClient: o.HTTPClient, HTTPHeader: h})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return nil, &audiohook.AuthError{Status: resp.StatusCode, Info: "upgrade refused", Err: err}
		}
		return nil, fmt.Errorf("audiohook: dial: %w", err)
	}
	conn.SetReadLimit(1 << 20)
	c := &Client{
		conn: conn, opts: o, id: o.SessionID, offer: o.Media,
		wlock: make(chan struct{}, 1), pingLock: make(chan struct{}, 1), pongCh: make(chan time.Duration, 1),
		streamStop: make(chan struct{}), notify: make(chan struct{}, 1),
		openedCh: make(chan struct{}), closedCh: make(chan struct{}), doneCh: make(chan struct{}),
		pingerDone: make(chan struct{}),
	}
	rctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.run(rctx)
	op := wire.OpenParameters{
		OrganizationID: o.OrganizationID, ConversationID: o.ConversationID, Participant: *o.Participant,
		Media: o.Media, Language: o.Language, SupportedLanguages: o.SupportedLanguages,
		CustomConfig: o.CustomConfig, ContinuedSessions: o.ContinuedSessions, InputVariables: o.InputVariables,
	}
	if err := c.send(ctx, wire.TypeOpen, mustJSON(op)); err != nil {
		c.CloseNow()
		return nil, err
	}
	t := time.NewTimer(o.OpenTimeout)
	defer t.Stop()
	select {
	case <-c.openedCh:
	case <-t.C:
		c.violation(408, "Open transaction timeout")
	case <-ctx.Done():
		c.CloseNow()
		return nil, ctx.Err()
	}
	c.mu.Lock()
	opened, terr, disc := c.opened, c.err, c.disc
	c.mu.Unlock()
	if opened == nil || terr != nil {
		// Wait for the close transaction to finish, then report.
		cctx, cancel := context.WithTimeout(ctx, o.CloseTimeout)
		_ = c.Close(cctx, wire.CloseError)
		cancel()
		switch {
		case terr != nil:
			return nil, terr
		case disc != nil:
			return nil, disc
		}
		return nil, audiohook.ErrConnectionLost
	}
	if opened.StartPaused {
		c.mu.Lock()
		c.paused = true
		c.pauseStart = 0
		c.mu.Unlock()
		_ = c.send(ctx, wire.TypePaused, nil)
	}
	if opened.DiscardTo != nil && *opened.DiscardTo > 0 {
		// Skip that much of the source audio, as the Genesys client
		// skips its backlog: Stream drops it before sending.
		d := time.Duration(*opened.DiscardTo)
		c.posNs.Store(int64(d))
		c.skipSamples.Store(int64(d / (time.Second / 8000)))
		_ = c.send(ctx, wire.TypeDiscarded, mustJSON(wire.ResumedParameters{Start: 0, Discarded: wire.Duration(d)}))
	}
	if o.PingInterval > 0 {
		c.mu.Lock()
		c.pingerStarted = true
		c.mu.Unlock()
		go c.pinger()
	}
	return c, nil
}

// ID returns the session id.
func (c *Client) ID() string { return c.id }

// Opened returns the server's opened parameters.
func (c *Client) Opened() *wire.OpenedParameters {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opened
}

// Media returns the selected media, or nil when the server selected none.
func (c *Client) Media() *wire.MediaParameter {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.media
}

// Position returns the current media position.
func (c *Client) Position() time.Duration { return time.Duration(c.posNs.Load()) }

// Paused reports whether the server has paused the stream.
func (c *Client) Paused() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paused
}

// Dropped returns how many server messages Next lost to a full queue.
func (c *Client) Dropped() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

func (c *Client) lock(ctx context.Context) error {
	select {
	case c.wlock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.doneCh:
		return audiohook.ErrConnectionLost
	}
}

func (c *Client) send(ctx context.Context, typ string, params []byte) error {
	return c.sendWith(ctx, typ, func() []byte { return params })
}

// sendWith is send with the parameters made by mk while the write lock is
// held, so that a state change made by mk and the message announcing it
// cannot be separated by audio written by Stream.
func (c *Client) sendWith(ctx context.Context, typ string, mk func() []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.WriteTimeout)
	defer cancel()
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer func() { <-c.wlock }()
	if err := ctx.Err(); err != nil {
		return err // nothing sent, no sequence number used
	}
	params := mk()
	c.seq++
	c.sentSeq.Store(c.seq)
	c.wbuf = appendClientMessage(c.wbuf[:0], typ, c.id, c.seq, c.lastServerSeq.Load(), c.Position(), params)
	if err := c.writeText(ctx); err != nil {
		return fmt.Errorf("audiohook: send %s: %w", typ, err)
	}
	return nil
}

// writeText writes c.wbuf, which holds a message with a new sequence
// number. A failed write may or may not have reached the server, so the
// sequence can no longer be trusted: the connection is dropped.
func (c *Client) writeText(ctx context.Context) error {
	err := c.conn.Write(ctx, websocket.MessageText, c.wbuf)
	if err != nil {
		_ = c.conn.CloseNow()
	}
	return err
}

func (c *Client) sendBinary(ctx context.Context, p []byte) error {
	_, err := c.sendAudio(ctx, p, false)
	return err
}

// sendAudio writes one binary message. With checkPaused it first checks,
// under the write lock, that the stream is not paused, and reports false
// without writing when it is: audio can then never follow a paused message
// or precede the resumed one.
func (c *Client) sendAudio(ctx context.Context, p []byte, checkPaused bool) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.WriteTimeout)
	defer cancel()
	if err := c.lock(ctx); err != nil {
		return false, err
	}
	defer func() { <-c.wlock }()
	if checkPaused && c.Paused() {
		return false, nil
	}
	return true, c.conn.Write(ctx, websocket.MessageBinary, p)
}

// SendError sends an error message (codes 400–9999) without ending the
// session.
func (c *Client) SendError(ctx context.Context, code int, message string) error {
	return c.send(ctx, wire.TypeError, mustJSON(wire.ErrorParameters{Code: code, Message: message}))
}

// Update sends update with a new language.
func (c *Client) Update(ctx context.Context, language string) error {
	return c.send(ctx, wire.TypeUpdate, mustJSON(struct {
		Language string `json:"language"`
	}{language}))
}

// violation reports a server protocol violation: error code + close error.
func (c *Client) violation(code int, msg string) {
	c.mu.Lock()
	if c.err == nil {
		c.err = &audiohook.ProtocolError{Code: code, Info: msg}
	}
	closing := c.closeSent
	c.mu.Unlock()
	if !closing {
		_ = c.send(context.Background(), wire.TypeError, mustJSON(wire.ErrorParameters{Code: code, Message: msg}))
		c.beginClose(wire.CloseError)
	}
	c.openedOnce.Do(func() { close(c.openedCh) })
}

// nonFatal answers a server message with an error but keeps the session.
func (c *Client) nonFatal(code int, msg string) {
	_ = c.send(context.Background(), wire.TypeError, mustJSON(wire.ErrorParameters{Code: code, Message: msg}))
}

// beginClose sends close once and stops streaming.
func (c *Client) beginClose(reason string) bool {
	c.mu.Lock()
	if c.closeSent {
		c.mu.Unlock()
		return false
	}
	c.closeSent = true
	c.closeSentAt = time.Now()
	c.state = clientClosing
	c.mu.Unlock()
	c.stopOnce.Do(func() { close(c.streamStop) })
	_ = c.send(context.Background(), wire.TypeClose, mustJSON(wire.CloseParameters{Reason: reason}))
	return true
}

func (c *Client) enqueue(m *wire.Message) {
	c.mu.Lock()
	if len(c.queue) >= c.opts.QueueSize {
		c.queue = c.queue[1:]
		c.dropped++
	}
	c.queue = append(c.queue, m)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// run is the reader goroutine; ctx ends with Close, CloseNow or the end of
// the connection. Messages the client makes on its own are bounded by
// WriteTimeout and end when the connection is closed.
func (c *Client) run(ctx context.Context) {
	defer close(c.doneCh)
	defer func() {
		c.cancel()
		c.openedOnce.Do(func() { close(c.openedCh) })
		c.stopOnce.Do(func() { close(c.streamStop) })
		c.mu.Lock()
		c.state = clientClosed
		c.mu.Unlock()
		_ = c.conn.CloseNow()
		select {
		case c.notify <- struct{}{}:
		default:
		}
	}()
	for {
		typ, b, err := c.conn.Read(ctx)
		if err != nil {
			return
		}
		if typ == websocket.MessageBinary {
			c.violation(415, "Unexpected binary message")
			continue
		}
		if len(b) > wire.MaxTextMessage {
			c.violation(413, fmt.Sprintf("Message of %d bytes is too large", len(b)))
			continue
		}
		m, err := wire.ParseServerMessage(b)
		if err != nil {
			c.violation(400, err.Error())
			continue
		}
		if m.ID != c.id {
			c.violation(400, "Session identifier mismatch")
			continue
		}
		if m.Seq != c.lastServerSeq.Load()+1 {
			c.violation(500, fmt.Sprintf("Invalid seq value %d, expected %d", m.Seq, c.lastServerSeq.Load()+1))
			continue
		}
		if m.ClientSeq > c.sentSeq.Load() {
			c.violation(400, "Invalid clientseq value")
			continue
		}
		c.lastServerSeq.Store(m.Seq)
		c.handle(m)
	}
}

func (c *Client) handle(m *wire.Message) {
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	switch m.Type {
	case wire.TypeOpened:
		if st != clientOpening {
			c.violation(409, "Unexpected opened message")
			return
		}
		p, err := wire.ParseOpenedParameters(m.Parameters)
		if err != nil {
			c.violation(400, err.Error())
			return
		}
		if len(p.Media) > 1 {
			c.violation(400, "More than one media selected")
			return
		}
		var sel *wire.MediaParameter
		if len(p.Media) == 1 {
			for i := range c.offer {
				if c.offer[i].Equal(p.Media[0]) {
					sel = &c.offer[i]
				}
			}
			if sel == nil {
				c.violation(400, "Selected media not one of the offered")
				return
			}
		}
		c.mu.Lock()
		c.opened, c.media, c.state = p, sel, clientOpen
		c.mu.Unlock()
		c.openedOnce.Do(func() { close(c.openedCh) })
	case wire.TypePong:
		c.pingMu.Lock()
		seq, sent := c.pingSeq, c.pingSent
		c.pingSeq = 0
		c.pingMu.Unlock()
		if seq == 0 {
			c.nonFatal(409, "Unexpected pong message (no ping outstanding)")
			return
		}
		if m.ClientSeq != seq {
			c.nonFatal(400, "pong clientseq does not match ping seq")
		}
		select {
		case c.pongCh <- time.Since(sent):
		default:
		}
	case wire.TypePause:
		if st != clientOpen {
			if st == clientOpening {
				c.nonFatal(409, "Unexpected pause message")
			}
			return
		}
		c.mu.Lock()
		if !c.paused {
			c.paused = true
			c.pauseStart = c.Position()
		}
		c.mu.Unlock()
		_ = c.send(context.Background(), wire.TypePaused, nil)
		c.enqueue(m)
	case wire.TypeResume:
		if st != clientOpen {
			if st == clientOpening {
				c.nonFatal(409, "Unexpected resume message")
			}
			return
		}
		_ = c.sendWith(context.Background(), wire.TypeResumed, func() []byte {
			c.mu.Lock()
			defer c.mu.Unlock()
			pos := c.Position()
			rp := wire.ResumedParameters{Start: wire.Duration(pos)}
			if c.paused {
				rp = wire.ResumedParameters{Start: wire.Duration(c.pauseStart), Discarded: wire.Duration(pos - c.pauseStart)}
				c.paused = false
			}
			return mustJSON(rp)
		})
		c.enqueue(m)
	case wire.TypeClosed:
		if st != clientClosing {
			c.violation(409, "Unexpected closed message (no close sent)")
			return
		}
		c.closedOnce.Do(func() { close(c.closedCh) })
	case wire.TypeDisconnect:
		var p wire.DisconnectParameters
		_ = json.Unmarshal(m.Parameters, &p)
		c.mu.Lock()
		if c.disc == nil {
			c.disc = &audiohook.DisconnectError{Reason: p.Reason, Info: p.Info, OutputVariables: p.OutputVariables}
		}
		c.mu.Unlock()
		c.openedOnce.Do(func() { close(c.openedCh) })
		c.enqueue(m)
		c.beginClose(wire.CloseDisconnect)
	case wire.TypeReconnect:
		// Genesys logs reconnect and goes on with the session; so does
		// this client. Next reports it.
		c.enqueue(m)
	case wire.TypeEvent:
		var p wire.EventParameters
		if err := json.Unmarshal(m.Parameters, &p); err != nil {
			c.violation(400, "Invalid event parameters: "+err.Error())
			return
		}
		for _, e := range p.Entities {
			if e.Type == "" {
				c.violation(400, "Event entity without type")
				return
			}
		}
		c.enqueue(m)
	case wire.TypeUpdated:
		c.enqueue(m)
	default:
		c.violation(500, fmt.Sprintf("Unknown message type %.40q", m.Type))
	}
}

// Next returns the next server message of interest (event, pause, resume,
// disconnect, reconnect, updated). It returns io.EOF once the connection
// ended and the queue is drained, and ctx.Err() when ctx ends.
func (c *Client) Next(ctx context.Context) (*wire.Message, error) {
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			m := c.queue[0]
			c.queue = c.queue[1:]
			c.mu.Unlock()
			return m, nil
		}
		c.mu.Unlock()
		select {
		case <-c.doneCh:
			c.mu.Lock()
			n := len(c.queue)
			c.mu.Unlock()
			if n == 0 {
				return nil, io.EOF
			}
		case <-c.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Ping sends ping (with the last round-trip time) and waits for pong,
// returning the round-trip time.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) {
	select {
	case c.pingLock <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-c.pingLock }()
	if err := c.terminal(); err != nil {
		return 0, err
	}
	select { // discard a stale pong
	case <-c.pongCh:
	default:
	}
	var params []byte
	c.pingMu.Lock()
	if c.lastRTT > 0 {
		params = []byte(`{"rtt":"` + formatDuration(c.lastRTT) + `"}`)
	}
	c.pingMu.Unlock()
	if err := c.sendPing(ctx, params); err != nil {
		return 0, err
	}
	select {
	case rtt := <-c.pongCh:
		c.pingMu.Lock()
		c.lastRTT = rtt
		c.pingMu.Unlock()
		return rtt, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-c.doneCh:
		return 0, c.endErr()
	}
}

func (c *Client) sendPing(ctx context.Context, params []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.WriteTimeout)
	defer cancel()
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer func() { <-c.wlock }()
	if err := ctx.Err(); err != nil {
		return err // nothing sent, no sequence number used
	}
	c.seq++
	c.sentSeq.Store(c.seq)
	c.pingMu.Lock()
	c.pingSeq = c.seq
	c.pingSent = time.Now()
	c.pingMu.Unlock()
	c.wbuf = appendClientMessage(c.wbuf[:0], wire.TypePing, c.id, c.seq, c.lastServerSeq.Load(), c.Position(), params)
	return c.writeText(ctx)
}

func (c *Client) pinger() {
	defer close(c.pingerDone)
	wait := time.Second
	for {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-c.streamStop:
			t.Stop()
			return
		}
		// Ping also returns when the client ends (doneCh).
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.PingInterval)
		_, err := c.Ping(ctx)
		timedOut := ctx.Err() == context.DeadlineExceeded
		cancel()
		if err != nil {
			if timedOut && c.alive() {
				c.violation(408, "Timeout waiting for pong")
			}
			return
		}
		wait = c.opts.PingInterval
	}
}

// alive reports whether the reader runs and neither Close nor CloseNow was
// called.
func (c *Client) alive() bool {
	select {
	case <-c.doneCh:
		return false
	default:
		return !c.closeCalled.Load()
	}
}

func (c *Client) terminal() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if c.closeCalled.Load() {
		return audiohook.ErrClosed
	}
	return nil
}

func (c *Client) endErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.err != nil:
		return c.err
	case c.disc != nil:
		return c.disc
	case c.closeCalled.Load():
		return audiohook.ErrClosed
	}
	return audiohook.ErrConnectionLost
}

// Close runs the close transaction with reason (CloseEnd when ""), waits
// for closed (up to CloseTimeout; on expiry it sends error 408), closes the
// WebSocket and waits for the client's goroutines. If the server had
// disconnected, the close with reason "disconnect" was already sent and
// Close only waits for closed. It returns the server's protocol violation,
// if one ended the session. A second call returns ErrClosed.
func (c *Client) Close(ctx context.Context, reason string) error {
	if !c.closeCalled.CompareAndSwap(false, true) {
		return audiohook.ErrClosed
	}
	if reason == "" {
		reason = wire.CloseEnd
	}
	c.beginClose(reason)
	// The transaction's timeout runs from when close was sent, which may
	// be long before this call (after the server's disconnect).
	c.mu.Lock()
	wait := c.opts.CloseTimeout - time.Since(c.closeSentAt)
	c.mu.Unlock()
	t := time.NewTimer(max(wait, 0))
	defer t.Stop()
	select {
	case <-c.closedCh:
	case <-c.doneCh:
	case <-t.C:
		c.nonFatal(408, "Close transaction timeout")
	case <-ctx.Done():
	}
	_ = c.conn.Close(websocket.StatusNormalClosure, "")
	c.cancel()
	<-c.doneCh
	<-c.pingerDoneOrNil()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	select {
	case <-c.closedCh:
		return nil
	default:
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%w: no closed", audiohook.ErrTimeout)
}

func (c *Client) pingerDoneOrNil() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.pingerStarted {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return c.pingerDone
}

// CloseNow drops the connection without the close transaction.
func (c *Client) CloseNow() error {
	if !c.closeCalled.CompareAndSwap(false, true) {
		return audiohook.ErrClosed
	}
	c.stopOnce.Do(func() { close(c.streamStop) })
	_ = c.conn.CloseNow()
	c.cancel()
	<-c.doneCh
	<-c.pingerDoneOrNil()
	return nil
}

func (c *Client) stopErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.err != nil:
		return c.err
	case c.disc != nil:
		return c.disc
	case c.closeCalled.Load() || c.closeSent:
		return audiohook.ErrClosed
	}
	return audiohook.ErrConnectionLost
}

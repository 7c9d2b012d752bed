// Package natsbus is the many-node operation log of the agent server
// (daspeak/agent/oplog.Log) on NATS JetStream.
//
// # What lives where
//
//   - Events: stream "<PREFIX>_EVENTS" on subjects "<prefix>.ev.<operation
//     id>", one message per record, kept Retain. The record's number,
//     type, terminal flag and time are headers (Vg-Seq, Vg-Type,
//     Vg-Terminal, Vg-Time); the body is the event's JSON. Every append
//     is published with the expected last sequence of its subject, so two
//     writers of one operation (its owner and a node ending it after the
//     owner's lease expired) can never both append the same number: one
//     gets oplog.ErrSeq.
//   - Operation state: key-value bucket "<prefix>_ops", key "op.<id>"
//     (call, caller, kind, owner node, spec, done), kept Retain.
//   - Claims: a node takes over an operation that has no record yet by
//     publishing a claim message (header Vg-Claim) on its events subject,
//     expecting the subject to be empty, the same expectation as the
//     owner's first record: of the owner and any number of claimers,
//     exactly one wins, in one step. Readers skip claim messages. Every
//     record names its writer (header Vg-Node), so the owner of an
//     operation is the node named by its last message (claim or record);
//     the owner in the operation's state follows (the claimer retries it
//     for setOwnerTimeout) and serves only messages without a writer
//     (written before Vg-Node existed) and Orphans' first sift.
//   - Locks (Lock): key "lock.<name>" in the same bucket, taken with a
//     key-value Create, deleted to release.
//   - Request claims (ClaimRequest): key "req.<call id>.<request id>" in the same
//     bucket, made with a key-value Create (the first claim wins), kept
//     Retain (at least oplog.MinRequestRetain) and never evicted; key
//     "reqs.<call id>" lists a call's claims of the last Retain, each with
//     a tag of its subject (at most oplog.MaxSubjectRequests of one
//     subject and oplog.MaxCallRequests in all: a new claim beyond is
//     refused), written with compare-and-set.
//   - Node leases: key-value bucket "<prefix>_nodes" whose history lasts
//     Lease; each node puts its key every Lease/3 (value: a random
//     instance id of the Bus and the time). A node whose key aged
//     out is dead, and Orphans returns its operations that have not ended.
//     Running lists a call's operations that have not ended from the same
//     watch of the ops bucket (a moment behind other nodes' writes).
//   - Commands: core NATS request/reply. Route asks every node on
//     "<prefix>.cmd.route" and takes the reply of the one that holds the
//     call; Send asks one node on "<prefix>.cmd.node.<node>".
//
// After the stream stored a record, its writer publishes it again on
// "<prefix>.nt.<operation id>" (core NATS, not stored). Readers follow an
// operation with a subscription there, filled from the stream (direct get
// by subject) for what came before the subscription or was missed: each
// record once, in order, and never one the stream refused.
//
// Nothing else in the module imports NATS; the server takes a *Bus as its
// Options.Log.
package natsbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/voicegate/voicegate/daspeak/agent/oplog"
)

// Defaults of Options.
const (
	DefaultPrefix       = "voicegate"
	DefaultLease        = 3 * time.Second
	DefaultRetain       = 15 * time.Minute
	DefaultRouteTimeout = 500 * time.Millisecond
)

// Headers of an event message.
const (
	hdrSeq      = "Vg-Seq"
	hdrType     = "Vg-Type"
	hdrTerminal = "Vg-Terminal"
	hdrTime     = "Vg-Time"
	hdrCall     = "Vg-Call"
	// hdrNode names the node that wrote a record. A claim can only land
	// on an empty subject, so the writer of an operation's last message
	// (record or claim) is the node that runs it (or the node that ended
	// it): Get, Running and Orphans read the owner there, not from the
	// operation's state, which lags.
	hdrNode = "Vg-Node"
	// hdrClaim marks the claim message of an operation (not a record):
	// its value is the claiming node.
	hdrClaim = "Vg-Claim"
	// hdrStreamSeq is the stream sequence of a notified record.
	hdrStreamSeq = "Vg-Stream-Seq"
)

// Options configure a Bus. The zero value selects the defaults.
type Options struct {
	// Prefix names the subjects, stream and buckets: letters, digits,
	// "_" and "-". Default "voicegate". Nodes of one deployment share it.
	Prefix string
	// Node names this node: letters, digits, "_" and "-", unique among
	// live nodes. Default: host name, process id and 4 random bytes.
	Node string
	// Lease is how long a node stays alive on the bus without renewing
	// (it renews every Lease/3); after that its running operations are
	// ended by another node. Default 3 s.
	Lease time.Duration
	// Retain is how long events, operation state and request claims are
	// kept (longer than the longest operation). Default 15 minutes; a
	// value under oplog.MinRequestRetain (10 minutes) is raised to it, so
	// that a stop's fence outlives the starts it fences
	// (oplog.Log.ClaimRequest).
	Retain time.Duration
	// Replicas of the stream and buckets (1 on a single server; 3 on a
	// cluster). Default 1.
	Replicas int
	// RouteTimeout bounds Route when no node holds the call. Default
	// 500 ms.
	RouteTimeout time.Duration
	// Logger receives skipped messages and lease failures. Default
	// slog.Default().
	Logger *slog.Logger
}

// Bus is an oplog.Log on NATS JetStream. It is safe for concurrent use;
// Close it at exit (it stops renewing the node's lease, so its running
// operations are ended by another node when it did not end them itself).
type Bus struct {
	o      Options
	log    *slog.Logger
	nc     *nats.Conn
	js     jetstream.JetStream
	events jetstream.Stream
	ops    jetstream.KeyValue
	nodes  jetstream.KeyValue
	stop   context.CancelFunc
	wg     sync.WaitGroup
	subs   []*nats.Subscription

	// lockSeen: for each lock another node holds, the revision this Bus
	// first saw and when (monotonic), kept across Lock calls so that a
	// hold longer than any one caller waits is still measured (Lock).
	lockMu   sync.Mutex
	lockSeen map[string]seenLock

	mu      sync.Mutex
	last    map[string]lastRec // the last record this node appended or read, by operation
	known   map[string]state   // operations seen in the ops bucket
	handler oplog.Handler
	live    int // live nodes at liveAt (liveCount)
	liveAt  time.Time
	closed  bool

	// inst names this Bus among the incarnations of its node name: a
	// node restarted under the same name gets another, so a lock its
	// predecessor held is not taken for its own, nor for alive (Lock).
	inst string
}

type lastRec struct{ seq, sseq uint64 }

// state is the JSON of an operation in the ops bucket.
type state struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`
	CallID   string    `json:"call_id"`
	CallerID string    `json:"caller_id"`
	Created  time.Time `json:"created"`
	Owner    string    `json:"owner"`
	Spec     []byte    `json:"spec,omitempty"`
	Done     bool      `json:"done,omitempty"`
	Ended    time.Time `json:"ended,omitzero"`
}

// Connect connects to the NATS server(s) at url (comma-separated
// nats:// or tls:// URLs) with credentials from the environment
// (EnvOptions) plus extra, and returns a Bus that owns the connection.
func Connect(ctx context.Context, url string, opts *Options, extra ...nats.Option) (*Bus, error) {
	env, err := EnvOptions()
	if err != nil {
		return nil, err
	}
	name := "voicegate"
	if opts != nil && opts.Node != "" {
		name += " " + opts.Node
	}
	all := append([]nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond)}, env...)
	nc, err := nats.Connect(url, append(all, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("natsbus: connecting to %s: %w", redact(url), err)
	}
	b, err := New(ctx, nc, opts)
	if err != nil {
		nc.Close()
		return nil, err
	}
	b.stop = chainClose(b.stop, nc.Close)
	return b, nil
}

func chainClose(f context.CancelFunc, g func()) context.CancelFunc {
	return func() { f(); g() }
}

// redact removes a password from a URL for error texts.
func redact(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "…" + u[i:]
		}
	}
	return u
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// New returns a Bus on nc: it creates (or updates) the stream and the
// buckets, puts this node's lease and subscribes to its commands. nc
// stays the caller's: Close does not close it.
func New(ctx context.Context, nc *nats.Conn, opts *Options) (*Bus, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Node == "" {
		host, _ := os.Hostname()
		host = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
				return r
			}
			return '_'
		}, host)
		if len(host) > 32 {
			host = host[:32]
		}
		b := make([]byte, 4)
		rand.Read(b)
		o.Node = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	if !validName(o.Prefix) || !validName(o.Node) {
		return nil, fmt.Errorf("%w: Prefix %q and Node %q must be 1-64 letters, digits, _ or -", ErrConfig, o.Prefix, o.Node)
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.Lease < 300*time.Millisecond {
		return nil, fmt.Errorf("%w: Lease %v is under 300 ms", ErrConfig, o.Lease)
	}
	if o.Retain <= 0 {
		o.Retain = DefaultRetain
	}
	o.Retain = max(o.Retain, oplog.MinRequestRetain)
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.RouteTimeout <= 0 {
		o.RouteTimeout = DefaultRouteTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natsbus: %w", err)
	}
	ib := make([]byte, 8)
	rand.Read(ib)
	b := &Bus{o: o, log: o.Logger, nc: nc, js: js, last: map[string]lastRec{}, known: map[string]state{}, inst: hex.EncodeToString(ib)}
	up := strings.ToUpper(o.Prefix)
	if b.events, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        up + "_EVENTS",
		Description: "voicegate agent operations' events",
		Subjects:    []string{o.Prefix + ".ev.>"},
		MaxAge:      o.Retain,
		Replicas:    o.Replicas,
		AllowDirect: true,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
	}); err != nil {
		return nil, fmt.Errorf("natsbus: events stream: %w", err)
	}
	if b.ops, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: o.Prefix + "_ops", Description: "voicegate agent operations",
		TTL: o.Retain, Replicas: o.Replicas, History: 1,
	}); err != nil {
		return nil, fmt.Errorf("natsbus: operations bucket: %w", err)
	}
	if b.nodes, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: o.Prefix + "_nodes", Description: "voicegate node leases",
		TTL: o.Lease, Replicas: o.Replicas, History: 1, Storage: jetstream.MemoryStorage,
	}); err != nil {
		return nil, fmt.Errorf("natsbus: nodes bucket: %w", err)
	}
	if err := b.renew(ctx); err != nil {
		return nil, fmt.Errorf("natsbus: node lease: %w", err)
	}
	// Watch the operations (for Orphans) from the start of the bucket,
	// for the Bus's life (the watcher ends with its context).
	bctx, cancel := context.WithCancel(context.Background())
	w, err := b.ops.WatchAll(bctx, jetstream.IncludeHistory())
	if err != nil {
		cancel()
		return nil, fmt.Errorf("natsbus: watching operations: %w", err)
	}
	for _, s := range []struct {
		subj string
		f    nats.MsgHandler
	}{
		{o.Prefix + ".cmd.route", b.onRoute},
		{o.Prefix + ".cmd.node." + o.Node, b.onCommand},
	} {
		sub, err := nc.Subscribe(s.subj, s.f)
		if err != nil {
			w.Stop()
			cancel()
			b.unsubscribe()
			return nil, fmt.Errorf("natsbus: subscribing to commands: %w", err)
		}
		b.subs = append(b.subs, sub)
	}
	b.stop = cancel
	b.wg.Add(2)
	go b.leaseLoop(bctx)
	go b.watchLoop(bctx, w)
	return b, nil
}

func (b *Bus) unsubscribe() {
	for _, s := range b.subs {
		s.Unsubscribe()
	}
}

// Close stops renewing the lease, deletes it (so other nodes end this
// node's unfinished operations at once) and unsubscribes; with Connect
// it also closes the connection. Close is idempotent.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	b.unsubscribe()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	err := b.nodes.Delete(ctx, b.o.Node)
	cancel()
	b.stop()
	b.wg.Wait()
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrKeyNotFound) {
		err = nil
	}
	return err
}

// Node implements oplog.Log.
func (b *Bus) Node() string { return b.o.Node }

// Conn returns the NATS connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// renew puts the node's lease: "<instance> <time, RFC 3339>".
func (b *Bus) renew(ctx context.Context) error {
	_, err := b.nodes.Put(ctx, b.o.Node, []byte(b.inst+" "+time.Now().UTC().Format(time.RFC3339Nano)))
	return err
}

func (b *Bus) leaseLoop(ctx context.Context) {
	defer b.wg.Done()
	t := time.NewTicker(b.o.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, b.o.Lease/3)
		if err := b.renew(rctx); err != nil && ctx.Err() == nil {
			b.log.Warn("natsbus: renewing the node lease failed", "node", b.o.Node, "err", err)
		}
		cancel()
	}
}

// watchLoop keeps b.known in step with the ops bucket.
func (b *Bus) watchLoop(ctx context.Context, w jetstream.KeyWatcher) {
	defer b.wg.Done()
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil { // end of the initial values
				continue
			}
			id, isOp := strings.CutPrefix(e.Key(), "op.")
			if !isOp {
				continue // a lock (Lock) or a request claim (ClaimRequest)
			}
			if e.Operation() != jetstream.KeyValuePut {
				b.mu.Lock()
				delete(b.known, id)
				b.mu.Unlock()
				continue
			}
			var st state
			if err := json.Unmarshal(e.Value(), &st); err != nil {
				b.log.Warn("natsbus: skipping an operation state", "key", e.Key(), "err", fmt.Errorf("%w: %w", ErrMessage, err))
				continue
			}
			b.mu.Lock()
			b.known[id] = st
			b.prune()
			b.mu.Unlock()
		}
	}
}

// prune forgets known operations older than Retain. b.mu is held.
func (b *Bus) prune() {
	if len(b.known)%1024 != 0 {
		return
	}
	limit := time.Now().Add(-b.o.Retain)
	for id, st := range b.known {
		if st.Created.Before(limit) {
			delete(b.known, id)
		}
	}
}

func (b *Bus) subject(id string) string { return b.o.Prefix + ".ev." + id }

// notifySubject is where the writer publishes a record after the stream
// stored it (not captured by the stream).
func (b *Bus) notifySubject(id string) string { return b.o.Prefix + ".nt." + id }

func opKey(id string) string { return "op." + id }

// validID accepts the ids the server makes ("op_" and hex) and other
// subject-safe tokens.
func validID(id string) bool { return validName(strings.ReplaceAll(id, "_", "-")) || validName(id) }

// Create implements oplog.Log.
func (b *Bus) Create(ctx context.Context, op oplog.Op) error {
	if !validID(op.ID) {
		return fmt.Errorf("%w: operation id %q", oplog.ErrNotFound, op.ID)
	}
	if len(op.Spec) > oplog.MaxSpec {
		return oplog.ErrTooLarge
	}
	if op.Owner == "" {
		op.Owner = b.o.Node
	}
	if op.Created.IsZero() {
		op.Created = time.Now()
	}
	st := state{ID: op.ID, Kind: op.Kind, CallID: op.CallID, CallerID: op.CallerID, Created: op.Created, Owner: op.Owner, Spec: op.Spec}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if _, err := b.ops.Create(ctx, opKey(op.ID), data); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return oplog.ErrExists
		}
		return fmt.Errorf("natsbus: creating operation %s: %w", op.ID, err)
	}
	b.mu.Lock()
	b.last[op.ID] = lastRec{}
	b.known[op.ID] = st
	b.mu.Unlock()
	return nil
}

// getState reads an operation's state and its revision.
func (b *Bus) getState(ctx context.Context, id string) (state, uint64, error) {
	if !validID(id) {
		return state{}, 0, oplog.ErrNotFound
	}
	e, err := b.ops.Get(ctx, opKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return state{}, 0, oplog.ErrNotFound
	}
	if err != nil {
		return state{}, 0, fmt.Errorf("natsbus: reading operation %s: %w", id, err)
	}
	var st state
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return state{}, 0, fmt.Errorf("%w: operation %s: %w", ErrMessage, id, err)
	}
	return st, e.Revision(), nil
}

// lastMsg is what the last message of an operation's subject says.
type lastMsg struct {
	rec  oplog.Record // the last record; zero when there is none
	sseq uint64       // stream sequence of the last message; zero when none
	// node wrote the last message: the owner of the operation (or the
	// node that ended it). Empty when the operation has no message or its
	// last record predates the Vg-Node header.
	node  string
	claim bool // the last (and only) message is node's claim
}

// lastRecord reads the last message of an operation's subject.
func (b *Bus) lastRecord(ctx context.Context, id string) (lastMsg, error) {
	m, err := b.events.GetLastMsgForSubject(ctx, b.subject(id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return lastMsg{}, nil
	}
	if err != nil {
		return lastMsg{}, fmt.Errorf("natsbus: reading operation %s: %w", id, err)
	}
	if c := m.Header.Get(hdrClaim); c != "" {
		return lastMsg{sseq: m.Sequence, node: c, claim: true}, nil
	}
	r, err := record(m.Header, m.Data)
	return lastMsg{rec: r, sseq: m.Sequence, node: m.Header.Get(hdrNode)}, err
}

// record decodes an event message.
func record(h nats.Header, data []byte) (oplog.Record, error) {
	seq, err := strconv.ParseUint(h.Get(hdrSeq), 10, 64)
	if err != nil || seq == 0 {
		return oplog.Record{}, fmt.Errorf("%w: %s %q", ErrMessage, hdrSeq, h.Get(hdrSeq))
	}
	ns, err := strconv.ParseInt(h.Get(hdrTime), 10, 64)
	if err != nil {
		return oplog.Record{}, fmt.Errorf("%w: %s %q", ErrMessage, hdrTime, h.Get(hdrTime))
	}
	typ := h.Get(hdrType)
	if typ == "" {
		return oplog.Record{}, fmt.Errorf("%w: no %s", ErrMessage, hdrType)
	}
	return oplog.Record{Seq: seq, Type: typ, Terminal: h.Get(hdrTerminal) == "1", Data: data, Time: time.Unix(0, ns)}, nil
}

// Get implements oplog.Log.
func (b *Bus) Get(ctx context.Context, id string) (oplog.Op, error) {
	st, _, err := b.getState(ctx, id)
	if err != nil {
		return oplog.Op{}, err
	}
	lm, err := b.lastRecord(ctx, id)
	if err != nil {
		return oplog.Op{}, err
	}
	r := lm.rec
	if lm.node != "" {
		st.Owner = lm.node
	}
	op := oplog.Op{ID: st.ID, Kind: st.Kind, CallID: st.CallID, CallerID: st.CallerID, Created: st.Created,
		Owner: st.Owner, Spec: st.Spec, LastSeq: r.Seq, Done: r.Terminal || st.Done, Ended: st.Ended}
	if r.Terminal && op.Ended.IsZero() {
		op.Ended = r.Time
	}
	return op, nil
}

// Claim implements oplog.Log in one step that cannot race: it publishes
// a claim message (header Vg-Claim, the node) on the operation's events
// subject with the expected last subject sequence 0, which JetStream
// stores only while the subject holds nothing. The owner's first record
// is published with the same expectation, so of the owner appending and
// any number of nodes claiming, exactly one wins; the others get
// oplog.ErrClaimed (claims) or oplog.ErrSeq (the owner's append). The
// operation's state then names the new owner (retried for
// setOwnerTimeout); Get, Running and Orphans read the owner from the
// claim message and then from the claimer's records (header Vg-Node), so
// they never depend on the state having followed.
func (b *Bus) Claim(ctx context.Context, id, from string) error {
	st, _, err := b.getState(ctx, id)
	if err != nil {
		return err
	}
	if st.Owner != from || st.Done {
		return oplog.ErrClaimed
	}
	m := nats.NewMsg(b.subject(id))
	m.Header.Set(hdrClaim, b.o.Node)
	m.Header.Set(hdrTime, strconv.FormatInt(time.Now().UnixNano(), 10))
	ack, err := b.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(0), jetstream.WithExpectStream(b.events.CachedInfo().Config.Name))
	if err != nil {
		if wrongLast(err) {
			return oplog.ErrClaimed // a record or another claim came first
		}
		return fmt.Errorf("natsbus: claiming operation %s: %w", id, err)
	}
	b.mu.Lock()
	b.last[id] = lastRec{seq: 0, sseq: ack.Sequence}
	b.mu.Unlock()
	b.setOwner(id)
	return nil
}

// wrongLast reports whether a publish was refused for its expected last
// subject sequence.
func wrongLast(err error) bool {
	var ae *jetstream.APIError
	return errors.As(err, &ae) && (ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// setOwnerTimeout bounds setOwner.
const setOwnerTimeout = 10 * time.Second

// setOwner records this node as the owner in the operation's state after
// it won the claim, retrying (on a conflicting update or any error) until
// it succeeds or setOwnerTimeout passed. It runs on its own context: the
// claim already happened, so the caller's deadline must not leave the
// state naming the old owner. Readers do not depend on it (the claim
// message and the records name the owner); it keeps Orphans' first sift,
// which reads only the state, right.
func (b *Bus) setOwner(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), setOwnerTimeout)
	defer cancel()
	wait := 10 * time.Millisecond
	for {
		st, rev, err := b.getState(ctx, id)
		if errors.Is(err, oplog.ErrNotFound) || err == nil && (st.Owner == b.o.Node || st.Done) {
			return
		}
		if err == nil {
			st.Owner = b.o.Node
			data, _ := json.Marshal(st)
			if _, err = b.ops.Update(ctx, opKey(id), data, rev); err == nil {
				b.mu.Lock()
				b.known[id] = st
				b.mu.Unlock()
				return
			}
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue // changed under us: read again at once
			}
		}
		select {
		case <-ctx.Done():
			b.log.Warn("natsbus: recording the owner of a claimed operation failed", "operation_id", id, "err", err)
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// Append implements oplog.Log. The message is published with the
// expected last sequence of the operation's subject, so it lands only
// right after the record this node knows as the last one.
func (b *Bus) Append(ctx context.Context, id string, rec oplog.Record) error {
	if !validID(id) {
		return oplog.ErrNotFound
	}
	b.mu.Lock()
	last, ok := b.last[id]
	b.mu.Unlock()
	if !ok {
		if _, _, err := b.getState(ctx, id); err != nil {
			return err
		}
		lm, err := b.lastRecord(ctx, id)
		if err != nil {
			return err
		}
		if lm.claim && lm.node != b.o.Node {
			return fmt.Errorf("%w: operation %s: claimed by node %s", oplog.ErrSeq, id, lm.node)
		}
		if lm.rec.Terminal {
			return oplog.SeqError(id, lm.rec.Seq+1, rec.Seq)
		}
		last = lastRec{seq: lm.rec.Seq, sseq: lm.sseq}
	}
	if rec.Seq != last.seq+1 {
		return oplog.SeqError(id, last.seq+1, rec.Seq)
	}
	now := time.Now()
	m := nats.NewMsg(b.subject(id))
	m.Header.Set(hdrSeq, strconv.FormatUint(rec.Seq, 10))
	m.Header.Set(hdrType, rec.Type)
	m.Header.Set(hdrTime, strconv.FormatInt(now.UnixNano(), 10))
	m.Header.Set(hdrNode, b.o.Node)
	if rec.Terminal {
		m.Header.Set(hdrTerminal, "1")
	}
	m.Data = rec.Data
	ack, err := b.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(last.sseq), jetstream.WithExpectStream(b.events.CachedInfo().Config.Name))
	if err != nil {
		b.mu.Lock()
		delete(b.last, id)
		b.mu.Unlock()
		if wrongLast(err) {
			return fmt.Errorf("%w: operation %s: another node appended or claimed it first", oplog.ErrSeq, id)
		}
		return fmt.Errorf("natsbus: appending to operation %s: %w", id, err)
	}
	n := nats.NewMsg(b.notifySubject(id))
	n.Header = m.Header
	n.Header.Set(hdrStreamSeq, strconv.FormatUint(ack.Sequence, 10))
	n.Data = m.Data
	if err := b.nc.PublishMsg(n); err != nil {
		// Readers find the record in the stream within pollInterval.
		b.log.Warn("natsbus: notifying readers failed", "operation_id", id, "err", err)
	}
	b.mu.Lock()
	if rec.Terminal {
		delete(b.last, id)
	} else {
		b.last[id] = lastRec{seq: rec.Seq, sseq: ack.Sequence}
	}
	b.mu.Unlock()
	if rec.Terminal {
		b.markDone(ctx, id, now)
	}
	return nil
}

// markDone records in the operation's state that it ended (best effort:
// the stream's terminal record is what readers trust).
func (b *Bus) markDone(ctx context.Context, id string, ended time.Time) {
	for range 3 {
		st, rev, err := b.getState(ctx, id)
		if err != nil || st.Done {
			return
		}
		st.Done, st.Ended = true, ended
		data, _ := json.Marshal(st)
		if _, err = b.ops.Update(ctx, opKey(id), data, rev); err == nil || !errors.Is(err, jetstream.ErrKeyExists) {
			if err != nil {
				b.log.Warn("natsbus: marking an operation done failed", "operation_id", id, "err", err)
			}
			return
		}
	}
}

// Orphans implements oplog.Log: the operations this node has seen in the
// ops bucket, not ended, whose owner has no lease. The owner is the
// writer of the operation's last message (claim or record, header
// Vg-Node); the state's owner only picks the candidates, so an operation
// claimed by a node that stopped before its state said so (setOwner
// failed for setOwnerTimeout) is found only once the node it was claimed
// from stopped too.
func (b *Bus) Orphans(ctx context.Context) ([]oplog.Op, error) {
	lister, err := b.nodes.ListKeys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, fmt.Errorf("natsbus: listing nodes: %w", err)
	}
	live := map[string]bool{b.o.Node: true}
	if lister != nil {
		for k := range lister.Keys() {
			live[k] = true
		}
		lister.Stop()
	}
	b.mu.Lock()
	var cands []state
	for _, st := range b.known {
		if !st.Done && !live[st.Owner] {
			cands = append(cands, st)
		}
	}
	b.mu.Unlock()
	var out []oplog.Op
	for _, c := range cands {
		lm, err := b.lastRecord(ctx, c.ID)
		if err != nil {
			return out, err
		}
		r, sseq := lm.rec, lm.sseq
		if lm.node != "" {
			if live[lm.node] && !r.Terminal {
				continue // claimed by a live node whose state update lags
			}
			c.Owner = lm.node
		}
		if r.Terminal {
			b.mu.Lock()
			if st, ok := b.known[c.ID]; ok {
				st.Done = true
				b.known[c.ID] = st
			}
			b.mu.Unlock()
			continue
		}
		b.mu.Lock()
		b.last[c.ID] = lastRec{seq: r.Seq, sseq: sseq}
		b.mu.Unlock()
		out = append(out, oplog.Op{ID: c.ID, Kind: c.Kind, CallID: c.CallID, CallerID: c.CallerID, Created: c.Created,
			Owner: c.Owner, Spec: c.Spec, LastSeq: r.Seq})
	}
	return out, nil
}

// Running implements oplog.Log: the operations of callID this node has
// seen in the ops bucket whose last record in the stream is not terminal.
func (b *Bus) Running(ctx context.Context, callID string) ([]oplog.Op, error) {
	b.mu.Lock()
	var cands []state
	for _, st := range b.known {
		if st.CallID == callID && !st.Done {
			cands = append(cands, st)
		}
	}
	b.mu.Unlock()
	var out []oplog.Op
	for _, c := range cands {
		lm, err := b.lastRecord(ctx, c.ID)
		if err != nil {
			return out, err
		}
		r := lm.rec
		if r.Terminal {
			continue
		}
		if lm.node != "" {
			// The writer of the last message (claim or record) runs it;
			// the state in the ops bucket may still name the node it was
			// claimed from.
			c.Owner = lm.node
		}
		out = append(out, oplog.Op{ID: c.ID, Kind: c.Kind, CallID: c.CallID, CallerID: c.CallerID, Created: c.Created,
			Owner: c.Owner, Spec: c.Spec, LastSeq: r.Seq})
	}
	slices.SortFunc(out, func(a, b oplog.Op) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// Ready implements oplog.Log: the connection is up and JetStream answers.
func (b *Bus) Ready(ctx context.Context) error {
	if s := b.nc.Status(); s != nats.CONNECTED {
		return fmt.Errorf("natsbus: connection %v", s)
	}
	if _, err := b.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("natsbus: JetStream: %w", err)
	}
	return nil
}

// Handle implements oplog.Log.
func (b *Bus) Handle(h oplog.Handler) {
	b.mu.Lock()
	b.handler = h
	b.mu.Unlock()
}

func (b *Bus) currentHandler() oplog.Handler {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.handler
}

// handlerTimeout bounds a command handler.
const handlerTimeout = 30 * time.Second

func (b *Bus) onRoute(m *nats.Msg) {
	h := b.currentHandler()
	if m.Reply == "" {
		return
	}
	if h == nil {
		m.Respond(nil) // holds nothing (not serving, or shutting down)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), b.o.RouteTimeout)
		defer cancel()
		// Every node answers, "" when it does not hold the call, so the
		// asker can stop when all live nodes said no.
		var reply []byte
		if h.Holds(ctx, m.Header.Get(hdrCall)) {
			reply = []byte(b.o.Node)
		}
		m.Respond(reply)
	}()
}

func (b *Bus) onCommand(m *nats.Msg) {
	h := b.currentHandler()
	if h == nil || m.Reply == "" {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
		defer cancel()
		m.Respond(h.Command(ctx, m.Data))
	}()
}

// Route implements oplog.Log: it asks every node which holds callID
// (waiting RouteTimeout at most), then sends msg to the first that does.
func (b *Bus) Route(ctx context.Context, callID string, msg []byte) ([]byte, error) {
	node, err := b.holder(ctx, callID)
	if err != nil {
		return nil, err
	}
	return b.Send(ctx, node, msg)
}

// Holder implements oplog.Locator: the node whose Handler.Holds callID,
// as Route finds it (oplog.ErrNoRoute when none does within
// RouteTimeout).
func (b *Bus) Holder(ctx context.Context, callID string) (string, error) {
	return b.holder(ctx, callID)
}

// holder asks every node whether it holds callID and returns the first
// that does. It stops early when every live node answered no.
func (b *Bus) holder(ctx context.Context, callID string) (string, error) {
	lctx, cancel := context.WithTimeout(ctx, b.o.RouteTimeout)
	defer cancel()
	live := b.liveCount(lctx)
	inbox := b.nc.NewRespInbox()
	sub, err := b.nc.SubscribeSync(inbox)
	if err != nil {
		return "", fmt.Errorf("natsbus: %w", err)
	}
	defer sub.Unsubscribe()
	m := nats.NewMsg(b.o.Prefix + ".cmd.route")
	m.Header.Set(hdrCall, callID)
	m.Reply = inbox
	if err := b.nc.PublishMsg(m); err != nil {
		return "", fmt.Errorf("natsbus: asking for call %s: %w", callID, err)
	}
	for no := 0; live == 0 || no < live; {
		r, err := sub.NextMsgWithContext(lctx)
		if err != nil {
			break
		}
		if len(r.Data) > 0 {
			return string(r.Data), nil
		}
		no++
	}
	return "", fmt.Errorf("%w: call %s", oplog.ErrNoRoute, callID)
}

// liveCount returns the number of nodes with a lease (0 when unknown),
// cached for a third of a lease.
func (b *Bus) liveCount(ctx context.Context) int {
	b.mu.Lock()
	n, at := b.live, b.liveAt
	b.mu.Unlock()
	if time.Since(at) < b.o.Lease/3 {
		return n
	}
	lister, err := b.nodes.ListKeys(ctx)
	if err != nil {
		return 0
	}
	n = 0
	for range lister.Keys() {
		n++
	}
	lister.Stop()
	b.mu.Lock()
	b.live, b.liveAt = n, time.Now()
	b.mu.Unlock()
	return n
}

// Send implements oplog.Log.
func (b *Bus) Send(ctx context.Context, node string, msg []byte) ([]byte, error) {
	if !validName(node) {
		return nil, fmt.Errorf("%w: node %q", oplog.ErrNoRoute, node)
	}
	m := nats.NewMsg(b.o.Prefix + ".cmd.node." + node)
	m.Data = msg
	return b.request(ctx, m, "node "+node)
}

func (b *Bus) request(ctx context.Context, m *nats.Msg, what string) ([]byte, error) {
	r, err := b.nc.RequestMsgWithContext(ctx, m)
	switch {
	case err == nil:
		return r.Data, nil
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return nil, fmt.Errorf("%w: %s", oplog.ErrNoRoute, what)
	}
	return nil, fmt.Errorf("natsbus: command to %s: %w", what, err)
}

// RouteTimeout returns Options.RouteTimeout.
func (b *Bus) RouteTimeout() time.Duration { return b.o.RouteTimeout }

var _ oplog.Log = (*Bus)(nil)

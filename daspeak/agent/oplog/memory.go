package oplog

import (
	"context"
	"io"
	"sync"
	"time"
)

// MemoryNode is the node name of a Memory.
const MemoryNode = "local"

// Memory is an in-process Log for a single node. Finished operations are forgotten Retain
// after their terminal record, and the oldest finished ones first when more
// than MaxOps are kept; running operations are never forgotten, nor is an
// operation a request claim names (Request.OpID) while the claim is kept,
// so that a stop of the claim's request id finds what the start did. Request
// claims (ClaimRequest) are kept max(Retain, MinRequestRetain) after they
// were made and never evicted: a subject holds at most MaxSubjectRequests
// on a call, a call at most MaxCallRequests, and the Memory at most
// MaxOps, beyond which new claims are refused.
type Memory struct {
	retain    time.Duration
	reqRetain time.Duration // max(retain, MinRequestRetain)
	maxOps    int
	now       func() time.Time

	mu    sync.Mutex
	ops   map[string]*memOp
	order []string // ids in creation order, for pruning
	// reqs are the request claims (ClaimRequest) by key (call id, " ",
	// request id); reqOrder[reqHead:] their keys in claim order, and
	// callReqs each call's claim times in that order, subjReqs each
	// (call, subject)'s (subjectKey): claims expire from the front, none
	// is ever evicted.
	reqs     map[string]memReq
	reqOrder []string
	reqHead  int
	callReqs map[string][]time.Time
	subjReqs map[string][]time.Time
	// claimedOps counts, by operation id, the kept claims that name it
	// (Request.OpID): prune keeps those operations.
	claimedOps map[string]int
	// calls summarises, by call id, the kept operations of the call
	// (CallSummary): an entry goes with the call's last kept operation.
	calls map[string]*memCall
}

// memCall is a call's summary: its kept operations, those that have not
// ended, and the id of the one that ended last ("" when it was pruned or
// none ended).
type memCall struct {
	ops, running int
	last         string
}

// subjectKey is the key of r's (call, subject) in Memory.subjReqs.
func subjectKey(r Request) string { return r.CallID + "\x00" + r.Subject }

// popFront drops the oldest time of m[key], and the key with its last.
func popFront(m map[string][]time.Time, key string) {
	if times := m[key]; len(times) > 1 {
		m[key] = times[1:]
	} else {
		delete(m, key)
	}
}

type memReq struct {
	r  Request
	at time.Time
}

type memOp struct {
	op   Op
	recs []Record
	// wake is closed and replaced on every Append.
	wake chan struct{}
}

// NewMemory returns a Memory keeping finished operations for retain
// (default 15 minutes) and at most maxOps operations (default 100000)
// beside the running ones and those a kept claim names (at most maxOps
// more: claims are bounded by maxOps too).
func NewMemory(retain time.Duration, maxOps int) *Memory {
	if retain <= 0 {
		retain = 15 * time.Minute
	}
	if maxOps <= 0 {
		maxOps = 100000
	}
	return &Memory{
		retain: retain, reqRetain: max(retain, MinRequestRetain), maxOps: maxOps, now: time.Now,
		ops: map[string]*memOp{}, reqs: map[string]memReq{}, callReqs: map[string][]time.Time{},
		subjReqs: map[string][]time.Time{}, claimedOps: map[string]int{}, calls: map[string]*memCall{},
	}
}

// Create implements Log.
func (m *Memory) Create(ctx context.Context, op Op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.ops[op.ID]; ok {
		return ErrExists
	}
	if len(op.Spec) > MaxSpec {
		return ErrTooLarge
	}
	if op.Owner == "" {
		op.Owner = MemoryNode
	}
	op.Spec = append([]byte(nil), op.Spec...)
	m.prune()
	op.LastSeq, op.Done, op.Ended = 0, false, time.Time{}
	if op.Created.IsZero() {
		op.Created = m.now()
	}
	m.ops[op.ID] = &memOp{op: op, wake: make(chan struct{})}
	m.order = append(m.order, op.ID)
	c := m.calls[op.CallID]
	if c == nil {
		c = &memCall{}
		m.calls[op.CallID] = c
	}
	c.ops++
	c.running++
	return nil
}

// prune forgets expired finished operations and, over maxOps, the oldest
// finished ones, but none a kept claim names. m.mu is held.
func (m *Memory) prune() {
	now := m.now()
	m.expireRequests(now)
	over := len(m.ops) + 1 - m.maxOps
	keep := m.order[:0]
	for _, id := range m.order {
		o, ok := m.ops[id]
		if !ok {
			continue
		}
		if o.op.Done && m.claimedOps[id] == 0 && (now.Sub(o.op.Ended) >= m.retain || over > 0) {
			delete(m.ops, id)
			if c := m.calls[o.op.CallID]; c != nil {
				if c.ops--; c.ops == 0 {
					delete(m.calls, o.op.CallID)
				} else if c.last == id {
					c.last = ""
				}
			}
			over--
			continue
		}
		keep = append(keep, id)
	}
	clear(m.order[len(keep):])
	m.order = keep
}

// Get implements Log.
func (m *Memory) Get(ctx context.Context, id string) (Op, error) {
	if err := ctx.Err(); err != nil {
		return Op{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.ops[id]
	if !ok {
		return Op{}, ErrNotFound
	}
	op := o.op
	op.Spec = append([]byte(nil), op.Spec...)
	return op, nil
}

// Append implements Log.
func (m *Memory) Append(ctx context.Context, id string, rec Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.ops[id]
	if !ok {
		return ErrNotFound
	}
	if o.op.Done || rec.Seq != o.op.LastSeq+1 {
		return SeqError(id, o.op.LastSeq+1, rec.Seq)
	}
	rec.Data = append([]byte(nil), rec.Data...)
	rec.Time = m.now()
	o.recs = append(o.recs, rec)
	o.op.LastSeq = rec.Seq
	if rec.Terminal {
		o.op.Done = true
		o.op.Ended = m.now()
		if c := m.calls[o.op.CallID]; c != nil {
			c.running--
			c.last = id
		}
	}
	close(o.wake)
	o.wake = make(chan struct{})
	return nil
}

// Claim implements Log.
func (m *Memory) Claim(ctx context.Context, id, from string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.ops[id]
	switch {
	case !ok:
		return ErrNotFound
	case o.op.Owner != from || o.op.LastSeq != 0 || o.op.Done:
		return ErrClaimed
	}
	o.op.Owner = MemoryNode
	return nil
}

// Node implements Log: it returns MemoryNode.
func (m *Memory) Node() string { return MemoryNode }

// Orphans implements Log: a Memory is one node, whose operations end with
// it, so there are none.
func (m *Memory) Orphans(ctx context.Context) ([]Op, error) { return nil, ctx.Err() }

// Running implements Log: the call's operations that have not ended, in
// creation order.
func (m *Memory) Running(ctx context.Context, callID string) ([]Op, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Op
	for _, id := range m.order {
		if o, ok := m.ops[id]; ok && o.op.CallID == callID && !o.op.Done {
			op := o.op
			op.Spec = append([]byte(nil), op.Spec...)
			out = append(out, op)
		}
	}
	return out, nil
}

// CallSummary implements CallSummarizer: its cost does not grow with
// the number of operations kept.
func (m *Memory) CallSummary(ctx context.Context, callID string) (int, Op, Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, Op{}, Record{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.calls[callID]
	if c == nil {
		return 0, Op{}, Record{}, false, nil
	}
	o, ok := m.ops[c.last]
	if !ok || len(o.recs) == 0 {
		return c.running, Op{}, Record{}, false, nil
	}
	op := o.op
	op.Spec = append([]byte(nil), op.Spec...)
	rec := o.recs[len(o.recs)-1]
	rec.Data = append([]byte(nil), rec.Data...)
	return c.running, op, rec, true, nil
}

// ClaimRequest implements Log. Claims are kept max(retain,
// MinRequestRetain) and never evicted: a new claim is refused with a
// *LimitError while its subject holds MaxSubjectRequests claims on its
// call, its call MaxCallRequests, or the Memory maxOps.
func (m *Memory) ClaimRequest(ctx context.Context, id string, r Request) (Request, bool, error) {
	if err := ctx.Err(); err != nil {
		return Request{}, false, err
	}
	if !ValidRequestID(id) {
		return Request{}, false, ErrBadRequestID
	}
	if r.Node == "" {
		r.Node = MemoryNode
	}
	key := r.CallID + " " + id // claims are per call (Log.ClaimRequest)
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.expireRequests(now)
	if held, ok := m.reqs[key]; ok {
		return held.r, false, nil
	}
	sk := subjectKey(r)
	if times := m.subjReqs[sk]; len(times) >= MaxSubjectRequests {
		return Request{}, false, &LimitError{CallID: r.CallID, Subject: r.Subject, PerSubject: true, Limit: len(times), RetryAfter: times[0].Add(m.reqRetain).Sub(now)}
	}
	if times := m.callReqs[r.CallID]; len(times) >= MaxCallRequests {
		return Request{}, false, &LimitError{CallID: r.CallID, Limit: len(times), RetryAfter: times[0].Add(m.reqRetain).Sub(now)}
	}
	if n := len(m.reqOrder) - m.reqHead; n >= m.maxOps {
		oldest := m.reqs[m.reqOrder[m.reqHead]].at
		return Request{}, false, &LimitError{Limit: n, RetryAfter: oldest.Add(m.reqRetain).Sub(now)}
	}
	m.reqs[key] = memReq{r: r, at: now}
	m.reqOrder = append(m.reqOrder, key)
	m.callReqs[r.CallID] = append(m.callReqs[r.CallID], now)
	m.subjReqs[sk] = append(m.subjReqs[sk], now)
	if r.OpID != "" {
		m.claimedOps[r.OpID]++
	}
	return r, true, nil
}

// HeldRequest implements Log.
func (m *Memory) HeldRequest(ctx context.Context, callID, id string) (Request, bool, error) {
	if err := ctx.Err(); err != nil {
		return Request{}, false, err
	}
	if !ValidRequestID(id) {
		return Request{}, false, ErrBadRequestID
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expireRequests(m.now())
	held, ok := m.reqs[callID+" "+id]
	return held.r, ok, nil
}

// expireRequests forgets the claims made reqRetain or longer before now:
// the oldest, at the front of reqOrder and of their call's callReqs and
// subject's subjReqs.
// m.mu is held.
func (m *Memory) expireRequests(now time.Time) {
	for m.reqHead < len(m.reqOrder) {
		key := m.reqOrder[m.reqHead]
		held := m.reqs[key]
		if now.Sub(held.at) < m.reqRetain {
			break
		}
		delete(m.reqs, key)
		m.reqOrder[m.reqHead] = ""
		m.reqHead++
		popFront(m.callReqs, held.r.CallID)
		popFront(m.subjReqs, subjectKey(held.r))
		if id := held.r.OpID; id != "" {
			if m.claimedOps[id]--; m.claimedOps[id] <= 0 {
				delete(m.claimedOps, id)
			}
		}
	}
	if m.reqHead > 0 && m.reqHead >= len(m.reqOrder)/2 {
		n := copy(m.reqOrder, m.reqOrder[m.reqHead:])
		clear(m.reqOrder[n:])
		m.reqOrder, m.reqHead = m.reqOrder[:n], 0
	}
}

// Route implements Log: there is no other node (ErrNoRoute).
func (m *Memory) Route(ctx context.Context, callID string, msg []byte) ([]byte, error) {
	return nil, ErrNoRoute
}

// Send implements Log: there is no other node (ErrNoRoute).
func (m *Memory) Send(ctx context.Context, node string, msg []byte) ([]byte, error) {
	return nil, ErrNoRoute
}

// Handle implements Log: no other node sends commands, so h is never
// called.
func (m *Memory) Handle(h Handler) {}

// Ready implements Log: a Memory is always ready.
func (m *Memory) Ready(ctx context.Context) error { return nil }

// Subscribe implements Log.
func (m *Memory) Subscribe(ctx context.Context, id string, after uint64) (Cursor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.ops[id]
	if !ok {
		return nil, ErrNotFound
	}
	return &memCursor{m: m, o: o, next: after + 1}, nil
}

type memCursor struct {
	m      *Memory
	o      *memOp
	next   uint64
	closed bool
}

// Next implements Cursor. A record already appended is returned even
// when ctx is done. The cursor keeps its operation's records even when the
// Memory forgets the operation meanwhile.
func (c *memCursor) Next(ctx context.Context) (Record, error) {
	for {
		c.m.mu.Lock()
		if c.closed {
			c.m.mu.Unlock()
			return Record{}, ErrClosed
		}
		if c.next <= uint64(len(c.o.recs)) {
			r := c.o.recs[c.next-1]
			c.next++
			c.m.mu.Unlock()
			return r, nil
		}
		if c.o.op.Done {
			c.m.mu.Unlock()
			return Record{}, io.EOF
		}
		if err := ctx.Err(); err != nil {
			c.m.mu.Unlock()
			return Record{}, err
		}
		wake := c.o.wake
		c.m.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
		}
	}
}

// Close implements Cursor.
func (c *memCursor) Close() error {
	c.m.mu.Lock()
	c.closed = true
	c.m.mu.Unlock()
	return nil
}

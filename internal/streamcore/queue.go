// Package streamcore is the consumer half shared by every live stream of the
// module (twilio.Stream, audiohook.Session): the bounded frame queue, the
// per-track media clock with its gap handling, and the end-of-stream state
// behind Done, Err, ReadFrame and Close. The contract it implements is
// written once, in the doc of voicegate.FrameReader.
//
// A protocol's reader goroutine is the only producer: it calls Push,
// PushSilence, Finish. Consumers call Pop from any goroutine; calls are
// serialised. Close-side code calls Abort.
package streamcore

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicegate/voicegate"
)

// Overflow names what Push does when the queue is full.
type Overflow uint8

const (
	// DropOldest drops the oldest queued frames to make room for the new
	// one, so a slow consumer hears the most recent audio. It is the
	// policy of every stream in the module.
	DropOldest Overflow = iota
	// DropNewest drops the frame being pushed and keeps the queue.
	DropNewest
)

// String returns "drop-oldest" or "drop-newest".
func (o Overflow) String() string {
	if o == DropNewest {
		return "drop-newest"
	}
	return "drop-oldest"
}

// QueueOptions bound a Queue. A frame is queued only while all three
// bounds hold.
type QueueOptions struct {
	// Frames is the most frames queued (> 0).
	Frames int
	// Bytes is the most payload bytes queued (> 0); a single payload larger
	// than Bytes is dropped and counted.
	Bytes int
	// Duration is the most media time queued; 0 means no bound.
	Duration time.Duration
	// Overflow is the policy when a bound is reached.
	Overflow Overflow
	// Batched leaves a waiting consumer asleep when Push or PushSilence
	// queue a frame: the producer wakes it with Flush at the end of each
	// batch of frames, and must call Flush before it blocks. Without it
	// every push wakes a waiting consumer. Either way a consumer that is
	// not waiting (it is still taking frames) is not signalled at all.
	Batched bool
	// LagBudget is the delivery lag (see LagCounters) over which a frame
	// counts in FramesLagged and OnLag is called; 0 or negative counts
	// nothing and calls nothing (Lag and MaxLag are measured all the
	// same). Protocol packages default it to DefaultLagBudget.
	LagBudget time.Duration
	// OnLag, when set, is called by Pop, in the consumer's goroutine and
	// outside the queue's lock, when the lag goes over LagBudget: once
	// per episode (see LagRearm), not per frame. lag is the frame's lag.
	// It must not call Pop.
	OnLag func(lag, budget time.Duration)
}

// Counters are the queue's share of a stream's Stats.
type Counters struct {
	FramesReceived uint64 // frames pushed, silence included
	FramesRead     uint64 // frames returned by Pop
	FramesDropped  uint64 // frames dropped by the overflow policy
	SilenceFrames  uint64 // frames pushed by PushSilence
	QueueDepth     int    // frames queued now
	MaxQueueDepth  int    // most frames queued at once
	LagCounters           // delivery lag of the frames Pop returned
}

// meta is a queued frame without its payload. It holds no pointer, so
// moving it in and out of the ring costs no write barrier.
type meta struct {
	enc      voicegate.Encoding
	channels uint8
	parties  [voicegate.MaxChannels]voicegate.Party
	rate     int32
	size     int32
	seq      uint64
	ts       time.Duration
	dur      time.Duration
}

// Queue is a bounded FIFO of frames over one ring of bytes: pushing and
// popping copy the payload. The ring starts small (ringBytes, ringFrames)
// and doubles, up to the bounds, when frames wait longer, so a stream read
// promptly holds a 1 KB ring (plus the consumer's 4 KB payload buffer)
// instead of its whole bound (64 KB for a Twilio stream by default). With a verify session per stream, 1,000 Twilio
// streams went from 157 KB to 113 KB RSS per stream (150 KB to 88 KB of
// heap): `go test -run '^$' -bench TwilioSessionMemory -benchtime 1x
// ./daspeak/`, both versions in one run. Once grown, pushing and popping
// allocate nothing.
type Queue struct {
	opts QueueOptions

	mu     sync.Mutex
	data   []byte
	meta   []meta
	head   int // index into meta
	n      int // frames queued
	rpos   int // byte offset of the oldest payload in data
	used   int // bytes queued
	queued time.Duration
	end    error // set by Finish: returned once drained
	abort  error // set by Abort: returned at once
	c      Counters

	wake    chan struct{} // a frame, the end or an abort arrived
	asleep  bool          // a consumer found the queue empty and waits on wake
	done    chan struct{} // closed by the first Finish or Abort
	rmu     sync.Mutex    // serialises consumers
	rwake   chan struct{} // rmu was unlocked
	waiters atomic.Int32  // consumers waiting for rmu
	out     []byte        // the consumer's payload, valid until its next Pop
	lag     lagMeter
}

// The ring's first size; see Queue.
const (
	ringBytes  = 1024
	ringFrames = 8
)

// NewQueue returns an empty queue.
func NewQueue(o QueueOptions) *Queue {
	o.Frames = max(o.Frames, 1)
	o.Bytes = max(o.Bytes, 1)
	return &Queue{
		opts:  o,
		lag:   lagMeter{budget: o.LagBudget},
		data:  make([]byte, min(o.Bytes, ringBytes)),
		meta:  make([]meta, min(o.Frames, ringFrames)),
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
		rwake: make(chan struct{}, 1),
		out:   make([]byte, 0, min(o.Bytes, 4096)),
	}
}

// wakeLocked reports whether a push must wake the consumer, and clears
// the consumer's waiting mark if so.
func (q *Queue) wakeLocked() bool {
	if !q.asleep || q.opts.Batched {
		return false
	}
	q.asleep = false
	return true
}

// Flush wakes a consumer waiting for frames that were queued since it
// began to wait (Batched queues). It is cheap when there is none.
func (q *Queue) Flush() {
	q.mu.Lock()
	wake := q.asleep && q.n > 0
	if wake {
		q.asleep = false
	}
	q.mu.Unlock()
	if wake {
		q.signal()
	}
}

func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *Queue) dropOldestLocked() {
	m := &q.meta[q.head]
	q.rpos = (q.rpos + int(m.size)) % len(q.data)
	q.used -= int(m.size)
	q.queued -= m.dur
	q.head = (q.head + 1) % len(q.meta)
	q.n--
	q.c.FramesDropped++
}

// reserveLocked makes room for a payload of size bytes and dur, following
// the overflow policy. It reports false when the frame must be dropped.
func (q *Queue) reserveLocked(size int, dur time.Duration) bool {
	if q.end != nil || q.abort != nil {
		return false
	}
	q.c.FramesReceived++
	if size > q.opts.Bytes {
		q.c.FramesDropped++
		return false
	}
	if q.opts.Overflow == DropNewest && q.n > 0 && q.fullLocked(size, dur) {
		q.c.FramesDropped++
		return false
	}
	for q.n > 0 && q.fullLocked(size, dur) {
		q.dropOldestLocked()
	}
	q.growLocked(size)
	return true
}

// fullLocked reports whether a payload of size bytes and dur breaks a
// bound.
func (q *Queue) fullLocked(size int, dur time.Duration) bool {
	return q.n == q.opts.Frames || q.used+size > q.opts.Bytes ||
		(q.opts.Duration > 0 && q.queued+dur > q.opts.Duration)
}

// growLocked doubles the ring, up to the bounds, until it has room for one
// more frame of size bytes (within the bounds: reserveLocked made room).
// The queued frames move to the start of the new ring.
func (q *Queue) growLocked(size int) {
	if q.used+size > len(q.data) {
		d := make([]byte, min(max(2*len(q.data), q.used+size), q.opts.Bytes))
		first := min(q.used, len(q.data)-q.rpos)
		copy(d, q.data[q.rpos:q.rpos+first])
		copy(d[first:], q.data[:q.used-first])
		q.data, q.rpos = d, 0
	}
	if q.n == len(q.meta) {
		m := make([]meta, min(2*len(q.meta), q.opts.Frames))
		first := min(q.n, len(q.meta)-q.head)
		copy(m, q.meta[q.head:q.head+first])
		copy(m[first:], q.meta[:q.n-first])
		q.meta, q.head = m, 0
	}
}

func (q *Queue) commitLocked(f *voicegate.Frame, size int, dur time.Duration) {
	q.used += size
	q.queued += dur
	q.meta[(q.head+q.n)%len(q.meta)] = meta{
		enc: f.Encoding, channels: uint8(f.Channels), parties: f.Parties, rate: int32(f.SampleRate),
		size: int32(size), seq: f.Seq, ts: f.Timestamp, dur: dur,
	}
	q.n++
	q.c.MaxQueueDepth = max(q.c.MaxQueueDepth, q.n)
}

// Push queues a copy of f (dur is its play time). It does nothing after
// Finish or Abort.
func (q *Queue) Push(f voicegate.Frame, dur time.Duration) {
	q.mu.Lock()
	if !q.reserveLocked(len(f.Payload), dur) {
		q.mu.Unlock()
		return
	}
	wpos := (q.rpos + q.used) % len(q.data)
	c := copy(q.data[wpos:], f.Payload)
	copy(q.data, f.Payload[c:])
	q.commitLocked(&f, len(f.Payload), dur)
	wake := q.wakeLocked()
	q.mu.Unlock()
	if wake {
		q.signal()
	}
}

// PushSilence queues f with a payload of size bytes, each fill (the
// encoding's silence), and counts it in SilenceFrames.
func (q *Queue) PushSilence(f voicegate.Frame, size int, fill byte, dur time.Duration) {
	q.mu.Lock()
	if !q.reserveLocked(size, dur) {
		q.mu.Unlock()
		return
	}
	wpos := (q.rpos + q.used) % len(q.data)
	for i := 0; i < size; i++ {
		q.data[(wpos+i)%len(q.data)] = fill
	}
	q.commitLocked(&f, size, dur)
	q.c.SilenceFrames++
	wake := q.wakeLocked()
	q.mu.Unlock()
	if wake {
		q.signal()
	}
}

// Finish ends the stream: no frame is queued after it, Pop returns the
// queued frames and then end, and Done is closed. end is io.EOF for a clean
// end; any other error is wrapped in a *voicegate.StreamError unless it is
// one already. The first Finish or Abort wins; Finish reports whether it
// did.
func (q *Queue) Finish(end error) bool {
	if end == nil {
		end = io.EOF
	}
	var se *voicegate.StreamError
	if end != io.EOF && !errors.As(end, &se) {
		end = &voicegate.StreamError{Err: end}
	}
	q.mu.Lock()
	first := q.end == nil && q.abort == nil
	if first {
		q.end = end
		close(q.done)
	}
	q.mu.Unlock()
	q.signal()
	return first
}

// Abort makes every pending and later Pop return err at once, dropping the
// queued frames (Close). It closes Done if Finish did not.
func (q *Queue) Abort(err error) {
	q.mu.Lock()
	if q.abort == nil {
		q.abort = err
		if q.end == nil {
			close(q.done)
		}
	}
	q.mu.Unlock()
	q.signal()
}

// Done is closed by the first Finish or Abort: no more frames will be
// queued.
func (q *Queue) Done() <-chan struct{} { return q.done }

// Err returns nil before Done and after a clean end, the
// *voicegate.StreamError of an abnormal end, or the Abort error when the
// stream was closed before it ended.
func (q *Queue) Err() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.end == io.EOF:
		return nil
	case q.end != nil:
		return q.end
	}
	return q.abort
}

// Ended reports whether Finish or Abort was called.
func (q *Queue) Ended() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.end != nil || q.abort != nil
}

// Counters returns a snapshot of the counters.
func (q *Queue) Counters() Counters {
	q.mu.Lock()
	defer q.mu.Unlock()
	c := q.c
	c.QueueDepth = q.n
	c.LagCounters = q.lag.c
	return c
}

// Pop returns the oldest frame, waiting until one is queued, the stream
// ends, it is aborted or ctx ends. Concurrent calls are serialised; the
// payload is valid until the next Pop by any caller.
func (q *Queue) Pop(ctx context.Context) (voicegate.Frame, error) {
	if !q.rmu.TryLock() {
		// Register as a waiter, then try again: an unlock either sees
		// the waiter and signals, or happened before the second try.
		q.waiters.Add(1)
		for !q.rmu.TryLock() {
			select {
			case <-q.rwake:
			case <-ctx.Done():
				q.waiters.Add(-1)
				return voicegate.Frame{}, ctx.Err()
			}
		}
		q.waiters.Add(-1)
	}
	defer q.unlockReader()
	for {
		q.mu.Lock()
		if q.abort != nil {
			err := q.abort
			q.mu.Unlock()
			return voicegate.Frame{}, err
		}
		if q.n > 0 {
			q.asleep = false
			m := &q.meta[q.head]
			size := int(m.size)
			if cap(q.out) < size {
				q.out = make([]byte, size, max(size, 4096))
			}
			out := q.out[:size]
			c := copy(out, q.data[q.rpos:])
			copy(out[c:], q.data)
			f := voicegate.Frame{
				Encoding: m.enc, SampleRate: int(m.rate), Channels: int(m.channels), Parties: m.parties,
				Seq: m.seq, Timestamp: m.ts, Payload: out,
			}
			q.rpos = (q.rpos + size) % len(q.data)
			q.used -= size
			q.queued -= m.dur
			q.head = (q.head + 1) % len(q.meta)
			q.n--
			q.c.FramesRead++
			crossed := q.lag.observe(time.Now(), f.Timestamp)
			lag := q.lag.c.Lag
			q.mu.Unlock()
			if crossed && q.opts.OnLag != nil {
				q.opts.OnLag(lag, q.opts.LagBudget)
			}
			return f, nil
		}
		if q.end != nil {
			err := q.end
			q.mu.Unlock()
			return voicegate.Frame{}, err
		}
		q.asleep = true
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-ctx.Done():
			return voicegate.Frame{}, ctx.Err()
		}
	}
}

func (q *Queue) unlockReader() {
	q.rmu.Unlock()
	if q.waiters.Load() > 0 {
		select {
		case q.rwake <- struct{}{}:
		default:
		}
	}
}

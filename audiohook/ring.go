package audiohook

import (
	"context"
	"sync"
	"time"
)

// ring is a bounded FIFO of audio frames over one preallocated byte buffer.
// When full it drops the oldest frames and counts them. The consumer gets a
// copy of each frame in its own buffer, valid until its next pop.
type ring struct {
	mu     sync.Mutex
	data   []byte
	meta   []frameMeta
	head   int // index into meta
	n      int // frames queued
	rpos   int // byte offset of the oldest frame in data
	used   int // bytes queued
	maxDur time.Duration
	queued time.Duration
	out    []byte
	wake   chan struct{}
	end    error // no more frames will come; returned after draining
	abort  error // returned at once

	seq      uint64
	received uint64
	dropped  uint64
	read     uint64
	maxDepth int
}

type frameMeta struct {
	size int
	ts   time.Duration
	dur  time.Duration
	seq  uint64
}

func newRing(frames int, maxDur time.Duration) *ring {
	return &ring{meta: make([]frameMeta, frames), maxDur: maxDur, wake: make(chan struct{}, 1)}
}

// alloc sizes the byte buffer once the format is known.
func (r *ring) alloc(size int) {
	r.mu.Lock()
	r.data = make([]byte, size)
	r.out = make([]byte, 0, 4096)
	r.mu.Unlock()
}

func (r *ring) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *ring) dropOldest() {
	m := &r.meta[r.head]
	r.rpos = (r.rpos + m.size) % len(r.data)
	r.used -= m.size
	r.queued -= m.dur
	r.head = (r.head + 1) % len(r.meta)
	r.n--
	r.dropped++
}

// push copies p into the ring. p must not exceed len(r.data).
func (r *ring) push(p []byte, ts, dur time.Duration) {
	r.mu.Lock()
	if r.end != nil || r.abort != nil || len(p) > len(r.data) {
		r.mu.Unlock()
		return
	}
	r.seq++
	r.received++
	for r.n > 0 && (r.n == len(r.meta) || r.used+len(p) > len(r.data) || r.queued+dur > r.maxDur) {
		r.dropOldest()
	}
	wpos := (r.rpos + r.used) % len(r.data)
	c := copy(r.data[wpos:], p)
	copy(r.data, p[c:])
	r.used += len(p)
	r.queued += dur
	r.meta[(r.head+r.n)%len(r.meta)] = frameMeta{size: len(p), ts: ts, dur: dur, seq: r.seq}
	r.n++
	if r.n > r.maxDepth {
		r.maxDepth = r.n
	}
	r.mu.Unlock()
	r.signal()
}

// finish marks the end of the stream; err is returned once drained. The
// first call wins.
func (r *ring) finish(err error) {
	r.mu.Lock()
	if r.end == nil {
		r.end = err
	}
	r.mu.Unlock()
	r.signal()
}

// stop makes pop return err at once.
func (r *ring) stop(err error) {
	r.mu.Lock()
	if r.abort == nil {
		r.abort = err
	}
	r.mu.Unlock()
	r.signal()
}

func (r *ring) pop(ctx context.Context) ([]byte, frameMeta, error) {
	for {
		r.mu.Lock()
		if r.abort != nil {
			err := r.abort
			r.mu.Unlock()
			r.signal()
			return nil, frameMeta{}, err
		}
		if r.n > 0 {
			m := r.meta[r.head]
			if cap(r.out) < m.size {
				r.out = make([]byte, 0, m.size)
			}
			out := r.out[:m.size]
			c := copy(out, r.data[r.rpos:])
			copy(out[c:], r.data)
			r.rpos = (r.rpos + m.size) % len(r.data)
			r.used -= m.size
			r.queued -= m.dur
			r.head = (r.head + 1) % len(r.meta)
			r.n--
			r.read++
			r.mu.Unlock()
			return out, m, nil
		}
		if r.end != nil {
			err := r.end
			r.mu.Unlock()
			r.signal()
			return nil, frameMeta{}, err
		}
		r.mu.Unlock()
		select {
		case <-r.wake:
		case <-ctx.Done():
			return nil, frameMeta{}, ctx.Err()
		}
	}
}

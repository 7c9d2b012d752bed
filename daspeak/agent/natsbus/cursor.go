package natsbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/voicegate/voicegate/daspeak/agent/oplog"
)

// cursorBuffer bounds the notifications a cursor holds; past it the
// subscription drops them (a slow consumer), which only delays the cursor
// until its next read of the stream.
const cursorBuffer = 256

// Subscribe implements oplog.Log. The cursor subscribes to the
// operation's notifications first, then reads what the stream already
// holds, so that nothing appended in between is missed; notifications of
// records it already read are skipped by their sequence number.
func (b *Bus) Subscribe(ctx context.Context, id string, after uint64) (oplog.Cursor, error) {
	if _, _, err := b.getState(ctx, id); err != nil {
		return nil, err
	}
	c := &cursor{b: b, id: id, subj: b.subject(id), next: after + 1, ch: make(chan *nats.Msg, cursorBuffer), fillNext: true}
	sub, err := b.nc.ChanSubscribe(b.notifySubject(id), c.ch)
	if err != nil {
		return nil, fmt.Errorf("natsbus: subscribing to operation %s: %w", id, err)
	}
	sub.SetPendingLimits(cursorBuffer, -1)
	c.sub = sub
	return c, nil
}

// cursor reads one operation's records. Next is not called concurrently
// (oplog.Cursor); Close may be.
type cursor struct {
	b    *Bus
	id   string
	subj string
	sub  *nats.Subscription
	ch   chan *nats.Msg

	next     uint64 // the Seq Next returns next
	sseq     uint64 // the stream sequence of the last record read
	fillNext bool   // read the stream before waiting
	pending  []oplog.Record
	eof      bool

	mu     sync.Mutex
	closed bool
}

// pollInterval bounds the wait between two reads of the stream when no
// notification came (one dropped, or never sent by a writer that died
// between its append and the notification).
const pollInterval = time.Second

// Next implements oplog.Cursor. Records come from the notifications the
// writer publishes after the stream stored them (so a record the stream
// refused never reaches a reader) or, for what came before the
// subscription or was missed, from the stream itself.
func (c *cursor) Next(ctx context.Context) (oplog.Record, error) {
	for {
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return oplog.Record{}, oplog.ErrClosed
		}
		if c.eof {
			return oplog.Record{}, io.EOF
		}
		if len(c.pending) > 0 {
			r := c.pending[0]
			c.pending = c.pending[1:]
			if r.Seq != c.next {
				continue
			}
			c.next++
			c.eof = r.Terminal
			return r, nil
		}
		if c.fillNext {
			c.fillNext = false
			if err := c.fill(ctx); err != nil {
				return oplog.Record{}, err
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return oplog.Record{}, err
		}
		t := time.NewTimer(pollInterval)
		var m *nats.Msg
		select {
		case m = <-c.ch:
		case <-t.C:
			c.fillNext = true
		case <-ctx.Done():
		}
		t.Stop()
		if m == nil {
			continue
		}
		r, err := record(m.Header, m.Data)
		if err != nil {
			c.b.log.Warn("natsbus: skipping a notification", "operation_id", c.id, "err", err)
			continue
		}
		switch {
		case r.Seq < c.next:
		case r.Seq == c.next:
			if sseq, err := strconv.ParseUint(m.Header.Get(hdrStreamSeq), 10, 64); err == nil && sseq > c.sseq {
				c.sseq = sseq
			}
			c.pending = append(c.pending, r)
		default:
			c.fillNext = true // a gap: the stream has it
		}
	}
}

// fill reads the operation's records after c.sseq from the stream (direct
// get of the next message by subject) into c.pending.
func (c *cursor) fill(ctx context.Context) error {
	for {
		m, err := c.b.events.GetMsg(ctx, c.sseq+1, jetstream.WithGetMsgSubject(c.subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("natsbus: reading operation %s: %w", c.id, err)
		}
		c.sseq = m.Sequence
		if m.Header.Get(hdrClaim) != "" {
			continue // the operation changed owner: no record
		}
		r, err := record(m.Header, m.Data)
		if err != nil {
			c.b.log.Warn("natsbus: skipping an event message", "operation_id", c.id, "err", err)
			continue
		}
		if r.Seq >= c.next {
			c.pending = append(c.pending, r)
		}
		if r.Terminal {
			if r.Seq < c.next {
				c.eof = true // the reader started after the end
			}
			return nil
		}
	}
}

// Close implements oplog.Cursor.
func (c *cursor) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return c.sub.Unsubscribe()
}

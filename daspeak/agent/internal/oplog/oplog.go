// Package oplog keeps operations' state and their event logs: the seam
// between the agent server and where events live. Memory keeps them in
// process; an implementation on a message bus (events published per
// operation with their sequence number, subscribers starting from a
// position, operation state in a key-value bucket) can replace it without
// changing the server.
package oplog

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors.
var (
	// ErrNotFound reports an unknown (or expired) operation.
	ErrNotFound = errors.New("oplog: operation not found")
	// ErrExists reports a Create of an id already used.
	ErrExists = errors.New("oplog: operation exists")
	// ErrSeq reports an Append whose Seq is not the next one, or an Append
	// after the terminal record.
	ErrSeq = errors.New("oplog: out of sequence")
	// ErrClosed reports a call after Close.
	ErrClosed = errors.New("oplog: closed")
)

// Op is the state of an operation.
type Op struct {
	ID       string
	Kind     string
	CallID   string
	CallerID string
	Created  time.Time
	// LastSeq is the sequence number of the last record appended.
	LastSeq uint64
	// Done is set by the terminal record; Ended is when it was appended.
	Done  bool
	Ended time.Time
}

// Record is one event of an operation.
type Record struct {
	// Seq is the record's number in its operation, from 1, gap-free.
	Seq uint64
	// Type is the event type (the SSE event name).
	Type string
	// Terminal marks the operation's last record.
	Terminal bool
	// Data is the event's JSON.
	Data []byte
}

// Log keeps operations and their records. Each operation has one writer
// (the goroutine that runs it), which numbers its records; any number of
// readers. Implementations are safe for concurrent use.
type Log interface {
	// Create records a new operation (LastSeq 0, not Done).
	Create(ctx context.Context, op Op) error
	// Get returns the operation's state.
	Get(ctx context.Context, id string) (Op, error)
	// Append adds rec to the operation. rec.Seq must be LastSeq+1
	// (ErrSeq otherwise, and after the terminal record).
	Append(ctx context.Context, id string, rec Record) error
	// Subscribe returns the operation's records after seq after, in order,
	// those already appended first.
	Subscribe(ctx context.Context, id string, after uint64) (Cursor, error)
}

// Cursor reads one operation's records in order.
type Cursor interface {
	// Next returns the next record, waiting for it until ctx ends. After
	// the terminal record it returns io.EOF.
	Next(ctx context.Context) (Record, error)
	// Close releases the cursor; it is idempotent.
	Close() error
}

func seqErr(op string, want, got uint64) error {
	return fmt.Errorf("%w: operation %s expects seq %d, got %d", ErrSeq, op, want, got)
}

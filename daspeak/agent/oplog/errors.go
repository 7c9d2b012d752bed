package oplog

import "errors"

// Errors.
var (
	// ErrNotFound reports an unknown (or expired) operation.
	ErrNotFound = errors.New("oplog: operation not found")
	// ErrExists reports a Create of an id already used.
	ErrExists = errors.New("oplog: operation exists")
	// ErrSeq reports an Append whose Seq is not the next one, or an Append
	// after the terminal record.
	ErrSeq = errors.New("oplog: out of sequence")
	// ErrClaimed reports a Claim of an operation owned by another node or
	// already started.
	ErrClaimed = errors.New("oplog: operation owned elsewhere")
	// ErrNoRoute reports a command no node answered.
	ErrNoRoute = errors.New("oplog: no node answered")
	// ErrClosed reports a call after Close.
	ErrClosed = errors.New("oplog: closed")
	// ErrBadRequestID reports a request id ValidRequestID refuses.
	ErrBadRequestID = errors.New("oplog: malformed request id")
	// ErrTooLarge reports an Op.Spec over MaxSpec.
	ErrTooLarge = errors.New("oplog: operation spec too large")
)

package oplog

import (
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
	// ErrTooManyRequests reports a ClaimRequest of a new request id
	// refused because the call already holds MaxCallRequests claims (or a
	// Memory holds as many claims as it keeps): the claims held are kept,
	// none is evicted. The error is a *LimitError, which says when to ask
	// again.
	ErrTooManyRequests = errors.New("oplog: too many request ids")
)

// LimitError is the ErrTooManyRequests of a ClaimRequest: a new claim was
// refused so that no claim held is evicted (Log.ClaimRequest).
type LimitError struct {
	// CallID is the call whose claims reached MaxCallRequests, or on
	// which Subject's reached MaxSubjectRequests; "" when the Log as a
	// whole is full (Memory's MaxOps claims).
	CallID string
	// Subject is set when the claim's subject reached
	// MaxSubjectRequests on CallID (PerSubject).
	Subject string
	// PerSubject: the subject's budget on the call is used up, not the
	// call's.
	PerSubject bool
	// Limit is the number of claims held.
	Limit int
	// RetryAfter is how long until the oldest of them expires, when a
	// claim can be made again.
	RetryAfter time.Duration
}

func (e *LimitError) Error() string {
	if e.CallID == "" {
		return fmt.Sprintf("%v: the log holds %d claims; retry in %v", ErrTooManyRequests, e.Limit, e.RetryAfter.Round(time.Second))
	}
	if e.PerSubject {
		return fmt.Sprintf("%v: subject %q holds %d claims on call %s; retry in %v", ErrTooManyRequests, e.Subject, e.Limit, e.CallID, e.RetryAfter.Round(time.Second))
	}
	return fmt.Sprintf("%v: call %s holds %d claims; retry in %v", ErrTooManyRequests, e.CallID, e.Limit, e.RetryAfter.Round(time.Second))
}

// Unwrap returns ErrTooManyRequests.
func (e *LimitError) Unwrap() error { return ErrTooManyRequests }

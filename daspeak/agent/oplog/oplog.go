// Package oplog keeps operations' state and their event logs: what
// crosses the nodes of an agent deployment. A [Log] records each
// operation (its call, caller, owner node and whether it ended), appends
// its events with gap-free sequence numbers, lets any number of readers
// follow them from a position, finds the operations whose owner node died
// ([Log.Orphans]), lists a call's running operations ([Log.Running]), settles a client
// request id between its start and a stop ([Log.ClaimRequest]) and carries commands to the node that holds a call's
// audio ([Log.Route], [Log.Send]).
//
// [Memory] is the single-node default: everything in process, no other
// node to route to. Package daspeak/agent/natsbus implements Log on NATS
// JetStream for many nodes (events in a stream with one subject per
// operation, operation state in a key-value bucket, node leases in
// another). Conformance tests for implementations are in oplogtest.
package oplog

import (
	"context"
	"fmt"
	"time"
)

// Op is the state of an operation.
type Op struct {
	ID       string
	Kind     string
	CallID   string
	CallerID string
	Created  time.Time
	// Owner is the node that runs the operation and writes its records:
	// the creating node (Create fills it with Log.Node), or the node that
	// took it over with Claim.
	Owner string
	// Spec is what another node needs to run the operation (opaque to
	// the Log; the agent server stores JSON). At most 16 KiB.
	Spec []byte
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
	// Time is when the record was appended (set by Append; readers use it
	// to measure the bus lag).
	Time time.Time
}

// Log keeps operations and their records. Each operation has one writer
// (the goroutine that runs it on its owner node), which numbers its
// records; any number of readers on any node. A record is never lost once
// Append returned nil, and a reader sees each record exactly once, in
// order. Implementations are safe for concurrent use.
type Log interface {
	// Node returns the name of this node ("local" for Memory).
	Node() string
	// Create records a new operation (LastSeq 0, not Done, Owner Node()
	// when empty). ErrExists when the id is taken.
	Create(ctx context.Context, op Op) error
	// Get returns the operation's state. ErrNotFound when unknown or
	// expired.
	Get(ctx context.Context, id string) (Op, error)
	// Claim makes this node the owner of an operation that has no record
	// yet and is owned by from. It returns ErrClaimed when the operation
	// has another owner or already has records. It is one atomic step
	// against other claims and the first Append: of the owner appending
	// record 1 and any number of nodes claiming, exactly one succeeds
	// (the owner's Append then fails with ErrSeq).
	Claim(ctx context.Context, id, from string) error
	// Append adds rec to the operation. rec.Seq must be LastSeq+1
	// (ErrSeq otherwise, and after the terminal record): two writers
	// racing for the same Seq get one success and one ErrSeq.
	Append(ctx context.Context, id string, rec Record) error
	// Subscribe returns the operation's records after seq after, in order,
	// those already appended first.
	Subscribe(ctx context.Context, id string, after uint64) (Cursor, error)
	// Orphans returns operations that have not ended and whose owner node
	// is gone (its lease expired). Whoever appends their next record
	// first (normally a terminal one) wins; the others get ErrSeq.
	Orphans(ctx context.Context) ([]Op, error)
	// Running returns the operations of callID that have not ended, as
	// far as this node knows (a shared log learns of other nodes'
	// operations a moment after they are created or end): the agent
	// server stops a call's operations by asking their owners.
	Running(ctx context.Context, callID string) ([]Op, error)
	// Route sends msg to the node whose Handler.Holds callID (the node
	// that holds the call's audio) and returns its Handler.Command reply;
	// ErrNoRoute when no node holds the call (Memory: always, there is no
	// other node).
	Route(ctx context.Context, callID string, msg []byte) ([]byte, error)
	// Send sends msg to node and returns its Handler.Command reply;
	// ErrNoRoute when the node does not answer.
	Send(ctx context.Context, node string, msg []byte) ([]byte, error)
	// Handle sets the handler of the commands sent to this node (nil
	// stops handling). Other nodes' Route and Send reach it.
	Handle(h Handler)
	// Ready reports whether the Log can serve: nil, or why not (the bus
	// is unreachable).
	Ready(ctx context.Context) error
	// ClaimRequest records r as the claim of the client request id on
	// the call r.CallID unless that id is claimed on that call already,
	// in one step against every other ClaimRequest of id on the call on
	// any node: the first wins. Claims are per call, so that a stop on one
	// call (authorized for that call only) cannot fence a start of the
	// same id on another. It returns the claim that holds (r when won is
	// true, else the earlier one); ErrBadRequestID when ValidRequestID
	// refuses id. The agent server fences a start against a stop of the
	// same request id with it.
	//
	// A claim is never evicted: it is kept at least MinRequestRetain (and
	// at least the Log's retain) after it was made, whatever other claims
	// are made meanwhile. The operation a kept claim names (Request.OpID),
	// once created, is kept as long: the agent server takes a claim whose
	// operation Get does not find for a start that never created it. To bound what is kept, a subject holds at most
	// MaxSubjectRequests claims on a call and a call at most
	// MaxCallRequests: a claim of a new id beyond either is refused with
	// a *LimitError (ErrTooManyRequests) until the oldest of those
	// expires, and the claims of other subjects and calls are not
	// touched.
	// (Memory also refuses new claims, of any call, while it holds MaxOps
	// of them.) A claim of an id already claimed is answered with the
	// claim held, at any count.
	ClaimRequest(ctx context.Context, id string, r Request) (held Request, won bool, err error)
	// HeldRequest returns the claim of request id on callID, as
	// ClaimRequest would answer it, without making one: ok is false when
	// there is none (never made, or expired). The agent server answers a
	// stop on a call its Source no longer knows from the claim its start
	// made, and claims nothing for such a call.
	HeldRequest(ctx context.Context, callID, id string) (held Request, ok bool, err error)
}

// CallSummarizer is optionally implemented by a Log that keeps, per
// call, how many of its operations run and which ended last, so that a
// status read can tell without scanning every operation.
type CallSummarizer interface {
	// CallSummary returns the number of callID's operations that have
	// not ended and the one that ended last, with its terminal record
	// (ok false when none that ended is kept), as far as this node knows.
	CallSummary(ctx context.Context, callID string) (running int, last Op, terminal Record, ok bool, err error)
}

// Locator is optionally implemented by a Log whose Route first finds the
// node holding a call: Holder is that step alone (ErrNoRoute when no node
// holds it). The agent server uses it to find the node before it builds
// the forwarded command, so that the command's age counts the time the
// search took.
type Locator interface {
	Holder(ctx context.Context, callID string) (node string, err error)
}

// Request is the claim of a client request id (Log.ClaimRequest): either
// a start that runs under it, or a fence set by a stop, after which no
// start of that id may run.
type Request struct {
	// Fenced is set by a stop that claimed the id first.
	Fenced bool `json:"fenced,omitempty"`
	// CallID is the call the request is about.
	CallID string `json:"call_id"`
	// OpID is the id of the operation a start runs as (start claims).
	OpID string `json:"op_id,omitempty"`
	// Node is the node that claimed the id.
	Node string `json:"node"`
	// Subject is the principal (agent.Principal.Subject) whose start or
	// stop made the claim: claims are budgeted per call and subject
	// (MaxSubjectRequests). "" counts as one more subject.
	Subject string `json:"subject,omitempty"`
}

// MaxRequestID is the longest request id ClaimRequest takes.
const MaxRequestID = 64

// MaxSubjectRequests is the most request claims a Log keeps for one
// subject (Request.Subject, the agent) on one call (Log.ClaimRequest):
// an agent's widget makes one per start it sends (a stop of a start
// names the start's id), so an agent who clicked register, verify or
// re-verify more than 64 times on a call within MinRequestRetain is
// refused until their oldest claim on it expires. The budget is the
// subject's own: an agent who floods a call with stops of made-up ids
// uses up their budget, not that of the others on the call (a
// supervisor viewing the call, a second agent after a transfer).
const MaxSubjectRequests = 64

// MaxCallRequests is the most request claims a Log keeps for one call,
// whatever their subjects (Log.ClaimRequest): it bounds what a call
// keeps (MaxCallRequests/MaxSubjectRequests = 4 agents flooding one
// call together use it up) while leaving the agents who share a call
// room well beyond what clicks make.
const MaxCallRequests = 256

// MinRequestRetain is the least time a Log keeps a request claim after
// it was made: a fence set by a stop must outlive every start that
// carries its id and can still reach a server. The agent server refuses
// a start that has not made its claim within agent.MaxClaimDelay of
// reaching it, so a fence holds against any start that reaches a server
// within MinRequestRetain - agent.MaxClaimDelay (9 minutes) after the
// stop: the proxies in front of the servers must not hold a request
// longer (common ones time out within a minute or two).
const MinRequestRetain = 10 * time.Minute

// ValidRequestID accepts 8 to MaxRequestID letters, digits and "-" (a
// crypto.randomUUID() is 36 of them).
func ValidRequestID(id string) bool {
	if len(id) < 8 || len(id) > MaxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Handler answers the commands other nodes send. Its methods are called
// concurrently, each from its own goroutine, and must return within the
// ctx given.
type Handler interface {
	// Holds reports whether this node holds callID's audio.
	Holds(ctx context.Context, callID string) bool
	// Command answers a command sent to this node.
	Command(ctx context.Context, msg []byte) []byte
}

// Cursor reads one operation's records in order.
type Cursor interface {
	// Next returns the next record, waiting for it until ctx ends. After
	// the terminal record it returns io.EOF. A record already appended
	// may be returned even when ctx has ended.
	Next(ctx context.Context) (Record, error)
	// Close releases the cursor; it is idempotent.
	Close() error
}

// MaxSpec is the largest Op.Spec.
const MaxSpec = 16 << 10

// SeqError builds the ErrSeq of an Append to op that expected want and
// got got.
func SeqError(op string, want, got uint64) error {
	return fmt.Errorf("%w: operation %s expects seq %d, got %d", ErrSeq, op, want, got)
}

package natsbus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/voicegate/voicegate/daspeak/agent/oplog"
)

// lockPoll is how often Lock looks again at a lock another node holds.
const lockPoll = 25 * time.Millisecond

// lockValue is the JSON of a held lock in the ops bucket.
type lockValue struct {
	Node string `json:"node"`
	// Inst is the holder's Bus instance (Bus.inst): a node restarted
	// under the same name holds none of its predecessor's locks.
	Inst string `json:"inst,omitempty"`
	// Hold is the holder's hold in nanoseconds. The takers measure it on
	// their own clocks (see Lock); no wall time is compared across nodes.
	Hold time.Duration `json:"hold,omitempty"`
	// Expires is the holder's wall-clock end of the hold, for people
	// reading the bucket only.
	Expires time.Time `json:"expires"`
}

func lockKey(name string) string { return "lock." + name }

// Lock takes the lock name (letters, digits, "_" and "-", 1-64), held by
// at most one node of the deployment at a time, waiting until ctx ends
// (then ctx's error). It is a key "lock.<name>" in the operations
// bucket, taken with a key-value Create (or, for a lock whose holder
// stopped or overran, an Update at the revision read), so two nodes never
// both take it. hold must bound the work done under the lock.
//
// A lock is taken over at once when its holder has no lease, or its lease
// is a later instance of the holder's node name (the node restarted: the
// Bus that took the lock is gone). Otherwise it is taken over only after
// this Bus saw the same revision of the key for the whole hold the holder
// gave, timed on this node's monotonic clock (across Lock calls: a caller
// that waits less than the hold and asks again still frees a lock whose
// holder never released it), never by comparing one
// node's wall clock with another's: clock skew between the nodes cannot
// make a live holder lose the lock, while a taker that starts waiting may
// wait up to a full hold after the holder's hold ended. (A holder whose
// process stalls past its hold, as with any lease, loses it.)
//
// unlock releases it (a delete at the revision taken, so it never
// releases a lock taken over meanwhile); it is safe to call once.
func (b *Bus) Lock(ctx context.Context, name string, hold time.Duration) (unlock func(), err error) {
	if !validName(name) {
		return nil, fmt.Errorf("%w: lock name %q", ErrConfig, name)
	}
	key := lockKey(name)
	for {
		val, _ := json.Marshal(lockValue{Node: b.o.Node, Inst: b.inst, Hold: hold, Expires: time.Now().Add(hold)})
		rev, err := b.ops.Create(ctx, key, val)
		if err == nil {
			b.forget(key)
			return b.unlocker(key, rev), nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("natsbus: taking lock %s: %w", name, err)
		}
		e, err := b.ops.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			continue // released meanwhile
		case err != nil:
			return nil, fmt.Errorf("natsbus: reading lock %s: %w", name, err)
		}
		seenAt := b.seen(key, e.Revision())
		var held lockValue
		bad := json.Unmarshal(e.Value(), &held) != nil
		h := held.Hold
		if h <= 0 {
			h = hold // a value without its hold
		}
		if bad || time.Since(seenAt) >= h || !b.alive(ctx, held.Node, held.Inst) {
			rev, err := b.ops.Update(ctx, key, val, e.Revision())
			if err == nil {
				b.forget(key)
				b.log.Warn("natsbus: took over a lock whose holder stopped or overran", "lock", name, "holder", held.Node)
				return b.unlocker(key, rev), nil
			}
			if !errors.Is(err, jetstream.ErrKeyExists) {
				return nil, fmt.Errorf("natsbus: taking lock %s: %w", name, err)
			}
			continue
		}
		t := time.NewTimer(lockPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// maxLockSeen bounds Bus.lockSeen: past it the older half is dropped (a
// lock dropped is watched again from its next sighting).
const maxLockSeen = 4096

// seenLock is a revision of a lock key and when this Bus first saw it.
type seenLock struct {
	rev uint64
	at  time.Time // with a monotonic reading
}

// seen records that key holds revision rev and returns since when this
// Bus has seen that revision.
func (b *Bus) seen(key string, rev uint64) time.Time {
	b.lockMu.Lock()
	defer b.lockMu.Unlock()
	if v, ok := b.lockSeen[key]; ok && v.rev == rev {
		return v.at
	}
	if b.lockSeen == nil {
		b.lockSeen = map[string]seenLock{}
	}
	now := time.Now()
	if len(b.lockSeen) >= maxLockSeen {
		oldest := now
		for _, v := range b.lockSeen {
			if v.at.Before(oldest) {
				oldest = v.at
			}
		}
		mid := oldest.Add(now.Sub(oldest) / 2)
		for k, v := range b.lockSeen {
			if !v.at.After(mid) {
				delete(b.lockSeen, k)
			}
		}
	}
	b.lockSeen[key] = seenLock{rev: rev, at: now}
	return now
}

// forget drops what this Bus saw of key (it took the lock).
func (b *Bus) forget(key string) {
	b.lockMu.Lock()
	delete(b.lockSeen, key)
	b.lockMu.Unlock()
}

// alive reports whether the Bus instance inst of node still runs: node
// has a lease, put by inst (true when unsure: the lease unreadable, or
// inst or the lease's instance unknown).
func (b *Bus) alive(ctx context.Context, node, inst string) bool {
	if node == b.o.Node {
		return inst == "" || inst == b.inst
	}
	e, err := b.nodes.Get(ctx, node)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false
	}
	if err != nil || inst == "" {
		return true
	}
	li, _, ok := strings.Cut(string(e.Value()), " ")
	return !ok || li == inst
}

func (b *Bus) unlocker(key string, rev uint64) func() {
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.ops.Delete(ctx, key, jetstream.LastRevision(rev)); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			b.log.Warn("natsbus: releasing a lock failed; it frees when its hold ends", "lock", key, "err", err)
		}
	}
}

// requestCall is the key token of call callID in request keys: callID
// when it is a key token (letters, digits, "_", "-", at most 64), else
// "h.<its SHA-256 in hex>", a key of one more token, so it never meets a
// call id that is itself hex.
func requestCall(callID string) string {
	if !validName(callID) {
		sum := sha256.Sum256([]byte(callID))
		return "h." + hex.EncodeToString(sum[:])
	}
	return callID
}

// requestKey is the claim key of request id on call callID,
// "req.<call>.<id>" (requestCall).
func requestKey(callID, id string) string {
	return "req." + requestCall(callID) + "." + id
}

// callRequestsKey is the key of call callID's claim list,
// "reqs.<call>" (requestCall).
func callRequestsKey(callID string) string {
	return "reqs." + requestCall(callID)
}

// callRequests is the JSON of a call's claim list: the request ids
// claimed on the call, oldest first, with when each was claimed (Unix
// nanoseconds, the claiming node's clock) and by whom (subjectTag).
// Entries older than Retain are dropped when the list is next written;
// the list holds at most oplog.MaxCallRequests, of which at most
// oplog.MaxSubjectRequests of one subject.
type callRequests struct {
	Claims []callClaim `json:"claims"`
}

type callClaim struct {
	ID  string `json:"id"`
	At  int64  `json:"at"`
	Sub string `json:"sub,omitempty"`
}

// subjectTag is the list's tag of a claim's subject: the first 16 hex
// digits of its SHA-256, so an entry's size does not grow with the
// subject's ("" for none).
func subjectTag(subject string) string {
	if subject == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(subject))
	return hex.EncodeToString(sum[:8])
}

// maxListTries bounds the compare-and-set writes of a call's claim list
// that lose to other writers before ClaimRequest gives up.
const maxListTries = 50

// ClaimRequest implements oplog.Log: the claim is a key
// "req.<call>.<id>" in the operations bucket holding r's JSON, made with
// a key-value Create, so of any number of nodes claiming one id exactly
// one succeeds; the others read the claim that holds. Claims expire with
// the bucket's TTL (Retain, never under oplog.MinRequestRetain) and
// nothing else removes them: the bucket has no size limit that would
// evict one.
//
// A new claim first takes a place in its call's claim list
// ("reqs.<call>", written with compare-and-set, so concurrent claims on
// any node each take their own place): a subject (r.Subject) holds at
// most oplog.MaxSubjectRequests claims on a call and a call at most
// oplog.MaxCallRequests, and a claim of a new id beyond either is refused
// with an *oplog.LimitError until the oldest of those is older than
// Retain. Other subjects' and calls' claims are not touched. The keys a
// call keeps are thus bounded; the number of calls is not: the agent
// server claims only for calls its Source knows when it can tell
// (agent.CallInfo).
func (b *Bus) ClaimRequest(ctx context.Context, id string, r oplog.Request) (oplog.Request, bool, error) {
	if !oplog.ValidRequestID(id) {
		return oplog.Request{}, false, oplog.ErrBadRequestID
	}
	if r.Node == "" {
		r.Node = b.o.Node
	}
	val, err := json.Marshal(r)
	if err != nil {
		return oplog.Request{}, false, err
	}
	key := requestKey(r.CallID, id)
	if held, ok, err := b.heldRequest(ctx, key, id); err != nil || ok {
		return held, false, err
	}
	if err := b.takePlace(ctx, r.CallID, r.Subject, id); err != nil {
		return oplog.Request{}, false, err
	}
	for range 3 {
		if _, err := b.ops.Create(ctx, key, val); err == nil {
			return r, true, nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			return oplog.Request{}, false, fmt.Errorf("natsbus: claiming request %s: %w", id, err)
		}
		held, ok, err := b.heldRequest(ctx, key, id)
		if err != nil || ok {
			return held, false, err
		}
		// expired meanwhile
	}
	return oplog.Request{}, false, fmt.Errorf("natsbus: claiming request %s: the claim kept changing", id)
}

// HeldRequest implements oplog.Log: it reads the claim's key
// "req.<call>.<id>" and writes nothing.
func (b *Bus) HeldRequest(ctx context.Context, callID, id string) (oplog.Request, bool, error) {
	if !oplog.ValidRequestID(id) {
		return oplog.Request{}, false, oplog.ErrBadRequestID
	}
	return b.heldRequest(ctx, requestKey(callID, id), id)
}

// heldRequest reads the claim at key; ok is false when there is none.
func (b *Bus) heldRequest(ctx context.Context, key, id string) (held oplog.Request, ok bool, err error) {
	e, err := b.ops.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return oplog.Request{}, false, nil
	}
	if err != nil {
		return oplog.Request{}, false, fmt.Errorf("natsbus: reading request %s: %w", id, err)
	}
	if err := json.Unmarshal(e.Value(), &held); err != nil {
		return oplog.Request{}, false, fmt.Errorf("%w: request %s: %w", ErrMessage, id, err)
	}
	return held, true, nil
}

// takePlace enters id, claimed by subject, in callID's claim list
// (callRequests), dropping the entries older than Retain, unless it holds
// oplog.MaxSubjectRequests others of subject or oplog.MaxCallRequests
// others in all: then an *oplog.LimitError. An id already in the list
// (an earlier attempt whose claim was not made) keeps its place.
func (b *Bus) takePlace(ctx context.Context, callID, subject, id string) error {
	tag := subjectTag(subject)
	key := callRequestsKey(callID)
	for range maxListTries {
		var list callRequests
		var rev uint64
		e, err := b.ops.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("natsbus: reading the request claims of a call: %w", err)
		default:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &list); err != nil {
				// Unreadable: refuse rather than forget the claims it
				// counts (they expire with the bucket's TTL).
				return fmt.Errorf("%w: request claims of call %s: %w", ErrMessage, callID, err)
			}
		}
		now := time.Now()
		keep := list.Claims[:0]
		for _, c := range list.Claims {
			if now.Sub(time.Unix(0, c.At)) < b.o.Retain {
				keep = append(keep, c)
			}
		}
		list.Claims = keep
		if slices.ContainsFunc(list.Claims, func(c callClaim) bool { return c.ID == id }) {
			return nil
		}
		var first int64
		n := 0
		for _, c := range list.Claims {
			if c.Sub == tag {
				if n == 0 {
					first = c.At
				}
				n++
			}
		}
		if n >= oplog.MaxSubjectRequests {
			return &oplog.LimitError{CallID: callID, Subject: subject, PerSubject: true, Limit: n, RetryAfter: time.Unix(0, first).Add(b.o.Retain).Sub(now)}
		}
		if len(list.Claims) >= oplog.MaxCallRequests {
			return &oplog.LimitError{CallID: callID, Limit: len(list.Claims), RetryAfter: time.Unix(0, list.Claims[0].At).Add(b.o.Retain).Sub(now)}
		}
		list.Claims = append(list.Claims, callClaim{ID: id, At: now.UnixNano(), Sub: tag})
		val, _ := json.Marshal(list)
		if rev == 0 {
			_, err = b.ops.Create(ctx, key, val)
		} else {
			_, err = b.ops.Update(ctx, key, val, rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("natsbus: writing the request claims of a call: %w", err)
		}
		// Another claim on the call wrote the list first: read it again.
	}
	return fmt.Errorf("natsbus: the request claims of call %s kept changing", callID)
}

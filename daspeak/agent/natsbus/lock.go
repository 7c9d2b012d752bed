package natsbus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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

// requestKey is the claim key of request id on call callID,
// "req.<call id>.<id>"; a call id that is not a key token (letters,
// digits, "_", "-", at most 64) is replaced by "h.<its SHA-256 in hex>",
// a key of one more token, so it never meets a call id that is itself hex.
func requestKey(callID, id string) string {
	if !validName(callID) {
		sum := sha256.Sum256([]byte(callID))
		callID = "h." + hex.EncodeToString(sum[:])
	}
	return "req." + callID + "." + id
}

// ClaimRequest implements oplog.Log: the claim is a key
// "req.<call id>.<id>" in the
// operations bucket holding r's JSON, made with a key-value Create, so of
// any number of nodes claiming one id exactly one succeeds; the others
// read the claim that holds. Claims expire with the bucket's TTL
// (Retain).
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
	for range 3 {
		if _, err := b.ops.Create(ctx, key, val); err == nil {
			return r, true, nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			return oplog.Request{}, false, fmt.Errorf("natsbus: claiming request %s: %w", id, err)
		}
		e, err := b.ops.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // expired meanwhile
		}
		if err != nil {
			return oplog.Request{}, false, fmt.Errorf("natsbus: reading request %s: %w", id, err)
		}
		var held oplog.Request
		if err := json.Unmarshal(e.Value(), &held); err != nil {
			return oplog.Request{}, false, fmt.Errorf("%w: request %s: %w", ErrMessage, id, err)
		}
		return held, false, nil
	}
	return oplog.Request{}, false, fmt.Errorf("natsbus: claiming request %s: the claim kept changing", id)
}

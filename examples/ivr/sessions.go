package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent/oplog"
)

// Sessions live in an operation log (daspeak/agent/oplog), the one the
// agent server uses: an oplog.Memory on a single node, a natsbus.Bus
// shared by every node with -nats. A session is an oplog.Op (Kind is the
// operation, CallID the Twilio call, CallerID the caller, Spec a
// sessionSpec); its records are:
//
//	seq 1       recAudio: a stream or an upload took the session
//	            (processing), or recExpired: no audio came within
//	            -session-ttl (terminal; the session is gone)
//	seq 2, 3, … the session's events (daspeak.Event JSON, without
//	            credential and audio), the last one terminal; a
//	            register that another registration of the caller beat
//	            to the store ends with an error-store event recorded as
//	            recAlreadyRegistered (status already_registered)
//
// Appending seq 1 is what makes a session take one stream only: of two
// nodes appending it, one gets oplog.ErrSeq. The node that appended it
// owns the session (oplog.Log.Claim from the creating node, recorded in
// the sessionSpec), writes its events, and when that node stops for good
// another node ends the session (reapOrphans).
const (
	recAudio             = "audio"
	recExpired           = "expired"
	recAlreadyRegistered = "already-registered"
)

// appendTimeout bounds one write of a session's record.
const appendTimeout = 5 * time.Second

// appendTries is how many times a record is written before the session
// gives up (an error other than oplog.ErrSeq, e.g. a bus timeout), and
// appendBackoff the wait before the second try (doubled for each next).
const (
	appendTries   = 3
	appendBackoff = 200 * time.Millisecond
)

// errNoSession is the answer for an unknown, expired or foreign session.
var errNoSession = errors.New("no such session")

// sessionSpec is what every node needs of a session besides oplog.Op.
type sessionSpec struct {
	// Input says how an uploaded recording was used.
	Input *inputInfo `json:"input,omitempty"`
	// Node is the node that created the session: a node taking it claims
	// it from this node, never from a node that claimed it meanwhile.
	Node string `json:"node,omitempty"`
}

// session is a session this node runs: it writes its records.
type session struct {
	s      *server
	id     string
	op     daspeak.Operation
	caller string
	call   string // Twilio call SID it is bound to; "" for uploads
	seq    uint64 // of the last record appended
	ended  bool
}

// doc is the JSON an IVR polls.
type doc struct {
	ID        string          `json:"id"`
	Operation string          `json:"operation"`
	CallID    string          `json:"call_id,omitempty"`
	Status    string          `json:"status"`
	CreatedAt time.Time       `json:"created_at"`
	Event     json.RawMessage `json:"event,omitempty"`
	// Input says how an uploaded recording was used.
	Input *inputInfo `json:"input,omitempty"`
	// For sessions waiting for a Twilio stream:
	StreamURL  string            `json:"stream_url,omitempty"`
	Parameters map[string]string `json:"parameters,omitempty"`
}

// statusOf is the status a record's type stands for.
func statusOf(typ string) string {
	switch typ {
	case recAudio, string(daspeak.EventProgress):
		return statusProcessing
	case string(daspeak.EventResultSuccess):
		return statusSuccess
	case string(daspeak.EventResultFailScore):
		return statusFailScore
	case string(daspeak.EventResultFailSpoof):
		return statusFailSpoof
	case recAlreadyRegistered:
		return statusAlreadyRegistered
	default: // error-*, including error-store
		return statusError
	}
}

// newSession records a new session owned by this node. A session bound
// to a call (call != "") waits for its stream and counts against
// maxSessions until it is taken or expires; expired ones are ended first.
func (s *server) newSession(ctx context.Context, op daspeak.Operation, caller, call string, spec sessionSpec) (*session, time.Time, error) {
	b := make([]byte, 16)
	rand.Read(b)
	sess := &session{s: s, id: hex.EncodeToString(b), op: op, caller: caller, call: call}
	created := time.Now()
	if call != "" {
		s.mu.Lock()
		expired := s.expireLocked(created)
		full := len(s.waiting) >= s.maxSessions()
		s.mu.Unlock()
		for _, id := range expired {
			s.expire(ctx, id)
		}
		if full {
			// Sessions another node took (their stream reached it) wait
			// no longer: drop them before refusing.
			s.pruneTaken(ctx)
		}
		s.mu.Lock()
		full = len(s.waiting) >= s.maxSessions()
		if !full {
			s.waiting[sess.id] = created
		}
		s.mu.Unlock()
		if full {
			return nil, created, errors.New("too many sessions waiting for audio")
		}
	}
	spec.Node = s.ops.Node()
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, created, err
	}
	if err := s.ops.Create(ctx, oplog.Op{ID: sess.id, Kind: string(op), CallID: call, CallerID: caller, Created: created, Spec: data}); err != nil {
		s.mu.Lock()
		delete(s.waiting, sess.id)
		s.mu.Unlock()
		return nil, created, fmt.Errorf("the session could not be recorded: %w", err)
	}
	return sess, created, nil
}

func (s *server) maxSessions() int {
	if s.cfg.MaxSessions > 0 {
		return s.cfg.MaxSessions
	}
	return maxSessions
}

// expireLocked removes from s.waiting the sessions created before
// now - SessionTTL and returns them. s.mu is held.
func (s *server) expireLocked(now time.Time) []string {
	var out []string
	for id, created := range s.waiting {
		if now.Sub(created) > s.cfg.SessionTTL {
			delete(s.waiting, id)
			out = append(out, id)
		}
	}
	return out
}

// pruneTaken removes from s.waiting the sessions whose log shows that a
// stream took them (LastSeq > 0) or that they ended, or that the log
// forgot. A session whose state cannot be read stays.
func (s *server) pruneTaken(ctx context.Context) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.waiting))
	for id := range s.waiting {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		op, err := s.ops.Get(ctx, id)
		if err != nil && !errors.Is(err, oplog.ErrNotFound) {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		if err == nil && op.LastSeq == 0 && !op.Done {
			continue
		}
		s.mu.Lock()
		delete(s.waiting, id)
		s.mu.Unlock()
	}
}

// expire ends a session that no stream took (recExpired); one that was
// taken meanwhile keeps running (its seq 1 exists: oplog.ErrSeq).
func (s *server) expire(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), appendTimeout)
	defer cancel()
	err := s.ops.Append(ctx, id, oplog.Record{Seq: 1, Type: recExpired, Terminal: true, Data: []byte("null")})
	if err != nil && !errors.Is(err, oplog.ErrSeq) && !errors.Is(err, oplog.ErrNotFound) {
		s.log.Warn("expiring a session failed", "session", id, "err", err)
	}
}

// get returns a session's state and last record (zero before its audio).
// An unknown session, an expired one, and one still waiting after
// -session-ttl are errNoSession.
func (s *server) get(ctx context.Context, id string) (oplog.Op, oplog.Record, error) {
	if len(id) != 32 {
		return oplog.Op{}, oplog.Record{}, errNoSession
	}
	if _, err := hex.DecodeString(id); err != nil {
		return oplog.Op{}, oplog.Record{}, errNoSession
	}
	op, err := s.ops.Get(ctx, id)
	if errors.Is(err, oplog.ErrNotFound) {
		return op, oplog.Record{}, errNoSession
	}
	if err != nil {
		return op, oplog.Record{}, err
	}
	if op.LastSeq == 0 {
		if time.Since(op.Created) > s.cfg.SessionTTL {
			return op, oplog.Record{}, errNoSession
		}
		return op, oplog.Record{}, nil
	}
	rec, err := s.record(ctx, id, op.LastSeq)
	if errors.Is(err, oplog.ErrNotFound) {
		return op, rec, errNoSession // forgotten meanwhile
	}
	if err != nil {
		return op, rec, err
	}
	if rec.Type == recExpired {
		return op, rec, errNoSession
	}
	return op, rec, nil
}

// record reads record seq of a session.
func (s *server) record(ctx context.Context, id string, seq uint64) (oplog.Record, error) {
	cur, err := s.ops.Subscribe(ctx, id, seq-1)
	if err != nil {
		return oplog.Record{}, err
	}
	defer cur.Close()
	ctx, cancel := context.WithTimeout(ctx, appendTimeout)
	defer cancel()
	return cur.Next(ctx)
}

// docOf is the JSON an IVR polls for a session.
func docOf(op oplog.Op, rec oplog.Record) doc {
	d := doc{ID: op.ID, Operation: op.Kind, CallID: op.CallID, Status: statusWaiting, CreatedAt: op.Created}
	var sp sessionSpec
	if json.Unmarshal(op.Spec, &sp) == nil {
		d.Input = sp.Input
	}
	if rec.Seq > 0 {
		d.Status = statusOf(rec.Type)
		if rec.Type != recAudio {
			d.Event = json.RawMessage(rec.Data)
		}
	}
	return d
}

// doc reads a session's JSON.
func (s *server) doc(ctx context.Context, id string) (doc, error) {
	op, rec, err := s.get(ctx, id)
	if err != nil {
		return doc{}, err
	}
	return docOf(op, rec), nil
}

// errTakenTwice ends a session two nodes claimed at once (two streams of
// it reached the creating node and another one).
var errTakenTwice = errors.New("two streams took the session at once")

// take makes this node the owner of a waiting session and records that
// its audio arrived (seq 1). It fails when audio arrived once already (a
// session takes one stream), on any node.
func (s *server) take(ctx context.Context, op oplog.Op) (*session, error) {
	if op.LastSeq != 0 || op.Done {
		return nil, errors.New("the session already has its audio")
	}
	// A compare-and-set of the owner from the creating node (not from the
	// owner read just now, which may be a node that claimed it first): of
	// two streams reaching other nodes at once, one claims it.
	creator := op.Owner
	var sp sessionSpec
	if json.Unmarshal(op.Spec, &sp) == nil && sp.Node != "" {
		creator = sp.Node
	}
	if err := s.ops.Claim(ctx, op.ID, creator); err != nil {
		return nil, err
	}
	if err := s.ops.Append(ctx, op.ID, oplog.Record{Seq: 1, Type: recAudio, Data: []byte("null")}); err != nil {
		return nil, err
	}
	s.mu.Lock()
	delete(s.waiting, op.ID)
	s.mu.Unlock()
	sess := &session{s: s, id: op.ID, op: daspeak.Operation(op.Kind), caller: op.CallerID, call: op.CallID, seq: 1}
	if creator == s.ops.Node() {
		// The creating node's claim changed no owner: another node may
		// have claimed it from this one meanwhile (its seq 1 then failed).
		// The session is ended rather than run by a node that does not
		// own it (its owner's reaper would end it live, or nobody would).
		now, err := s.ops.Get(ctx, op.ID)
		if err == nil && now.Owner != s.ops.Node() {
			sess.end(ctx, errTakenTwice)
			return nil, fmt.Errorf("%w (by node %s)", errTakenTwice, now.Owner)
		}
	}
	return sess, nil
}

// update records an event. A register error-store (or, defensively, a
// result-success whose credential was not stored) is reported as
// error-store with a fixed message: the store's own error may name files,
// and success is reported only after the store kept the credential. An
// error-store because another registration of the caller stored first
// (registerOnce) says so (errAlreadyRegistered) and is recorded as
// recAlreadyRegistered: status already_registered, as a register refused
// at its start. Every event but progress ends the session; a session has
// one terminal event.
func (sess *session) update(ctx context.Context, ev daspeak.Event) {
	if sess.ended {
		return
	}
	typ := string(ev.Type)
	if ev.Operation == daspeak.OperationRegister && (ev.Type == daspeak.EventErrorStore || ev.Type == daspeak.EventResultSuccess && !ev.Stored) {
		why := errStoreFailed
		typ = string(daspeak.EventErrorStore)
		switch {
		case ev.Type == daspeak.EventErrorStore && errors.Is(ev.Err, errAlreadyRegistered):
			why, typ = errAlreadyRegistered, recAlreadyRegistered
		case errors.Is(ev.Err, errStoreUnknown):
			why = errStoreUnknown // not "nothing was registered": not known
		}
		ev = daspeak.Event{
			Type: daspeak.EventErrorStore, Operation: ev.Operation, NetSpeech: ev.NetSpeech,
			NetSpeechNeeded: ev.NetSpeechNeeded, AudioDuration: ev.AudioDuration, ModelHash: ev.ModelHash,
			Err: why,
		}
	}
	ev.Credential, ev.Audio = "", nil // they stay on the server
	data, err := json.Marshal(ev)
	if err != nil {
		data = []byte(`{"type":"error-audio","error":"event not encodable"}`)
		ev.Type = daspeak.EventErrorAudio
		typ = string(ev.Type)
	}
	terminal := ev.Type != daspeak.EventProgress
	err = sess.append(ctx, oplog.Record{Seq: sess.seq + 1, Type: typ, Terminal: terminal, Data: data})
	switch {
	case err == nil:
		sess.seq++
		sess.ended = terminal
	case errors.Is(err, oplog.ErrSeq):
		// Another node ended the session (it took this node for dead).
		sess.s.log.Warn("session event not recorded: the session was ended elsewhere", "session", sess.id, "type", ev.Type, "err", err)
		sess.ended = true
	default:
		// The log did not take it: the session ends with error-audio
		// rather than stay "processing" with nobody to end it.
		sess.s.log.Warn("session event not recorded; ending the session", "session", sess.id, "type", ev.Type, "err", err)
		sess.end(ctx, errors.New("the session's state could not be recorded"))
	}
}

// end appends a terminal error-audio record with err and ends the
// session (an error is logged: the session then stays as it was until
// the log forgets it).
func (sess *session) end(ctx context.Context, cause error) {
	data, _ := json.Marshal(sess.s.errorAudio(sess.op, cause))
	err := sess.append(ctx, oplog.Record{Seq: sess.seq + 1, Type: string(daspeak.EventErrorAudio), Terminal: true, Data: data})
	if err == nil {
		sess.seq++
	} else if !errors.Is(err, oplog.ErrSeq) {
		sess.s.log.Error("ending a session failed", "session", sess.id, "err", err)
	}
	sess.ended = true
}

// append writes rec, each try bounded by appendTimeout, up to appendTries
// times while the error is not oplog.ErrSeq. A try whose answer was lost
// may have written rec: an ErrSeq after a failed try is success when the
// record at rec.Seq is rec.
func (sess *session) append(ctx context.Context, rec oplog.Record) error {
	ctx = context.WithoutCancel(ctx)
	var err error
	wait := appendBackoff
	for try := range appendTries {
		if try > 0 {
			time.Sleep(wait)
			wait *= 2
		}
		actx, cancel := context.WithTimeout(ctx, appendTimeout)
		err2 := sess.s.ops.Append(actx, sess.id, rec)
		cancel()
		if err2 == nil {
			return nil
		}
		if errors.Is(err2, oplog.ErrSeq) {
			if err != nil && sess.landed(ctx, rec) {
				return nil
			}
			return err2
		}
		err = err2
	}
	return err
}

// landed reports whether the session's record rec.Seq is rec.
func (sess *session) landed(ctx context.Context, rec oplog.Record) bool {
	got, err := sess.s.record(ctx, sess.id, rec.Seq)
	return err == nil && got.Type == rec.Type && got.Terminal == rec.Terminal && bytes.Equal(got.Data, rec.Data)
}

// waitEnd waits until the session has its terminal record, ctx ends or
// wait passes, and returns its state then.
func (s *server) waitEnd(ctx context.Context, op oplog.Op, wait time.Duration) (doc, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if !op.Done {
		cur, err := s.ops.Subscribe(ctx, op.ID, op.LastSeq)
		if err == nil {
			for {
				rec, err := cur.Next(ctx)
				if err != nil || rec.Terminal {
					break
				}
			}
			cur.Close()
		}
	}
	return s.doc(context.WithoutCancel(ctx), op.ID)
}

// reapInterval is how often a node of many looks for sessions of dead
// nodes.
const reapInterval = time.Second

// errNodeStopped is the error of a session whose node stopped.
var errNodeStopped = errors.New("the node running the session stopped")

// reapOrphans ends the sessions of nodes whose lease expired (found so in
// two scans reapInterval apart) until ctx ends: a running one with
// error-audio (errNodeStopped), a waiting one past -session-ttl as
// expired. Of the live nodes the first to append wins; the others get
// oplog.ErrSeq.
func (s *server) reapOrphans(ctx context.Context) {
	t := time.NewTicker(reapInterval)
	defer t.Stop()
	seen := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		orphans, err := s.ops.Orphans(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("looking for sessions of stopped nodes failed", "err", err)
		}
		now := map[string]bool{}
		for _, o := range orphans {
			now[o.ID] = true
			if !seen[o.ID] {
				continue
			}
			if o.LastSeq == 0 {
				if time.Since(o.Created) > s.cfg.SessionTTL {
					s.expire(ctx, o.ID)
				}
				continue
			}
			data, _ := json.Marshal(s.errorAudio(daspeak.Operation(o.Kind), errNodeStopped))
			err := s.ops.Append(ctx, o.ID, oplog.Record{Seq: o.LastSeq + 1, Type: string(daspeak.EventErrorAudio), Terminal: true, Data: data})
			switch {
			case err == nil:
				s.log.Warn("session of a stopped node ended", "session", o.ID, "call", o.CallID, "node", o.Owner)
			case errors.Is(err, oplog.ErrSeq):
			default:
				if ctx.Err() == nil {
					s.log.Warn("ending a session of a stopped node failed", "session", o.ID, "err", err)
				}
			}
		}
		seen = now
	}
}

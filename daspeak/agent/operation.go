package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent/oplog"
)

// notifyTimeout bounds ResultNotifier.NotifyResult and Audio.Close.
const notifyTimeout = 5 * time.Second

// operation is one register or verify on a call. Its goroutine (run) is
// the only writer of its events.
type operation struct {
	s          *Server
	id         string
	kind       daspeak.Operation
	callID     string
	callerID   string
	cfg        daspeak.Config
	credential string // verify
	audio      Audio
	principal  Principal
	seq        uint64
}

// run runs the session until its terminal event, calls ending, publishes
// the event, tells the Audio (ResultNotifier) and closes it. ctx is
// cancelled with a cause by stop, re-verify, delete and shutdown.
func (op *operation) run(ctx context.Context, ending func()) {
	var (
		sess *daspeak.Session
		err  error
	)
	cfg := op.cfg
	counted := &countedAudio{Audio: op.audio}
	op.s.obs.AudioOpened()
	if op.kind == daspeak.OperationRegister {
		sess, err = daspeak.Register(counted, op.s.opts.Engine, &cfg)
	} else {
		sess, err = daspeak.Verify(counted, op.s.opts.Engine, op.credential, &cfg)
	}
	if err != nil {
		op.s.log.Warn("agent: session parameters", "operation_id", op.id, "err", err)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, op.s.opts.OperationTimeout, errTimeout)
	defer cancel()
	var final Event
	for {
		ev, err := sess.Next(ctx)
		if err != nil {
			// ctx ended (Next returns nothing else before its terminal
			// event): stop, re-verify, delete or shutdown.
			cause := context.Cause(ctx)
			if errors.Is(cause, errTimeout) {
				final = Event{Type: daspeak.EventErrorAudio, Error: fmt.Sprintf("not enough speech within %v", op.s.opts.OperationTimeout)}
				break
			}
			if cause == nil || errors.Is(cause, context.Canceled) {
				cause = errShutdown
			}
			final = Event{Type: EventErrorCancelled, Error: "cancelled: " + cause.Error(), Cause: causeOf(cause)}
			break
		}
		if !ev.IsTerminal() {
			op.publish(context.WithoutCancel(ctx), &Event{Type: ev.Type, Session: scrub(ev)})
			continue
		}
		final = op.terminal(ev)
		break
	}
	final.Reason = ReasonOf(final.Type, final.Session.Err)
	pctx := context.WithoutCancel(ctx)
	ending()
	if err := op.publish(pctx, &final); err != nil {
		op.s.log.Error("agent: publishing the result failed", "operation_id", op.id, "err", err)
	} else {
		op.s.obs.OperationEnded(op.kind, final.Type, final.Reason)
	}
	op.s.log.Info("agent: operation ended", "operation_id", op.id, "kind", op.kind, "call_id", op.callID,
		"type", string(final.Type), "reason", string(final.Reason), "agent", op.principal.Subject)
	nctx, cancel := context.WithTimeout(pctx, notifyTimeout)
	defer cancel()
	if n, ok := op.audio.(ResultNotifier); ok {
		if err := n.NotifyResult(nctx, final); err != nil {
			op.s.log.Warn("agent: result notification failed", "operation_id", op.id, "err", err)
		}
	}
	var dropped, late uint64
	if fc, ok := op.audio.(FrameCounter); ok {
		dropped, late = fc.FrameCounts()
	}
	if err := op.audio.Close(); err != nil {
		op.s.log.Warn("agent: closing the audio failed", "operation_id", op.id, "err", err)
	}
	op.s.obs.AudioClosed()
	op.s.obs.Frames(counted.read, dropped, late)
}

// terminal turns the session's terminal event into the operation's: a
// register whose credential did not reach the store (daspeak's
// error-store, or a success the store did not confirm) is error-store,
// never success. The store's own error is logged, not sent: the agent's
// event says only that the caller is not registered, or, when another
// operation registered the caller first (storeOnce), that this voice was
// not stored (reason already_registered, see ReasonOf).
func (op *operation) terminal(ev daspeak.Event) Event {
	if ev.Type == daspeak.EventErrorStore || (ev.Type == daspeak.EventResultSuccess && op.kind == daspeak.OperationRegister && !ev.Stored) {
		cause := ev.Err
		if cause == nil {
			cause = ErrNotStored
		}
		if errors.Is(cause, ErrAlreadyRegistered) {
			// An expected outcome of two registers of one caller, not a
			// fault of the store.
			op.s.log.Warn("agent: credential not stored: another operation registered the caller first", "operation_id", op.id, "call_id", op.callID, "err", cause)
		} else {
			op.s.log.Error("agent: credential not stored", "operation_id", op.id, "call_id", op.callID, "err", cause)
		}
		s := scrub(ev)
		s.Type = EventErrorStore
		s.Err = ErrNotStored
		msg := "the credential could not be stored: the caller is not registered"
		if errors.Is(cause, ErrAlreadyRegistered) {
			// Not a storage failure: the reason (already_registered) tells
			// the widget not to take the caller's registration for this
			// call's.
			s.Err = fmt.Errorf("%w: %w", ErrNotStored, ErrAlreadyRegistered)
			msg = "another operation registered the caller meanwhile: this voice was not stored"
		}
		return Event{Type: EventErrorStore, Session: s, Error: msg}
	}
	return Event{Type: ev.Type, Session: scrub(ev)}
}

// scrub returns ev without its credential and audio: an operation's
// events never carry them.
func scrub(ev daspeak.Event) daspeak.Event {
	ev.Credential, ev.Audio = "", nil
	return ev
}

// publish numbers ev, fills its ids and appends it to the operation log.
func (op *operation) publish(ctx context.Context, ev *Event) error {
	ev.OperationID, ev.CallID, ev.CallerID, ev.Kind = op.id, op.callID, op.callerID, op.kind
	ev.Seq = op.seq + 1
	if ev.IsTerminal() && ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if err := op.s.ops.Append(ctx, op.id, oplog.Record{Seq: ev.Seq, Type: string(ev.Type), Terminal: ev.IsTerminal(), Data: data}); err != nil {
		return err
	}
	op.seq = ev.Seq
	return nil
}

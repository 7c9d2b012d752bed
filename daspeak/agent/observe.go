package agent

import (
	"context"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/daspeak"
)

// Observer receives the server's measurements (Options.Observer);
// daspeak/agent/metrics implements it with Prometheus metrics. Its methods
// are called concurrently from the request and operation goroutines and
// must not block.
type Observer interface {
	// OperationStarted is called when an operation's started event is
	// published on this node.
	OperationStarted(kind daspeak.Operation)
	// OperationEnded is called once per operation this node ended
	// (including those it ended for a dead node), with its terminal type
	// and reason.
	OperationEnded(kind daspeak.Operation, t daspeak.EventType, r Reason)
	// AudioOpened and AudioClosed bracket an operation's audio (a Media
	// Stream, an attachment to an AudioHook session).
	AudioOpened()
	AudioClosed()
	// StreamOpened and StreamClosed bracket an event stream (SSE).
	StreamOpened()
	StreamClosed()
	// Frames reports an operation's audio frames when its audio closes:
	// read by the session, and, when the Audio implements [FrameCounter],
	// dropped by its queue and late (behind the media clock).
	Frames(read, dropped, late uint64)
	// EngineCall reports one call of the biometric engine.
	EngineCall(d time.Duration, err error)
	// StoreCall reports one credential-store call: op is "get", "store"
	// or "delete".
	StoreCall(op string, d time.Duration, err error)
	// EventSent reports the lag of an event from its append to the
	// operation log to its write on an event stream (the bus lag when the
	// log is shared by nodes).
	EventSent(lag time.Duration)
}

// FrameCounter is optionally implemented by an [Audio] that counts frames
// its queue dropped and frames that came late.
type FrameCounter interface {
	FrameCounts() (dropped, late uint64)
}

// nopObserver is the Observer of a server without one.
type nopObserver struct{}

func (nopObserver) OperationStarted(daspeak.Operation)                          {}
func (nopObserver) OperationEnded(daspeak.Operation, daspeak.EventType, Reason) {}
func (nopObserver) AudioOpened()                                                {}
func (nopObserver) AudioClosed()                                                {}
func (nopObserver) StreamOpened()                                               {}
func (nopObserver) StreamClosed()                                               {}
func (nopObserver) Frames(uint64, uint64, uint64)                               {}
func (nopObserver) EngineCall(time.Duration, error)                             {}
func (nopObserver) StoreCall(string, time.Duration, error)                      {}
func (nopObserver) EventSent(time.Duration)                                     {}

// timedEngine reports each engine call to an Observer.
type timedEngine struct {
	daspeak.Engine
	obs Observer
}

// ReleasesAudio forwards the wrapped engine's answer (daspeak.AudioReleaser):
// the wrapper itself reads nothing.
func (e timedEngine) ReleasesAudio() bool {
	r, ok := e.Engine.(daspeak.AudioReleaser)
	return ok && r.ReleasesAudio()
}

func (e timedEngine) GenerateCredential(ctx context.Context, hash string, audio []byte, opts *daspeak.AudioOptions) (*daspeak.CredentialResult, error) {
	t := time.Now()
	r, err := e.Engine.GenerateCredential(ctx, hash, audio, opts)
	e.obs.EngineCall(time.Since(t), err)
	return r, err
}

func (e timedEngine) CompareCredentialToAudio(ctx context.Context, credential string, audio []byte, opts *daspeak.AudioOptions) (*daspeak.CompareResult, error) {
	t := time.Now()
	r, err := e.Engine.CompareCredentialToAudio(ctx, credential, audio, opts)
	e.obs.EngineCall(time.Since(t), err)
	return r, err
}

// timedLister is a timedEngine whose engine lists its models (the
// session asks for the newest when no ModelHash is configured).
type timedLister struct {
	timedEngine
	ml daspeak.ModelLister
}

func (e timedLister) Models(ctx context.Context) ([]string, error) { return e.ml.Models(ctx) }

// ObserveEngine wraps engine to report each of its calls to obs
// (Observer.EngineCall), for servers that run daspeak sessions without a
// Server (the IVR starter); a Server does it itself with
// Options.Observer.
func ObserveEngine(engine daspeak.Engine, obs Observer) daspeak.Engine { return timed(engine, obs) }

// timed wraps engine to report its calls to obs, keeping what the
// session looks for in it (daspeak.ModelLister).
func timed(engine daspeak.Engine, obs Observer) daspeak.Engine {
	te := timedEngine{Engine: engine, obs: obs}
	if ml, ok := engine.(daspeak.ModelLister); ok {
		return timedLister{timedEngine: te, ml: ml}
	}
	return te
}

// countedAudio counts the frames an operation reads.
type countedAudio struct {
	Audio
	read uint64
}

func (a *countedAudio) ReadFrame(ctx context.Context) (voicegate.Frame, error) {
	f, err := a.Audio.ReadFrame(ctx)
	if err == nil {
		a.read++
	}
	return f, err
}

// NotifyResult passes the terminal event on when the Audio wants it.
func (a *countedAudio) NotifyResult(ctx context.Context, ev Event) error {
	if n, ok := a.Audio.(ResultNotifier); ok {
		return n.NotifyResult(ctx, ev)
	}
	return nil
}

package vgexample

import "github.com/voicegate/voicegate/daspeak/agent"

// ErrBinding reports a stream binding that is malformed, forged or expired.
var ErrBinding = agent.ErrBinding

// Binder signs the values that tie a media stream to the session that
// asked for it; it is [agent.Binder].
type Binder = agent.Binder

// NewBinder returns a Binder keyed with key, or with a random key when key
// is empty (bindings then do not survive a restart).
func NewBinder(key []byte) *Binder { return agent.NewBinder(key) }

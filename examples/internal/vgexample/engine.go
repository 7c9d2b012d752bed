package vgexample

import "github.com/voicegate/voicegate/daspeak/agent"

// EngineConfig selects the biometric engine; it is [agent.EngineConfig].
type EngineConfig = agent.EngineConfig

// SessionFlags are the das-Peak Streaming session parameters an example
// exposes; it is [agent.SessionFlags].
type SessionFlags = agent.SessionFlags

// Env returns the environment variable name, or def when it is unset or
// empty.
func Env(name, def string) string { return agent.Env(name, def) }

// EnvBool returns the boolean environment variable name, or def when it is
// unset or not a boolean.
func EnvBool(name string, def bool) bool { return agent.EnvBool(name, def) }

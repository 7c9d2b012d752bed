package audiohook

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/audiohook/wire"
)

var (
	// ErrUnauthorized reports a failed authentication: unknown API key, bad
	// or missing signature, wrong organization. *AuthError wraps it.
	ErrUnauthorized = errors.New("audiohook: unauthorized")

	// ErrSignature reports a malformed, expired or non-matching HTTP message
	// signature, wrapped together with ErrUnauthorized.
	ErrSignature = errors.New("audiohook: bad signature")

	// ErrReplay reports a signature nonce that was seen before and whose
	// request could still pass the clock checks.
	ErrReplay = errors.New("audiohook: replayed nonce")

	// ErrNonceCacheFull reports a NonceCache full of live nonces: the request
	// is refused (not an authentication failure; see Accept).
	ErrNonceCacheFull = errors.New("audiohook: nonce cache full")

	// ErrProtocol reports a protocol violation by the peer; *ProtocolError
	// wraps it.
	ErrProtocol = errors.New("audiohook: protocol violation")

	// ErrTimeout reports an open, close or pong transaction that did not
	// complete in time.
	ErrTimeout = errors.New("audiohook: transaction timeout")

	// ErrConnectionLost reports a connection that ended without the close
	// transaction. It wraps io.ErrUnexpectedEOF.
	ErrConnectionLost = fmt.Errorf("audiohook: connection lost without close: %w", io.ErrUnexpectedEOF)

	// ErrClosed is returned by calls made after Close or CloseNow. It
	// satisfies errors.Is(err, net.ErrClosed).
	ErrClosed = fmt.Errorf("audiohook: %w", voicegate.ErrClosed)

	// ErrBadRequest reports an upgrade request without valid Audiohook-*
	// headers; Accept answers it with HTTP 400.
	ErrBadRequest = errors.New("audiohook: bad upgrade request")

	// ErrIdleTimeout ends a session from which no message arrived for
	// ServerOptions.IdleTimeout (a half-open connection).
	ErrIdleTimeout = errors.New("audiohook: idle timeout")

	// ErrBadEvent reports an event SendEvent refuses to send (see there).
	ErrBadEvent = errors.New("audiohook: invalid event")

	// ErrNotOpen is returned by Pause, Resume and SendEvent before the open
	// transaction completed or once the session started to close.
	ErrNotOpen = errors.New("audiohook: session not open")
)

// ProtocolError is a protocol violation detected by this side: Code is the
// AudioHook error code a client sends (400, 408, 409, 413, 415, 500); a
// server sends disconnect with Reason ("error" or "unauthorized") and Info.
type ProtocolError struct {
	Code   int
	Reason string
	Info   string
}

// Error implements error.
func (e *ProtocolError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("audiohook: protocol error %d: %s", e.Code, e.Info)
	}
	return fmt.Sprintf("audiohook: protocol error (%s): %s", e.Reason, e.Info)
}

// Unwrap returns ErrProtocol, and ErrUnauthorized for reason "unauthorized".
func (e *ProtocolError) Unwrap() []error {
	if e.Reason == wire.ReasonUnauthorized {
		return []error{ErrProtocol, ErrUnauthorized}
	}
	return []error{ErrProtocol}
}

// AuthError is a failed authentication of an upgrade request. Status is the
// HTTP status the server answered (401), or 0 when the failure was signalled
// with a disconnect after the upgrade.
type AuthError struct {
	Status int
	Info   string
	Err    error
}

// Error implements error.
func (e *AuthError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("audiohook: unauthorized (HTTP %d): %s", e.Status, e.Info)
	}
	return "audiohook: unauthorized: " + e.Info
}

// Unwrap returns ErrUnauthorized and the underlying cause.
func (e *AuthError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrUnauthorized, e.Err}
	}
	return []error{ErrUnauthorized}
}

// DisconnectError is returned by client calls after the server sent
// disconnect, and by server calls after the session was disconnected.
type DisconnectError struct {
	Reason          string // "completed", "unauthorized" or "error"
	Info            string
	OutputVariables map[string]string
}

// Error implements error.
func (e *DisconnectError) Error() string {
	if e.Info == "" {
		return "audiohook: disconnected: " + e.Reason
	}
	return "audiohook: disconnected: " + e.Reason + ": " + e.Info
}

// Unwrap returns ErrUnauthorized for reason "unauthorized".
func (e *DisconnectError) Unwrap() error {
	if e.Reason == wire.ReasonUnauthorized {
		return ErrUnauthorized
	}
	return nil
}

// PeerError is an AudioHook error message sent by the client.
type PeerError struct {
	Code       int
	Message    string
	RetryAfter time.Duration
}

// Error implements error.
func (e *PeerError) Error() string {
	return fmt.Sprintf("audiohook: peer error %d: %s", e.Code, e.Message)
}

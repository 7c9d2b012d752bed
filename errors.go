package voicegate

import (
	"errors"
	"fmt"
	"net"
)

// ErrFormat reports a frame whose format fields do not describe its payload.
var ErrFormat = errors.New("voicegate: bad frame format")

// ErrClosed is returned by ReadFrame and the other calls of a live stream
// after its Close or CloseNow. It satisfies errors.Is(err, net.ErrClosed).
var ErrClosed = fmt.Errorf("voicegate: stream closed: %w", net.ErrClosed)

// StreamError is the error ReadFrame returns, after the queued frames, when
// a live stream ended without its protocol's clean end: the connection
// broke, the peer closed the WebSocket without the protocol's goodbye or
// with an error status, it broke the protocol, or it went silent for
// longer than the idle timeout. Err is the cause; use errors.As and
// errors.Is through it (for example *CloseError, twilio.ErrIdleTimeout,
// *audiohook.ProtocolError, audiohook.ErrConnectionLost).
type StreamError struct {
	Err error
}

// Error implements error.
func (e *StreamError) Error() string {
	if e.Err == nil {
		return "voicegate: stream ended abnormally"
	}
	return "voicegate: stream ended abnormally: " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *StreamError) Unwrap() error { return e.Err }

// Close status codes of RFC 6455 section 7.4.1 that callers branch on.
const (
	CloseNormal        = 1000 // normal closure
	CloseGoingAway     = 1001 // endpoint going away
	CloseProtocol      = 1002 // protocol error
	CloseInvalidData   = 1007 // invalid frame payload data (e.g. bad UTF-8)
	CloseMessageTooBig = 1009 // message over the read limit
)

// CloseError is a WebSocket close frame (RFC 6455 section 5.5.1): sent by
// the peer (Sent false), or sent by this side because the peer broke
// RFC 6455 or a limit such as the read limit (Sent true). Code is 1005
// when the peer's close frame carried no status.
type CloseError struct {
	Code   int
	Reason string
	Sent   bool
}

// Error implements error.
func (e *CloseError) Error() string {
	who := "peer closed the WebSocket"
	if e.Sent {
		who = "WebSocket failed"
	}
	if e.Reason == "" {
		return fmt.Sprintf("voicegate: %s with status %d", who, e.Code)
	}
	return fmt.Sprintf("voicegate: %s with status %d: %s", who, e.Code, e.Reason)
}

// CloseStatus returns the close status code carried by err (a *CloseError
// anywhere in its chain), or -1.
func CloseStatus(err error) int {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

package wsconn

import (
	"errors"
	"fmt"
	"net"
	"net/http"
)

// ErrCloseSent is returned by writes after a close frame was sent (by Close,
// or in answer to the peer's close). It wraps net.ErrClosed.
var ErrCloseSent = fmt.Errorf("websocket: close frame already sent: %w", net.ErrClosed)

// errClosed is returned by a second Close or CloseNow.
var errClosed = fmt.Errorf("websocket: connection already closed: %w", net.ErrClosed)

// errBadMessageType reports a WriteMessage with a type other than
// MessageText or MessageBinary.
var errBadMessageType = errors.New("websocket: message type must be MessageText or MessageBinary")

// StatusCode is a WebSocket close status code (RFC 6455 section 7.4).
type StatusCode uint16

// Close status codes. StatusNoStatusRcvd and StatusAbnormalClosure are never
// sent on the wire: the first reports a close frame without a code.
const (
	StatusNormalClosure           StatusCode = 1000
	StatusGoingAway               StatusCode = 1001
	StatusProtocolError           StatusCode = 1002
	StatusUnsupportedData         StatusCode = 1003
	StatusNoStatusRcvd            StatusCode = 1005
	StatusAbnormalClosure         StatusCode = 1006
	StatusInvalidFramePayloadData StatusCode = 1007
	StatusPolicyViolation         StatusCode = 1008
	StatusMessageTooBig           StatusCode = 1009
	StatusMandatoryExtension      StatusCode = 1010
	StatusInternalError           StatusCode = 1011
)

// validWire reports whether c may appear in a close frame: 1000-1003,
// 1007-1014 (IANA registry) and 3000-4999 (registered and private use).
func (c StatusCode) validWire() bool {
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1014, c >= 3000 && c <= 4999:
		return true
	}
	return false
}

// CloseError is returned by ReadMessage when the peer sent a close frame.
// Code is StatusNoStatusRcvd when the frame carried no status code.
type CloseError struct {
	Code   StatusCode
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("websocket: peer closed the connection with status %d", e.Code)
	}
	return fmt.Sprintf("websocket: peer closed the connection with status %d: %q", e.Code, e.Reason)
}

// ProtocolError is returned by ReadMessage when the peer broke RFC 6455 or
// a limit of this connection. The connection sent a close frame with Code
// and Reason and is closed.
type ProtocolError struct {
	Code   StatusCode
	Reason string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("websocket: failed the connection with status %d: %s", e.Code, e.Reason)
}

// HandshakeError is returned by Accept when the request is not a valid
// WebSocket upgrade. The response with Status has been written.
type HandshakeError struct {
	Status int
	Reason string
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("websocket: handshake refused with %d %s: %s", e.Status, http.StatusText(e.Status), e.Reason)
}

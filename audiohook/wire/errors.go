package wire

import "errors"

var (
	// ErrBadMessage reports a text message that is not valid AudioHook JSON
	// (bad envelope, missing or mistyped fields). Parse errors wrap it.
	ErrBadMessage = errors.New("audiohook: bad message")

	// ErrBadDuration reports a Duration that is not of the form PT<seconds>S.
	ErrBadDuration = errors.New("audiohook: bad duration")
)

package natsbus

import "errors"

// Errors.
var (
	// ErrConfig reports bad Options or environment.
	ErrConfig = errors.New("natsbus: bad configuration")
	// ErrMessage reports a message on the bus that is not a record or an
	// operation state this package wrote (wrong or missing headers,
	// malformed JSON). It is logged and skipped, never passed on.
	ErrMessage = errors.New("natsbus: malformed message")
)

package voicegate

import "errors"

// ErrFormat reports a frame whose format fields do not describe its payload.
var ErrFormat = errors.New("voicegate: bad frame format")

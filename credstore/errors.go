package credstore

import (
	"errors"
	"fmt"
)

// Sentinel errors. Check them with [errors.Is]; stores wrap them with detail.
var (
	// ErrNotFound reports that no record exists for the id.
	ErrNotFound = errors.New("credstore: not found")

	// ErrInvalidID reports an id that breaks the rules of [ValidateID]. Every
	// method of every Store rejects such an id before touching storage.
	ErrInvalidID = errors.New("credstore: invalid id")

	// ErrInvalidRecord reports a record that breaks the rules of
	// [ValidateRecord] or a store's size limits.
	ErrInvalidRecord = errors.New("credstore: invalid record")

	// ErrClosed reports a call on a store after Close, or a second Close.
	ErrClosed = errors.New("credstore: store closed")

	// ErrInvalidTable reports a SQL table name that is not a plain identifier
	// (see [SQLOptions.Table]).
	ErrInvalidTable = errors.New("credstore: invalid table name")

	// ErrInvalidKey reports an encryption key with a bad id or a secret that
	// is not 32 bytes, or a key ring operation that would leave it unusable.
	ErrInvalidKey = errors.New("credstore: invalid key")

	// ErrUnknownKey reports an envelope sealed with a key id that the
	// [Keyring] does not hold (never added, or retired). It always arrives
	// inside a [*DecryptError] that names the key id.
	ErrUnknownKey = errors.New("credstore: unknown key")

	// ErrDecrypt reports a stored value that could not be opened: a malformed
	// envelope, a wrong key, a value moved to another id, or tampering.
	// Every [*DecryptError] matches it, including those for ErrUnknownKey.
	ErrDecrypt = errors.New("credstore: decryption failed")
)

// DecryptError reports a stored field that the [Encrypted] store could not
// open. It never carries plaintext, secrets or the caller id.
//
// errors.Is(err, ErrDecrypt) holds for every DecryptError;
// errors.Is(err, ErrUnknownKey) holds when the key id is not in the key ring.
type DecryptError struct {
	// Field is the record field: "credential" or "audio_ref".
	Field string
	// KeyID is the key id read from the envelope, or "" when the envelope
	// was too malformed to name one.
	KeyID string
	// Reason says what failed, e.g. "envelope 9 bytes < minimum 31".
	Reason string
	// Err is ErrUnknownKey or ErrDecrypt.
	Err error
}

// Error implements error.
func (e *DecryptError) Error() string {
	if e.KeyID == "" {
		return fmt.Sprintf("credstore: decrypt %s: %s: %v", e.Field, e.Reason, e.Err)
	}
	return fmt.Sprintf("credstore: decrypt %s with key %q: %s: %v", e.Field, e.KeyID, e.Reason, e.Err)
}

// Unwrap returns Err.
func (e *DecryptError) Unwrap() error { return e.Err }

// Is reports whether target is ErrDecrypt, so that every decryption failure,
// whatever its cause, matches ErrDecrypt.
func (e *DecryptError) Is(target error) bool { return target == ErrDecrypt }

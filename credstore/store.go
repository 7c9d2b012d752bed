package credstore

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits shared by every store. They are part of the contract checked by
// credstoretest.Run.
const (
	// MaxIDLen is the longest caller id in bytes (not runes).
	MaxIDLen = 256

	// MaxCredentialSize is the largest Record.Credential, in bytes, that
	// every Store accepts.
	MaxCredentialSize = 1 << 20

	// MaxModelHashLen is the longest Record.ModelHash in bytes.
	MaxModelHashLen = 256

	// MaxAudioRefLen is the largest Record.AudioRef, in bytes, that every
	// Store accepts.
	MaxAudioRefLen = 4096

	// EnvelopeHeadroom is how many bytes beyond MaxCredentialSize and
	// MaxAudioRefLen the memory and SQL stores accept, so that a layer such
	// as [Encrypted] can store a full-size value in an envelope. A store may
	// accept up to this headroom and must reject anything larger.
	EnvelopeHeadroom = 1024
)

// Record is what a Store keeps for one caller id.
//
// Put replaces the whole record: a field left empty in the new record is
// empty afterwards (there is no merge).
type Record struct {
	// Credential is the opaque biometric credential (for das-Peak, the
	// credential string exactly as returned). It may hold any bytes,
	// including NUL and invalid UTF-8, and must not be empty. At most
	// MaxCredentialSize bytes.
	Credential string

	// ModelHash is the hash of the biometric model that produced the
	// credential; a credential is only comparable under the same model.
	// Optional; valid UTF-8 without NUL, at most MaxModelHashLen bytes.
	ModelHash string

	// AudioRef optionally points at the enrolment audio kept elsewhere (an
	// object-store key, a URL, a path), so the credential can be regenerated
	// for a new model. Any bytes, at most MaxAudioRefLen; "" means none.
	// Stores never fetch or interpret it.
	AudioRef string

	// CreatedAt is set by the store when the id is first stored (or first
	// stored again after a Delete) and kept on overwrite. UTC. Ignored by Put.
	CreatedAt time.Time

	// UpdatedAt is set by the store on every Put. UTC. Ignored by Put.
	UpdatedAt time.Time
}

// Store keeps voice credentials by caller id. The id is an ANI
// ("+34600000000") or any application id; see [ValidateID] for the rules
// every Store applies.
//
// # Contract
//
//   - Every method is safe for concurrent use by multiple goroutines.
//   - Put is an atomic upsert: a concurrent Get sees the whole old record or
//     the whole new one, never a mix. Concurrent Puts to one id: last writer
//     wins.
//   - Every method first checks the id (ErrInvalidID) and Put checks the
//     record (ErrInvalidRecord); nothing is touched when either fails.
//   - ctx bounds the call. A call whose ctx is already done returns an error
//     matching ctx.Err() and changes nothing. A ctx that ends while a write is
//     in flight may leave the write applied or not; Get tells which.
//   - Get returns an error matching ErrNotFound when the id has no record.
//   - Delete of an id that has no record returns nil, so a retried Delete is
//     safe; use Get first if the difference matters.
//   - Timestamps are in UTC and set by the store, at microsecond precision
//     for the built-in stores. CreatedAt survives overwrites; UpdatedAt
//     advances on each Put.
//
// credstoretest.Run checks all of the above; run it against any new Store.
type Store interface {
	// Put stores rec under id, replacing any existing record (upsert).
	// rec.CreatedAt and rec.UpdatedAt are ignored.
	Put(ctx context.Context, id string, rec Record) error

	// Get returns the record stored under id, or an error matching
	// ErrNotFound.
	Get(ctx context.Context, id string) (Record, error)

	// Delete removes the record stored under id. Deleting an id that has no
	// record is not an error.
	Delete(ctx context.Context, id string) error
}

// Remover is implemented by a Store that can say whether a delete
// removed a record. Remove is Delete (same contract: the id is checked
// first, an id with no record is not an error) that also reports, from
// the same step, whether a record was there: a record another process
// wrote between a caller's Get and its Delete is counted, as it would
// not be by reading first. Memory and SQL (RowsAffected) implement it;
// Encrypted does when the Store it wraps does, and otherwise returns an
// error matching errors.ErrUnsupported and removes nothing.
type Remover interface {
	Remove(ctx context.Context, id string) (removed bool, err error)
}

// ValidateID reports whether id is acceptable to every Store: 1 to
// MaxIDLen bytes of valid UTF-8 without NUL. Anything else valid (spaces,
// case, control characters, punctuation, SQL or path syntax, any Unicode
// form) is stored and compared byte for byte: "a", "A", "a " and the NFC and
// NFD spellings of "é" are five different ids. Callers that want ANIs in
// E.164 form must normalise them themselves.
//
// The error wraps ErrInvalidID and says what is wrong; it does not quote the
// id, which may be personal data.
func ValidateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidID)
	case len(id) > MaxIDLen:
		return fmt.Errorf("%w: %d bytes > limit %d", ErrInvalidID, len(id), MaxIDLen)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidID)
	case strings.IndexByte(id, 0) >= 0:
		return fmt.Errorf("%w: contains NUL", ErrInvalidID)
	}
	return nil
}

// ValidateRecord reports whether rec is acceptable to every Store: a
// non-empty Credential of at most MaxCredentialSize bytes, a ModelHash of at
// most MaxModelHashLen bytes of valid UTF-8 without NUL, and an AudioRef of
// at most MaxAudioRefLen bytes. The error wraps ErrInvalidRecord.
func ValidateRecord(rec Record) error {
	return validateRecord(rec, 0)
}

// validateRecord checks rec, allowing headroom extra bytes in Credential
// and AudioRef.
func validateRecord(rec Record, headroom int) error {
	switch {
	case rec.Credential == "":
		return fmt.Errorf("%w: empty credential", ErrInvalidRecord)
	case len(rec.Credential) > MaxCredentialSize+headroom:
		return fmt.Errorf("%w: credential %d bytes > limit %d", ErrInvalidRecord, len(rec.Credential), MaxCredentialSize+headroom)
	case len(rec.ModelHash) > MaxModelHashLen:
		return fmt.Errorf("%w: model hash %d bytes > limit %d", ErrInvalidRecord, len(rec.ModelHash), MaxModelHashLen)
	case !utf8.ValidString(rec.ModelHash):
		return fmt.Errorf("%w: model hash is not valid UTF-8", ErrInvalidRecord)
	case strings.IndexByte(rec.ModelHash, 0) >= 0:
		return fmt.Errorf("%w: model hash contains NUL", ErrInvalidRecord)
	case len(rec.AudioRef) > MaxAudioRefLen+headroom:
		return fmt.Errorf("%w: audio ref %d bytes > limit %d", ErrInvalidRecord, len(rec.AudioRef), MaxAudioRefLen+headroom)
	}
	return nil
}

// now returns the current time as the built-in stores record it: UTC,
// truncated to microseconds (the precision of PostgreSQL and MySQL).
func now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

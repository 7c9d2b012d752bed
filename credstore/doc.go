// Package credstore keeps voice credentials by caller id.
//
// A register session returns a credential (das-Peak calls it a Renewable
// Biometric Reference); das-Peak does not keep it, so the integrator must.
// A credential is biometric data: it must not be lost and must not leak.
// This package defines the [Store] interface and three implementations:
//
//   - [Memory]: in process, for tests and demos.
//   - [SQL]: over a *sql.DB for PostgreSQL, SQLite or MySQL/MariaDB, named
//     by an explicit [Dialect]. The package imports no driver; the
//     application imports one (pgx's stdlib, modernc.org/sqlite,
//     go-sql-driver/mysql, …).
//   - [Encrypted]: wraps any Store and keeps Credential and AudioRef
//     encrypted at rest with AES-256-GCM under a rotating [Keyring].
//
// credstore knows nothing of audio: a [Record] holds the credential, the
// hash of the model that made it, an optional reference to the enrolment
// audio kept elsewhere, and timestamps.
//
// # Ids
//
// Records are keyed by caller id: an ANI such as "+34600000000" or any
// application id. An id is 1 to [MaxIDLen] (256) bytes of valid UTF-8
// without NUL ([ValidateID]); every store rejects anything else with
// [ErrInvalidID] on Put, Get and Delete alike. Valid ids are compared byte
// for byte in every store and dialect: no case folding, no trimming, no
// Unicode normalisation. Normalise ANIs (e.g. to E.164) before calling.
//
// # Limits
//
// Every store accepts a Credential of 1 to [MaxCredentialSize] (1 MiB)
// bytes of any content, a ModelHash of up to [MaxModelHashLen] (256) bytes of
// UTF-8 without NUL, and an AudioRef of up to [MaxAudioRefLen] (4 KiB)
// bytes ([ValidateRecord]). Memory and SQL accept [EnvelopeHeadroom] more
// bytes in Credential and AudioRef so that Encrypted can store full-size
// values in them. Larger values give [ErrInvalidRecord].
//
// # Concurrency and context
//
// All stores are safe for concurrent use. Put is an atomic upsert (last
// writer wins); a concurrent Get sees a whole record, old or new. Every
// call takes a context: one that is already done fails with its error
// and changes nothing; one that ends during a write may leave the write
// applied or not (MySQL, for one, finishes a statement whose client has
// given up), so read back when it matters. Delete of a missing id returns
// nil, so Deletes can be retried. Memory and SQL also implement
// [Remover], a Delete that says whether it removed a record.
//
// # Timestamps
//
// Stores set CreatedAt on the first Put of an id and keep it on overwrite;
// UpdatedAt advances on every Put. Times are UTC with microsecond precision
// (the precision of PostgreSQL TIMESTAMPTZ and MySQL DATETIME(6)).
//
// # SQL
//
// Call [Migrate] once at start-up, then [NewSQL] with the same
// [SQLOptions]. The table name is configurable and restricted to plain
// lower-case identifiers, so it can never carry SQL; all values travel as
// parameters of statements prepared once. Ids live in a byte-exact column
// (TEXT COLLATE "C" in PostgreSQL, VARBINARY in MySQL, TEXT with BINARY
// collation in SQLite); credentials in BYTEA/BLOB/MEDIUMBLOB.
//
// For SQLite, open the database with a busy timeout, secure_delete and a
// rollback journal (modernc.org/sqlite):
//
//	file:creds.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(DELETE)&_pragma=secure_delete(1)
//
// and create the file with mode 0600 before the first open (SQLite
// creates it, and gives its journals the same mode, 0644 under the usual
// umask). Without secure_delete a deleted record stays in free space of
// the file; in WAL mode every version of a record stays in the -wal file
// until a checkpoint, so [SQL.Delete] would return with the caller's id,
// credential and model hash still on disk. daspeak/agent.OpenStore does
// all of this.
//
// For MySQL no DSN option is needed: times are written as UTC text, whatever
// parseTime and loc say.
//
// # Encryption at rest
//
// [Encrypted] seals Credential and AudioRef, each in its own envelope:
//
//	version (1 byte, 1) | key id length (1 byte) | key id | nonce (12 bytes) | ciphertext + GCM tag (16 bytes)
//
// The associated data binds the envelope header, a purpose string, the
// field name and the caller id, so a value copied to another id or field,
// or opened under the wrong key, fails with a [*DecryptError] matching
// [ErrDecrypt] (and [ErrUnknownKey] when the key id is not in the ring);
// decryption never returns garbage. ModelHash, the timestamps and the id
// stay in clear. Rotate keys with [Keyring.Rotate] (or Add then
// SetCurrent across a fleet), move records with [Encrypted.Rewrap], then
// [Keyring.Retire] the old key.
//
// # Testing a Store
//
// Package credstore/credstoretest holds the conformance suite that every
// Store here passes, in plain and encrypted form:
//
//	credstoretest.Run(t, func(t *testing.T) credstore.Store { return newMyStore(t) })
package credstore

package agent

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
)

// MinAudioKeyLen is the least length of [CredentialStore.AudioKey].
const MinAudioKeyLen = 16

// CredentialStore adapts a credstore.Store to daspeak.CredentialStore, so a
// register session keeps its credential under the caller id, and gives the
// server the reads and deletes it needs. Its methods are safe for
// concurrent use when Store's are; the zero value is not usable.
//
// When AudioDir is set, the enrolment audio (a WAV file) is also written
// there, so credentials can be regenerated when the biometric model
// changes. Its file name is HMAC-SHA256(AudioKey, caller id), hex, 32
// digits, plus ".wav": not an unkeyed hash, which anyone could reverse by
// hashing every telephone number. Record.AudioRef holds the name.
// [CredentialStore.Delete] removes the audio with the record.
type CredentialStore struct {
	// Store keeps the records. Required.
	Store credstore.Store
	// AudioDir, when not empty, is the directory enrolment audio is kept
	// in. It must exist. Servers sharing a credential Store must share
	// AudioDir (and AudioKey) too: a delete removes only the audio in its
	// own AudioDir, so a copy another node wrote elsewhere would stay.
	AudioDir string
	// AudioKey keys the audio file names: at least MinAudioKeyLen random
	// bytes, kept secret and stable (a new key orphans the files named
	// with the old one). Required with AudioDir.
	AudioKey []byte

	// newMu serialises StoreNew's check and write.
	newMu sync.Mutex
}

var _ daspeak.CredentialStore = (*CredentialStore)(nil)

// check reports a configuration the adapter cannot work with.
func (c *CredentialStore) check() error {
	if c == nil || c.Store == nil {
		return errors.New("agent: CredentialStore without a Store")
	}
	if c.AudioDir != "" && len(c.AudioKey) < MinAudioKeyLen {
		return fmt.Errorf("%w: AudioKey has %d bytes, at least %d needed", ErrAudioKey, len(c.AudioKey), MinAudioKeyLen)
	}
	return nil
}

// StoreCredential implements daspeak.CredentialStore: it writes the audio
// (when AudioDir is set) and then the record. It is an upsert and may be
// called again after a failure. A failed audio write fails the call and
// writes no record: a credential is never kept without the audio its
// configuration promises, nor reported stored when it was not.
func (c *CredentialStore) StoreCredential(ctx context.Context, callerID, credential, modelHash string, audio []byte) error {
	if err := c.check(); err != nil {
		return err
	}
	if err := credstore.ValidateID(callerID); err != nil {
		return err
	}
	rec := credstore.Record{Credential: credential, ModelHash: modelHash}
	if c.AudioDir != "" && len(audio) > 0 {
		ref, err := c.writeAudio(callerID, audio)
		if err != nil {
			return err
		}
		rec.AudioRef = ref
	}
	return c.Store.Put(ctx, callerID, rec)
}

// StoreNew stores a register's credential unless callerID already has
// one, in which case it stores nothing and returns an error matching
// [ErrAlreadyRegistered] and daspeak.ErrAlreadyStored (which a session
// does not retry). The check and the write run under one lock of this
// CredentialStore, so every writer that shares it (an agent [Server] and
// an application's own sessions alike) cannot overwrite a voiceprint
// another of them stored after its own check; across processes sharing a
// Store it is a check only (credstore has no put-if-absent).
func (c *CredentialStore) StoreNew(ctx context.Context, callerID, credential, modelHash string, audio []byte) error {
	if err := c.check(); err != nil {
		return err
	}
	c.newMu.Lock()
	defer c.newMu.Unlock()
	if _, err := c.Store.Get(ctx, callerID); err == nil {
		return fmt.Errorf("%w (%w)", ErrAlreadyRegistered, daspeak.ErrAlreadyStored)
	} else if !errors.Is(err, credstore.ErrNotFound) {
		return err
	}
	return c.StoreCredential(ctx, callerID, credential, modelHash, audio)
}

// Get returns the record of callerID, or an error matching
// credstore.ErrNotFound.
func (c *CredentialStore) Get(ctx context.Context, callerID string) (credstore.Record, error) {
	if err := c.check(); err != nil {
		return credstore.Record{}, err
	}
	return c.Store.Get(ctx, callerID)
}

// Delete removes every copy of callerID's biometric data this adapter
// keeps: the enrolment audio file (under its keyed name, the name the
// record points at, and the unkeyed name older versions of this adapter
// used) and then the record. A record that cannot be opened (sealed with
// a retired key) is deleted too, with the audio under the keyed and
// unkeyed names. Deleting a caller with nothing stored is not
// an error. When a file cannot be removed the record is kept, so a retry
// finds the file again.
func (c *CredentialStore) Delete(ctx context.Context, callerID string) error {
	_, err := c.remove(ctx, callerID)
	return err
}

// removal is what [CredentialStore.remove] removed.
type removal struct {
	// record: the caller had a credential record and this delete removed
	// it. A Store that implements credstore.Remover says so from the
	// delete itself; with another Store, a record the read before the
	// delete found (one it could not open included) counts, so a record
	// written between the read and the delete is missed.
	record bool
	// audio: a file of the caller's enrolment audio was removed from
	// AudioDir (false without AudioDir, or when none was kept), by the
	// sweep before the record's delete or by the sweep after it (run
	// when a record was removed, for audio a register on another node
	// wrote in between).
	audio bool
}

// remove removes callerID's enrolment audio and then its record (see
// Delete), and says what it removed.
func (c *CredentialStore) remove(ctx context.Context, callerID string) (removal, error) {
	var rm removal
	if err := c.check(); err != nil {
		return rm, err
	}
	if err := credstore.ValidateID(callerID); err != nil {
		return rm, err
	}
	rec, err := c.Store.Get(ctx, callerID)
	existed := !errors.Is(err, credstore.ErrNotFound)
	var names []string
	if c.AudioDir != "" {
		names = []string{c.audioName(callerID), legacyAudioName(callerID)}
		// Only a plain file name in AudioDir: a record must not make the
		// server remove files elsewhere. A record the read could not open
		// (sealed with a retired key, say) is still deleted, with the
		// audio under the names derived from callerID; only the name it
		// pointed at, if another, is unknown.
		if ref := rec.AudioRef; err == nil && ref != "" && ref == filepath.Base(ref) && !strings.HasPrefix(ref, ".") {
			names = append(names, ref)
		}
	}
	if err := c.removeAudio(&rm, names); err != nil {
		return rm, err
	}
	rm.record = existed
	err = nil
	if r, ok := c.Store.(credstore.Remover); ok {
		removed, rerr := r.Remove(ctx, callerID)
		if !errors.Is(rerr, errors.ErrUnsupported) {
			rm.record, err = removed, rerr
		} else {
			err = c.Store.Delete(ctx, callerID)
		}
	} else {
		err = c.Store.Delete(ctx, callerID)
	}
	if err != nil || !rm.record {
		return rm, err
	}
	// Another node's register may have written the caller's audio after
	// the sweep above and stored its record before this delete removed
	// it: with the record gone that audio is an orphan, so sweep again.
	// (Nodes reach each other's audio only through a shared AudioDir.)
	return rm, c.removeAudio(&rm, names)
}

// removeAudio removes the named files from AudioDir, notes in rm whether
// any was there, and fails on the first file it cannot remove.
func (c *CredentialStore) removeAudio(rm *removal, names []string) error {
	for _, n := range names {
		err := os.Remove(filepath.Join(c.AudioDir, n))
		switch {
		case err == nil:
			rm.audio = true
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("agent: removing enrolment audio: %w", err)
		}
	}
	return nil
}

// audioName is the keyed file name of callerID's enrolment audio.
func (c *CredentialStore) audioName(callerID string) string {
	m := hmac.New(sha256.New, c.AudioKey)
	m.Write([]byte(callerID))
	return hex.EncodeToString(m.Sum(nil)[:16]) + ".wav"
}

// legacyAudioName is the unkeyed name earlier example servers used; Delete
// removes it too.
func legacyAudioName(callerID string) string {
	sum := sha256.Sum256([]byte(callerID))
	return hex.EncodeToString(sum[:16]) + ".wav"
}

// writeAudio writes audio atomically (temporary file, sync, rename) under
// the keyed name and returns the name.
func (c *CredentialStore) writeAudio(callerID string, audio []byte) (string, error) {
	name := c.audioName(callerID)
	f, err := os.CreateTemp(c.AudioDir, ".enrol-*")
	if err != nil {
		return "", fmt.Errorf("agent: enrolment audio: %w", err)
	}
	_, err = f.Write(audio)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(c.AudioDir, name))
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("agent: enrolment audio: %w", err)
	}
	return name, nil
}

// NewAudioKey returns MinAudioKeyLen*2 random bytes for
// CredentialStore.AudioKey, base64 (standard) encoded, for a setup step
// that stores it in the server's configuration.
func NewAudioKey() string {
	k := make([]byte, 2*MinAudioKeyLen)
	rand.Read(k) // never fails (crypto/rand)
	return base64.StdEncoding.EncodeToString(k)
}

// StoreConfig is a starter server's credential-store configuration, from
// flags and environment. Secrets (the two keys) come from the environment
// only, so they do not show in process listings.
type StoreConfig struct {
	// Spec names the store for OpenStore: "memory" or "sqlite:PATH".
	Spec string
	// Key is the base64 AES-256 key that encrypts credentials at rest;
	// empty: not encrypted.
	Key string
	// AudioDir is where enrolment audio is kept; empty: not kept.
	AudioDir string
	// AudioKey is the base64 key (at least MinAudioKeyLen bytes) that
	// names enrolment audio files; required with AudioDir. NewAudioKey
	// makes one.
	AudioKey string
}

// Flags registers -store and -audio-dir on fs with defaults from
// CREDSTORE ("memory") and ENROLMENT_AUDIO_DIR, and reads CREDSTORE_KEY
// and ENROLMENT_AUDIO_KEY.
func (c *StoreConfig) Flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Spec, "store", Env("CREDSTORE", "memory"), "credential store: memory or sqlite:PATH (env CREDSTORE; encryption key in env CREDSTORE_KEY)")
	fs.StringVar(&c.AudioDir, "audio-dir", os.Getenv("ENROLMENT_AUDIO_DIR"), "directory to keep enrolment audio in; empty keeps none (env ENROLMENT_AUDIO_DIR; file-name key in env ENROLMENT_AUDIO_KEY)")
	c.Key = os.Getenv("CREDSTORE_KEY")
	c.AudioKey = os.Getenv("ENROLMENT_AUDIO_KEY")
}

// Open opens the store (OpenStore) and returns the adapter over it and a
// function that closes it. With AudioDir it needs AudioKey and creates
// the directory (mode 0700) if needed.
func (c StoreConfig) Open(ctx context.Context) (*CredentialStore, func() error, error) {
	cs := &CredentialStore{AudioDir: c.AudioDir}
	if c.AudioDir != "" {
		key, err := base64.StdEncoding.DecodeString(c.AudioKey)
		if err != nil || len(key) < MinAudioKeyLen {
			return nil, nil, fmt.Errorf("%w: set ENROLMENT_AUDIO_KEY to a base64 key of at least %d random bytes (openssl rand -base64 32)", ErrAudioKey, MinAudioKeyLen)
		}
		if err := os.MkdirAll(c.AudioDir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("agent: enrolment audio directory: %w", err)
		}
		cs.AudioKey = key
	}
	store, closeFn, err := OpenStore(ctx, c.Spec, c.Key)
	if err != nil {
		return nil, nil, err
	}
	cs.Store = store
	return cs, closeFn, nil
}

// checkStoreFolder fails, naming the fix, when the folder of a SQLite
// database file does not exist or is not a folder.
func checkStoreFolder(spec, path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("credential store %s: folder %q does not exist: create it (mkdir -p %s) or choose another -store path", spec, dir, dir)
	case err != nil:
		return fmt.Errorf("credential store %s: %w", spec, err)
	case !fi.IsDir():
		return fmt.Errorf("credential store %s: %q is not a folder: choose another -store path", spec, dir)
	}
	return nil
}

// sqliteParams are the connection parameters OpenStore gives the SQLite
// driver (modernc.org/sqlite applies every _pragma on each new
// connection):
//
//   - secure_delete: SQLite overwrites deleted and replaced content with
//     zeros instead of leaving it in free space of the file.
//   - journal_mode DELETE: a rollback journal that exists only while a
//     write transaction runs. In WAL mode every page a write touched stays
//     in the -wal file until a checkpoint, so a deleted caller's id,
//     credential and model hash remained readable there after the DELETE
//     returned. Rollback mode costs write speed (one put, get and delete
//     took 17 ms against 3 ms in WAL mode and 7 ms in WAL mode with a
//     checkpoint after each write, on a test machine), and a checkpoint
//     can be held off by any reader, so it would not make erasure certain.
//   - busy_timeout: a writer and readers wait up to 5 s for each other
//     instead of failing with SQLITE_BUSY (other processes; within the
//     process OpenStore keeps one connection, so calls queue in
//     database/sql).
const sqliteParams = "_pragma=busy_timeout(5000)&_pragma=journal_mode(DELETE)&_pragma=secure_delete(1)"

// sqliteSuffixes are the files SQLite keeps next to a database file.
var sqliteSuffixes = []string{"", "-journal", "-wal", "-shm"}

// prepareStoreFile makes the SQLite database at path, and the files SQLite
// keeps next to it, readable and writable by the owner only: it creates the
// database file with mode 0600 when it does not exist (SQLite would create
// it 0644 under the usual umask 022, and it gives its journal files the
// database file's mode), and removes the group and other permissions of
// the ones that do exist.
func prepareStoreFile(spec, path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return fmt.Errorf("credential store %s: %w", spec, err)
		}
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("credential store %s: %w", spec, err)
	}
	for _, suf := range sqliteSuffixes {
		p := path + suf
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return fmt.Errorf("credential store %s: %w", spec, err)
		case !fi.Mode().IsRegular():
			return fmt.Errorf("credential store %s: %q is not a regular file", spec, p)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(p, perm&^0o077); err != nil {
				return fmt.Errorf("credential store %s: %q is readable by other users and its mode cannot be changed (chmod 600 %s): %w", spec, p, p, err)
			}
		}
	}
	return nil
}

// OpenStore opens the credential store named by spec:
//
//   - "memory": in process; everything is lost at exit.
//   - "sqlite:PATH": a SQLite database file (created and migrated if
//     needed). Its folder must exist: OpenStore checks it first and
//     answers with the fix ("folder "x" does not exist: create it (mkdir
//     -p x) or choose another -store path"), where SQLite itself would
//     only say "out of memory (14)".
//
// A SQLite database holds credentials, so OpenStore creates its file with
// mode 0600 and takes the group and other permissions away from an
// existing one and from its -journal, -wal and -shm files (failing when it
// cannot). SQLite gives the journal it creates the database file's mode.
// The database runs with secure_delete in rollback-journal mode (an
// existing WAL database is switched back): after Delete, or a Put that
// replaces a record, returns, the old record is in neither the database
// file nor a journal. Records deleted before this version of OpenStore
// may still sit in free space of an existing file; VACUUM (sqlite3 PATH
// VACUUM) rewrites it without them.
//
// When keyB64 is not empty it is a base64 AES-256 key (32 bytes) and the
// store keeps credentials encrypted at rest under key id "k1". The returned
// close function releases the store.
func OpenStore(ctx context.Context, spec, keyB64 string) (credstore.Store, func() error, error) {
	var (
		store   credstore.Store
		closeFn = func() error { return nil }
	)
	switch {
	case spec == "memory" || spec == "":
		store = credstore.NewMemory()
	case strings.HasPrefix(spec, "sqlite:"):
		path := strings.TrimPrefix(spec, "sqlite:")
		if path == "" {
			return nil, nil, errors.New("credential store: sqlite: needs a file path")
		}
		if err := checkStoreFolder(spec, path); err != nil {
			return nil, nil, err
		}
		if err := prepareStoreFile(spec, path); err != nil {
			return nil, nil, err
		}
		dsn := "file:" + path + "?" + sqliteParams
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, nil, fmt.Errorf("credential store: %w", err)
		}
		// One connection: every store call is one short statement, and
		// in rollback-journal mode two connections writing at once can
		// deadlock, which SQLite answers with SQLITE_BUSY at once,
		// whatever the busy timeout.
		db.SetMaxOpenConns(1)
		if err := credstore.Migrate(ctx, db, credstore.SQLite, nil); err != nil {
			db.Close()
			return nil, nil, fmt.Errorf("credential store: %w", err)
		}
		s, err := credstore.NewSQL(ctx, db, credstore.SQLite, nil)
		if err != nil {
			db.Close()
			return nil, nil, fmt.Errorf("credential store: %w", err)
		}
		store = s
		closeFn = func() error { return errors.Join(s.Close(), db.Close()) }
	default:
		return nil, nil, fmt.Errorf("credential store: unknown spec %q (want memory or sqlite:PATH)", spec)
	}
	if keyB64 != "" {
		secret, err := base64.StdEncoding.DecodeString(keyB64)
		if err != nil {
			closeFn()
			return nil, nil, errors.New("credential store: encryption key is not base64")
		}
		ring, err := credstore.NewKeyring(credstore.Key{ID: "k1", Secret: secret})
		if err != nil {
			closeFn()
			return nil, nil, fmt.Errorf("credential store: %w", err)
		}
		enc, err := credstore.NewEncrypted(store, ring, nil)
		if err != nil {
			closeFn()
			return nil, nil, fmt.Errorf("credential store: %w", err)
		}
		store = enc
	}
	return store, closeFn, nil
}

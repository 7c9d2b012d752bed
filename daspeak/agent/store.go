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
	// in. It must exist.
	AudioDir string
	// AudioKey keys the audio file names: at least MinAudioKeyLen random
	// bytes, kept secret and stable (a new key orphans the files named
	// with the old one). Required with AudioDir.
	AudioKey []byte
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
// used) and then the record. Deleting a caller with nothing stored is not
// an error. When a file cannot be removed the record is kept, so a retry
// finds the file again.
func (c *CredentialStore) Delete(ctx context.Context, callerID string) error {
	if err := c.check(); err != nil {
		return err
	}
	if err := credstore.ValidateID(callerID); err != nil {
		return err
	}
	if c.AudioDir != "" {
		names := []string{c.audioName(callerID), legacyAudioName(callerID)}
		rec, err := c.Store.Get(ctx, callerID)
		switch {
		case err == nil:
			// Only a plain file name in AudioDir: a record must not make
			// the server remove files elsewhere.
			if ref := rec.AudioRef; ref != "" && ref == filepath.Base(ref) && !strings.HasPrefix(ref, ".") {
				names = append(names, ref)
			}
		case !errors.Is(err, credstore.ErrNotFound):
			return err
		}
		for _, n := range names {
			if err := os.Remove(filepath.Join(c.AudioDir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("agent: removing enrolment audio: %w", err)
			}
		}
	}
	return c.Store.Delete(ctx, callerID)
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

// OpenStore opens the credential store named by spec:
//
//   - "memory": in process; everything is lost at exit.
//   - "sqlite:PATH": a SQLite database file (created and migrated if
//     needed). Its folder must exist: OpenStore checks it first and
//     answers with the fix ("folder "x" does not exist: create it (mkdir
//     -p x) or choose another -store path"), where SQLite itself would
//     only say "out of memory (14)".
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
		dsn := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, nil, fmt.Errorf("credential store: %w", err)
		}
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

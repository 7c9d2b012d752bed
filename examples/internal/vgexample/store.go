package vgexample

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
)

// CredentialStore adapts a credstore.Store to daspeak.CredentialStore, so a
// register session keeps its credential under the caller id.
//
// When AudioDir is set, the enrolment audio (a WAV file) is also written
// there, under a name derived from a hash of the caller id (ids may be
// personal data), and Record.AudioRef names the file: with it, credentials
// can be regenerated when the biometric model changes. Without AudioDir the
// audio is not kept.
//
// Deprecated: the unkeyed hash can be reversed by hashing every telephone
// number, and nothing here deletes the audio. Use agent.CredentialStore.
type CredentialStore struct {
	Store    credstore.Store
	AudioDir string
}

// StoreCredential implements daspeak.CredentialStore. It is an upsert and
// may be called again after a failure.
func (c CredentialStore) StoreCredential(ctx context.Context, callerID, credential, modelHash string, audio []byte) error {
	rec := credstore.Record{Credential: credential, ModelHash: modelHash}
	if c.AudioDir != "" && len(audio) > 0 {
		ref, err := writeAudio(c.AudioDir, callerID, audio)
		if err != nil {
			return err
		}
		rec.AudioRef = ref
	}
	return c.Store.Put(ctx, callerID, rec)
}

var _ daspeak.CredentialStore = CredentialStore{}

// writeAudio writes audio atomically to dir/<hash of id>.wav and returns
// the file name.
func writeAudio(dir, callerID string, audio []byte) (string, error) {
	sum := sha256.Sum256([]byte(callerID))
	name := hex.EncodeToString(sum[:16]) + ".wav"
	f, err := os.CreateTemp(dir, ".enrol-*")
	if err != nil {
		return "", fmt.Errorf("enrolment audio: %w", err)
	}
	_, err = f.Write(audio)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("enrolment audio: %w", err)
	}
	return name, nil
}

// OpenStore opens the credential store named by spec:
//
//   - "memory": in process; everything is lost at exit.
//   - "sqlite:PATH": a SQLite database file (created and migrated if needed).
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

package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// openStore opens (creating if needed) the SQLite credential database at
// path, migrates it and returns the store and the *sql.DB, which the caller
// closes after the store.
func openStore(ctx context.Context, path string) (*credstore.SQL, *sql.DB, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := credstore.Migrate(ctx, db, credstore.SQLite, nil); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	st, err := credstore.NewSQL(ctx, db, credstore.SQLite, nil)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return st, db, nil
}

// credentialStore adapts a credstore.Store to daspeak.CredentialStore: the
// credential and its model hash go into the store; the enrolment audio is
// written as a WAV file under audioDir, and its path is kept in
// Record.AudioRef so the credential can be regenerated for a new model.
type credentialStore struct {
	store    credstore.Store
	audioDir string
}

var _ daspeak.CredentialStore = (*credentialStore)(nil)

// StoreCredential implements daspeak.CredentialStore. It is an upsert, so a
// register session may retry it.
func (c *credentialStore) StoreCredential(ctx context.Context, callerID, credential, modelHash string, audio []byte) error {
	if err := credstore.ValidateID(callerID); err != nil {
		return err
	}
	path := filepath.Join(c.audioDir, audioFileName(callerID))
	if err := writeFileAtomic(path, audio); err != nil {
		return fmt.Errorf("enrolment audio: %w", err)
	}
	return c.store.Put(ctx, callerID, credstore.Record{
		Credential: credential,
		ModelHash:  modelHash,
		AudioRef:   path,
	})
}

// audioFileName names the enrolment audio of a caller without putting the
// caller id (personal data, and not a safe file name) into the path.
func audioFileName(callerID string) string {
	sum := sha256.Sum256([]byte(callerID))
	return "enrolment-" + hex.EncodeToString(sum[:8]) + ".wav"
}

// writeFileAtomic writes b to path through a temporary file and a rename,
// so a reader never sees half a file.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*.wav")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
	}
	return werr
}

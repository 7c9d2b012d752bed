//go:build unix

package agent

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/voicegate/voicegate/credstore"
)

// TestOpenStoreFileModes: under the usual umask 022 a new SQLite database
// and its journal are created 0600 (SQLite alone creates 0644 files), and
// an existing database and journal files readable by others lose the
// group and other permissions.
func TestOpenStoreFileModes(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	ctx := context.Background()
	cases := []struct {
		name     string
		existing map[string]os.FileMode // files made before OpenStore
	}{
		{name: "new"},
		{name: "existing", existing: map[string]os.FileMode{"creds.db": 0o644, "creds.db-journal": 0o666, "creds.db-wal": 0o640}},
		{name: "existing-tight", existing: map[string]os.FileMode{"creds.db": 0o600}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "creds.db")
			for name, mode := range tc.existing {
				if err := os.WriteFile(filepath.Join(dir, name), nil, mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
					t.Fatal(err)
				}
			}
			store, closeFn, err := OpenStore(ctx, "sqlite:"+path, "")
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			if err := store.Put(ctx, "+34600000000", credRecord("c")); err != nil {
				t.Fatal(err)
			}
			// The journal lives only while a write runs: hold one open to
			// see the mode SQLite gives it.
			tx := openWrite(t, path)
			defer tx()
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			sawJournal := false
			for _, e := range entries {
				fi, err := e.Info()
				if err != nil {
					t.Fatal(err)
				}
				if e.Name() == "creds.db-journal" {
					sawJournal = true
				}
				if perm := fi.Mode().Perm(); perm != 0o600 {
					t.Errorf("%s: mode %v, want 0600", e.Name(), fi.Mode())
				}
			}
			if !sawJournal {
				t.Error("no journal during a write transaction")
			}
		})
	}
}

func credRecord(c string) credstore.Record { return credstore.Record{Credential: c} }

// openWrite starts a write transaction that has changed a page of the
// database at path, on a connection of its own, and returns the function
// that rolls it back.
func openWrite(t *testing.T, path string) func() {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	if _, err := tx.Exec("CREATE TABLE scratch (x)"); err != nil {
		tx.Rollback()
		db.Close()
		t.Fatal(err)
	}
	return func() { tx.Rollback(); db.Close() }
}

package credstore_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/credstore"
)

// Environment passed to the child process of TestSQLiteSurvivesRestart.
const (
	restartEnvDB    = "VOICEGATE_CREDSTORE_RESTART_DB"
	restartEnvKey   = "VOICEGATE_CREDSTORE_RESTART_KEY"
	restartEnvNonce = "VOICEGATE_CREDSTORE_RESTART_NONCE"
	restartMarker   = "restart-child: ok pid="
)

// restartRecord derives the records both processes write and expect.
func restartRecord(nonce, who string) credstore.Record {
	return credstore.Record{
		Credential: "credential\x00\xff-" + who + "-" + nonce,
		ModelHash:  "model-" + nonce,
		AudioRef:   "file:///enrol/" + who + "-" + nonce + ".wav",
	}
}

// openRestartStores opens the SQLite file at path and returns a plain and an
// encrypted store over it.
func openRestartStores(t *testing.T, path string, key []byte) (*credstore.SQL, *credstore.Encrypted) {
	t.Helper()
	ctx := t.Context()
	db := openSQLiteFile(t, path)
	if err := credstore.Migrate(ctx, db, credstore.SQLite, nil); err != nil {
		t.Fatal(err)
	}
	s, err := credstore.NewSQL(ctx, db, credstore.SQLite, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ring, err := credstore.NewKeyring(credstore.Key{ID: "restart", Secret: key})
	if err != nil {
		t.Fatal(err)
	}
	e, err := credstore.NewEncrypted(s, ring, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, e
}

func expectRecord(t *testing.T, s credstore.Store, id string, want credstore.Record) credstore.Record {
	t.Helper()
	got, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	if got.Credential != want.Credential || got.ModelHash != want.ModelHash || got.AudioRef != want.AudioRef {
		t.Fatalf("Get(%q) = %q/%q/%q, want %q/%q/%q", id, got.Credential, got.ModelHash, got.AudioRef,
			want.Credential, want.ModelHash, want.AudioRef)
	}
	return got
}

// TestSQLiteSurvivesRestart writes credentials in this process, closes the
// database, reads and rewrites them in a second process (this test binary
// run again), then reopens the file here and reads what the child wrote.
func TestSQLiteSurvivesRestart(t *testing.T) {
	if path := os.Getenv(restartEnvDB); path != "" {
		restartChild(t, path)
		return
	}
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "restart.db")
	key := testKey("restart").Secret
	nonce := hex.EncodeToString(testKey("n").Secret[:8])

	// 1. Parent writes, then closes the database (subtest cleanups run when
	// the subtest ends).
	var parentCreated time.Time
	t.Run("parent-writes", func(t *testing.T) {
		s, e := openRestartStores(t, path, key)
		if err := s.Put(ctx, "+34600000001", restartRecord(nonce, "parent-plain")); err != nil {
			t.Fatal(err)
		}
		if err := e.Put(ctx, "+34600000002", restartRecord(nonce, "parent-enc")); err != nil {
			t.Fatal(err)
		}
		parentCreated = expectRecord(t, s, "+34600000001", restartRecord(nonce, "parent-plain")).CreatedAt
	})
	if t.Failed() {
		return
	}

	// 2. A child process reads the parent's records, overwrites one and
	// writes new ones.
	t.Run("child-reads-and-writes", func(t *testing.T) {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSQLiteSurvivesRestart$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			restartEnvDB+"="+path,
			restartEnvKey+"="+hex.EncodeToString(key),
			restartEnvNonce+"="+nonce)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child process failed: %v\n%s", err, out)
		}
		i := strings.Index(string(out), restartMarker)
		if i < 0 {
			t.Fatalf("child did not report success:\n%s", out)
		}
		var childPID int
		if _, err := fmt.Sscanf(string(out[i+len(restartMarker):]), "%d", &childPID); err != nil || childPID == os.Getpid() {
			t.Fatalf("child pid %d (parent %d), %v", childPID, os.Getpid(), err)
		}
	})
	if t.Failed() {
		return
	}

	// 3. The parent reopens the file and reads what the child wrote.
	t.Run("parent-reads", func(t *testing.T) {
		s, e := openRestartStores(t, path, key)
		expectRecord(t, s, "+34600000003", restartRecord(nonce, "child-plain"))
		expectRecord(t, e, "+34600000004", restartRecord(nonce, "child-enc"))
		expectRecord(t, e, "+34600000002", restartRecord(nonce, "parent-enc"))
		over := expectRecord(t, s, "+34600000001", restartRecord(nonce, "child-overwrite"))
		if !over.CreatedAt.Equal(parentCreated) {
			t.Errorf("CreatedAt across processes: %v, want %v", over.CreatedAt, parentCreated)
		}
		if !over.UpdatedAt.After(parentCreated) {
			t.Errorf("UpdatedAt %v not after %v", over.UpdatedAt, parentCreated)
		}
		// The encrypted record does not open under another key.
		_, e2 := openRestartStores(t, path, testKey("restart").Secret)
		if _, err := e2.Get(ctx, "+34600000004"); !errors.Is(err, credstore.ErrDecrypt) {
			t.Errorf("Get with another key = %v, want ErrDecrypt", err)
		}
	})
}

func restartChild(t *testing.T, path string) {
	ctx := context.Background()
	key, err := hex.DecodeString(os.Getenv(restartEnvKey))
	if err != nil {
		t.Fatal(err)
	}
	nonce := os.Getenv(restartEnvNonce)
	s, e := openRestartStores(t, path, key)
	expectRecord(t, s, "+34600000001", restartRecord(nonce, "parent-plain"))
	expectRecord(t, e, "+34600000002", restartRecord(nonce, "parent-enc"))
	time.Sleep(5 * time.Millisecond)
	for _, w := range []struct {
		s   credstore.Store
		id  string
		who string
	}{
		{s, "+34600000001", "child-overwrite"},
		{s, "+34600000003", "child-plain"},
		{e, "+34600000004", "child-enc"},
	} {
		if err := w.s.Put(ctx, w.id, restartRecord(nonce, w.who)); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Printf("%s%d\n", restartMarker, os.Getpid())
}

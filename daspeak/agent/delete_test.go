package agent

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/voicegate/voicegate/credstore"
)

// sealedStore is a credstore.Store whose records cannot be opened, as
// records sealed with a key no longer in the ring: Get fails with
// credstore.ErrDecrypt for every record it holds.
type sealedStore struct{ credstore.Store }

func (s sealedStore) Get(ctx context.Context, id string) (credstore.Record, error) {
	if _, err := s.Store.Get(ctx, id); err != nil {
		return credstore.Record{}, err
	}
	return credstore.Record{}, fmt.Errorf("sealed: %w", credstore.ErrDecrypt)
}

// TestDeleteTruthful: /delete answers deleted:true only for a caller
// that had a record, one the store cannot open included (it is deleted
// all the same), and deleted:false when nothing was stored.
func TestDeleteTruthful(t *testing.T) {
	mem := credstore.NewMemory()
	e := newEnv(t, func(o *Options, _ *fakeSource) { o.Store = &CredentialStore{Store: sealedStore{mem}} })
	e.src.set(callA, fakeCall{ani: callerA, live: true, hold: true})
	ctx := context.Background()
	if err := mem.Put(ctx, callerA, credstore.Record{Credential: "c", ModelHash: "m"}); err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"call_id": callA, "caller_id": callerA}
	// No enrolment audio is kept (no AudioDir): none is said removed.
	if code, m := e.post("/delete", body); code != 200 || m["deleted"] != true || m["audio_deleted"] != false {
		t.Fatalf("delete of a record the store cannot open: %d %v", code, m)
	}
	if _, err := mem.Get(ctx, callerA); !errors.Is(err, credstore.ErrNotFound) {
		t.Fatalf("record after delete: %v", err)
	}
	if code, m := e.post("/delete", body); code != 200 || m["deleted"] != false {
		t.Fatalf("delete with nothing stored: %d %v", code, m)
	}
}

// lateStore is a credstore.Store whose Get, once armed, answers not
// found and then stores a record for the id: another node's register
// landing between a delete's read and its write. It is a
// credstore.Remover over any Store (Remove answers errors.ErrUnsupported
// when the Store is not one).
type lateStore struct {
	credstore.Store
	armed atomic.Bool
}

func (s *lateStore) Get(ctx context.Context, id string) (credstore.Record, error) {
	if s.armed.CompareAndSwap(true, false) {
		if err := s.Store.Put(ctx, id, credstore.Record{Credential: "other node", ModelHash: "m"}); err != nil {
			return credstore.Record{}, err
		}
		return credstore.Record{}, credstore.ErrNotFound
	}
	return s.Store.Get(ctx, id)
}

func (s *lateStore) Remove(ctx context.Context, id string) (bool, error) {
	r, ok := s.Store.(credstore.Remover)
	if !ok {
		return false, errors.ErrUnsupported
	}
	return r.Remove(ctx, id)
}

// plainStore hides every method of a Store beyond credstore.Store (a
// store without credstore.Remover).
type plainStore struct{ credstore.Store }

// encrypted wraps s in a credstore.Encrypted.
func encrypted(t *testing.T, s credstore.Store) credstore.Store {
	ring, err := credstore.NewKeyring(credstore.Key{ID: "k", Secret: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := credstore.NewEncrypted(s, ring, nil)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// Test databases, as the credstore tests use them.
const (
	envPostgres     = "VOICEGATE_TEST_POSTGRES"
	envMySQL        = "VOICEGATE_TEST_MYSQL"
	defaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	defaultMySQL    = "root@tcp(127.0.0.1:3306)/test"
)

var sqlTableSeq atomic.Int64

// sqlStore returns a credstore.SQL of dialect d on a fresh table, closed
// and dropped in cleanup: SQLite in a temporary file, PostgreSQL and
// MySQL at the test servers (skipping the test when unreachable).
func sqlStore(t *testing.T, d credstore.Dialect) *credstore.SQL {
	t.Helper()
	driver, env, dsn := "sqlite", "", "file:"+filepath.Join(t.TempDir(), "c.db")
	switch d {
	case credstore.Postgres:
		driver, env, dsn = "pgx", envPostgres, defaultPostgres
	case credstore.MySQL:
		driver, env, dsn = "mysql", envMySQL, defaultMySQL
	}
	if v := os.Getenv(env); env != "" && v != "" {
		dsn = v
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Skipf("%v server not reachable (set %s to a DSN to run this test): %v", d, env, err)
	}
	opts := &credstore.SQLOptions{Table: fmt.Sprintf("agent_delete_%d_%d", os.Getpid(), sqlTableSeq.Add(1))}
	t.Cleanup(func() {
		for _, tab := range []string{opts.Table, opts.Table + "_schema"} {
			db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+tab)
		}
	})
	if err := credstore.Migrate(ctx, db, d, opts); err != nil {
		t.Fatal(err)
	}
	s, err := credstore.NewSQL(ctx, db, d, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestDeleteCountsRaceWithStore: a register another node stored right
// after the delete read the caller's record is deleted, and with a
// store that reports what a delete removed (credstore.Remover: Memory,
// SQL, an Encrypted over either) the answer says deleted:true; a store
// without it (an Encrypted over one included, which falls back to
// Delete) cannot tell.
func TestDeleteCountsRaceWithStore(t *testing.T) {
	for _, c := range []struct {
		name  string
		store func(t *testing.T) credstore.Store
		after bool // the answer's deleted
	}{
		{"Memory", func(*testing.T) credstore.Store { return credstore.NewMemory() }, true},
		{"plain Store", func(*testing.T) credstore.Store { return plainStore{credstore.NewMemory()} }, false},
		{"Encrypted over Memory", func(t *testing.T) credstore.Store { return encrypted(t, credstore.NewMemory()) }, true},
		{"Encrypted over a plain Store", func(t *testing.T) credstore.Store { return encrypted(t, plainStore{credstore.NewMemory()}) }, false},
		{"SQLite", func(t *testing.T) credstore.Store { return sqlStore(t, credstore.SQLite) }, true},
		{"Encrypted over SQLite", func(t *testing.T) credstore.Store { return encrypted(t, sqlStore(t, credstore.SQLite)) }, true},
		{"PostgreSQL", func(t *testing.T) credstore.Store { return sqlStore(t, credstore.Postgres) }, true},
		{"Encrypted over PostgreSQL", func(t *testing.T) credstore.Store { return encrypted(t, sqlStore(t, credstore.Postgres)) }, true},
		{"MySQL", func(t *testing.T) credstore.Store { return sqlStore(t, credstore.MySQL) }, true},
		{"Encrypted over MySQL", func(t *testing.T) credstore.Store { return encrypted(t, sqlStore(t, credstore.MySQL)) }, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			inner := c.store(t)
			ls := &lateStore{Store: inner}
			var store credstore.Store = ls
			if _, ok := inner.(credstore.Remover); !ok {
				store = plainStore{ls}
			}
			e := newEnv(t, func(o *Options, _ *fakeSource) { o.Store = &CredentialStore{Store: store} })
			e.src.set(callA, fakeCall{ani: callerA, live: true, hold: true})
			ls.armed.Store(true)
			code, m := e.post("/delete", map[string]any{"call_id": callA, "caller_id": callerA})
			if code != 200 || m["deleted"] != c.after {
				t.Fatalf("delete racing a store: %d %v, want deleted %v", code, m, c.after)
			}
			if _, err := inner.Get(context.Background(), callerA); !errors.Is(err, credstore.ErrNotFound) {
				t.Fatalf("record after delete: %v", err)
			}
		})
	}
}

// TestDeleteRetiredKeyWithAudio: with an enrolment-audio directory, a
// record sealed with a retired key (it cannot be opened) is deleted all
// the same, with the caller's audio under every name the server can
// derive, and the answer says so.
func TestDeleteRetiredKeyWithAudio(t *testing.T) {
	ctx := context.Background()
	secret := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	ring, err := credstore.NewKeyring(credstore.Key{ID: "old", Secret: secret(1)})
	if err != nil {
		t.Fatal(err)
	}
	mem := credstore.NewMemory()
	enc, err := credstore.NewEncrypted(mem, ring, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cs := &CredentialStore{Store: enc, AudioDir: dir, AudioKey: testAudioKey}
	if err := cs.StoreCredential(ctx, callerA, "c", "m", []byte("RIFF")); err != nil {
		t.Fatal(err)
	}
	legacy := filepath.Join(dir, legacyAudioName(callerA))
	if err := os.WriteFile(legacy, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ring.Rotate(credstore.Key{ID: "new", Secret: secret(2)}); err != nil {
		t.Fatal(err)
	}
	if err := ring.Retire("old"); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Get(ctx, callerA); err == nil || errors.Is(err, credstore.ErrNotFound) {
		t.Fatalf("record sealed with a retired key opened: %v", err)
	}
	e := newEnv(t, func(o *Options, _ *fakeSource) { o.Store = cs })
	e.src.set(callA, fakeCall{ani: callerA, live: true, hold: true})
	body := map[string]any{"call_id": callA, "caller_id": callerA}
	if code, m := e.post("/delete", body); code != 200 || m["deleted"] != true || m["audio_deleted"] != true {
		t.Fatalf("delete of a record sealed with a retired key: %d %v", code, m)
	}
	if _, err := mem.Get(ctx, callerA); !errors.Is(err, credstore.ErrNotFound) {
		t.Fatalf("record after delete: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("audio after delete: %v", ents)
	}
}

// lateAudioStore is a credstore.Memory whose Remove, once armed, first
// writes the caller's enrolment audio: another node's register that wrote
// its audio after the delete swept the audio directory and stored its
// record before the delete removed it.
type lateAudioStore struct {
	*credstore.Memory
	cs    *CredentialStore
	armed atomic.Bool
}

func (s *lateAudioStore) Remove(ctx context.Context, id string) (bool, error) {
	if s.armed.CompareAndSwap(true, false) {
		if err := os.WriteFile(filepath.Join(s.cs.AudioDir, s.cs.audioName(id)), []byte("RIFF"), 0o600); err != nil {
			return false, err
		}
	}
	return s.Memory.Remove(ctx, id)
}

// TestDeleteSweepsAudioAfterRecord: audio another node wrote after the
// delete's first sweep of the audio directory, for a record the delete
// then removed, is removed too, and audio_deleted says so.
func TestDeleteSweepsAudioAfterRecord(t *testing.T) {
	ls := &lateAudioStore{Memory: credstore.NewMemory()}
	ls.cs = &CredentialStore{Store: ls, AudioDir: t.TempDir(), AudioKey: testAudioKey}
	if err := ls.Memory.Put(context.Background(), callerA, credstore.Record{Credential: "other node", ModelHash: "m"}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *Options, _ *fakeSource) { o.Store = ls.cs })
	e.src.set(callA, fakeCall{ani: callerA, live: true, hold: true})
	ls.armed.Store(true)
	code, m := e.post("/delete", map[string]any{"call_id": callA, "caller_id": callerA})
	if code != 200 || m["deleted"] != true || m["audio_deleted"] != true {
		t.Fatalf("delete racing another node's audio: %d %v", code, m)
	}
	if ents, _ := os.ReadDir(ls.cs.AudioDir); len(ents) != 0 {
		t.Fatalf("audio after delete: %v", ents)
	}
}

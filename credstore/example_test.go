package credstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // the application picks and imports the driver

	"github.com/voicegate/voicegate/credstore"
)

func ExampleNewMemory() {
	ctx := context.Background()
	store := credstore.NewMemory()

	// A register session produced a credential for the caller.
	err := store.Put(ctx, "+34600000000", credstore.Record{
		Credential: "opaque-credential-from-das-Peak",
		ModelHash:  "model-hash",
	})
	if err != nil {
		log.Fatal(err)
	}

	rec, err := store.Get(ctx, "+34600000000")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rec.Credential, rec.ModelHash, rec.CreatedAt.Equal(rec.UpdatedAt))

	_, err = store.Get(ctx, "+34999999999")
	fmt.Println(errors.Is(err, credstore.ErrNotFound))
	// Output:
	// opaque-credential-from-das-Peak model-hash true
	// true
}

func ExampleNewSQL() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "credstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// For PostgreSQL: sql.Open("pgx", dsn) and credstore.Postgres;
	// for MySQL/MariaDB: sql.Open("mysql", dsn) and credstore.MySQL.
	dsn := "file:" + filepath.Join(dir, "credentials.db") + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	opts := &credstore.SQLOptions{Table: "voice_credentials"}
	if err := credstore.Migrate(ctx, db, credstore.SQLite, opts); err != nil {
		log.Fatal(err)
	}
	store, err := credstore.NewSQL(ctx, db, credstore.SQLite, opts)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	if err := store.Put(ctx, "+34600000000", credstore.Record{Credential: "v1", ModelHash: "m"}); err != nil {
		log.Fatal(err)
	}
	if err := store.Put(ctx, "+34600000000", credstore.Record{Credential: "v2", ModelHash: "m"}); err != nil {
		log.Fatal(err)
	}
	rec, err := store.Get(ctx, "+34600000000")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rec.Credential, !rec.UpdatedAt.Before(rec.CreatedAt))

	if err := store.Delete(ctx, "+34600000000"); err != nil {
		log.Fatal(err)
	}
	_, err = store.Get(ctx, "+34600000000")
	fmt.Println(errors.Is(err, credstore.ErrNotFound))
	// Output:
	// v2 true
	// true
}

func ExampleNewEncrypted() {
	ctx := context.Background()

	// In production the secrets come from a KMS or secret manager.
	secret := make([]byte, credstore.KeySize)
	if _, err := rand.Read(secret); err != nil {
		log.Fatal(err)
	}
	ring, err := credstore.NewKeyring(credstore.Key{ID: "2026-11", Secret: secret})
	if err != nil {
		log.Fatal(err)
	}
	inner := credstore.NewMemory() // or a *credstore.SQL
	store, err := credstore.NewEncrypted(inner, ring, nil)
	if err != nil {
		log.Fatal(err)
	}

	if err := store.Put(ctx, "+34600000000", credstore.Record{Credential: "secret-credential"}); err != nil {
		log.Fatal(err)
	}
	rec, _ := store.Get(ctx, "+34600000000")
	raw, _ := inner.Get(ctx, "+34600000000")
	fmt.Println(rec.Credential, raw.Credential == rec.Credential)

	// Rotate: new writes use the new key, old records still open.
	next := make([]byte, credstore.KeySize)
	if _, err := rand.Read(next); err != nil {
		log.Fatal(err)
	}
	if err := ring.Rotate(credstore.Key{ID: "2027-05", Secret: next}); err != nil {
		log.Fatal(err)
	}
	moved, _ := store.Rewrap(ctx, "+34600000000") // re-seal with the current key
	if err := ring.Retire("2026-11"); err != nil {
		log.Fatal(err)
	}
	rec, err = store.Get(ctx, "+34600000000")
	fmt.Println(moved, rec.Credential, err)
	// Output:
	// secret-credential false
	// true secret-credential <nil>
}

package main

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/voicegate/voicegate/credstore"

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

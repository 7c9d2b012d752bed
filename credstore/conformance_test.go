package credstore_test

import (
	"database/sql"
	"testing"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/credstore/credstoretest"
)

// builtin is what the built-in stores claim: all of them, and an
// Encrypted over any of them, support credstore.Remover.
var builtin = &credstoretest.Options{Remover: true}

func TestConformanceMemory(t *testing.T) {
	t.Run("Plain", func(t *testing.T) {
		credstoretest.RunWith(t, func(t *testing.T) credstore.Store { return credstore.NewMemory() }, builtin)
	})
	t.Run("Encrypted", func(t *testing.T) {
		credstoretest.RunWith(t, func(t *testing.T) credstore.Store { return encrypt(t, credstore.NewMemory()) }, builtin)
	})
}

func TestConformanceSQLite(t *testing.T) {
	t.Parallel()
	t.Run("Plain", func(t *testing.T) {
		t.Parallel()
		credstoretest.RunWith(t, func(t *testing.T) credstore.Store {
			return newSQLStore(t, openSQLite(t), credstore.SQLite)
		}, builtin)
	})
	t.Run("Encrypted", func(t *testing.T) {
		t.Parallel()
		credstoretest.RunWith(t, func(t *testing.T) credstore.Store {
			return encrypt(t, newSQLStore(t, openSQLite(t), credstore.SQLite))
		}, builtin)
	})
}

func testConformanceServer(t *testing.T, d credstore.Dialect) {
	t.Parallel()
	db := openServer(t, d)
	db.SetMaxOpenConns(16)
	run := func(wrap func(*testing.T, *sql.DB) credstore.Store) func(*testing.T) {
		return func(t *testing.T) {
			t.Parallel()
			credstoretest.RunWith(t, func(t *testing.T) credstore.Store { return wrap(t, db) }, builtin)
		}
	}
	t.Run("Plain", run(func(t *testing.T, db *sql.DB) credstore.Store { return newSQLStore(t, db, d) }))
	t.Run("Encrypted", run(func(t *testing.T, db *sql.DB) credstore.Store { return encrypt(t, newSQLStore(t, db, d)) }))
}

func TestConformancePostgres(t *testing.T) { testConformanceServer(t, credstore.Postgres) }

func TestConformanceMySQL(t *testing.T) { testConformanceServer(t, credstore.MySQL) }

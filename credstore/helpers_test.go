package credstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/voicegate/voicegate/credstore"
)

// Test databases. Override with these environment variables; the defaults
// are local servers with trust authentication.
const (
	envPostgres     = "VOICEGATE_TEST_POSTGRES"
	envMySQL        = "VOICEGATE_TEST_MYSQL"
	defaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	defaultMySQL    = "root@tcp(127.0.0.1:3306)/test"
)

// tb is the part of testing.TB the helpers need.
type tb interface {
	Helper()
	Cleanup(func())
	Fatalf(string, ...any)
	Skipf(string, ...any)
	TempDir() string
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// openServer opens and pings a server database, skipping the test with a
// clear message when it is unreachable. The *sql.DB is closed in cleanup.
func openServer(t tb, d credstore.Dialect) *sql.DB {
	t.Helper()
	driver, env, dsn := "pgx", envPostgres, envOr(envPostgres, defaultPostgres)
	if d == credstore.MySQL {
		driver, env, dsn = "mysql", envMySQL, envOr(envMySQL, defaultMySQL)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatalf("sql.Open(%s): %v", driver, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		t.Skipf("%v server not reachable (set %s to a DSN to run this test): %v", d, env, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// openSQLite opens a fresh SQLite database file in a temporary directory,
// set up for concurrent use (WAL, busy timeout).
func openSQLite(t tb) *sql.DB {
	t.Helper()
	return openSQLiteFile(t, filepath.Join(t.TempDir(), "credentials.db"))
}

func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
}

func openSQLiteFile(t tb, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		t.Fatalf("sql.Open(sqlite): %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

var tableSeq atomic.Int64

// uniqueTable returns a table name that no other test run on the same
// server uses.
func uniqueTable() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("credstore_test_%d_%s_%d", os.Getpid(), hex.EncodeToString(b[:]), tableSeq.Add(1))
}

// newSQLStore migrates a fresh table in db and returns a store on it. The
// store is closed and the table dropped in cleanup.
func newSQLStore(t tb, db *sql.DB, d credstore.Dialect) *credstore.SQL {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := &credstore.SQLOptions{Table: uniqueTable()}
	t.Cleanup(func() { dropTables(db, d, opts.Table) })
	if err := credstore.Migrate(ctx, db, d, opts); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	s, err := credstore.NewSQL(ctx, db, d, opts)
	if err != nil {
		t.Fatalf("NewSQL: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func dropTables(db *sql.DB, d credstore.Dialect, table string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q := func(n string) string {
		if d == credstore.MySQL {
			return "`" + n + "`"
		}
		return `"` + n + `"`
	}
	for _, n := range []string{table, table + "_schema"} {
		_, _ = db.ExecContext(ctx, "DROP TABLE IF EXISTS "+q(n))
	}
}

// testKey returns a random key with the given id.
func testKey(id string) credstore.Key {
	k := credstore.Key{ID: id, Secret: make([]byte, credstore.KeySize)}
	_, _ = rand.Read(k.Secret)
	return k
}

// encrypt wraps s with a fresh random key ring.
func encrypt(t tb, s credstore.Store) *credstore.Encrypted {
	t.Helper()
	ring, err := credstore.NewKeyring(testKey("k1"))
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	e, err := credstore.NewEncrypted(s, ring, nil)
	if err != nil {
		t.Fatalf("NewEncrypted: %v", err)
	}
	return e
}

func readFileIfExists(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	return b, err
}

package credstore_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/credstore"
)

var allDialects = []credstore.Dialect{credstore.SQLite, credstore.Postgres, credstore.MySQL}

// openDB opens a database of dialect d for the test: a fresh SQLite file, or
// the test server (skipping the test when it is unreachable).
func openDB(t *testing.T, d credstore.Dialect) *sql.DB {
	t.Helper()
	if d == credstore.SQLite {
		return openSQLite(t)
	}
	return openServer(t, d)
}

func TestTableNameValidation(t *testing.T) {
	ctx := t.Context()
	db := openSQLite(t)
	bad := []string{
		`x"; DROP TABLE y; --`, "x`; DROP TABLE y; --", "x'", "Credentials", "a-b", "a b", "1abc",
		"a.b", "crédits", "a\x00", strings.Repeat("a", 49), "t;", "t--",
	}
	for _, name := range bad {
		opts := &credstore.SQLOptions{Table: name}
		if err := credstore.Migrate(ctx, db, credstore.SQLite, opts); !errors.Is(err, credstore.ErrInvalidTable) {
			t.Errorf("Migrate(table %q) = %v, want ErrInvalidTable", name, err)
		}
		if _, err := credstore.NewSQL(ctx, db, credstore.SQLite, opts); !errors.Is(err, credstore.ErrInvalidTable) {
			t.Errorf("NewSQL(table %q) = %v, want ErrInvalidTable", name, err)
		}
	}
	for _, name := range []string{"a", "_x", "select", "table", "credentials_v2", strings.Repeat("a", 48)} {
		opts := &credstore.SQLOptions{Table: name}
		if err := credstore.Migrate(ctx, db, credstore.SQLite, opts); err != nil {
			t.Errorf("Migrate(table %q) = %v", name, err)
			continue
		}
		s, err := credstore.NewSQL(ctx, db, credstore.SQLite, opts)
		if err != nil {
			t.Errorf("NewSQL(table %q) = %v", name, err)
			continue
		}
		if err := s.Put(ctx, "id", credstore.Record{Credential: "c"}); err != nil {
			t.Errorf("table %q: Put: %v", name, err)
		}
		_ = s.Close()
	}
	// Default table name.
	if err := credstore.Migrate(ctx, db, credstore.SQLite, nil); err != nil {
		t.Fatal(err)
	}
	s, err := credstore.NewSQL(ctx, db, credstore.SQLite, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Table() != credstore.DefaultTable || s.Dialect() != credstore.SQLite {
		t.Errorf("Table, Dialect = %q, %v", s.Table(), s.Dialect())
	}
}

func TestUnknownDialect(t *testing.T) {
	db := openSQLite(t)
	for _, d := range []credstore.Dialect{0, 4, -1} {
		if err := credstore.Migrate(t.Context(), db, d, nil); err == nil {
			t.Errorf("Migrate with dialect %v succeeded", d)
		}
		if _, err := credstore.NewSQL(t.Context(), db, d, nil); err == nil {
			t.Errorf("NewSQL with dialect %v succeeded", d)
		}
	}
	if _, err := credstore.NewSQL(t.Context(), nil, credstore.SQLite, nil); err == nil {
		t.Error("NewSQL with nil db succeeded")
	}
	if got := credstore.Dialect(9).String(); got != "Dialect(9)" {
		t.Errorf("String = %q", got)
	}
}

func TestMigrate(t *testing.T) {
	for _, d := range allDialects {
		t.Run(d.String(), func(t *testing.T) {
			c := struct {
				d  credstore.Dialect
				db *sql.DB
			}{d, openDB(t, d)}
			ctx := t.Context()
			table := uniqueTable()
			opts := &credstore.SQLOptions{Table: table}
			t.Cleanup(func() { dropTables(c.db, c.d, table) })

			if _, err := credstore.NewSQL(ctx, c.db, c.d, opts); err == nil || !strings.Contains(err.Error(), "Migrate") {
				t.Fatalf("NewSQL before Migrate = %v, want an error that points at Migrate", err)
			}
			for i := range 2 {
				if err := credstore.Migrate(ctx, c.db, c.d, opts); err != nil {
					t.Fatalf("Migrate #%d: %v", i+1, err)
				}
			}
			q := "SELECT COUNT(*), MAX(version) FROM " + quote(c.d, table+"_schema")
			var n, v int
			if err := c.db.QueryRowContext(ctx, q).Scan(&n, &v); err != nil {
				t.Fatal(err)
			}
			if n != 1 || v != credstore.SchemaVersion {
				t.Fatalf("schema table: %d rows, version %d; want 1 row, version %d", n, v, credstore.SchemaVersion)
			}
			s, err := credstore.NewSQL(ctx, c.db, c.d, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Put(ctx, "kept", credstore.Record{Credential: "c"}); err != nil {
				t.Fatal(err)
			}
			// Migrate again keeps data.
			if err := credstore.Migrate(ctx, c.db, c.d, opts); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, "kept"); err != nil {
				t.Fatalf("record lost by Migrate: %v", err)
			}
			_ = s.Close()

			// A database migrated by a newer version is refused.
			ins := "INSERT INTO " + quote(c.d, table+"_schema") + " (version, applied_at) VALUES (99, " + nowSQL(c.d) + ")"
			if _, err := c.db.ExecContext(ctx, ins); err != nil {
				t.Fatal(err)
			}
			if err := credstore.Migrate(ctx, c.db, c.d, opts); err == nil || !strings.Contains(err.Error(), "newer") {
				t.Fatalf("Migrate on a newer schema = %v, want a version error", err)
			}
		})
	}
}

func quote(d credstore.Dialect, n string) string {
	if d == credstore.MySQL {
		return "`" + n + "`"
	}
	return `"` + n + `"`
}

func nowSQL(d credstore.Dialect) string {
	if d == credstore.SQLite {
		return "'2030-01-01 00:00:00.000000'"
	}
	return "CURRENT_TIMESTAMP"
}

func TestSQLClose(t *testing.T) {
	ctx := t.Context()
	db := openSQLite(t)
	s := newSQLStore(t, db, credstore.SQLite)
	if err := s.Put(ctx, "a", credstore.Record{Credential: "c"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); !errors.Is(err, credstore.ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if err := s.Put(ctx, "a", credstore.Record{Credential: "c"}); !errors.Is(err, credstore.ErrClosed) {
		t.Errorf("Put after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, credstore.ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
	if err := s.Delete(ctx, "a"); !errors.Is(err, credstore.ErrClosed) {
		t.Errorf("Delete after Close = %v, want ErrClosed", err)
	}
	if err := db.PingContext(ctx); err != nil {
		t.Errorf("Close closed the *sql.DB: %v", err)
	}
}

// TestSQLStoredForm checks what lands in the columns: exact bytes, UTC
// times, and one row per id.
func TestSQLStoredForm(t *testing.T) {
	for _, d := range allDialects {
		t.Run(d.String(), func(t *testing.T) {
			c := struct {
				d  credstore.Dialect
				db *sql.DB
			}{d, openDB(t, d)}
			ctx := t.Context()
			s := newSQLStore(t, c.db, c.d)
			rec := credstore.Record{Credential: "\x00\x01\xfe\xff", ModelHash: "h€", AudioRef: "\xff"}
			if err := s.Put(ctx, "id", rec); err != nil {
				t.Fatal(err)
			}
			if err := s.Put(ctx, "id", rec); err != nil {
				t.Fatal(err)
			}
			var (
				cred, aref []byte
				hash       string
				n          int
			)
			q := "SELECT credential, model_hash, audio_ref FROM " + quote(c.d, s.Table()) + " WHERE id = " + map[bool]string{true: "$1", false: "?"}[c.d == credstore.Postgres]
			if err := c.db.QueryRowContext(ctx, q, "id").Scan(&cred, &hash, &aref); err != nil {
				t.Fatal(err)
			}
			if string(cred) != rec.Credential || hash != rec.ModelHash || string(aref) != rec.AudioRef {
				t.Errorf("stored %q %q %q, want %q %q %q", cred, hash, aref, rec.Credential, rec.ModelHash, rec.AudioRef)
			}
			if err := c.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+quote(c.d, s.Table())).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("%d rows after two Puts of one id, want 1", n)
			}
		})
	}
}

// TestTimeZonesDoNotShift reads and writes through connections configured
// with a non-UTC zone and checks that timestamps stay correct instants.
func TestTimeZonesDoNotShift(t *testing.T) {
	if _, err := time.LoadLocation("Asia/Tokyo"); err != nil {
		t.Skipf("time zone data not available: %v", err)
	}
	cases := []struct {
		d      credstore.Dialect
		suffix string
	}{
		{credstore.MySQL, "?parseTime=true&loc=Asia%2FTokyo"},
		{credstore.MySQL, "?parseTime=false&loc=Asia%2FTokyo"},
		{credstore.MySQL, "?parseTime=true"},
		{credstore.Postgres, "&timezone=Asia%2FTokyo"},
	}
	for _, c := range cases {
		t.Run(c.d.String()+c.suffix, func(t *testing.T) {
			ctx := t.Context()
			plain := openServer(t, c.d)
			env, def, driver := envPostgres, defaultPostgres, "pgx"
			if c.d == credstore.MySQL {
				env, def, driver = envMySQL, defaultMySQL, "mysql"
			}
			dsn := envOr(env, def)
			if strings.Contains(dsn, "?") == (c.suffix[0] == '?') {
				t.Skipf("%s is not in the default form; skipping DSN variations", env)
			}
			zoned, err := sql.Open(driver, dsn+c.suffix)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = zoned.Close() })

			s1 := newSQLStore(t, plain, c.d)
			opts := &credstore.SQLOptions{Table: s1.Table()}
			s2, err := credstore.NewSQL(ctx, zoned, c.d, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s2.Close() })

			before := time.Now()
			if err := s1.Put(ctx, "plain", credstore.Record{Credential: "c"}); err != nil {
				t.Fatal(err)
			}
			if err := s2.Put(ctx, "zoned", credstore.Record{Credential: "c"}); err != nil {
				t.Fatal(err)
			}
			after := time.Now()
			for _, s := range []*credstore.SQL{s1, s2} {
				for _, id := range []string{"plain", "zoned"} {
					rec, err := s.Get(ctx, id)
					if err != nil {
						t.Fatal(err)
					}
					if rec.CreatedAt.Location() != time.UTC {
						t.Errorf("location %v, want UTC", rec.CreatedAt.Location())
					}
					if rec.CreatedAt.Before(before.Add(-time.Second)) || rec.CreatedAt.After(after.Add(time.Second)) {
						t.Errorf("%s read back as %v, written between %v and %v", id, rec.CreatedAt, before, after)
					}
				}
			}
		})
	}
}

// TestSQLContextDeadlineMidQuery lets a call's deadline pass while the
// database blocks it (a row lock held by another transaction) and checks
// that it returns with an error at the deadline and leaves a whole record.
func TestSQLContextDeadlineMidQuery(t *testing.T) {
	for _, d := range []credstore.Dialect{credstore.Postgres, credstore.MySQL} {
		t.Run(d.String(), func(t *testing.T) {
			c := struct {
				d  credstore.Dialect
				db *sql.DB
			}{d, openDB(t, d)}
			ctx := t.Context()
			s := newSQLStore(t, c.db, c.d)
			if err := s.Put(ctx, "locked", credstore.Record{Credential: "c"}); err != nil {
				t.Fatal(err)
			}
			tx, err := c.db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			q := "UPDATE " + quote(c.d, s.Table()) + " SET model_hash = 'x' WHERE id = " + map[bool]string{true: "$1", false: "?"}[c.d == credstore.Postgres]
			if _, err := tx.ExecContext(ctx, q, "locked"); err != nil {
				t.Fatal(err)
			}
			short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			err = s.Put(short, "locked", credstore.Record{Credential: "new"})
			if err == nil {
				t.Fatal("Put through a row lock succeeded")
			}
			if short.Err() == nil {
				t.Fatalf("Put failed before the deadline: %v", err)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Put = %v, want an error wrapping context.DeadlineExceeded", err)
			}
			_ = tx.Rollback()
			// The contract allows either outcome (MySQL finishes the statement
			// server-side after the client gives up); the record must be whole.
			rec, err := s.Get(ctx, "locked")
			if err != nil {
				t.Fatal(err)
			}
			if rec.Credential != "c" && rec.Credential != "new" {
				t.Errorf("credential = %q after a timed-out Put, want old or new value", rec.Credential)
			}
			// The store still works.
			if err := s.Put(ctx, "locked", credstore.Record{Credential: "after"}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

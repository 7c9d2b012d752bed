package credstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"sync/atomic"
	"time"
)

// Dialect names the SQL database behind a *sql.DB. It is always given
// explicitly; the store never guesses it from the driver.
type Dialect int

const (
	// Postgres is PostgreSQL 9.5 or later (any driver; pgx's stdlib is
	// tested).
	Postgres Dialect = iota + 1
	// SQLite is SQLite 3.24 or later (tested with modernc.org/sqlite).
	SQLite
	// MySQL is MySQL 5.7/8.x or MariaDB 10.3 or later (tested with
	// github.com/go-sql-driver/mysql against MariaDB). The DSN needs no
	// parseTime or loc settings; times are stored as UTC either way.
	MySQL
)

// String returns the dialect's name.
func (d Dialect) String() string {
	switch d {
	case Postgres:
		return "postgres"
	case SQLite:
		return "sqlite"
	case MySQL:
		return "mysql"
	}
	return fmt.Sprintf("Dialect(%d)", int(d))
}

func (d Dialect) valid() bool { return d == Postgres || d == SQLite || d == MySQL }

// quote returns the table name quoted for d. name has passed tableRE, so
// quoting only guards against reserved words.
func (d Dialect) quote(name string) string {
	if d == MySQL {
		return "`" + name + "`"
	}
	return `"` + name + `"`
}

// ph returns the n-th (1-based) placeholder.
func (d Dialect) ph(n int) string {
	if d == Postgres {
		return fmt.Sprintf("$%d", n)
	}
	return "?"
}

// DefaultTable is the table name used when SQLOptions.Table is empty.
const DefaultTable = "voicegate_credentials"

// tableRE accepts plain lower-case identifiers short enough for every
// dialect once the "_schema" suffix of the version table is added.
var tableRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,47}$`)

// SQLOptions configures [Migrate] and [NewSQL]. A nil *SQLOptions means all
// defaults. Pass the same options to both.
type SQLOptions struct {
	// Table is the name of the credentials table; default DefaultTable. It
	// must match ^[a-z_][a-z0-9_]{0,47}$ (ErrInvalidTable otherwise), so it
	// can never carry SQL. Migrate also creates Table+"_schema" to record
	// the schema version.
	Table string
}

func (o *SQLOptions) table() (string, error) {
	t := DefaultTable
	if o != nil && o.Table != "" {
		t = o.Table
	}
	if !tableRE.MatchString(t) {
		return "", fmt.Errorf("%w: %q must match %s", ErrInvalidTable, t, tableRE)
	}
	return t, nil
}

// migration is one schema step; each dialect has its own DDL.
type migration struct {
	version int
	ddl     func(d Dialect, table string) []string
}

var migrations = []migration{
	{version: 1, ddl: func(d Dialect, table string) []string {
		t := d.quote(table)
		switch d {
		case Postgres:
			return []string{`CREATE TABLE IF NOT EXISTS ` + t + ` (
	id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	credential BYTEA NOT NULL,
	model_hash TEXT NOT NULL,
	audio_ref BYTEA NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
)`}
		case SQLite:
			return []string{`CREATE TABLE IF NOT EXISTS ` + t + ` (
	id TEXT NOT NULL PRIMARY KEY,
	credential BLOB NOT NULL,
	model_hash TEXT NOT NULL,
	audio_ref BLOB NOT NULL,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
)`}
		default: // MySQL
			// VARBINARY id: byte-exact keys, no PAD SPACE or case folding.
			return []string{"CREATE TABLE IF NOT EXISTS " + t + ` (
	id VARBINARY(256) NOT NULL PRIMARY KEY,
	credential MEDIUMBLOB NOT NULL,
	model_hash VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	audio_ref BLOB NOT NULL,
	created_at DATETIME(6) NOT NULL,
	updated_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`}
		}
	}},
}

// SchemaVersion is the schema version that this package's [Migrate] brings
// a database to.
const SchemaVersion = 1

// Migrate creates the credentials table, or brings an existing one up to
// SchemaVersion. It is idempotent: run it at start-up or deploy time, before
// [NewSQL]. The applied version is kept in Table+"_schema". Run it from one
// process at a time; two processes migrating the same database at once may
// see one of them fail, and a rerun then succeeds.
//
// Migrate never drops or rewrites data.
func Migrate(ctx context.Context, db *sql.DB, d Dialect, opts *SQLOptions) error {
	if !d.valid() {
		return fmt.Errorf("credstore: migrate: unknown dialect %v", d)
	}
	table, err := opts.table()
	if err != nil {
		return err
	}
	vt := d.quote(table + "_schema")
	var create string
	switch d {
	case Postgres:
		create = `CREATE TABLE IF NOT EXISTS ` + vt + ` (version INTEGER NOT NULL PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)`
	case SQLite:
		create = `CREATE TABLE IF NOT EXISTS ` + vt + ` (version INTEGER NOT NULL PRIMARY KEY, applied_at TEXT NOT NULL)`
	default:
		create = "CREATE TABLE IF NOT EXISTS " + vt + ` (version INTEGER NOT NULL PRIMARY KEY, applied_at DATETIME(6) NOT NULL) ENGINE=InnoDB`
	}
	if _, err := db.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("credstore: migrate: create %s: %w", table+"_schema", err)
	}
	var cur int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM `+vt).Scan(&cur); err != nil {
		return fmt.Errorf("credstore: migrate: read version: %w", err)
	}
	if cur > SchemaVersion {
		return fmt.Errorf("credstore: migrate: database schema version %d is newer than this package's %d", cur, SchemaVersion)
	}
	for _, m := range migrations {
		if m.version <= cur {
			continue
		}
		if err := applyMigration(ctx, db, d, table, vt, m); err != nil {
			return fmt.Errorf("credstore: migrate to version %d: %w", m.version, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, d Dialect, table, vt string, m migration) (err error) {
	// PostgreSQL and SQLite run DDL transactionally; MySQL commits each DDL
	// statement implicitly, which the IF NOT EXISTS forms make safe to rerun.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	for _, stmt := range m.ddl(d, table) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	q := `INSERT INTO ` + vt + ` (version, applied_at) VALUES (` + d.ph(1) + `, ` + d.ph(2) + `)`
	if _, err := tx.ExecContext(ctx, q, m.version, d.timeArg(now())); err != nil {
		return err
	}
	return tx.Commit()
}

// timeLayout is how SQLite and MySQL columns hold UTC times.
const timeLayout = "2006-01-02 15:04:05.000000"

// timeArg returns t as a query argument for d. PostgreSQL gets a
// time.Time for its TIMESTAMPTZ; SQLite and MySQL get a UTC wall-clock
// string, so no driver time-zone setting can shift it.
func (d Dialect) timeArg(t time.Time) any {
	if d == Postgres {
		return t
	}
	return t.UTC().Format(timeLayout)
}

// timeScan reads a timestamp column written by timeArg.
type timeScan struct {
	d Dialect
	t *time.Time
}

func (s timeScan) Scan(v any) error {
	switch x := v.(type) {
	case time.Time:
		if s.d == Postgres {
			*s.t = x.UTC()
		} else {
			// The column holds UTC wall-clock time; a driver may have
			// attached its own location to it (MySQL parseTime with loc).
			*s.t = time.Date(x.Year(), x.Month(), x.Day(), x.Hour(), x.Minute(), x.Second(), x.Nanosecond(), time.UTC)
		}
		return nil
	case string:
		return s.parse(x)
	case []byte:
		return s.parse(string(x))
	}
	return fmt.Errorf("credstore: timestamp column holds %T", v)
}

func (s timeScan) parse(v string) error {
	t, err := time.ParseInLocation("2006-01-02 15:04:05.999999999", v, time.UTC)
	if err != nil {
		// Some drivers render timestamps as RFC 3339.
		t2, err2 := time.Parse(time.RFC3339Nano, v)
		if err2 != nil {
			return fmt.Errorf("credstore: bad timestamp %q: %w", v, err)
		}
		t = t2.UTC()
	}
	*s.t = t
	return nil
}

// SQL is a Store over a *sql.DB. It works with PostgreSQL, SQLite and
// MySQL/MariaDB, named by an explicit [Dialect], and imports no driver: the
// application imports one and opens the *sql.DB.
//
// Put is a single upsert statement (INSERT … ON CONFLICT / ON DUPLICATE KEY
// UPDATE), so it is atomic; Get and Delete are single statements. All three
// are prepared once in [NewSQL]. SQL is safe for concurrent use as far as
// the database is: for SQLite with several connections, open the database
// with a busy timeout (modernc.org/sqlite: "?_pragma=busy_timeout(5000)")
// and preferably WAL, or call db.SetMaxOpenConns(1). An in-memory SQLite
// database (":memory:") needs SetMaxOpenConns(1), as every connection would
// otherwise see its own empty database.
//
// Credential and AudioRef are kept as binary columns (BYTEA, BLOB,
// MEDIUMBLOB), exactly as given; see [Encrypted] to keep them encrypted at
// rest. Ids are compared byte for byte in every dialect. Times are kept in
// UTC at microsecond precision.
//
// Close releases the prepared statements, not the *sql.DB, which the
// caller keeps owning and closes after the store.
type SQL struct {
	db      *sql.DB
	d       Dialect
	table   string
	put     *sql.Stmt
	get     *sql.Stmt
	del     *sql.Stmt
	closing atomic.Bool
}

var _ Store = (*SQL)(nil)

// NewSQL returns a store over db in dialect d, preparing its statements.
// The table must exist at SchemaVersion: call [Migrate] first with the same
// options. db is not closed by the store.
func NewSQL(ctx context.Context, db *sql.DB, d Dialect, opts *SQLOptions) (*SQL, error) {
	if db == nil {
		return nil, errors.New("credstore: NewSQL: nil *sql.DB")
	}
	if !d.valid() {
		return nil, fmt.Errorf("credstore: NewSQL: unknown dialect %v", d)
	}
	table, err := opts.table()
	if err != nil {
		return nil, err
	}
	var ver int
	err = db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM `+d.quote(table+"_schema")).Scan(&ver)
	switch {
	case err != nil:
		return nil, fmt.Errorf("credstore: NewSQL: read schema version of table %s (has Migrate run?): %w", table, err)
	case ver < SchemaVersion:
		return nil, fmt.Errorf("credstore: NewSQL: table %s has schema version %d, want %d: run Migrate", table, ver, SchemaVersion)
	case ver > SchemaVersion:
		return nil, fmt.Errorf("credstore: NewSQL: table %s has schema version %d, newer than this package's %d", table, ver, SchemaVersion)
	}
	s := &SQL{db: db, d: d, table: table}
	t := d.quote(table)
	var upsert string
	switch d {
	case Postgres:
		upsert = `INSERT INTO ` + t + ` (id, credential, model_hash, audio_ref, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (id) DO UPDATE SET credential = EXCLUDED.credential, model_hash = EXCLUDED.model_hash,
	audio_ref = EXCLUDED.audio_ref, updated_at = EXCLUDED.updated_at`
	case SQLite:
		upsert = `INSERT INTO ` + t + ` (id, credential, model_hash, audio_ref, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET credential = excluded.credential, model_hash = excluded.model_hash,
	audio_ref = excluded.audio_ref, updated_at = excluded.updated_at`
	default:
		upsert = "INSERT INTO " + t + ` (id, credential, model_hash, audio_ref, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON DUPLICATE KEY UPDATE credential = VALUES(credential), model_hash = VALUES(model_hash),
	audio_ref = VALUES(audio_ref), updated_at = VALUES(updated_at)`
	}
	stmts := []struct {
		dst  **sql.Stmt
		name string
		q    string
	}{
		{&s.put, "put", upsert},
		{&s.get, "get", `SELECT credential, model_hash, audio_ref, created_at, updated_at FROM ` + t + ` WHERE id = ` + d.ph(1)},
		{&s.del, "delete", `DELETE FROM ` + t + ` WHERE id = ` + d.ph(1)},
	}
	for _, st := range stmts {
		p, err := db.PrepareContext(ctx, st.q)
		if err != nil {
			s.closeStmts()
			return nil, fmt.Errorf("credstore: NewSQL: prepare %s on table %s (has Migrate run?): %w", st.name, table, err)
		}
		*st.dst = p
	}
	return s, nil
}

// Dialect returns the store's dialect.
func (s *SQL) Dialect() Dialect { return s.d }

// Table returns the name of the store's table.
func (s *SQL) Table() string { return s.table }

// Put implements Store.
func (s *SQL) Put(ctx context.Context, id string, rec Record) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	if err := validateRecord(rec, EnvelopeHeadroom); err != nil {
		return err
	}
	if s.closing.Load() {
		return ErrClosed
	}
	t := s.d.timeArg(now())
	_, err := s.put.ExecContext(ctx, id, nonNil(rec.Credential), rec.ModelHash, nonNil(rec.AudioRef), t, t)
	if err != nil {
		return s.wrap("put", err)
	}
	return nil
}

// Get implements Store.
func (s *SQL) Get(ctx context.Context, id string) (Record, error) {
	if err := ValidateID(id); err != nil {
		return Record{}, err
	}
	if s.closing.Load() {
		return Record{}, ErrClosed
	}
	var (
		rec        Record
		cred, aref []byte
	)
	err := s.get.QueryRowContext(ctx, id).Scan(&cred, &rec.ModelHash, &aref,
		timeScan{s.d, &rec.CreatedAt}, timeScan{s.d, &rec.UpdatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, s.wrap("get", err)
	}
	rec.Credential = string(cred)
	rec.AudioRef = string(aref)
	return rec, nil
}

// Delete implements Store.
func (s *SQL) Delete(ctx context.Context, id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	if s.closing.Load() {
		return ErrClosed
	}
	if _, err := s.del.ExecContext(ctx, id); err != nil {
		return s.wrap("delete", err)
	}
	return nil
}

// Remove implements Remover: removed is the statement's RowsAffected.
func (s *SQL) Remove(ctx context.Context, id string) (bool, error) {
	if err := ValidateID(id); err != nil {
		return false, err
	}
	if s.closing.Load() {
		return false, ErrClosed
	}
	res, err := s.del.ExecContext(ctx, id)
	if err != nil {
		return false, s.wrap("delete", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.wrap("delete", err)
	}
	return n > 0, nil
}

// Close releases the prepared statements. Calls after Close, and a second
// Close, return ErrClosed. It does not close the *sql.DB.
func (s *SQL) Close() error {
	if s.closing.Swap(true) {
		return ErrClosed
	}
	return s.closeStmts()
}

func (s *SQL) closeStmts() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.put, s.get, s.del} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

func (s *SQL) wrap(op string, err error) error {
	if s.closing.Load() {
		return ErrClosed
	}
	return fmt.Errorf("credstore: sql %s: %w", op, err)
}

// nonNil returns v as a non-nil byte slice: drivers store a nil []byte as
// NULL, and the columns are NOT NULL.
func nonNil(v string) []byte {
	if v == "" {
		return []byte{}
	}
	return []byte(v)
}

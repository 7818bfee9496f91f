// Package sqlstore is the [apikey.Store] on a SQL database through
// database/sql: PostgreSQL, MySQL or MariaDB, and SQLite. It imports no
// driver: open the *sql.DB with yours (pgx's stdlib, go-sql-driver/mysql,
// modernc.org/sqlite) and name its [Dialect].
//
// The schema comes as versioned migrations embedded in the package:
// [Migrate] applies the missing ones, safe when several instances
// start at once, and [Migrations] returns the files for teams that run
// their own migration tool. [New] refuses a schema older than the code,
// naming the migration to run.
//
// Each key is one row: its record as JSON, plus the columns its lookups
// need (the hash, which is the verification index, the owner, the
// expiry). The per-owner limit is checked and the key inserted in one
// transaction that first locks the owner's row in keygate_owners, so
// concurrent creates for one owner queue there and no table is locked.
// SQLite has one writer at a time anyway: open it with _txlock=immediate
// (and a busy_timeout), so that a transaction takes the write lock when it
// begins rather than failing when it first writes. With
// go-sql-driver/mysql, set interpolateParams=true: otherwise each query
// with arguments is prepared, run and closed, three round trips for one.
//
// Every change of a key (by its hash) or an account (by its ID) is also
// appended to a change feed (keygate_changes) in the same transaction;
// [Store.WatchChanges] polls it, so that store/cachestore in front of
// every instance drops its copy within [Config].PollInterval. The Store keeps usage counters too
// ([usage.Store]).
//
// Every failure to reach the database is returned wrapped, never as
// [apikey.ErrNotFound]; a row that does not decode is an error, never a
// zero record.
package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/apikey/usage"
	"github.com/keygate/keygate/internal/breaker"
	"go.opentelemetry.io/otel/metric"
)

// Dialect names the SQL of a database.
type Dialect string

// The supported dialects.
const (
	Postgres Dialect = "postgres"
	MySQL    Dialect = "mysql" // MySQL 8 and MariaDB 10.6 or newer (for JSON_TABLE)
	SQLite   Dialect = "sqlite"
)

// Config configures a [Store]. Dialect is required; the zero value of
// every other field selects the default it names.
type Config struct {
	// Dialect is the database's SQL.
	Dialect Dialect
	// PollInterval is how often [Store.WatchChanges] reads the
	// change feed: about the longest a key revoked through one instance
	// keeps verifying from another's cache. Default 250 milliseconds.
	PollInterval time.Duration
	// Timeout bounds each Lookup and Account, the calls on the request
	// path, within any deadline of the caller's, so that a database that
	// hangs costs a request a bounded time (then an error: answer 503).
	// After three faults in a row (timeouts, refused or broken
	// connections) these calls fail at once, and one every half second
	// probes whether the database is back. Default 500 milliseconds.
	Timeout time.Duration
	// ManagementTimeout bounds every other call (changes, lists, the
	// audit trail, usage, purges), so that a management request on a
	// database that hangs is answered in a bounded time too. Default 5
	// seconds.
	ManagementTimeout time.Duration
	// EventRetention is how long the audit trail keeps an event (see
	// [event.PerKey] for the bound per key). Default
	// [event.Retention], 90 days.
	EventRetention time.Duration
	// Outbox keeps every event for delivery too (the store is then an
	// [event.Outbox]), written in the same transaction as its change,
	// until a dispatcher (apikey/event/dispatch) settles it. Leave it off
	// when nothing drains it: the outbox would only grow.
	Outbox bool
	// MeterProvider, when set, reports the circuit breaker through the
	// OpenTelemetry metric API: keygate.breaker.open{component="sqlstore"},
	// the servers whose breaker is open. Default: none.
	MeterProvider metric.MeterProvider
}

// Store keeps key records in a SQL database. It is safe for concurrent
// use.
type Store struct {
	db            *sql.DB
	dialect       Dialect
	pollInterval  time.Duration
	timeout       time.Duration
	manageTimeout time.Duration
	// eventRetention is Config.EventRetention.
	eventRetention time.Duration
	outbox         bool
	addUsage       string // the statement of AddUsage, built once
	// breaker fails the reads on the request path at once while the
	// database is failing, instead of each waiting for Timeout.
	breaker breaker.Set
}

var (
	_ apikey.Store = (*Store)(nil)
	_ usage.Store  = (*Store)(nil)
)

//go:embed migrations
var migrations embed.FS

// Migrations returns the schema migrations of dialect, one file per
// version named NNNN_name.sql, to apply in order. [Migrate] applies
// them itself; this is for teams with their own migration tool.
func Migrations(d Dialect) (fs.FS, error) {
	if !d.valid() {
		return nil, fmt.Errorf("%w: sqlstore: unknown dialect %q", apikey.ErrInvalidConfig, d)
	}
	return fs.Sub(migrations, "migrations/"+string(d))
}

func (d Dialect) valid() bool { return d == Postgres || d == MySQL || d == SQLite }

// migration is one versioned file.
type migration struct {
	version int
	name    string
	sql     string
}

func migrationsOf(d Dialect) ([]migration, error) {
	dir, err := Migrations(d)
	if err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(dir, ".")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		v, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("sqlstore: migration %s has no version", e.Name())
		}
		b, err := fs.ReadFile(dir, e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	return out, nil
}

// New returns a Store on db. It checks that the schema is up to date and
// reports one that is missing or older than the code as an error naming
// the migration to apply (call [Migrate] first).
func New(ctx context.Context, db *sql.DB, cfg Config) (*Store, error) {
	s, err := newStore(db, cfg)
	if err != nil {
		return nil, err
	}
	if err := s.checkDialect(ctx); err != nil {
		return nil, err
	}
	ms, err := migrationsOf(s.dialect)
	if err != nil {
		return nil, err
	}
	applied, err := s.appliedVersion(ctx, s.db)
	if err != nil {
		return nil, err
	}
	if last := ms[len(ms)-1]; applied < last.version {
		next := ms[0]
		for _, m := range ms {
			if m.version > applied {
				next = m
				break
			}
		}
		return nil, fmt.Errorf("sqlstore: the schema is at version %d, the code needs %d: run sqlstore.Migrate, or apply migrations/%s/%s and those after it",
			applied, last.version, s.dialect, next.name)
	}
	if cfg.MeterProvider != nil {
		// For the store's life: the database is the caller's to close.
		if _, err := s.breaker.Observe(cfg.MeterProvider, "sqlstore"); err != nil {
			return nil, fmt.Errorf("sqlstore: %w", err)
		}
	}
	return s, nil
}

func newStore(db *sql.DB, cfg Config) (*Store, error) {
	switch {
	case db == nil:
		return nil, fmt.Errorf("sqlstore: %w: nil database", apikey.ErrInvalidConfig)
	case !cfg.Dialect.valid():
		return nil, fmt.Errorf("sqlstore: %w: Config.Dialect %q is not postgres, mysql or sqlite", apikey.ErrInvalidConfig, cfg.Dialect)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 250 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 500 * time.Millisecond
	}
	if cfg.ManagementTimeout <= 0 {
		cfg.ManagementTimeout = 5 * time.Second
	}
	if cfg.EventRetention <= 0 {
		cfg.EventRetention = event.Retention
	}
	s := &Store{db: db, dialect: cfg.Dialect, pollInterval: cfg.PollInterval, timeout: cfg.Timeout,
		manageTimeout: cfg.ManagementTimeout, eventRetention: cfg.EventRetention, outbox: cfg.Outbox}
	s.addUsage = s.bind(addUsageSQL(cfg.Dialect))
	return s, nil
}

// checkDialect refuses a database of another kind than Config.Dialect
// names, which would otherwise fail later with the other server's
// confusing errors ("table doesn't exist", a syntax error).
func (s *Store) checkDialect(ctx context.Context) error {
	query := "SELECT version()" // PostgreSQL's and MySQL's, not SQLite's
	if s.dialect == SQLite {
		query = "SELECT sqlite_version()"
	}
	var version string
	err := s.db.QueryRowContext(ctx, query).Scan(&version)
	if err != nil {
		if pingErr := s.db.PingContext(ctx); pingErr != nil {
			return fmt.Errorf("sqlstore: reaching the database: %w", pingErr)
		}
		return fmt.Errorf("%w: sqlstore: Config.Dialect is %s, but the database does not answer %s: %v", apikey.ErrInvalidConfig, s.dialect, query, err)
	}
	if pg := strings.HasPrefix(version, "PostgreSQL"); pg != (s.dialect == Postgres) && s.dialect != SQLite {
		return fmt.Errorf("%w: sqlstore: Config.Dialect is %s, but the database is %s", apikey.ErrInvalidConfig, s.dialect, version)
	}
	return nil
}

// read runs a call on the request path within [Config].Timeout, through
// the breaker. ErrNotFound is an answer, not a fault.
func (s *Store) read(caller context.Context, call func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(caller, s.timeout)
	defer cancel()
	notFound := false
	err := s.breaker.Do(caller, "", func() error {
		err := call(ctx)
		if errors.Is(err, apikey.ErrNotFound) {
			notFound = true
			return nil
		}
		return err
	})
	switch {
	case notFound:
		return apikey.ErrNotFound
	case errors.Is(err, breaker.ErrOpen):
		return fmt.Errorf("sqlstore: %w", err)
	}
	return err
}

// bound returns ctx within [Config].ManagementTimeout.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.manageTimeout)
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// appliedVersion returns the latest migration applied, 0 for none.
func (s *Store) appliedVersion(ctx context.Context, q querier) (int, error) {
	var v sql.NullInt64
	err := q.QueryRowContext(ctx, "SELECT MAX(version) FROM keygate_migrations").Scan(&v)
	if err != nil {
		if exists, xerr := s.tableExists(ctx, q, "keygate_migrations"); xerr == nil && !exists {
			return 0, nil
		}
		return 0, fmt.Errorf("sqlstore: reading the schema version: %w", err)
	}
	return int(v.Int64), nil
}

func (s *Store) tableExists(ctx context.Context, q querier, table string) (bool, error) {
	var query string
	switch s.dialect {
	case Postgres:
		query = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?"
	case MySQL:
		query = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?"
	default:
		query = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
	}
	var n int
	err := q.QueryRowContext(ctx, s.bind(query), table).Scan(&n)
	return n > 0, err
}

// Migrate applies the migrations of dialect d that db lacks, in order.
// Instances that start at once queue on a lock (an advisory lock on
// PostgreSQL, a named lock on MySQL, the write lock on SQLite); each
// migration is recorded in keygate_migrations. MySQL commits schema
// changes as it makes them, so a migration cut there halfway must be
// finished by hand; on PostgreSQL and SQLite each one is a transaction.
func Migrate(ctx context.Context, db *sql.DB, d Dialect) error {
	s, err := newStore(db, Config{Dialect: d})
	if err != nil {
		return err
	}
	return s.migrateTo(ctx, math.MaxInt)
}

// migrateTo applies the migrations up to version last.
func (s *Store) migrateTo(ctx context.Context, last int) error {
	if err := s.checkDialect(ctx); err != nil {
		return err
	}
	ms, err := migrationsOf(s.dialect)
	if err != nil {
		return err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	defer conn.Close()
	if s.dialect == MySQL {
		var got sql.NullInt64
		if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK('keygate_migrate', 60)").Scan(&got); err != nil || got.Int64 != 1 {
			return fmt.Errorf("sqlstore: migrate: taking the migration lock: %v", cmp.Or(err, errors.New("timed out")))
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK('keygate_migrate')") //nolint:errcheck // released with the connection anyway
	}
	for _, m := range ms {
		if m.version > last {
			break
		}
		if err := s.apply(ctx, conn, m); err != nil {
			return err
		}
	}
	return nil
}

// apply runs m unless it is recorded already.
func (s *Store) apply(ctx context.Context, conn *sql.Conn, m migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	if s.dialect == Postgres {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(7412561)"); err != nil {
			return fmt.Errorf("sqlstore: migrate: taking the migration lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS keygate_migrations (version INTEGER NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL)"); err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, s.bind("SELECT COUNT(*) FROM keygate_migrations WHERE version = ?"), m.version).Scan(&n); err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	if n > 0 {
		return tx.Commit()
	}
	for _, stmt := range statements(m.sql) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.bind("INSERT INTO keygate_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
		m.version, m.name, time.Now().UnixMicro()); err != nil {
		return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
	}
	return nil
}

// statements splits a migration file into statements at the semicolons
// that end lines; the files put no semicolon inside a statement.
func statements(src string) []string {
	var out []string
	for _, part := range strings.Split(src, ";\n") {
		var lines []string
		for _, l := range strings.Split(part, "\n") {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "--") {
				lines = append(lines, l)
			}
		}
		if stmt := strings.TrimSuffix(strings.TrimSpace(strings.Join(lines, "\n")), ";"); stmt != "" {
			out = append(out, stmt)
		}
	}
	return out
}

// bind rewrites the ? placeholders of query for the dialect.
func (s *Store) bind(query string) string {
	if s.dialect != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for i := range len(query) {
		if query[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

func wrap(op string, err error) error { return fmt.Errorf("sqlstore: %s: %w", op, err) }

// micros renders t as Unix microseconds, NULL for the zero time; up
// rounds up, so that a time compared with "> now" never counts as past
// before it is.
func micros(t time.Time, up bool) any {
	if t.IsZero() {
		return nil
	}
	us := t.UnixMicro()
	if up && t.Nanosecond()%1000 != 0 {
		us++
	}
	return us
}

// columns are what scanRecord reads.
const columns = "hash, hash_version, record"

// scanRecord decodes a row of columns.
func scanRecord(row interface{ Scan(...any) error }) (*apikey.Record, error) {
	var hash []byte
	var data string
	rec := &apikey.Record{}
	if err := row.Scan(&hash, &rec.HashVersion, &data); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(data), &rec.Key); err != nil {
		return nil, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	if len(hash) != len(rec.Hash) || rec.ID == "" || rec.Owner == "" {
		return nil, fmt.Errorf("%w: missing id, owner or hash", errCorrupt)
	}
	copy(rec.Hash[:], hash)
	return rec, nil
}

// errCorrupt reports a row that does not decode to a record.
var errCorrupt = errors.New("sqlstore: corrupt record")

// one returns the record that where selects, or [apikey.ErrNotFound].
func (s *Store) one(ctx context.Context, q querier, op, where string, args ...any) (*apikey.Record, error) {
	rec, err := scanRecord(q.QueryRowContext(ctx, s.bind("SELECT "+columns+" FROM keygate_keys WHERE "+where), args...))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, apikey.ErrNotFound
	case err != nil && !errors.Is(err, errCorrupt):
		return nil, wrap(op, err)
	}
	return rec, err
}

// many returns the records that where selects, ordered by the time at
// and then ID.
func (s *Store) many(ctx context.Context, op, where string, at func(*apikey.Record) time.Time, args ...any) ([]*apikey.Record, error) {
	rows, err := s.db.QueryContext(ctx, s.bind("SELECT "+columns+" FROM keygate_keys WHERE "+where), args...)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	recs := []*apikey.Record{}
	for rows.Next() {
		rec, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	// The columns hold microseconds; the records, nanoseconds.
	slices.SortFunc(recs, func(a, b *apikey.Record) int { return cmp.Or(at(a).Compare(at(b)), cmp.Compare(a.ID, b.ID)) })
	return recs, nil
}

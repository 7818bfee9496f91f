// Package sqltest opens the SQL databases the tests use: PostgreSQL at
// KEYGATE_POSTGRES_URL, MySQL or MariaDB at KEYGATE_MYSQL_DSN (both
// defaulting to the local servers of the README's Development section)
// and SQLite in a temporary directory. Without a server a test skips,
// unless KEYGATE_REQUIRE_SQL=1 (as in CI) makes it fail.
package sqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql" // the drivers the tests open
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/keygate/keygate/store/sqlstore"
)

// The servers the tests use.
var (
	PostgresURL = env("KEYGATE_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	MySQLDSN    = env("KEYGATE_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/test?interpolateParams=true")
)

// Dialects are the three the library supports.
var Dialects = []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres, sqlstore.MySQL}

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// Name returns a name no other test uses.
func Name() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "kgtest_" + hex.EncodeToString(b[:])
}

// Open opens dsn with driver, closed when t ends; it skips t (or fails
// it, with KEYGATE_REQUIRE_SQL=1) when the server cannot be reached.
func Open(t testing.TB, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	require.NoError(t, err)
	db.SetMaxOpenConns(16) // a server's connections are shared by every test
	t.Cleanup(func() { _ = db.Close() })
	if err := db.PingContext(context.Background()); err != nil {
		if os.Getenv("KEYGATE_REQUIRE_SQL") == "1" {
			t.Fatalf("KEYGATE_REQUIRE_SQL=1 but %s is unreachable: %v", driver, err)
		}
		t.Skipf("no %s server (%v)", driver, err)
	}
	return db
}

// Fresh returns an empty database of dialect d: a schema of its own on
// PostgreSQL, a database of its own on MySQL, a file on SQLite. Its
// source, for opening it again, is in the second result.
func Fresh(t testing.TB, d sqlstore.Dialect) (*sql.DB, string) {
	t.Helper()
	name := Name()
	switch d {
	case sqlstore.Postgres:
		admin := Open(t, "pgx", PostgresURL)
		_, err := admin.Exec("CREATE SCHEMA " + name)
		require.NoError(t, err)
		t.Cleanup(func() { _, _ = admin.Exec("DROP SCHEMA " + name + " CASCADE") })
		sep := "?"
		if strings.Contains(PostgresURL, "?") {
			sep = "&"
		}
		dsn := PostgresURL + sep + "search_path=" + name
		return Open(t, "pgx", dsn), dsn
	case sqlstore.MySQL:
		admin := Open(t, "mysql", MySQLDSN)
		_, err := admin.Exec("CREATE DATABASE " + name)
		require.NoError(t, err)
		t.Cleanup(func() { _, _ = admin.Exec("DROP DATABASE " + name) })
		i := strings.LastIndex(MySQLDSN, "/")
		rest := MySQLDSN[i+1:]
		params := ""
		if j := strings.Index(rest, "?"); j >= 0 {
			params = rest[j:]
		}
		dsn := MySQLDSN[:i+1] + name + params
		return Open(t, "mysql", dsn), dsn
	default:
		path := filepath.Join(t.TempDir(), "keys.db")
		dsn := "file:" + path + "?_txlock=immediate&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
		return Open(t, "sqlite", dsn), dsn
	}
}

// Driver returns the database/sql driver the tests open d with.
func Driver(d sqlstore.Dialect) string {
	switch d {
	case sqlstore.Postgres:
		return "pgx"
	case sqlstore.MySQL:
		return "mysql"
	}
	return "sqlite"
}

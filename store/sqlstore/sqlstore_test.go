package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/breaker"
	"github.com/keygate/keygate/internal/sqltest"
	"github.com/keygate/keygate/internal/testproxy"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/middleware/manage"
	"github.com/keygate/keygate/store/sqlstore"
	"github.com/keygate/keygate/store/storetest"
)

// fresh returns an empty database of dialect d.
func fresh(t testing.TB, d sqlstore.Dialect) *sql.DB {
	t.Helper()
	db, _ := sqltest.Fresh(t, d)
	return db
}

// newStore returns a migrated, empty store of dialect d.
func newStore(t testing.TB, d sqlstore.Dialect) *sqlstore.Store {
	t.Helper()
	s, _ := newStoreDB(t, d)
	return s
}

// newStoreDB is newStore with the database behind the store.
func newStoreDB(t testing.TB, d sqlstore.Dialect) (*sqlstore.Store, *sql.DB) {
	t.Helper()
	db := fresh(t, d)
	ctx := context.Background()
	require.NoError(t, sqlstore.Migrate(ctx, db, d))
	// The suites check what the store does, not how fast: on a busy
	// machine, opening a connection can take longer than the 500 ms the
	// request path is given by default (the bounds have tests of their
	// own, with a proxy).
	s, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: d, Timeout: 10 * time.Second, Outbox: true})
	require.NoError(t, err)
	return s, db
}

var dialects = sqltest.Dialects

func TestConformance(t *testing.T) {
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) apikey.Store { return newStore(t, d) })
		})
	}
}

// A schema older than the code is an error naming the migration to run;
// instances that migrate at once apply each migration once.
func TestMigrations(t *testing.T) {
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			db := fresh(t, d)
			_, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: d})
			require.ErrorContains(t, err, "run sqlstore.Migrate, or apply migrations/"+string(d)+"/0001_keys.sql")

			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = sqlstore.Migrate(ctx, db, d)
				}()
			}
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err)
			}
			files, err := sqlstore.Migrations(d)
			require.NoError(t, err)
			all, err := fs.ReadDir(files, ".")
			require.NoError(t, err)
			var n int
			require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM keygate_migrations").Scan(&n))
			assert.Equal(t, len(all), n, "each migration applied once")
			_, err = sqlstore.New(ctx, db, sqlstore.Config{Dialect: d})
			require.NoError(t, err)

			_, err = files.Open("0001_keys.sql")
			require.NoError(t, err, "the files are there for other migration tools")
		})
	}
	_, err := sqlstore.New(context.Background(), nil, sqlstore.Config{Dialect: sqlstore.SQLite})
	require.ErrorIs(t, err, apikey.ErrInvalidConfig)
	_, err = sqlstore.Migrations("oracle")
	require.ErrorIs(t, err, apikey.ErrInvalidConfig)
}

// Migration 0004 moves the usage counted under 0002's two tables into
// one, and the store reads it there.
func TestUsageMigrationKeepsCounts(t *testing.T) {
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			db := fresh(t, d)
			require.NoError(t, sqlstore.MigrateTo(ctx, db, d, 3))
			for _, q := range []string{
				"INSERT INTO keygate_usage (key_id, requests, errors, last_used_at) VALUES ('key_1', 9, 2, 1700000000000000)",
				"INSERT INTO keygate_usage_endpoints (key_id, endpoint, requests) VALUES ('key_1', 'GET /a', 5), ('key_1', 'other', 4)",
			} {
				_, err := db.ExecContext(ctx, q)
				require.NoError(t, err)
			}
			require.NoError(t, sqlstore.Migrate(ctx, db, d))
			m, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: d})
			require.NoError(t, err)
			u, err := m.Usage(ctx, "key_1")
			require.NoError(t, err)
			assert.Equal(t, int64(9), u.TotalRequests)
			assert.Equal(t, int64(2), u.Errors)
			assert.Equal(t, time.UnixMicro(1700000000000000).UTC(), u.LastUsedAt)
			assert.Equal(t, map[string]int64{"GET /a": 5, "other": 4}, u.ByEndpoint)
		})
	}
}

// Two instances, each with its own cache (TTL an hour): a key revoked,
// rotated or deleted through one is refused by the other within about the
// poll interval, through the change feed.
func TestChangesReachOtherInstances(t *testing.T) {
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			shared := fresh(t, d)
			require.NoError(t, sqlstore.Migrate(ctx, shared, d))
			storetest.Invalidation(t, 10*time.Second, // a hang guard: the times taken are logged
				func(t *testing.T) apikey.Store {
					s, err := sqlstore.New(ctx, shared, sqlstore.Config{Dialect: d, PollInterval: 100 * time.Millisecond})
					require.NoError(t, err)
					return s
				})
		})
	}
}

// storeFailure asserts err is a store failure: not one of the answers
// about the key itself.
func storeFailure(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	for _, sentinel := range []error{apikey.ErrInvalidKey, apikey.ErrNotFound, apikey.ErrMalformed, apikey.ErrExpired} {
		assert.NotErrorIs(t, err, sentinel)
	}
}

// A database that cannot be reached, a row that does not decode, and a
// deadline that passes are errors, never "invalid key".
func TestFaultsAreErrors(t *testing.T) {
	ctx := context.Background()
	down, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=1")
	require.NoError(t, err)
	t.Cleanup(func() { _ = down.Close() })
	_, err = sqlstore.New(ctx, down, sqlstore.Config{Dialect: sqlstore.Postgres})
	storeFailure(t, err)

	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			s, db := newStoreDB(t, d)
			svc, err := apikey.New(s, apikey.Config{})
			require.NoError(t, err)
			issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct"})
			require.NoError(t, err)

			expired, cancel := context.WithTimeout(ctx, time.Nanosecond)
			defer cancel()
			time.Sleep(time.Millisecond)
			_, err = svc.Verify(expired, issued.Secret.Reveal())
			storeFailure(t, err)

			update := "UPDATE keygate_keys SET record = '{not json' WHERE id = ?"
			if d == sqlstore.Postgres {
				update = strings.Replace(update, "?", "$1", 1)
			}
			_, err = db.Exec(update, issued.Key.ID)
			require.NoError(t, err)
			_, err = svc.Verify(ctx, issued.Secret.Reveal())
			storeFailure(t, err)
			assert.Contains(t, err.Error(), "corrupt")
		})
	}
}

// proxiedDB creates a key on a fresh database of dialect d (PostgreSQL
// or MySQL) and returns it with the same database opened through a proxy
// the test can cut or hang; pgParams and myParams are added to each
// driver's data source.
func proxiedDB(t *testing.T, d sqlstore.Dialect, pgParams, myParams string) (apikey.Issued, *testproxy.Proxy, *sql.DB) {
	t.Helper()
	s, db := newStoreDB(t, d)
	var dbName string
	query := "SELECT current_schema()"
	if d == sqlstore.MySQL {
		query = "SELECT DATABASE()"
	}
	require.NoError(t, db.QueryRow(query).Scan(&dbName))
	svc, err := apikey.New(s, apikey.Config{})
	require.NoError(t, err)
	issued, err := svc.Create(context.Background(), apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	if d == sqlstore.Postgres {
		p := testproxy.Start(t, "127.0.0.1:5432")
		return issued, p, sqltest.Open(t, "pgx", "postgres://postgres@"+p.Addr+"/test?sslmode=disable&search_path="+dbName+pgParams)
	}
	p := testproxy.Start(t, "127.0.0.1:3306")
	return issued, p, sqltest.Open(t, "mysql", "root@tcp("+p.Addr+")/"+dbName+"?interpolateParams=true"+myParams)
}

// A connection cut under a request is an error, never "invalid key", and
// the store works again once the network is back.
func TestConnectionCut(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.Postgres, sqlstore.MySQL} {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			issued, p, proxied := proxiedDB(t, d, "&connect_timeout=2", "&timeout=2s&readTimeout=2s")
			ps, err := sqlstore.New(ctx, proxied, sqlstore.Config{Dialect: d})
			require.NoError(t, err)
			psvc, err := apikey.New(ps, apikey.Config{})
			require.NoError(t, err)
			_, err = psvc.Verify(ctx, issued.Secret.Reveal())
			require.NoError(t, err)

			p.Cut()
			reqCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_, err = psvc.Verify(reqCtx, issued.Secret.Reveal())
			storeFailure(t, err)

			p.Restore()
			require.Eventually(t, func() bool {
				_, err := psvc.Verify(ctx, issued.Secret.Reveal())
				return err == nil
			}, 10*time.Second, 10*time.Millisecond, "verification recovers")
		})
	}
}

// A database that hangs (connections open, nothing answers) costs each
// call its store's bound, then a store error: Timeout for verification
// and the account, then the breaker answers at once; ManagementTimeout
// for every other call. Never a wait on the driver's own limits, and
// never "invalid key".
func TestHungDatabase(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.Postgres, sqlstore.MySQL} {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			issued, p, proxied := proxiedDB(t, d, "", "")
			const timeout, manageTimeout = 200 * time.Millisecond, 300 * time.Millisecond
			ps, err := sqlstore.New(ctx, proxied, sqlstore.Config{Dialect: d, Timeout: timeout, ManagementTimeout: manageTimeout})
			require.NoError(t, err)
			psvc, err := apikey.New(ps, apikey.Config{})
			require.NoError(t, err)
			key := issued.Secret.Reveal()
			_, err = psvc.Verify(ctx, key)
			require.NoError(t, err)

			p.Hang()
			// The caller would wait a minute: what ends each call must be
			// the store's own bound (or its breaker).
			caller, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			bounded := func(what string, err error, took time.Duration) {
				t.Helper()
				storeFailure(t, err)
				require.NoError(t, caller.Err(), "%s waited for the caller's deadline", what)
				assert.True(t, errors.Is(err, context.DeadlineExceeded) || errors.Is(err, breaker.ErrOpen),
					"%s: %v is neither the store's deadline nor its breaker", what, err)
				t.Logf("%s failed after %v", what, took)
			}
			for i := range 5 {
				start := time.Now()
				_, err := psvc.Verify(caller, key)
				bounded(fmt.Sprintf("verification %d (Timeout %v)", i+1, timeout), err, time.Since(start))
			}
			// Over HTTP, both answer 503.
			mw, err := middleware.New(middleware.Config{Verifier: psvc})
			require.NoError(t, err)
			keys, err := manage.New(manage.Config{Service: psvc, Authenticate: func(*http.Request) (string, bool) { return "acct", true }})
			require.NoError(t, err)
			for _, c := range []struct {
				h http.Handler
				r *http.Request
			}{
				{mw.Authenticate(http.NotFoundHandler()), httptest.NewRequest("GET", "/items", nil)},
				{keys, httptest.NewRequest("GET", "/api/v1/api-keys", nil)},
			} {
				c.r.Header.Set("X-Api-Key", key)
				if c.h == keys {
					c.r.Header.Del("X-Api-Key")
				}
				w := httptest.NewRecorder()
				start := time.Now()
				c.h.ServeHTTP(w, c.r.WithContext(caller))
				assert.Equal(t, http.StatusServiceUnavailable, w.Code, c.r.URL.Path)
				t.Logf("GET %s answered %d after %v", c.r.URL.Path, w.Code, time.Since(start))
			}
			for _, call := range []struct {
				name string
				run  func() error
			}{
				{"Create", func() error { _, err := psvc.Create(caller, apikey.CreateParams{Owner: "acct"}); return err }},
				{"List", func() error { _, err := psvc.ListPage(caller, "acct", "", 100); return err }},
				{"Get", func() error { _, err := psvc.Get(caller, "acct", issued.Key.ID); return err }},
				{"Revoke", func() error { return psvc.Revoke(caller, "acct", issued.Key.ID) }},
				{"Events", func() error { _, err := psvc.Events(caller, "acct", "", "", 10); return err }},
				{"PutAccount", func() error {
					return ps.PutAccount(caller, nil, &apikey.Account{ID: "acct_new", Plan: "free", Version: 1})
				}},
				{"Usage", func() error { _, err := ps.Usage(caller, issued.Key.ID); return err }},
			} {
				start := time.Now()
				err := call.run()
				bounded(call.name+" (ManagementTimeout "+manageTimeout.String()+")", err, time.Since(start))
			}
		})
	}
}

// A database of another kind than the dialect names is refused at once,
// by name, not later with the other server's confusing error.
func TestWrongDialect(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		db   sqlstore.Dialect
		as   sqlstore.Dialect
		want string
	}{
		{sqlstore.MySQL, sqlstore.Postgres, "Config.Dialect is postgres, but the database is"},
		{sqlstore.Postgres, sqlstore.MySQL, "Config.Dialect is mysql, but the database is PostgreSQL"},
		{sqlstore.SQLite, sqlstore.Postgres, "Config.Dialect is postgres, but the database does not answer"},
		{sqlstore.Postgres, sqlstore.SQLite, "Config.Dialect is sqlite, but the database does not answer"},
	} {
		t.Run(string(c.db)+" as "+string(c.as), func(t *testing.T) {
			db := fresh(t, c.db)
			_, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: c.as})
			require.ErrorIs(t, err, apikey.ErrInvalidConfig)
			require.ErrorContains(t, err, c.want)
			require.ErrorContains(t, sqlstore.Migrate(ctx, db, c.as), c.want)
		})
	}
}

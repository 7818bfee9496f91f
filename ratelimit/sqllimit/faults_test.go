package sqllimit_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/keygate/keygate/internal/breaker"
	"github.com/keygate/keygate/internal/sqltest"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/internal/testproxy"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/ratelimit/sqllimit"
	"github.com/keygate/keygate/store/sqlstore"
)

var free, _ = ratelimit.DefaultPlans().Lookup("free")

// proxied returns a migrated database of dialect d (PostgreSQL or
// MySQL) opened through a proxy the test can cut or hang.
func proxied(t *testing.T, d sqlstore.Dialect) (*testproxy.Proxy, *sql.DB) {
	t.Helper()
	db, _ := migrated(t, d)
	var name string
	query, target := "SELECT current_schema()", "127.0.0.1:5432"
	if d == sqlstore.MySQL {
		query, target = "SELECT DATABASE()", "127.0.0.1:3306"
	}
	require.NoError(t, db.QueryRow(query).Scan(&name))
	p := testproxy.Start(t, target)
	if d == sqlstore.Postgres {
		return p, sqltest.Open(t, "pgx", "postgres://postgres@"+p.Addr+"/test?sslmode=disable&connect_timeout=2&search_path="+name)
	}
	return p, sqltest.Open(t, "mysql", "root@tcp("+p.Addr+")/"+name+"?interpolateParams=true&timeout=2s")
}

// A database that cannot be reached at start is an error of New.
func TestNewFailsWithoutADatabase(t *testing.T) {
	down, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=1")
	require.NoError(t, err)
	t.Cleanup(func() { _ = down.Close() })
	_, err = sqllimit.New(context.Background(), down, sqllimit.Config{Dialect: sqlstore.Postgres})
	require.ErrorContains(t, err, "reaching the database")

	unmigrated, _ := sqltest.Fresh(t, sqlstore.SQLite)
	_, err = sqllimit.New(context.Background(), unmigrated, sqllimit.Config{Dialect: sqlstore.SQLite})
	require.ErrorContains(t, err, "sqlstore.Migrate")

	_, err = sqllimit.New(context.Background(), unmigrated, sqllimit.Config{})
	require.ErrorContains(t, err, "Dialect")
	_, err = sqllimit.New(context.Background(), unmigrated, sqllimit.Config{Dialect: sqlstore.SQLite, Local: &sqllimit.Local{Share: 2}})
	require.ErrorContains(t, err, "Share")
}

// A database that hangs costs a request the limiter's Timeout, then an
// error (503), or a pass marked FailedOpen with FailOpen; after three
// faults the breaker answers at once. A connection cut is an error too,
// and the limiter decides again once the database is back.
func TestFaults(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.Postgres, sqlstore.MySQL} {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			p, db := proxied(t, d)
			var reported []error
			reader := sdkmetric.NewManualReader()
			closed, err := sqllimit.New(ctx, db, sqllimit.Config{Dialect: d, Timeout: 200 * time.Millisecond, SweepInterval: -1,
				MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
			require.NoError(t, err)
			open, err := sqllimit.New(ctx, db, sqllimit.Config{Dialect: d, Timeout: 200 * time.Millisecond, SweepInterval: -1,
				FailOpen: true, OnError: func(err error) { reported = append(reported, err) }})
			require.NoError(t, err)
			r := ratelimit.Request{Account: "acct", AccountPolicy: free, Key: "k", Cost: 1}
			dec, err := closed.Allow(ctx, r)
			require.NoError(t, err)
			require.True(t, dec.Allowed)

			p.Hang()
			caller, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			for i := range 5 {
				_, err := closed.Allow(caller, r)
				require.Error(t, err, "request %d", i)
				require.NoError(t, caller.Err(), "request %d waited for the caller's deadline", i)
				assert.True(t, errors.Is(err, context.DeadlineExceeded) || errors.Is(err, breaker.ErrOpen), "%v", err)
			}
			var rm metricdata.ResourceMetrics
			require.NoError(t, reader.Collect(ctx, &rm))
			require.Len(t, rm.ScopeMetrics, 1)
			gauge := rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Gauge[int64])
			assert.Equal(t, int64(1), gauge.DataPoints[0].Value, "the breaker is open, and says so")
			dec, err = open.Allow(caller, r)
			require.NoError(t, err)
			assert.True(t, dec.Allowed && dec.FailedOpen)
			assert.Len(t, reported, 1)

			p.Cut()
			_, err = closed.Allow(caller, r)
			require.Error(t, err)
			p.Restore()
			require.Eventually(t, func() bool {
				dec, err := closed.Allow(ctx, r)
				return err == nil && dec.Allowed && !dec.FailedOpen
			}, 20*time.Second, 50*time.Millisecond, "the limiter decides again once the database is back")
		})
	}
}

// A row that does not decode is an error, never a fresh state that
// would admit what was spent.
func TestCorruptStateIsAnError(t *testing.T) {
	db, _ := migrated(t, sqlstore.SQLite)
	l := limiter(t, db, sqllimit.Config{Dialect: sqlstore.SQLite}, nil)
	r := ratelimit.Request{Account: "acct", AccountPolicy: free, Key: "k", Cost: 1}
	_, err := l.Allow(context.Background(), r)
	require.NoError(t, err)
	_, err = db.Exec("UPDATE keygate_limits SET state = '60000000000 x 1 2' WHERE name = 'a:acct'")
	require.NoError(t, err)
	_, err = l.Allow(context.Background(), r)
	require.ErrorContains(t, err, "does not decode")
}

// Rows go once their state equals a new one: windows after their last
// window ends (and the sweep's slack), never a spent balance that no
// refill restores.
func TestSweepDeletesIdleState(t *testing.T) {
	for _, d := range sqltest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			db, _ := migrated(t, d)
			c := testclock.New(time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC))
			l := limiter(t, db, sqllimit.Config{Dialect: d}, c.Now)
			ctx := context.Background()
			rows := func() (n int) {
				require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM keygate_limits").Scan(&n))
				return n
			}
			minute, err := ratelimit.NewPolicy("minute", ratelimit.PerMinute(10))
			require.NoError(t, err)
			for i := range 100 {
				_, err := l.Allow(ctx, ratelimit.Request{Account: "a" + string(rune('0'+i%10)), AccountPolicy: free, Key: "k" + string(rune('0'+i%10)), KeyPolicy: minute, Cost: 1})
				require.NoError(t, err)
			}
			paid := &ratelimit.Credits{Balance: 5, Granted: c.Now().Add(-time.Hour)}
			_, err = l.Allow(ctx, ratelimit.Request{Account: "payer", AccountPolicy: minute, Key: "k", Credits: paid, Cost: 1})
			require.NoError(t, err)
			require.Equal(t, 22, rows()) // 11 accounts, 10 keys, 1 balance

			c.Advance(2 * time.Minute) // minute buckets full: their rows go
			n, err := l.Sweep(ctx)
			require.NoError(t, err)
			assert.Equal(t, 11, n, "the keys' and payer's minute windows")
			assert.Equal(t, 11, rows(), "day windows still counting, and the balance")

			c.Set(time.Date(2030, 1, 3, 0, 2, 0, 0, time.UTC)) // a new day
			n, err = l.Sweep(ctx)
			require.NoError(t, err)
			assert.Equal(t, 10, n)
			assert.Equal(t, 1, rows(), "a spent balance without refills stays")
			dec, err := l.Allow(ctx, ratelimit.Request{Account: "payer", AccountPolicy: minute, Key: "k", Credits: paid, Cost: 0})
			require.NoError(t, err)
			assert.Equal(t, int64(4), dec.Balance)
		})
	}
}

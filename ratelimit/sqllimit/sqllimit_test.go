package sqllimit_test

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/sqltest"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/ratelimit/ratelimittest"
	"github.com/keygate/keygate/ratelimit/sqllimit"
	"github.com/keygate/keygate/store/sqlstore"
)

// migrated returns an empty, migrated database of dialect d and its
// source.
func migrated(t testing.TB, d sqlstore.Dialect) (*sql.DB, string) {
	t.Helper()
	db, dsn := sqltest.Fresh(t, d)
	require.NoError(t, sqlstore.Migrate(context.Background(), db, d))
	return db, dsn
}

// limiter returns a limiter on db deciding at now, with a Timeout for a
// busy machine (bounds have tests of their own).
func limiter(t testing.TB, db *sql.DB, cfg sqllimit.Config, now func() time.Time) *sqllimit.Limiter {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	cfg.SweepInterval = -1
	l, err := sqllimit.NewWithClock(context.Background(), db, cfg, now)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// emptied empties db's limits for a test of the suite, which wants a
// fresh limiter: cheaper than a database each (the suite's tests run one
// at a time).
func emptied(t testing.TB, db *sql.DB) {
	t.Helper()
	_, err := db.Exec("DELETE FROM keygate_limits")
	require.NoError(t, err)
}

func TestBehaviour(t *testing.T) {
	for _, d := range sqltest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			db, _ := migrated(t, d)
			ratelimittest.Run(t, func(t *testing.T, now func() time.Time) ratelimit.Limiter {
				emptied(t, db)
				return limiter(t, db, sqllimit.Config{Dialect: d}, now)
			})
		})
	}
}

// alternating sends each request to the next of two instances.
type alternating struct {
	instances [2]ratelimit.Limiter
	n         atomic.Int64
}

func (a *alternating) Allow(ctx context.Context, r ratelimit.Request) (ratelimit.Decision, error) {
	return a.instances[a.n.Add(1)%2].Allow(ctx, r)
}

// The suite again, each request through the next of two instances on
// their own connection pools, exact and local-first: every behaviour
// holds across a fleet.
func TestBehaviourAcrossInstances(t *testing.T) {
	for _, d := range sqltest.Dialects {
		for mode, local := range map[string]*sqllimit.Local{"exact": nil, "local-first": {}} {
			t.Run(string(d)+"/"+mode, func(t *testing.T) {
				db, dsn := migrated(t, d)
				// Two instances, each on a connection pool of its own, kept
				// for the suite: its tests get new limiters on them.
				pools := [2]*sql.DB{sqltest.Open(t, sqltest.Driver(d), dsn), sqltest.Open(t, sqltest.Driver(d), dsn)}
				ratelimittest.Run(t, func(t *testing.T, now func() time.Time) ratelimit.Limiter {
					emptied(t, db)
					var a alternating
					for i := range a.instances {
						a.instances[i] = limiter(t, pools[i], sqllimit.Config{Dialect: d, Local: local}, now)
					}
					return &a
				})
			})
		}
	}
}

// Two instances on one database share the free plan's 10 a minute: 20
// requests, alternating, pass exactly 10 times; 1,000 concurrent
// requests over both against a balance of 100 credits spend exactly 100.
func TestTwoInstancesShareLimitsAndCredits(t *testing.T) {
	for _, d := range sqltest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			_, dsn := migrated(t, d)
			c := testclock.New(time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC))
			var a alternating
			for i := range a.instances {
				a.instances[i] = limiter(t, sqltest.Open(t, sqltest.Driver(d), dsn), sqllimit.Config{Dialect: d, Local: &sqllimit.Local{}}, c.Now)
			}
			free, _ := ratelimit.DefaultPlans().Lookup("free")
			ctx := context.Background()
			passed := 0
			for i := range 20 {
				dec, err := a.Allow(ctx, ratelimit.Request{Account: "acct", AccountPolicy: free, Key: "key", Cost: 1})
				require.NoError(t, err, "request %d", i)
				if dec.Allowed {
					passed++
				}
			}
			assert.Equal(t, 10, passed)

			unlimited, err := ratelimit.NewPolicy("unlimited", ratelimit.PerMinute(1_000_000))
			require.NoError(t, err)
			credits := &ratelimit.Credits{Balance: 100, Granted: c.Now().Add(-time.Hour)}
			var spent, refused atomic.Int64
			var wg sync.WaitGroup
			for i := range 1000 {
				wg.Go(func() {
					dec, err := a.instances[i%2].Allow(ctx, ratelimit.Request{Account: "paying", AccountPolicy: unlimited, Key: "k", Credits: credits, Cost: 1})
					if assert.NoError(t, err) {
						if dec.Allowed {
							spent.Add(1)
						} else {
							refused.Add(1)
						}
					}
				})
			}
			wg.Wait()
			assert.Equal(t, int64(100), spent.Load())
			assert.Equal(t, int64(900), refused.Load())
		})
	}
}

// An instance killed while holding a lease loses its unspent tokens to
// the window only until the bucket refills them: a lease of n tokens
// returns n × Period/Limit later. The survivors see the lease as spent
// meanwhile, never more.
func TestKilledLeaseReturnsAsTheBucketRefills(t *testing.T) {
	for _, d := range sqltest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			_, dsn := migrated(t, d)
			c := testclock.New(time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC))
			busy, err := ratelimit.NewPolicy("busy", ratelimit.PerMinute(10_000))
			require.NoError(t, err)
			r := ratelimit.Request{Account: "acct", AccountPolicy: busy, Key: "k", Cost: 1}
			killed := limiter(t, sqltest.Open(t, sqltest.Driver(d), dsn), sqllimit.Config{Dialect: d, Local: &sqllimit.Local{}}, c.Now)
			dec, err := killed.Allow(context.Background(), r)
			require.NoError(t, err)
			require.True(t, dec.Allowed)
			assert.Equal(t, int64(9_900+99), dec.Remaining, "a lease of 1%, one token spent in process")

			survivor := limiter(t, sqltest.Open(t, sqltest.Driver(d), dsn), sqllimit.Config{Dialect: d}, c.Now)
			r.Cost = 0
			dec, err = survivor.Allow(context.Background(), r)
			require.NoError(t, err)
			assert.Equal(t, int64(9_900), dec.Remaining, "the lease counts as spent")
			c.Advance(100 * time.Minute / 10_000)
			dec, err = survivor.Allow(context.Background(), r)
			require.NoError(t, err)
			assert.Equal(t, int64(10_000), dec.Remaining, "and returns as the bucket refills")
		})
	}
}

// Four instances share an account limit of 6,000 a minute, local-first,
// each with 8 goroutines, at one instant (no refill). Below the limit
// they make fewer than 0.02 database calls per request; past it they
// admit what exact mode would, 6,000, less at most the 4 leases of 60
// held unspent when the window ran out, and never more: leased tokens
// count as spent.
func TestLocalFirstFourInstances(t *testing.T) {
	for _, d := range sqltest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			_, dsn := migrated(t, d)
			c := testclock.New(time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC))
			policy, err := ratelimit.NewPolicy("big", ratelimit.PerMinute(6000))
			require.NoError(t, err)
			const instances, lease = 4, 60
			var limiters [instances]*sqllimit.Limiter
			for i := range limiters {
				limiters[i] = limiter(t, sqltest.Open(t, sqltest.Driver(d), dsn), sqllimit.Config{Dialect: d, Local: &sqllimit.Local{}}, c.Now)
			}
			calls := func() (n int64) {
				for _, l := range limiters {
					n += l.Calls()
				}
				return n
			}
			var allowed atomic.Int64
			send := func(each int) {
				var wg sync.WaitGroup
				for _, l := range limiters {
					for range 8 {
						wg.Go(func() {
							for range each {
								dec, err := l.Allow(context.Background(), ratelimit.Request{Account: "acct", AccountPolicy: policy, Key: "k", Cost: 1})
								if !assert.NoError(t, err) {
									return
								}
								if dec.Allowed {
									allowed.Add(1)
								}
							}
						})
					}
				}
				wg.Wait()
			}
			send(125) // 4,000 requests, under the limit
			t.Logf("under the limit: %d of 4000 admitted, %.4f database calls per request", allowed.Load(), float64(calls())/4000)
			assert.EqualValues(t, 4000, allowed.Load())
			assert.Less(t, float64(calls())/4000, 0.02)

			send(500) // 16,000 more
			t.Logf("over it: %d of 20000 admitted; exact mode admits 6000, the bound is -%d; %d database calls in all", allowed.Load(), instances*lease, calls())
			assert.LessOrEqual(t, allowed.Load(), int64(6000))
			assert.GreaterOrEqual(t, allowed.Load(), int64(6000-instances*lease))
		})
	}
}

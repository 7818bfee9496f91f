package notice_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/apikey/event/notice"
	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/internal/sqltest"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/store/memstore"
	"github.com/keygate/keygate/store/redisstore"
	"github.com/keygate/keygate/store/sqlstore"
)

// Two instances on one store, with the clock moved past both thresholds
// and then past the expiry, record exactly one notice per key and
// threshold, and one of its expiry; instances started again record none
// of them twice. On SQLite, PostgreSQL, MariaDB, Redis (a node and a
// Cluster) and memory (one process).
func TestOneNoticePerKeyAndThreshold(t *testing.T) {
	ctx := context.Background()
	stores := map[string]func(t *testing.T) func() notice.Store{
		"memory": func(*testing.T) func() notice.Store {
			s := memstore.New()
			return func() notice.Store { return s }
		},
	}
	for _, d := range sqltest.Dialects {
		stores[string(d)] = func(t *testing.T) func() notice.Store {
			db, dsn := sqltest.Fresh(t, d)
			require.NoError(t, sqlstore.Migrate(ctx, db, d))
			return func() notice.Store { // an instance of its own, on its own connections
				s, err := sqlstore.New(ctx, sqltest.Open(t, sqltest.Driver(d), dsn), sqlstore.Config{Dialect: d, Timeout: 10 * time.Second})
				require.NoError(t, err)
				return s
			}
		}
	}
	for _, d := range redistest.Deployments {
		stores["redis-"+d.Name] = func(t *testing.T) func() notice.Store {
			ns := redistest.Name(t, d.Connect(t), "notice")
			return func() notice.Store { // an instance of its own, on its own client
				s, err := redisstore.New(ctx, d.Connect(t), redisstore.Config{Namespace: ns})
				require.NoError(t, err)
				return s
			}
		}
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			instance := open(t)
			clock := testclock.New(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC))
			first := instance()
			svc, err := apikey.New(first.(apikey.Store), apikey.Config{Clock: clock.Now})
			require.NoError(t, err)
			var keys []apikey.Key
			for i := range 3 {
				issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct_n", ExpiresAt: clock.Now().Add(10*24*time.Hour + time.Duration(i)*time.Hour)})
				require.NoError(t, err)
				keys = append(keys, issued.Key)
			}
			notifiers := func() []*notice.Notifier {
				var out []*notice.Notifier
				for _, s := range []notice.Store{first, instance()} {
					n, err := notice.New(notice.Config{Store: s, Clock: clock.Now})
					require.NoError(t, err)
					out = append(out, n)
				}
				return out
			}
			round := func(ns []*notice.Notifier) int {
				var wg sync.WaitGroup
				var mu sync.Mutex
				total := 0
				for _, n := range ns {
					wg.Go(func() {
						for range 3 {
							k, err := n.Once(ctx)
							assert.NoError(t, err)
							mu.Lock()
							total += k
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				return total
			}
			ns := notifiers()
			assert.Zero(t, round(ns), "ten days out: nothing yet")
			clock.Advance(4 * 24 * time.Hour) // within 7 days
			assert.Equal(t, 3, round(ns))
			clock.Advance(5*24*time.Hour + 12*time.Hour) // within 1 day
			assert.Equal(t, 3, round(ns))
			clock.Advance(24 * time.Hour) // expired, within the lookback
			assert.Equal(t, 3, round(ns))
			assert.Zero(t, round(notifiers()), "instances started again record nothing twice")

			for _, k := range keys {
				page, err := svc.Events(ctx, "acct_n", k.ID, "", 100)
				require.NoError(t, err)
				var got []string
				for _, e := range page.Items {
					got = append([]string{string(e.Type) + " " + e.Data["threshold"]}, got...)
				}
				assert.Equal(t, []string{"key.created ", "key.expiring 7d", "key.expiring 1d", "key.expired "}, got, "key %s", k.ID)
			}
		})
	}
}

// A key created within a day of its expiry hears of the nearest
// threshold only.
func TestNearestThresholdOnly(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	clock := testclock.New(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC))
	svc, err := apikey.New(s, apikey.Config{Clock: clock.Now})
	require.NoError(t, err)
	issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct_n", ExpiresAt: clock.Now().Add(12 * time.Hour)})
	require.NoError(t, err)
	n, err := notice.New(notice.Config{Store: s, Clock: clock.Now})
	require.NoError(t, err)
	wrote, err := n.Once(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, wrote)
	page, err := svc.Events(ctx, "acct_n", issued.Key.ID, "", 10)
	require.NoError(t, err)
	assert.Equal(t, event.KeyExpiring, page.Items[0].Type)
	assert.Equal(t, "1d", page.Items[0].Data["threshold"])

	_, err = notice.New(notice.Config{Store: s, Thresholds: []time.Duration{-time.Hour}})
	require.Error(t, err)
}

package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/usage"
	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/store/cachestore"
	"github.com/keygate/keygate/store/redisstore"
)

// nodeCounter counts the commands one Cluster node receives (a pipeline
// counts its commands).
type nodeCounter struct{ n *atomic.Int64 }

func (c nodeCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c nodeCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}
func (c nodeCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.n.Add(int64(len(cmds))); return next(ctx, cmds) }
}

// On a 3-master Cluster, 10,000 keys over 1,000 accounts spread over every
// master: no master holds more than 45% of the namespace's keys or takes
// more than 45% of its commands in a mixed run (create, cold verify, get,
// list, usage flush, revoke, rotate). A usage flush of all 10,000 keys
// runs only short commands on every node (its SLOWLOG).
func TestClusterSpreadsTheStore(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 10,000 keys")
	}
	ctx := context.Background()
	redistest.Cluster(t) // skips or fails as configured
	var mu sync.Mutex
	commands := map[string]*atomic.Int64{}
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: strings.Split(os.Getenv("KEYGATE_REDIS_CLUSTER"), ","), ContextTimeoutEnabled: true,
		NewClient: func(opt *redis.Options) *redis.Client {
			c := redis.NewClient(opt)
			mu.Lock()
			defer mu.Unlock()
			n := &atomic.Int64{}
			commands[opt.Addr] = n
			c.AddHook(nodeCounter{n})
			return c
		},
	})
	t.Cleanup(func() { _ = client.Close() })
	ns := redistest.Name(t, client, "spread")
	rs, err := redisstore.New(ctx, client, redisstore.Config{Namespace: ns})
	require.NoError(t, err)
	svc, err := apikey.New(rs, apikey.Config{})
	require.NoError(t, err)

	const accounts, perAccount = 1000, 10
	type key struct {
		owner, id string
		secret    apikey.Secret
	}
	keys := make([]key, accounts*perAccount)
	parallel := func(n int, f func(i int)) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
					f(i)
				}
			})
		}
		wg.Wait()
	}
	parallel(len(keys), func(i int) {
		owner := fmt.Sprintf("acct_%04d", i/perAccount)
		issued, err := svc.Create(ctx, apikey.CreateParams{Owner: owner})
		if assert.NoError(t, err) {
			keys[i] = key{owner, issued.Key.ID, issued.Secret}
		}
	})
	parallel(len(keys), func(i int) {
		_, err := svc.Verify(ctx, keys[i].secret.Reveal())
		assert.NoError(t, err)
		_, err = svc.Get(ctx, keys[i].owner, keys[i].id)
		assert.NoError(t, err)
	})
	parallel(accounts, func(i int) {
		_, err := svc.ListPage(ctx, keys[i*perAccount].owner, "", 100)
		assert.NoError(t, err)
	})
	parallel(100, func(i int) {
		k := keys[i*perAccount]
		assert.NoError(t, svc.Revoke(ctx, k.owner, k.id))
		k = keys[i*perAccount+1]
		_, err := svc.Rotate(ctx, k.owner, k.id, time.Hour)
		assert.NoError(t, err)
	})

	// The flush, with every node logging commands slower than 1 ms.
	deltas := make([]usage.Delta, len(keys))
	for i, k := range keys {
		deltas[i] = usage.Delta{KeyID: k.id, Requests: 3, LastUsedAt: time.Now(),
			ByEndpoint: map[string]int64{"GET /a": 1, "GET /b": 1, "POST /c": 1}}
	}
	eachMaster := func(f func(c *redis.Client) error) {
		require.NoError(t, client.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return f(c) }))
	}
	var mu2 sync.Mutex
	was := map[string]string{}
	eachMaster(func(c *redis.Client) error {
		v := c.ConfigGet(ctx, "slowlog-log-slower-than").Val()["slowlog-log-slower-than"]
		mu2.Lock()
		was[c.Options().Addr] = v
		mu2.Unlock()
		t.Cleanup(func() { c.ConfigSet(context.Background(), "slowlog-log-slower-than", v) })
		return c.ConfigSet(ctx, "slowlog-log-slower-than", "1000").Err()
	})
	// The VM's 2 cores run three Redis servers and the tests: a node
	// descheduled mid-command logs even an EXISTS as slow (2 to 5 ms on a
	// quiet VM, up to 17 ms under CI's parallel -race packages). So the
	// times are logged, and the test asserts the shape that keeps each
	// command short, which a whole-batch script (164 ms for 10,000 keys)
	// would fail: one small script per key.
	var slowests []time.Duration
	for range 3 {
		eachMaster(func(c *redis.Client) error {
			if err := c.ConfigResetStat(ctx).Err(); err != nil {
				return err
			}
			return c.SlowLogReset(ctx).Err()
		})
		start := time.Now()
		require.NoError(t, rs.AddUsage(ctx, deltas))
		took := time.Since(start)
		var (
			slowest     time.Duration
			slow        int
			calls, usec int64
		)
		eachMaster(func(c *redis.Client) error {
			logs, err := c.SlowLogGet(ctx, 128).Result()
			stats := c.Info(ctx, "commandstats").Val()
			mu2.Lock()
			defer mu2.Unlock()
			for _, l := range logs {
				if strings.Contains(fmt.Sprint(l.Args), ns) {
					slowest = max(slowest, l.Duration)
					slow++
				}
			}
			// The scripts' own time on the server: calls and µs in all.
			for line := range strings.SplitSeq(stats, "\n") {
				var n, u int64
				if _, err := fmt.Sscanf(line, "cmdstat_evalsha:calls=%d,usec=%d", &n, &u); err == nil {
					calls, usec = calls+n, usec+u
				}
			}
			return err
		})
		t.Logf("a usage flush of %d keys took %v; %d script calls, %.1f µs each on average; %d commands over 1 ms, the slowest %v",
			len(deltas), took, calls, float64(usec)/float64(max(calls, 1)), slow, slowest)
		assert.GreaterOrEqual(t, calls, int64(len(deltas)), "one small script per key, never one for the batch")
		slowests = append(slowests, slowest)
	}
	slices.Sort(slowests)
	t.Logf("the median flush's slowest command: %v", slowests[1])
	u, err := rs.Usage(ctx, keys[5].id)
	require.NoError(t, err)
	assert.Equal(t, int64(9), u.TotalRequests)

	// The table: the namespace's keys and the commands per master.
	var totalKeys, totalCommands int64
	type row struct {
		addr           string
		keys, commands int64
	}
	var rows []row
	eachMaster(func(c *redis.Client) error {
		var n int64
		iter := c.Scan(ctx, 0, ns+":*", 1000).Iterator()
		for iter.Next(ctx) {
			n++
		}
		mu.Lock()
		defer mu.Unlock()
		mu2.Lock()
		defer mu2.Unlock()
		rows = append(rows, row{c.Options().Addr, n, commands[c.Options().Addr].Load()})
		return iter.Err()
	})
	slices.SortFunc(rows, func(a, b row) int { return strings.Compare(a.addr, b.addr) })
	for _, r := range rows {
		totalKeys += r.keys
		totalCommands += r.commands
	}
	require.Len(t, rows, 3)
	t.Logf("| master | keys | share | commands | share |")
	for _, r := range rows {
		ks, cs := float64(r.keys)/float64(totalKeys), float64(r.commands)/float64(totalCommands)
		t.Logf("| %s | %d | %.1f%% | %d | %.1f%% |", r.addr, r.keys, 100*ks, r.commands, 100*cs)
		assert.LessOrEqual(t, ks, 0.45, r.addr)
		assert.LessOrEqual(t, cs, 0.45, r.addr)
	}
}

// A usage flush of 10,000 keys on one Redis node, with nothing else
// sharing the node's core but the test: the figure that shows how long
// one call of the flush holds a node, free of the Cluster test's three
// servers on two cores. It asserts only what a whole-batch script would
// fail, and logs the slowest command of each flush.
func TestUsageFlushHoldsANodeBriefly(t *testing.T) {
	ctx := context.Background()
	client, _ := redistest.Server(t, "--slowlog-log-slower-than", "1000")
	rs, err := redisstore.New(ctx, client, redisstore.Config{})
	require.NoError(t, err)
	svc, err := apikey.New(rs, apikey.Config{})
	require.NoError(t, err)
	deltas := make([]usage.Delta, 10_000)
	for i := range deltas {
		issued, err := svc.Create(ctx, apikey.CreateParams{Owner: fmt.Sprint("acct", i%1000)})
		require.NoError(t, err)
		deltas[i] = usage.Delta{KeyID: issued.Key.ID, Requests: 3, LastUsedAt: time.Now(),
			ByEndpoint: map[string]int64{"GET /a": 1, "GET /b": 1, "POST /c": 1}}
	}
	var slowests []time.Duration
	for range 5 {
		require.NoError(t, client.SlowLogReset(ctx).Err())
		require.NoError(t, rs.AddUsage(ctx, deltas))
		logs, err := client.SlowLogGet(ctx, 128).Result()
		require.NoError(t, err)
		var slowest time.Duration
		for _, l := range logs {
			slowest = max(slowest, l.Duration)
		}
		t.Logf("a usage flush of %d keys on one node: %d commands over 1 ms, the slowest %v", len(deltas), len(logs), slowest)
		slowests = append(slowests, slowest)
	}
	slices.Sort(slowests)
	t.Logf("the median flush's slowest command: %v (logged, not asserted: a busy machine moves it)", slowests[2])
}

// logBuffer collects what a logger writes, for several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) has(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Contains(b.buf.String(), s)
}

// An instance starts while a master of its Cluster is down: the checks
// that need that master wait for it in the background, and say so, and
// the accounts of the other masters are served meanwhile.
func TestStartsWithAMasterDown(t *testing.T) {
	c := redistest.StartCluster(t, "--cluster-require-full-coverage", "no")
	c.Kill(1)
	client := c.Client()
	ctx := context.Background()
	logs := &logBuffer{}
	rs, err := redisstore.New(ctx, client, redisstore.Config{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, err, "a master down must not keep an instance from starting")
	require.True(t, logs.has("started with a master that does not answer"), logs.buf.String())

	// An account whose slot is on a live master is served.
	served := 0
	for i := range 12 {
		id := fmt.Sprint("acct-", i)
		err := rs.PutAccount(ctx, nil, &apikey.Account{ID: id, Plan: "free", Version: 1})
		if err != nil {
			continue
		}
		a, err := rs.Account(ctx, id)
		require.NoError(t, err)
		require.Equal(t, "free", a.Plan)
		served++
	}
	require.Positive(t, served, "no account of the live masters was served")

	c.Start(1)
	eventually(t, time.Minute, func() bool { return logs.has("every master answered") }, "the checks end once the master is back")
	require.False(t, logs.has("level=ERROR"), logs.buf.String())

	// A master that returns with a policy that evicts keys is reported.
	c.Kill(1)
	logs = &logBuffer{}
	_, err = redisstore.New(ctx, client, redisstore.Config{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, err)
	c.Start(1, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
	eventually(t, time.Minute, func() bool { return logs.has("level=ERROR") }, "the evicting master is reported")
	require.True(t, logs.has("allkeys-lru"), logs.buf.String())
}

// A Cluster none of whose masters answers is an error from New, naming
// the addresses.
func TestNoMasterAtStart(t *testing.T) {
	c := redistest.StartCluster(t)
	for i := range c.Addrs {
		c.Kill(i)
	}
	client := c.Client()
	_, err := redisstore.New(context.Background(), client, redisstore.Config{})
	storeFailure(t, err)
	require.ErrorContains(t, err, "cannot reach Redis at "+c.Addrs[0])
}

// With one master of three down, an account whose keys live on another
// works wholly (creating, revoking, rotating, verifying on an instance
// started during the outage) and one on the lost master not at all; no
// revocation that succeeded leaves its key verifying; and once the
// master returns, every account works again, without a restart.
func TestAnOutageCostsOnlyItsAccounts(t *testing.T) {
	c := redistest.StartCluster(t, "--cluster-require-full-coverage", "no")
	ctx := context.Background()
	quiet := redisstore.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))} // the lost master is expected
	connect := func() *apikey.Service {
		rs, err := redisstore.New(ctx, c.Client(), quiet)
		require.NoError(t, err)
		svc, err := apikey.New(rs, apikey.Config{})
		require.NoError(t, err)
		return svc
	}
	svc := connect()
	// An instance with a cache, fed by the invalidation feed.
	crs, err := redisstore.New(ctx, c.Client(), quiet)
	require.NoError(t, err)
	cs, err := cachestore.New(crs, cachestore.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.Close() })
	cached, err := apikey.New(cs, apikey.Config{})
	require.NoError(t, err)
	const accounts = 24
	keys := make([][]apikey.Issued, accounts)
	for a := range accounts {
		for range 2 {
			issued, err := svc.Create(ctx, apikey.CreateParams{Owner: fmt.Sprint("acct-", a)})
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(issued.Key.ID, issued.Secret.Reveal()[len("kg_live_"):][:3]+"_"),
				"the key's ID and its text carry the account's route")
			keys[a] = append(keys[a], issued)
		}
	}
	for a := range accounts {
		for _, k := range keys[a] {
			_, err := cached.Verify(ctx, k.Secret.Reveal()) // now in its cache
			require.NoError(t, err)
		}
	}
	c.Kill(1)
	fresh := connect() // an instance started during the outage
	working := 0
	for a := range accounts {
		owner := fmt.Sprint("acct-", a)
		_, created := svc.Create(ctx, apikey.CreateParams{Owner: owner})
		revoked := svc.Revoke(ctx, owner, keys[a][0].Key.ID)
		_, rotated := svc.Rotate(ctx, owner, keys[a][1].Key.ID, time.Hour)
		_, verified := fresh.Verify(ctx, keys[a][1].Secret.Reveal())
		results := []error{created, revoked, rotated, verified}
		failed := 0
		for _, err := range results {
			if err != nil {
				failed++
			}
		}
		require.True(t, failed == 0 || failed == len(results), "account %d works in part: %v", a, results)
		if revoked == nil {
			_, err := fresh.Verify(ctx, keys[a][0].Secret.Reveal())
			require.ErrorIs(t, err, apikey.ErrInvalidKey, "account %d: a revoked key verifies", a)
			eventually(t, time.Minute, func() bool {
				_, err := cached.Verify(ctx, keys[a][0].Secret.Reveal())
				return errors.Is(err, apikey.ErrInvalidKey)
			}, fmt.Sprintf("account %d: the revoked key stops verifying on the instance that cached it", a))
			working++
		}
	}
	t.Logf("%d of %d accounts kept working with one master of three down", working, accounts)
	require.GreaterOrEqual(t, working, accounts/2)
	require.Less(t, working, accounts, "no account was on the lost master: the test proves nothing")

	c.Start(1)
	for a := range accounts {
		owner := fmt.Sprint("acct-", a)
		eventually(t, time.Minute, func() bool {
			issued, err := svc.Create(ctx, apikey.CreateParams{Owner: owner})
			if err != nil {
				return false
			}
			_, err = fresh.Verify(ctx, issued.Secret.Reveal())
			return err == nil
		}, fmt.Sprintf("account %d works again", a))
	}
}

// unrouted hides a store's routes, as the version before routes wrote.
type unrouted struct{ apikey.Store }

// A namespace written before routes needs no migration: its keys, whose
// copies and IDs live in slots of their own, verify, revoke and rotate
// under a store that routes, on a single node and on a Cluster, and a
// rotation's replacement gets its account's route.
func TestKeysFromBeforeRoutes(t *testing.T) {
	for _, d := range redistest.Deployments {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			client := d.Connect(t)
			ns := redistest.Name(t, client, "unrouted")
			rs, err := redisstore.New(ctx, client, redisstore.Config{Namespace: ns})
			require.NoError(t, err)
			before, err := apikey.New(unrouted{rs}, apikey.Config{})
			require.NoError(t, err)
			var old []apikey.Issued
			for i := range 3 {
				issued, err := before.Create(ctx, apikey.CreateParams{Owner: fmt.Sprint("acct-", i)})
				require.NoError(t, err)
				old = append(old, issued)
			}
			// A host's ID shaped like a routed one, from before routes: its
			// index where layout 2 kept every ID's.
			shaped, err := before.Create(ctx, apikey.CreateParams{Owner: "acct-x", ID: "0ab_old", ExpiresAt: time.Now().Add(time.Hour)})
			require.NoError(t, err)
			if d.Name == "node" { // KEYS sees one node's keys
				routed, err := client.Keys(ctx, ns+":{*}:i:0ab_old").Result()
				require.NoError(t, err)
				require.Len(t, routed, 1)
				require.NoError(t, client.Rename(ctx, routed[0], ns+":i:{0ab_old}").Err())
			}
			after, err := apikey.New(rs, apikey.Config{})
			require.NoError(t, err)
			for _, k := range old {
				_, err := after.Verify(ctx, k.Secret.Reveal())
				require.NoError(t, err)
			}
			require.NoError(t, after.Revoke(ctx, old[0].Key.Owner, old[0].Key.ID))
			_, err = after.Verify(ctx, old[0].Secret.Reveal())
			require.ErrorIs(t, err, apikey.ErrInvalidKey)
			repl, err := after.Rotate(ctx, old[1].Key.Owner, old[1].Key.ID, 0)
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(repl.Key.ID, rs.Route(old[1].Key.Owner)+"_"), repl.Key.ID)
			_, err = after.Verify(ctx, repl.Secret.Reveal())
			require.NoError(t, err)
			_, err = after.Verify(ctx, old[1].Secret.Reveal())
			require.ErrorIs(t, err, apikey.ErrExpired)
			_, err = after.Get(ctx, old[2].Key.Owner, old[2].Key.ID)
			require.NoError(t, err)
			got, err := rs.Get(ctx, "0ab_old")
			require.NoError(t, err)
			require.Equal(t, "acct-x", got.Owner)
			expiring, err := rs.Expiring(ctx, time.Now(), time.Now().Add(2*time.Hour))
			require.NoError(t, err)
			require.Len(t, expiring, 1)
			require.NoError(t, after.Revoke(ctx, "acct-x", "0ab_old"))
			_, err = after.Verify(ctx, shaped.Secret.Reveal())
			require.ErrorIs(t, err, apikey.ErrInvalidKey)
		})
	}
}

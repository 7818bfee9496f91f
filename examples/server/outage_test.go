package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/store/redisstore"
)

// TestLosingAMasterStaysPartial runs the reference service on a private
// 3-master Cluster under load from many accounts, kills one master
// (SIGKILL) mid-run and starts it again: requests of accounts whose data
// lives on the other masters keep succeeding, no request waits longer
// than the configured timeouts, and the service recovers by itself. A
// master that hangs (SIGSTOP) instead of dying is held to the same.
func TestLosingAMasterStaysPartial(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 15 seconds")
	}
	for _, tc := range []struct {
		name         string
		local, pause bool
	}{
		{"killed, exact limiter", false, false},
		{"killed, local-first limiter", true, false},
		// A hung host: connections stay open and nothing answers, so
		// only the breaker stops each request from waiting its timeout.
		{"paused, local-first limiter", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) { loseAMaster(t, tc.local, tc.pause) })
	}
}

// The phases of an outage run.
const (
	healthy = iota
	down
	back
	phases
)

var phaseNames = [phases]string{"healthy", "one master down", "master back"}

type outcome struct {
	key    int
	phase  int
	victim bool // the account's data lives on the lost master
	ok     bool
	status int
	at     time.Time // when it ended
	took   time.Duration
}

func loseAMaster(t *testing.T, local, pause bool) {
	// go-redis logs each failed dial of the dead master.
	redis.SetLogger(&logging.VoidLogger{})
	// Without full coverage, the masters left serve their own slots; with
	// it (Redis's default), a Cluster refuses everything once a master is
	// marked failed, after the node timeout (5 s: a loaded 2-core VM can
	// make a shorter one doubt a live master).
	cluster := redistest.StartCluster(t, "--cluster-node-timeout", "5000", "--cluster-require-full-coverage", "no")
	seeds := make([]string, len(cluster.Addrs))
	for i, a := range cluster.Addrs {
		seeds[i] = "redis://" + a
	}
	cfg := serverConfig{RedisURL: strings.Join(seeds, ","), Namespace: "kg", AdminToken: testToken, LocalLimiter: local}
	srv, err := newServer(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	e := &env{t: t}
	ts := httptest.NewServer(srv.handler)
	t.Cleanup(ts.Close)
	e.url = ts.URL

	// 60 accounts, a key each, on a limit that never binds.
	ctx := context.Background()
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = client.Close() })
	const accounts = 60
	keys, ids := make([]string, accounts), make([]string, accounts)
	home := make([]int, accounts) // index of the master holding the account
	for i := range keys {
		acct := fmt.Sprintf("acct_%02d", i)
		r := e.do("PUT", "/api/v1/account", admin(acct), map[string]any{"limits": []map[string]any{{"limit": 1_000_000_000, "period_seconds": 86400}}})
		require.Equal(t, http.StatusOK, r.status, r.raw)
		ids[i], keys[i] = e.create(acct, map[string]any{"name": "load"})
		node, err := client.MasterForKey(ctx, "{"+acct+"}")
		require.NoError(t, err)
		home[i] = slices.Index(cluster.Addrs, node.Options().Addr)
		require.GreaterOrEqual(t, home[i], 0)
	}
	// The victim carries a subscription of the invalidation feed, the
	// worst case for the cache.
	listening := cluster.Listening(cfg.Namespace + ":invalidate")
	require.NotEmpty(t, listening, "the feed listens somewhere")
	victim := listening[0]

	var (
		mu       sync.Mutex
		outcomes []outcome
		phase    = healthy
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	// get makes a request with account k's key and records its outcome.
	get := func(k int) int {
		req := httptest.NewRequest("GET", "/api/v1/health", nil)
		req.Header.Set("Authorization", "Bearer "+keys[k])
		rec := httptest.NewRecorder()
		mu.Lock()
		p := phase
		mu.Unlock()
		began := time.Now()
		srv.handler.ServeHTTP(rec, req)
		end := time.Now()
		mu.Lock()
		outcomes = append(outcomes, outcome{k, p, home[k] == victim, rec.Code == http.StatusOK, rec.Code, end, end.Sub(began)})
		mu.Unlock()
		return rec.Code
	}
	for w := range 8 {
		wg.Go(func() {
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				get(i % accounts)
			}
		})
	}
	setPhase := func(p int) { mu.Lock(); phase = p; mu.Unlock() }
	time.Sleep(2 * time.Second)
	if pause {
		cluster.Pause(victim)
	} else {
		cluster.Kill(victim)
	}
	setPhase(down)
	time.Sleep(5 * time.Second)
	if pause {
		cluster.Resume(victim)
	} else {
		cluster.Start(victim)
	}
	restarted := time.Now()
	setPhase(back)
	time.Sleep(5 * time.Second)
	close(stop)
	wg.Wait()

	// The table: per phase and side, requests, success share, worst wait.
	type cell struct {
		n, ok int
		worst time.Duration
		codes map[int]int
	}
	var table [phases][2]cell
	for _, o := range outcomes {
		c := &table[o.phase][btoi(o.victim)]
		c.n++
		if o.ok {
			c.ok++
		}
		if c.codes == nil {
			c.codes = map[int]int{}
		}
		c.codes[o.status]++
		c.worst = max(c.worst, o.took)
	}
	for p := range phases {
		for side, name := range []string{"other masters", "lost master"} {
			c := table[p][side]
			t.Logf("%-16s accounts on %-13s %7d requests, %6.2f%% succeed, worst %v, statuses %v",
				phaseNames[p], name, c.n, 100*float64(c.ok)/float64(max(c.n, 1)), c.worst.Round(time.Millisecond), c.codes)
		}
	}
	// What the contract promises is asserted: accounts on the other
	// masters keep succeeding, and the service recovers by itself. How
	// long requests waited is logged above (the stores' and limiter's
	// timeouts bound each call, which their own tests check by cause): a
	// busy machine moves it.
	other := table[down][0]
	assert.Equal(t, other.n, other.ok, "accounts on the other masters keep succeeding")
	var lastFailure time.Time
	for _, o := range outcomes {
		if !o.ok {
			lastFailure = o.at
		}
	}
	t.Logf("the service recovered by itself %v after the master came back", max(0, lastFailure.Sub(restarted)).Round(time.Millisecond))
	for i, id := range ids {
		if home[i] != victim {
			continue
		}
		// Every account of the lost master is served again; the guard is
		// for a hang, not a bound on recovery.
		require.Eventually(t, func() bool { return get(i) == http.StatusOK },
			time.Minute, 10*time.Millisecond, "account %d (key %s) is served again", i, id)
	}

	// Usage: the flushes that failed while the master was down are
	// written once it is back. A request counts when its key verified:
	// every answer but a 503 proves it did (a 503 may come from the
	// limiter, after verification, or from the store, before it).
	require.NoError(t, srv.Close())
	sent, verified := make([]int64, accounts), make([]int64, accounts)
	for _, o := range outcomes {
		sent[o.key]++
		if o.status != http.StatusServiceUnavailable {
			verified[o.key]++
		}
	}
	rs, err := redisstore.New(ctx, client, redisstore.Config{Namespace: cfg.Namespace})
	require.NoError(t, err)
	for i, id := range ids {
		u, err := rs.Usage(ctx, id)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, u.TotalRequests, verified[i], "usage of account %d (on master %d)", i, home[i])
		assert.LessOrEqual(t, u.TotalRequests, sent[i], "usage of account %d (on master %d)", i, home[i])
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

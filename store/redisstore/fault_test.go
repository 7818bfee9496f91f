package redisstore_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/breaker"
	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/internal/testproxy"
	"github.com/keygate/keygate/store/cachestore"
	"github.com/keygate/keygate/store/redisstore"
	"github.com/keygate/keygate/store/storetest"
)

func proxiedClient(t testing.TB, p *testproxy.Proxy) *redis.Client {
	opts, err := redis.ParseURL(redistest.URL())
	require.NoError(t, err)
	opts.Addr = p.Addr
	opts.DialTimeout = 200 * time.Millisecond
	opts.ReadTimeout = 200 * time.Millisecond
	opts.WriteTimeout = 200 * time.Millisecond
	opts.MaxRetries = 1
	opts.ContextTimeoutEnabled = true
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func eventually(t *testing.T, within time.Duration, cond func() bool, msg string) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", msg, within)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
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

// Two service instances, each with its own Redis connection, cache and
// store: a key revoked through one is rejected by the other within a
// second, by pub/sub, although its cache TTL is an hour; on a Cluster
// too, where a PUBLISH reaches the subscribers of every node.
func TestRevocationReachesOtherInstances(t *testing.T) {
	for _, d := range redistest.Deployments {
		t.Run(d.Name, func(t *testing.T) {
			ns := redistest.Name(t, d.Connect(t), "store")
			storetest.Invalidation(t, 10*time.Second, // a hang guard: the times taken are logged
				func(t *testing.T) apikey.Store {
					rs, err := redisstore.New(context.Background(), d.Connect(t), redisstore.Config{Namespace: ns})
					require.NoError(t, err)
					return rs
				})
		})
	}
}

// Verification through a connection that drops fails with a store error,
// never "invalid key", and works again once Redis is back; the cache's
// invalidation feed reports the outage and reconnects.
func TestConnectionDropAndRecovery(t *testing.T) {
	ctx := context.Background()
	base := redistest.Client(t)
	ns := redistest.Name(t, base, "store")
	p := testproxy.Start(t, base.Options().Addr)
	rs, err := redisstore.New(context.Background(), proxiedClient(t, p), redisstore.Config{Namespace: ns})
	require.NoError(t, err)
	svc, err := apikey.New(rs, apikey.Config{})
	require.NoError(t, err)
	cs, err := cachestore.New(rs, cachestore.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.Close() })

	issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	key := issued.Secret.Reveal()
	_, err = svc.Verify(ctx, key)
	require.NoError(t, err)
	eventually(t, time.Minute, cs.Healthy, "feed connects")

	p.Cut()
	_, err = svc.Verify(ctx, key)
	storeFailure(t, err)
	eventually(t, time.Minute, func() bool { return !cs.Healthy() }, "the feed reports the outage")

	p.Restore()
	eventually(t, time.Minute, func() bool { _, err := svc.Verify(ctx, key); return err == nil }, "verification recovers")
	eventually(t, time.Minute, cs.Healthy, "the feed reconnects")
}

// A Redis that cannot be reached at start is an error from New, never
// "invalid key", that says so by its address, not as a failed check of
// its configuration; a TLS client facing a Redis without TLS is told so.
func TestUnreachableAtStart(t *testing.T) {
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = client.Close() })
	for _, cfg := range []redisstore.Config{{}, {SkipEvictionCheck: true}} {
		_, err := redisstore.New(ctx, client, cfg)
		storeFailure(t, err)
		require.ErrorContains(t, err, "cannot reach Redis at 127.0.0.1:1")
		require.NotContains(t, err.Error(), "maxmemory-policy")
	}

	tlsClient := redis.NewClient(&redis.Options{Addr: redistest.Client(t).Options().Addr, MaxRetries: -1,
		ContextTimeoutEnabled: true, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}})
	t.Cleanup(func() { _ = tlsClient.Close() })
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err := redisstore.New(short, tlsClient, redisstore.Config{})
	require.ErrorContains(t, err, "does it serve TLS on that port?")
}

// A Redis that may evict keys without a TTL would delete API keys under
// memory pressure: New refuses it, and accepts the policies that cannot.
func TestEvictingRedisIsRefused(t *testing.T) {
	for policy, ok := range map[string]bool{
		"allkeys-lru": false, "allkeys-lfu": false, "allkeys-random": false,
		"noeviction": true, "volatile-lru": true, "volatile-ttl": true,
	} {
		t.Run(policy, func(t *testing.T) {
			client, _ := redistest.Server(t, "--maxmemory", "64mb", "--maxmemory-policy", policy)
			_, err := redisstore.New(context.Background(), client, redisstore.Config{})
			if ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, redisstore.ErrEvicting)
			assert.Contains(t, err.Error(), policy)
			_, err = redisstore.New(context.Background(), client, redisstore.Config{SkipEvictionCheck: true})
			require.NoError(t, err, "the check can be skipped")
		})
	}
}

func TestDeadlineIsHonoured(t *testing.T) {
	client := redistest.Client(t)
	rs := newStore(t, client)
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	_, err := rs.Lookup(ctx, apikey.Hash(sha256.Sum256([]byte("x"))), "")
	storeFailure(t, err)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
}

func TestCorruptRecordIsAnError(t *testing.T) {
	ctx := context.Background()
	client := redistest.Client(t)
	ns, _, svc := newStack(t, client)
	issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	h := apikey.Hash(sha256.Sum256([]byte(issued.Secret.Reveal())))

	hexOf := func(h apikey.Hash) string { return hex.EncodeToString(h[:]) }
	copies, err := client.Keys(ctx, ns+":*h:"+hexOf(h)).Result() // in its account's slot
	require.NoError(t, err)
	require.Len(t, copies, 1)
	for name, data := range map[string]string{
		"not JSON":      "{{{",
		"empty object":  "{}",
		"wrong hash":    `{"id":"x","owner":"acct","hash":"00"}`,
		"other hash":    `{"id":"x","owner":"acct","hash":"` + hexOf(apikey.Hash(sha256.Sum256([]byte("other")))) + `"}`,
		"wrong type":    `{"id":1}`,
		"truncated hex": `{"id":"x","owner":"acct","hash":"` + hexOf(h)[:10] + `"}`,
	} {
		require.NoError(t, client.HSet(ctx, copies[0], "r", data).Err())
		_, err := svc.Verify(ctx, issued.Secret.Reveal())
		storeFailure(t, err)
		assert.Contains(t, err.Error(), "corrupt", name)
	}
}

func TestNewRejects(t *testing.T) {
	_, err := redisstore.New(context.Background(), nil, redisstore.Config{})
	require.ErrorIs(t, err, apikey.ErrInvalidConfig)
	_, err = redisstore.New(context.Background(), redis.NewClient(&redis.Options{ContextTimeoutEnabled: true}), redisstore.Config{Namespace: "a{b}"})
	require.ErrorIs(t, err, apikey.ErrInvalidConfig)
	// A client that ignores deadlines would make every Timeout void.
	_, err = redisstore.New(context.Background(), redis.NewClient(&redis.Options{}), redisstore.Config{})
	require.ErrorIs(t, err, apikey.ErrInvalidConfig)
	require.ErrorContains(t, err, "ContextTimeoutEnabled")
	_, err = redisstore.New(context.Background(), redis.NewClusterClient(&redis.ClusterOptions{}), redisstore.Config{})
	require.ErrorContains(t, err, "ContextTimeoutEnabled")
}

// A feed whose connection dies silently (kept open, every byte dropped,
// as a NAT that forgot it would) is noticed by its missing heartbeats: a
// key revoked through another instance stops verifying here within about
// FeedTimeout, although this cache's TTL is an hour.
func TestSilentlyDeadFeed(t *testing.T) {
	ctx := context.Background()
	base := redistest.Client(t)
	ns := redistest.Name(t, base, "store")
	p := testproxy.Start(t, base.Options().Addr)

	victim, err := redisstore.New(ctx, proxiedClient(t, p), redisstore.Config{Namespace: ns})
	require.NoError(t, err)
	cache, err := cachestore.New(victim, cachestore.Config{TTL: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cache.Close() })
	svc, err := apikey.New(cache, apikey.Config{})
	require.NoError(t, err)
	other, err := redisstore.New(ctx, base, redisstore.Config{Namespace: ns})
	require.NoError(t, err)
	admin, err := apikey.New(other, apikey.Config{})
	require.NoError(t, err)
	eventually(t, time.Minute, cache.Healthy, "the feed connects")

	issued, err := admin.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	key := issued.Secret.Reveal()
	_, err = svc.Verify(ctx, key)
	require.NoError(t, err, "cached here")

	p.Stall()
	require.NoError(t, admin.Revoke(ctx, "acct", issued.Key.ID))
	// The cache's TTL is an hour: only the missing heartbeats can drop
	// the key. The guard is for a hang, not a bound on the time taken.
	took := eventually(t, time.Minute, func() bool {
		_, err := svc.Verify(ctx, key)
		return errors.Is(err, apikey.ErrInvalidKey)
	}, "the revoked key is refused")
	t.Logf("a revocation reached an instance whose feed died silently in %v (FeedTimeout 1s)", took)
	eventually(t, time.Minute, cache.Healthy, "the feed resubscribes on a new connection")
}

// pausedRedis returns a store with cfg on a private Redis, a Service on
// it and a key it issued, then pauses the Redis (SIGSTOP) until the test
// ends or sends it SIGCONT.
func pausedRedis(t *testing.T, cfg redisstore.Config) (*redisstore.Store, *apikey.Service, apikey.Issued, *os.Process) {
	t.Helper()
	client, server := redistest.Server(t)
	rs, err := redisstore.New(context.Background(), client, cfg)
	require.NoError(t, err)
	svc, err := apikey.New(rs, apikey.Config{})
	require.NoError(t, err)
	issued, err := svc.Create(context.Background(), apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	require.NoError(t, server.Signal(syscall.SIGSTOP))
	t.Cleanup(func() { _ = server.Signal(syscall.SIGCONT) })
	return rs, svc, issued, server
}

// A Redis that hangs (paused with SIGSTOP) costs a verification its
// Timeout, then a store error: never a request that waits on. After
// breaker.Threshold such faults, verifications fail at once until a probe
// finds Redis back.
func TestPausedRedisCostsABoundedTime(t *testing.T) {
	ctx := context.Background()
	_, svc, issued, server := pausedRedis(t, redisstore.Config{Timeout: 200 * time.Millisecond})
	// The caller would wait a minute: what ends each verification is
	// checked, not how long it took, which a busy machine moves.
	caller, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for i := range breaker.Threshold + 5 {
		start := time.Now()
		_, err := svc.Verify(caller, issued.Secret.Reveal())
		took := time.Since(start)
		storeFailure(t, err)
		require.NoError(t, caller.Err())
		want := context.DeadlineExceeded // the store's Timeout
		if i >= breaker.Threshold {
			want = breaker.ErrOpen // the node's breaker is open: no call, no wait
		}
		require.ErrorIs(t, err, want, "verification %d", i+1)
		t.Logf("verification %d failed after %v (%v)", i+1, took, want)
	}

	require.NoError(t, server.Signal(syscall.SIGCONT))
	took := eventually(t, time.Minute, func() bool { _, err := svc.Verify(ctx, issued.Secret.Reveal()); return err == nil }, "verification recovers")
	t.Logf("Redis back: verification recovered after %v (the breaker probes every %v)", took, breaker.Cooldown)
}

// Management calls on a Redis that hangs end at ManagementTimeout with a
// store error, never at the caller's deadline (they had none).
func TestPausedRedisBoundsManagementCalls(t *testing.T) {
	ctx := context.Background()
	const manage = 300 * time.Millisecond
	rs, svc, issued, _ := pausedRedis(t, redisstore.Config{ManagementTimeout: manage})
	caller, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, call := range []struct {
		name string
		run  func() error
	}{
		{"Create", func() error { _, err := svc.Create(caller, apikey.CreateParams{Owner: "acct"}); return err }},
		{"List", func() error { _, err := svc.ListPage(caller, "acct", "", 100); return err }},
		{"Revoke", func() error { return svc.Revoke(caller, "acct", issued.Key.ID) }},
		{"Events", func() error { _, err := svc.Events(caller, "acct", "", "", 10); return err }},
		{"PutAccount", func() error { return rs.PutAccount(caller, nil, &apikey.Account{ID: "acct_new", Version: 1}) }},
		{"Usage", func() error { _, err := rs.Usage(caller, issued.Key.ID); return err }},
	} {
		start := time.Now()
		err := call.run()
		storeFailure(t, err)
		require.NoError(t, caller.Err(), "%s waited for the caller's deadline", call.name)
		require.ErrorIs(t, err, context.DeadlineExceeded, call.name)
		t.Logf("%s failed after %v (ManagementTimeout %v)", call.name, time.Since(start), manage)
	}
}

// replies records whether each GET found nothing (redis.Nil).
type replies struct{ nils []bool }

func (*replies) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *replies) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if cmd.Name() == "get" {
			r.nils = append(r.nils, errors.Is(err, redis.Nil))
		}
		return err
	}
}
func (*replies) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// Asking for another account's key ID gets the answer an unknown ID gets,
// from Redis itself (one GET in the asking account's slot, which finds
// nothing): no record crosses the network to be decoded and compared,
// which made the answer measurably slower (issue 10).
func TestAnotherOwnersIDCostsWhatAnUnknownOneDoes(t *testing.T) {
	ctx := context.Background()
	client := redistest.Client(t)
	_, _, svc := newStack(t, client)
	issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct_a"})
	require.NoError(t, err)
	id := issued.Key.ID

	hook := &replies{}
	client.AddHook(hook)
	_, err = svc.Get(ctx, "acct_b", id)
	require.ErrorIs(t, err, apikey.ErrNotFound)
	_, err = svc.Get(ctx, "acct_b", "no-such-id")
	require.ErrorIs(t, err, apikey.ErrNotFound)
	assert.Equal(t, []bool{true, true}, hook.nils, "Redis answered both with nothing")

}

// On a Cluster the invalidation feed listens on two masters: killing one
// of them neither breaks the feed (no cache is emptied) nor loses a
// revocation made afterwards, and the broken subscription moves to the
// master left over.
func TestClusterFeedSurvivesLosingAMaster(t *testing.T) {
	ctx := context.Background()
	// A node timeout long enough that a loaded VM never makes the masters
	// left doubt each other.
	cluster := redistest.StartCluster(t, "--cluster-node-timeout", "5000", "--cluster-require-full-coverage", "no")
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = client.Close() })
	rs, err := redisstore.New(ctx, client, redisstore.Config{Namespace: "kg"})
	require.NoError(t, err)
	cache, err := cachestore.New(rs, cachestore.Config{TTL: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cache.Close() })
	svc, err := apikey.New(cache, apikey.Config{})
	require.NoError(t, err)
	eventually(t, time.Minute, cache.Healthy, "the feed connects")

	listening := func() []int { return cluster.Listening("kg:invalidate") }
	eventually(t, time.Minute, func() bool { return len(listening()) == 2 }, "two masters carry a subscription")
	victim := listening()[0]

	// A key whose account, copy and ID index live on masters that stay
	// up: a revocation needs all three.
	others := func(key string) bool {
		node, err := client.MasterForKey(ctx, key)
		require.NoError(t, err)
		return node.Options().Addr != cluster.Addrs[victim]
	}
	var issued apikey.Issued
	for i := 0; ; i++ {
		owner := fmt.Sprintf("acct%d", i)
		issued, err = svc.Create(ctx, apikey.CreateParams{Owner: owner})
		require.NoError(t, err)
		hash := apikey.Hash(sha256.Sum256([]byte(issued.Secret.Reveal())))
		if others("{"+owner+"}") && others("kg:h:"+hex.EncodeToString(hash[:])) && others("{"+issued.Key.ID+"}") {
			break
		}
	}
	_, err = svc.Verify(ctx, issued.Secret.Reveal())
	require.NoError(t, err, "cached")

	other, err := redisstore.New(ctx, client, redisstore.Config{Namespace: "kg"})
	require.NoError(t, err)
	admin, err := apikey.New(other, apikey.Config{})
	require.NoError(t, err)

	var broke atomic.Bool
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				if !cache.Healthy() {
					broke.Store(true)
				}
			}
		}
	}()
	cluster.Kill(victim)
	time.Sleep(1500 * time.Millisecond) // past FeedTimeout
	require.NoError(t, admin.Revoke(ctx, issued.Key.Owner, issued.Key.ID))
	eventually(t, time.Minute, func() bool {
		_, err := svc.Verify(ctx, issued.Secret.Reveal())
		return errors.Is(err, apikey.ErrInvalidKey)
	}, "the revocation reaches the cache")
	close(stop)
	<-watched
	assert.False(t, broke.Load(), "the feed never broke")
	eventually(t, time.Minute, func() bool { return len(listening()) == 2 }, "the subscription moved to the master left over")
}

package redislimit_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/breaker"
	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/ratelimit/ratelimittest"
	"github.com/keygate/keygate/ratelimit/redislimit"
)

// freePlan is the default plans' policy of that name.
var freePlan, _ = ratelimit.DefaultPlans().Lookup("free")

// newLimiter returns a limiter under a fresh prefix on the test Redis, its
// client and the prefix.
func newLimiter(t testing.TB) (*redislimit.Limiter, *redis.Client, string) {
	t.Helper()
	client := redistest.Client(t)
	p := redistest.Name(t, client, "rl") + ":"
	l, err := redislimit.New(client, redislimit.Config{Prefix: p})
	require.NoError(t, err)
	return l, client, p
}

// The suite on a single node and on a 3-master Cluster, where an
// account's and its keys' states share a slot, so that each decision is
// still one script.
func TestBehaviour(t *testing.T) {
	for _, d := range redistest.Deployments {
		t.Run(d.Name, func(t *testing.T) {
			client := d.Connect(t)
			ratelimittest.Run(t, func(t *testing.T, now func() time.Time) ratelimit.Limiter {
				l, err := redislimit.NewWithClock(client, redislimit.Config{Prefix: redistest.Name(t, client, "rl") + ":"}, now)
				require.NoError(t, err)
				return l
			})
		})
	}
}

// The suite again, each request through the next of two instances on
// their own connections: every behaviour holds across a fleet.
func TestBehaviourAcrossInstances(t *testing.T) {
	ratelimittest.Run(t, func(t *testing.T, now func() time.Time) ratelimit.Limiter {
		base := redistest.Client(t)
		p := redistest.Name(t, base, "rl") + ":"
		var a alternating
		for i := range a.instances {
			l, err := redislimit.NewWithClock(redistest.Client(t), redislimit.Config{Prefix: p}, now)
			require.NoError(t, err)
			a.instances[i] = l
		}
		return &a
	})
}

// alternating sends each request to the next of its instances.
type alternating struct {
	instances [2]*redislimit.Limiter
	n         atomic.Int64
}

func (a *alternating) Allow(ctx context.Context, r ratelimit.Request) (ratelimit.Decision, error) {
	return a.instances[a.n.Add(1)%2].Allow(ctx, r)
}

// Two limiters on separate connections, 8 goroutines each, one key, a
// 100/min policy, Redis server time: exactly 100 pass.
func TestInstancesShareTheLimit(t *testing.T) {
	base := redistest.Client(t)
	p := redistest.Name(t, base, "rl") + ":"
	policy := mustPolicy("hammer", ratelimit.PerMinute(100))
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		l, err := redislimit.New(redistest.Client(t), redislimit.Config{Prefix: p})
		require.NoError(t, err)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 20 {
					d, err := l.Allow(context.Background(), ratelimit.Request{Key: "key_shared", KeyPolicy: policy, Cost: 1})
					if err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						allowed.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	assert.EqualValues(t, 100, allowed.Load(), "of 320 requests")
}

// hook counts round trips.
type hook struct{ n atomic.Int64 }

func (h *hook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h *hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

func TestOneRoundTripForAllWindows(t *testing.T) {
	l, client, _ := newLimiter(t)
	h := &hook{}
	client.AddHook(h)
	ctx := context.Background()
	policy := mustPolicy("four", ratelimit.PerMinute(10), ratelimit.PerHour(100), ratelimit.PerDay(1000),
		ratelimit.Window{Name: "week", Limit: 5000, Period: 7 * 24 * time.Hour, Fixed: true})
	_, err := l.Allow(ctx, ratelimit.Request{Key: "warm", KeyPolicy: policy, Cost: 1}) // loads the script
	require.NoError(t, err)
	before := h.n.Load()
	for range 10 {
		_, err := l.Allow(ctx, ratelimit.Request{Key: "k", KeyPolicy: policy, Cost: 1})
		require.NoError(t, err)
	}
	assert.EqualValues(t, 10, h.n.Load()-before)
}

func TestFailOpenAndClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	dead := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 100 * time.Millisecond, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = dead.Close() })
	ctx := context.Background()

	closed, err := redislimit.New(dead, redislimit.Config{})
	require.NoError(t, err)
	_, err = closed.Allow(ctx, ratelimit.Request{Key: "k", KeyPolicy: freePlan, Cost: 1})
	require.Error(t, err)

	var reported atomic.Int32
	open, err := redislimit.New(dead, redislimit.Config{FailOpen: true, OnError: func(error) { reported.Add(1) }})
	require.NoError(t, err)
	d, err := open.Allow(ctx, ratelimit.Request{Key: "k", KeyPolicy: freePlan, Cost: 1})
	require.NoError(t, err)
	assert.True(t, d.Allowed)
	assert.True(t, d.FailedOpen)
	assert.EqualValues(t, 1, reported.Load())
}

func TestSubMicrosecondRateIsRejected(t *testing.T) {
	l, _, _ := newLimiter(t)
	fast := mustPolicy("fast", ratelimit.Window{Limit: 2_000_000, Period: time.Second})
	_, err := l.Allow(context.Background(), ratelimit.Request{Key: "k", KeyPolicy: fast, Cost: 1})
	require.ErrorIs(t, err, ratelimit.ErrInvalidPolicy)
}

func TestNewRejects(t *testing.T) {
	_, err := redislimit.New(nil, redislimit.Config{})
	require.Error(t, err)
	_, err = redislimit.New(redis.NewClient(&redis.Options{ContextTimeoutEnabled: true}), redislimit.Config{Prefix: "a{b}"})
	require.Error(t, err)
	// A client that ignores deadlines would make Timeout void.
	_, err = redislimit.New(redis.NewClient(&redis.Options{}), redislimit.Config{})
	require.ErrorContains(t, err, "ContextTimeoutEnabled")
}

// State expires once idle: never before its windows are whole again, at
// most a minute after. Bounds are instants of Redis's own clock, read
// around the request, so a busy machine cannot move them.
func TestStateExpiresWhenIdle(t *testing.T) {
	l, client, p := newLimiter(t)
	ctx := context.Background()
	for _, tc := range []struct {
		policy *ratelimit.Policy
		// min and max bound the expiry, given the server's time before
		// and after the request.
		min, max func(before, after time.Time) time.Time
	}{
		// A bucket of 10 per second is whole one interval (100 ms) after
		// one request; the slack is the bucket's span, a second.
		{mustPolicy("second", ratelimit.Window{Limit: 10, Period: time.Second}),
			func(before, _ time.Time) time.Time { return before.Add(100 * time.Millisecond) },
			func(_, after time.Time) time.Time { return after.Add(1100 * time.Millisecond) }},
		// A fixed day window lives to the day's end, plus a minute.
		{mustPolicy("day", ratelimit.PerDay(5)),
			func(before, _ time.Time) time.Time { return before.Truncate(24 * time.Hour).Add(24 * time.Hour) },
			func(_, after time.Time) time.Time {
				return after.Truncate(24 * time.Hour).Add(24*time.Hour + time.Minute)
			}},
		// A month window lives to the month's end, plus a minute.
		{mustPolicy("month", ratelimit.PerMonth(5)),
			func(before, _ time.Time) time.Time {
				y, m, _ := before.Date()
				return time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
			},
			func(_, after time.Time) time.Time {
				y, m, _ := after.Date()
				return time.Date(y, m+1, 1, 0, 1, 0, 0, time.UTC)
			}},
	} {
		before, err := client.Time(ctx).Result()
		require.NoError(t, err)
		_, err = l.Allow(ctx, ratelimit.Request{Key: tc.policy.Name(), KeyPolicy: tc.policy, Cost: 1})
		require.NoError(t, err)
		after, err := client.Time(ctx).Result()
		require.NoError(t, err)
		at, err := client.PExpireTime(ctx, p+"{"+tc.policy.Name()+"}:k:"+tc.policy.Name()).Result()
		require.NoError(t, err)
		expires := time.UnixMilli(int64(at / time.Millisecond)).UTC()
		before, after = before.UTC().Truncate(time.Millisecond), after.UTC().Add(time.Millisecond)
		assert.False(t, expires.Before(tc.min(before, after)), "%s: expires %v, before %v", tc.policy.Name(), expires, tc.min(before, after))
		// PX counts whole milliseconds, rounded up: a millisecond of slack.
		latest := tc.max(before, after).Add(time.Millisecond)
		assert.False(t, expires.After(latest), "%s: expires %v, after %v", tc.policy.Name(), expires, latest)
	}
}

// A state of the wrong size (written by another version) starts afresh; a
// value of another type is an error, never a decision.
func TestForeignState(t *testing.T) {
	l, client, p := newLimiter(t)
	ctx := context.Background()
	policy := mustPolicy("one", ratelimit.PerMinute(1))
	require.NoError(t, client.Set(ctx, p+"{short}:k:short", "garbage", time.Minute).Err())
	d, err := l.Allow(ctx, ratelimit.Request{Key: "short", KeyPolicy: policy, Cost: 1})
	require.NoError(t, err)
	assert.True(t, d.Allowed)

	require.NoError(t, client.HSet(ctx, p+"{hash}:k:hash", "t1", 1).Err())
	_, err = l.Allow(ctx, ratelimit.Request{Key: "hash", KeyPolicy: policy, Cost: 1})
	require.Error(t, err)

	// The same for an account's state and its balance, read in the same
	// call as a key's; the foreign values are left as they were.
	credits := &ratelimit.Credits{Balance: 10, Granted: time.Now()}
	for _, state := range []string{"a", "c"} {
		account := "acct_" + state
		require.NoError(t, client.HSet(ctx, p+"{"+account+"}:"+state, "t1", 1).Err())
		_, err = l.Allow(ctx, ratelimit.Request{Account: account, AccountPolicy: policy, Key: "k", KeyPolicy: policy, Credits: credits, Cost: 1})
		require.Error(t, err, state)
		typ, err := client.Type(ctx, p+"{"+account+"}:"+state).Result()
		require.NoError(t, err)
		assert.Equal(t, "hash", typ, state)
	}
}

func TestHugeWindowIsRejected(t *testing.T) {
	l, _, _ := newLimiter(t)
	for _, w := range []ratelimit.Window{
		{Limit: 1, Period: 200 * 365 * 24 * time.Hour},
		{Limit: 1 << 53, Period: 200 * 365 * 24 * time.Hour, Fixed: true},
		{Limit: 1, Burst: 1 << 40, Period: time.Hour},
	} {
		_, err := l.Allow(context.Background(), ratelimit.Request{Key: "k", KeyPolicy: mustPolicy("huge", w), Cost: 1})
		require.ErrorIs(t, err, ratelimit.ErrInvalidPolicy, "%+v", w)
	}
}

// Every window count decides, and counts its last window: each window
// added is tighter than the ones before, so it binds.
func TestEveryWindowCount(t *testing.T) {
	l, _, _ := newLimiter(t)
	windows := []ratelimit.Window{ratelimit.PerMinute(40), ratelimit.PerDay(30), ratelimit.PerHour(20),
		{Name: "week", Limit: 10, Period: 7 * 24 * time.Hour, Fixed: true}}
	for n := 1; n <= 4; n++ {
		p := mustPolicy(fmt.Sprint("n", n), windows[:n]...)
		for range 2 {
			_, err := l.Allow(context.Background(), ratelimit.Request{Key: "k", KeyPolicy: p, Cost: 1})
			require.NoError(t, err)
		}
		d, err := l.Allow(context.Background(), ratelimit.Request{Key: "k", KeyPolicy: p, Cost: 1})
		require.NoError(t, err)
		require.True(t, d.Allowed)
		assert.Equal(t, n-1, d.Tightest, "%d windows", n)
		assert.Equal(t, windows[n-1].Limit-3, d.Remaining, "%d windows", n)
	}
}

// A Redis that hangs (paused with SIGSTOP) costs a request the Timeout,
// then an error, or a pass when failing open; after breaker.Threshold
// such requests, the answer comes at once until a probe finds Redis back.
// What ends each request is checked (the limiter's own deadline, then
// the open breaker), not how long it took, which a busy machine moves.
func TestPausedRedisCostsABoundedTime(t *testing.T) {
	client, server := redistest.Server(t)
	var failedOpen error
	closed, err := redislimit.New(client, redislimit.Config{Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	open, err := redislimit.New(client, redislimit.Config{Timeout: 200 * time.Millisecond, FailOpen: true,
		OnError: func(err error) { failedOpen = err }})
	require.NoError(t, err)
	r := ratelimit.Request{Key: "k", KeyPolicy: freePlan, Cost: 1}
	_, err = closed.Allow(context.Background(), r)
	require.NoError(t, err)

	require.NoError(t, server.Signal(syscall.SIGSTOP))
	t.Cleanup(func() { _ = server.Signal(syscall.SIGCONT) })
	// The caller would wait a minute: the limiter must end first.
	caller, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	limiters := map[string]*redislimit.Limiter{"fail closed": closed, "fail open": open}
	for name, l := range limiters {
		for i := range breaker.Threshold + 3 {
			start := time.Now()
			d, err := l.Allow(caller, r)
			took := time.Since(start)
			if name == "fail open" {
				require.NoError(t, err)
				assert.True(t, d.Allowed && d.FailedOpen)
				err = failedOpen
			}
			require.NoError(t, caller.Err())
			want := context.DeadlineExceeded // the limiter's Timeout
			if i >= breaker.Threshold {
				want = breaker.ErrOpen // no call, no wait
			}
			require.ErrorIs(t, err, want, "%s: request %d", name, i+1)
			t.Logf("%s: request %d answered after %v (%v)", name, i+1, took, want)
		}
	}
	require.NoError(t, server.Signal(syscall.SIGCONT))
	start := time.Now()
	require.Eventually(t, func() bool { d, err := closed.Allow(context.Background(), r); return err == nil && d.Allowed }, time.Minute, time.Millisecond)
	t.Logf("Redis back: the breaker's probe let requests through after %v (Cooldown %v)", time.Since(start), breaker.Cooldown)
}

// A credit balance is kept only while it differs from what its grant and
// refills make it, so that accounts that spend nothing cost nothing; it
// never expires while it does. One round trip decides it with the
// windows.
func TestCreditStateLivesWhileSpent(t *testing.T) {
	client := redistest.Client(t)
	p := redistest.Name(t, client, "rl") + ":"
	clock := testclock.New(time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC))
	l, err := redislimit.NewWithClock(client, redislimit.Config{Prefix: p}, clock.Now)
	require.NoError(t, err)
	h := &hook{}
	client.AddHook(h)
	ctx := context.Background()
	credits := &ratelimit.Credits{Balance: 5, Granted: clock.Now(), Refill: 5, RefillAt: clock.Now().Add(time.Hour)}
	r := ratelimit.Request{Account: "a", AccountPolicy: freePlan, Key: "k", Credits: credits}
	state := p + "{a}:c"
	_, err = l.Allow(ctx, r) // cost 0
	require.NoError(t, err)
	assert.Zero(t, client.Exists(ctx, state).Val(), "nothing spent, nothing kept")

	before := h.n.Load()
	r.Cost = 2
	d, err := l.Allow(ctx, r)
	require.NoError(t, err)
	assert.EqualValues(t, 1, h.n.Load()-before, "one round trip")
	assert.EqualValues(t, 3, d.Balance)
	assert.EqualValues(t, 1, client.Exists(ctx, state).Val())
	assert.EqualValues(t, -1, client.TTL(ctx, state).Val(), "a spent balance never expires")

	clock.Advance(time.Hour) // the refill replaces the balance: fresh again
	r.Cost = 0
	d, err = l.Allow(ctx, r)
	require.NoError(t, err)
	assert.EqualValues(t, 5, d.Balance)
	assert.Zero(t, client.Exists(ctx, state).Val())
}

// mustPolicy returns the policy of windows, which are valid.
func mustPolicy(name string, windows ...ratelimit.Window) *ratelimit.Policy {
	p, err := ratelimit.NewPolicy(name, windows...)
	if err != nil {
		panic(err)
	}
	return p
}

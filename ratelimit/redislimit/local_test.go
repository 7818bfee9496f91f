package redislimit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/ratelimit/ratelimittest"
	"github.com/keygate/keygate/ratelimit/redislimit"
)

// The suite in local-first mode, on both deployments: its policies are
// small, so every request is decided exactly, as Local promises.
func TestBehaviourLocalFirst(t *testing.T) {
	for _, d := range redistest.Deployments {
		t.Run(d.Name, func(t *testing.T) {
			client := d.Connect(t)
			ratelimittest.Run(t, func(t *testing.T, now func() time.Time) ratelimit.Limiter {
				l, err := redislimit.NewWithClock(client, redislimit.Config{Prefix: redistest.Name(t, client, "rl") + ":", Local: &redislimit.Local{}}, now)
				require.NoError(t, err)
				return l
			})
		})
	}
}

// Four instances share an account limit of 6,000 per minute, local-first,
// each on its own connection with 8 goroutines. Below the limit, they
// make fewer than 0.02 Redis calls per request; past it, the admits stay
// within exact mode's (6,000 plus the refill meanwhile) ± 4 leases of 60.
func TestLocalFirstFourInstances(t *testing.T) {
	for _, d := range redistest.Deployments {
		t.Run(d.Name, func(t *testing.T) {
			base := d.Connect(t)
			p := redistest.Name(t, base, "rl") + ":"
			policy := mustPolicy("big", ratelimit.PerMinute(6000))
			const instances, lease = 4, 60
			h := &hook{}
			var limiters [instances]*redislimit.Limiter
			for i := range limiters {
				client := d.Connect(t)
				client.AddHook(h)
				l, err := redislimit.New(client, redislimit.Config{Prefix: p, Local: &redislimit.Local{}})
				require.NoError(t, err)
				limiters[i] = l
			}
			var allowed atomic.Int64
			send := func(each int) {
				var wg sync.WaitGroup
				for _, l := range limiters {
					for range 8 {
						wg.Go(func() {
							for range each {
								d, err := l.Allow(context.Background(), ratelimit.Request{Account: "acct", AccountPolicy: policy, Key: "k", Cost: 1})
								if !assert.NoError(t, err) {
									return
								}
								if d.Allowed {
									allowed.Add(1)
								}
							}
						})
					}
				}
				wg.Wait()
			}
			start := time.Now()
			send(125) // 4,000 requests, under the limit
			calls := float64(h.n.Load()) / 4000
			t.Logf("under the limit: %d of 4000 admitted, %.4f Redis calls per request", allowed.Load(), calls)
			assert.EqualValues(t, 4000, allowed.Load())
			assert.Less(t, calls, 0.02)

			send(500) // 16,000 more
			elapsed := time.Since(start)
			refill := int64(elapsed.Seconds()*100) + 1 // 100 a second
			exact := 6000 + refill
			t.Logf("over it: %d of 20000 admitted in %v; exact mode would admit at most %d, the bound is ±%d; %d Redis calls in all (%.4f per request)",
				allowed.Load(), elapsed, exact, instances*lease, h.n.Load(), float64(h.n.Load())/20000)
			assert.LessOrEqual(t, allowed.Load(), exact+instances*lease)
			assert.GreaterOrEqual(t, allowed.Load(), 6000-int64(instances*lease))
		})
	}
}

// A small limit is exact in local-first mode too: the free plan's 10 per
// minute admits exactly 10 across four instances.
func TestLocalFirstKeepsSmallLimitsExact(t *testing.T) {
	base := redistest.Client(t)
	p := redistest.Name(t, base, "rl") + ":"
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		l, err := redislimit.New(redistest.Client(t), redislimit.Config{Prefix: p, Local: &redislimit.Local{}})
		require.NoError(t, err)
		for range 4 {
			wg.Go(func() {
				for range 10 {
					d, err := l.Allow(context.Background(), ratelimit.Request{Account: "acct", AccountPolicy: freePlan, Key: "k", Cost: 1})
					if assert.NoError(t, err) && d.Allowed {
						allowed.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	assert.EqualValues(t, 10, allowed.Load())
}

// In both modes a refused key is answered in process until shortly
// before its retry time: no round trip, the same refusal, a shrinking
// Retry-After; then Redis decides again.
func TestRefusalsAreAnsweredLocally(t *testing.T) {
	for name, local := range map[string]*redislimit.Local{"exact": nil, "local-first": {}} {
		t.Run(name, func(t *testing.T) {
			client := redistest.Client(t)
			h := &hook{}
			client.AddHook(h)
			l, err := redislimit.New(client, redislimit.Config{Prefix: redistest.Name(t, client, "rl") + ":", Local: local})
			require.NoError(t, err)
			ctx := context.Background()
			policy := mustPolicy("fast", ratelimit.Window{Limit: 2, Period: 200 * time.Millisecond})
			r := ratelimit.Request{Key: "k", KeyPolicy: policy, Cost: 1}
			for range 2 {
				d, err := l.Allow(ctx, r)
				require.NoError(t, err)
				require.True(t, d.Allowed)
			}
			first, err := l.Allow(ctx, r)
			require.NoError(t, err)
			require.False(t, first.Allowed)
			before := h.n.Load()
			time.Sleep(10 * time.Millisecond)
			again, err := l.Allow(ctx, r)
			require.NoError(t, err)
			assert.False(t, again.Allowed)
			assert.Equal(t, before, h.n.Load(), "no round trip")
			assert.Less(t, again.RetryAfter, first.RetryAfter)
			assert.Positive(t, again.RetryAfter)
			time.Sleep(first.RetryAfter)
			d, err := l.Allow(ctx, r)
			require.NoError(t, err)
			assert.True(t, d.Allowed, "after Retry-After, Redis decides again")
			assert.Greater(t, h.n.Load(), before)
		})
	}
}

func TestLocalRejects(t *testing.T) {
	client := redistest.Client(t)
	for _, bad := range []redislimit.Local{{Share: -1}, {Share: 1.5}, {TTL: -time.Second}} {
		_, err := redislimit.New(client, redislimit.Config{Local: &bad})
		assert.Error(t, err, "%+v", bad)
	}
}

// With Redis paused, 32 concurrent requests of one account in
// local-first mode wait for one failed lease, not each for its own in
// turn: every one fails closed, and the limiter asks Redis once (a few
// times at most, for requests that arrive after a failed lease's answer
// is no longer repeated), never once per request; and Redis back, leases
// resume by themselves.
func TestLocalFirstPausedRedisCostsOneTimeout(t *testing.T) {
	client, server := redistest.Server(t)
	calls := &scriptCalls{}
	client.AddHook(calls)
	l, err := redislimit.New(client, redislimit.Config{Timeout: 200 * time.Millisecond, Local: &redislimit.Local{}})
	require.NoError(t, err)
	policy := mustPolicy("big", ratelimit.PerMinute(60_000))
	r := ratelimit.Request{Account: "acct", AccountPolicy: policy, Key: "k", Cost: 1}
	_, err = l.Allow(context.Background(), r)
	require.NoError(t, err)
	time.Sleep(1100 * time.Millisecond) // the lease's TTL: the next request needs Redis

	require.NoError(t, server.Signal(syscall.SIGSTOP))
	t.Cleanup(func() { _ = server.Signal(syscall.SIGCONT) })
	before := calls.n.Load()
	var worst atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			start := time.Now()
			_, err := l.Allow(context.Background(), r)
			assert.Error(t, err)
			took := time.Since(start)
			for w := worst.Load(); int64(took) > w && !worst.CompareAndSwap(w, int64(took)); w = worst.Load() {
			}
		})
	}
	wg.Wait()
	made := calls.n.Load() - before
	t.Logf("32 requests with Redis paused: %d calls to Redis; the slowest answered after %v (Timeout 200ms)", made, time.Duration(worst.Load()))
	assert.LessOrEqual(t, made, int64(4), "the requests shared a lease's answer")

	require.NoError(t, server.Signal(syscall.SIGCONT))
	require.Eventually(t, func() bool {
		d, err := l.Allow(context.Background(), r)
		return err == nil && d.Allowed
	}, time.Minute, 20*time.Millisecond, "leases resume")
}

// scriptCalls counts the scripts a client runs.
type scriptCalls struct{ n atomic.Int64 }

func (*scriptCalls) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *scriptCalls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (*scriptCalls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

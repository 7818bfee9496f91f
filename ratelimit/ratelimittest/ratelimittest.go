// Package ratelimittest is the behavioural suite for [ratelimit.Limiter]
// implementations: exact counts at exact instants, all-or-nothing across
// windows, fixed day windows, costs, clocks that step back, and
// concurrency. It uses only the standard testing package:
//
//	func TestLimiter(t *testing.T) {
//		ratelimittest.Run(t, func(t *testing.T, now func() time.Time) ratelimit.Limiter {
//			return mylimiter.New(..., now) // fresh, reading time from now
//		})
//	}
package ratelimittest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/ratelimit"
)

// start is the suite's first instant: mid-morning UTC, far from a day's
// end.
var start = time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)

// Run runs the suite as subtests of t. newLimiter must return a fresh
// limiter, with no state for any key, that reads the time from now.
func Run(t *testing.T, newLimiter func(t *testing.T, now func() time.Time) ratelimit.Limiter) {
	tests := []struct {
		name string
		fn   func(*testing.T, ratelimit.Limiter, *testclock.Clock)
	}{
		{"EleventhOfTenPerMinuteIsDenied", testMinute},
		{"DayWindowIsAFixedUTCDay", testDay},
		{"DeniedRequestTakesNothing", testAllOrNothing},
		{"KeysAreIndependent", testKeys},
		{"Costs", testCosts},
		{"ClockSteppingBackMintsNothing", testClockBack},
		{"ConcurrentRequestsCountExactly", testConcurrent},
		{"TightestWindowIsDeterministic", testTightest},
		{"FourWindows", testFourWindows},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testclock.New(start)
			tc.fn(t, newLimiter(t, c.Now), c)
		})
	}
}

func allow(t *testing.T, l ratelimit.Limiter, key string, p *ratelimit.Policy, cost int64) ratelimit.Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), key, p, cost)
	if err != nil {
		t.Fatalf("Allow(%s): %v", key, err)
	}
	return d
}

func want(t *testing.T, d ratelimit.Decision, allowed bool, remaining int64, retryAfter time.Duration) {
	t.Helper()
	if d.Allowed != allowed || d.Remaining != remaining || d.RetryAfter != retryAfter {
		t.Fatalf("decision: allowed=%v remaining=%d retryAfter=%v; want %v, %d, %v",
			d.Allowed, d.Remaining, d.RetryAfter, allowed, remaining, retryAfter)
	}
}

func testMinute(t *testing.T, l ratelimit.Limiter, c *testclock.Clock) {
	p := ratelimit.MustPolicy("t", ratelimit.PerMinute(10))
	for i := range 10 {
		d := allow(t, l, "k", p, 1)
		want(t, d, true, int64(9-i), 0)
		if d.Limit != 10 {
			t.Fatalf("Limit = %d, want 10", d.Limit)
		}
	}
	d := allow(t, l, "k", p, 1)
	want(t, d, false, 0, 6*time.Second)
	if !d.Reset.Equal(start.Add(time.Minute)) {
		t.Fatalf("Reset = %v, want %v (the bucket full again)", d.Reset, start.Add(time.Minute))
	}
	c.Advance(6*time.Second - time.Millisecond)
	want(t, allow(t, l, "k", p, 1), false, 0, time.Millisecond)
	c.Advance(time.Millisecond)
	want(t, allow(t, l, "k", p, 1), true, 0, 0)
	want(t, allow(t, l, "k", p, 1), false, 0, 6*time.Second)
}

func testDay(t *testing.T, l ratelimit.Limiter, c *testclock.Clock) {
	p := ratelimit.MustPolicy("t", ratelimit.PerMinute(10), ratelimit.PerDay(15))
	for range 10 {
		allow(t, l, "k", p, 1)
	}
	c.Advance(time.Minute)
	for range 5 {
		if d := allow(t, l, "k", p, 1); !d.Allowed {
			t.Fatalf("request within both windows denied: %+v", d)
		}
	}
	midnight := time.Date(2030, 1, 3, 0, 0, 0, 0, time.UTC)
	d := allow(t, l, "k", p, 1)
	if d.Allowed || d.Tightest != 1 || d.Limit != 15 || d.Remaining != 0 || !d.Reset.Equal(midnight) ||
		d.RetryAfter != midnight.Sub(c.Now()) || d.ResetAfter != midnight.Sub(c.Now()) {
		t.Fatalf("16th request of a 15/day window: %+v; want denied by window 1 until %v", d, midnight)
	}
	c.Set(midnight.Add(-time.Nanosecond))
	if d := allow(t, l, "k", p, 1); d.Allowed {
		t.Fatalf("a request just before midnight passed a spent day window")
	}
	c.Set(midnight)
	if d := allow(t, l, "k", p, 1); !d.Allowed || d.Tightest != 0 || d.Remaining != 9 {
		t.Fatalf("first request of a new UTC day: %+v", d)
	}
}

func testAllOrNothing(t *testing.T, l ratelimit.Limiter, c *testclock.Clock) {
	// A fixed window refuses; the bucket beside it must keep its tokens.
	// The bucket refills one token per 6 hours, so a minute later it
	// holds what the refusals left it.
	slow := ratelimit.Window{Name: "slow", Limit: 4, Period: 24 * time.Hour}
	perMinute := ratelimit.Window{Name: "fixed-min", Limit: 3, Period: time.Minute, Fixed: true}
	p := ratelimit.MustPolicy("t", slow, perMinute)
	for range 3 {
		if d := allow(t, l, "k", p, 1); !d.Allowed {
			t.Fatalf("denied with room in both windows: %+v", d)
		}
	}
	for range 3 {
		if d := allow(t, l, "k", p, 1); d.Allowed || d.Tightest != 1 {
			t.Fatalf("fourth request in a minute of 3: %+v; want a denial by the fixed window", d)
		}
	}
	c.Advance(time.Minute)
	if d := allow(t, l, "k", p, 1); !d.Allowed || d.Tightest != 0 || d.Remaining != 0 {
		t.Fatalf("the bucket's last token: %+v; the refusals took from it", d)
	}
	if d := allow(t, l, "k", p, 1); d.Allowed || d.Tightest != 0 {
		t.Fatalf("an empty bucket admitted: %+v", d)
	}

	// A bucket refuses; the fixed window beside it must keep its count.
	q := ratelimit.MustPolicy("t2", ratelimit.PerMinute(5), ratelimit.PerDay(6))
	for range 5 {
		allow(t, l, "k2", q, 1)
	}
	for range 3 {
		if d := allow(t, l, "k2", q, 1); d.Allowed || d.Tightest != 0 {
			t.Fatalf("sixth request of 5 per minute: %+v; want a denial by the minute window", d)
		}
	}
	c.Advance(time.Minute)
	if d := allow(t, l, "k2", q, 1); !d.Allowed || d.Tightest != 1 || d.Remaining != 0 {
		t.Fatalf("the day's last request: %+v; the refusals took from the day", d)
	}
}

func testKeys(t *testing.T, l ratelimit.Limiter, _ *testclock.Clock) {
	p := ratelimit.MustPolicy("t", ratelimit.PerMinute(2))
	allow(t, l, "a", p, 2)
	want(t, allow(t, l, "a", p, 1), false, 0, 30*time.Second)
	want(t, allow(t, l, "b", p, 1), true, 1, 0)
}

func testCosts(t *testing.T, l ratelimit.Limiter, _ *testclock.Clock) {
	p := ratelimit.MustPolicy("t", ratelimit.PerMinute(10))
	for _, cost := range []int64{0, -1, 11} {
		if _, err := l.Allow(context.Background(), "k", p, cost); !errors.Is(err, ratelimit.ErrInvalidCost) {
			t.Fatalf("cost %d: error %v, want ErrInvalidCost", cost, err)
		}
	}
	want(t, allow(t, l, "k", p, 4), true, 6, 0)
	want(t, allow(t, l, "k", p, 7), false, 6, 6*time.Second)
	want(t, allow(t, l, "k", p, 6), true, 0, 0)
}

func testClockBack(t *testing.T, l ratelimit.Limiter, c *testclock.Clock) {
	p := ratelimit.MustPolicy("t", ratelimit.PerMinute(10))
	allow(t, l, "k", p, 10)
	c.Advance(-time.Minute)
	if d := allow(t, l, "k", p, 1); d.Allowed {
		t.Fatalf("a clock stepping back minted a token: %+v", d)
	}
	c.Advance(time.Minute + 6*time.Second)
	want(t, allow(t, l, "k", p, 1), true, 0, 0)
	if d := allow(t, l, "k", p, 1); d.Allowed {
		t.Fatalf("more than one token after one refill interval")
	}
}

func testConcurrent(t *testing.T, l ratelimit.Limiter, _ *testclock.Clock) {
	p := ratelimit.MustPolicy("t", ratelimit.PerMinute(100))
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 40 {
				d, err := l.Allow(context.Background(), "k", p, 1)
				if err != nil {
					t.Errorf("Allow: %v", err)
					return
				}
				if d.Allowed {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if allowed.Load() != 100 {
		t.Fatalf("%d of 320 concurrent requests allowed under 100/min, want exactly 100", allowed.Load())
	}
}

func testTightest(t *testing.T, l ratelimit.Limiter, _ *testclock.Clock) {
	p := ratelimit.MustPolicy("t", ratelimit.PerMinute(10), ratelimit.PerDay(1000))
	d := allow(t, l, "k", p, 1)
	if d.Tightest != 0 || d.Limit != 10 || d.Remaining != 9 {
		t.Fatalf("allowed: tightest %d (%d/%d), want the minute window", d.Tightest, d.Remaining, d.Limit)
	}
	p2 := ratelimit.MustPolicy("t2", ratelimit.PerMinute(10), ratelimit.PerMinute(10))
	d = allow(t, l, "k2", p2, 1)
	if d.Tightest != 0 {
		t.Fatalf("equal windows: tightest %d, want the lower index", d.Tightest)
	}
}

func testFourWindows(t *testing.T, l ratelimit.Limiter, _ *testclock.Clock) {
	week := ratelimit.Window{Name: "week", Limit: 5, Period: 7 * 24 * time.Hour, Fixed: true}
	p := ratelimit.MustPolicy("t4", ratelimit.PerMinute(10), ratelimit.PerHour(100), ratelimit.PerDay(1000), week)
	for i := range 5 {
		want(t, allow(t, l, "k", p, 1), true, 4-int64(i), 0)
	}
	d := allow(t, l, "k", p, 1)
	if d.Allowed || d.Tightest != 3 || d.Limit != 5 || d.Remaining != 0 || d.RetryAfter <= 0 {
		t.Fatalf("sixth request under 5 per week: %+v; want a denial by the week window", d)
	}
	// The same key under a policy of two windows starts afresh.
	want(t, allow(t, l, "k", ratelimit.MustPolicy("t2", ratelimit.PerMinute(10), ratelimit.PerDay(1000)), 1), true, 9, 0)
}

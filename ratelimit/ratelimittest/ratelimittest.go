// Package ratelimittest is the behavioural suite for [ratelimit.Limiter]
// implementations: exact counts at exact instants, all-or-nothing across
// windows and credits, fixed day windows, costs, clocks that step back,
// concurrency, windows an account's keys share, per-key caps within them,
// policy changes that keep what was spent, and credit balances that
// refill daily or monthly. It uses only the standard testing package:
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
	"fmt"
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
		{"AccountWindowsAreShared", testAccountShared},
		{"KeyCapWithinAccount", testKeyCap},
		{"ConcurrentKeysOfOneAccount", testConcurrentAccount},
		{"PolicyChangeKeepsWhatWasSpent", testPolicyChange},
		{"CostZeroOnlyReports", testCostZero},
		{"NoPolicy", testNoPolicy},
		{"ConcurrentCreditsSpendExactly", testCreditsConcurrent},
		{"CreditsRefillDaily", testCreditsDaily},
		{"CreditsRefillMonthlyAdding", testCreditsMonthly},
		{"CreditsFollowTheirGrant", testCreditsGrant},
		{"RefusalSpendsNeitherWindowsNorCredits", testCreditsAllOrNothing},
		{"ReportListsEveryWindow", testReport},
		{"MonthlyRefillsAcrossYearsAndLeapDays", testCreditsCalendar},
		{"MonthWindowIsACalendarMonth", testMonth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testclock.New(start)
			tc.fn(t, newLimiter(t, c.Now), c)
		})
	}
}

// allow decides a request of cost with key under p, a key's own policy.
func allow(t *testing.T, l ratelimit.Limiter, key string, p *ratelimit.Policy, cost int64) ratelimit.Decision {
	t.Helper()
	return decide(t, l, ratelimit.Request{Key: key, KeyPolicy: p, Cost: cost})
}

func decide(t *testing.T, l ratelimit.Limiter, r ratelimit.Request) ratelimit.Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), r)
	if err != nil {
		t.Fatalf("Allow(%s, %s): %v", r.Account, r.Key, err)
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
	p := mustPolicy("t", ratelimit.PerMinute(10))
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
	p := mustPolicy("t", ratelimit.PerMinute(10), ratelimit.PerDay(15))
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
	p := mustPolicy("t", slow, perMinute)
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
	q := mustPolicy("t2", ratelimit.PerMinute(5), ratelimit.PerDay(6))
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
	p := mustPolicy("t", ratelimit.PerMinute(2))
	allow(t, l, "a", p, 2)
	want(t, allow(t, l, "a", p, 1), false, 0, 30*time.Second)
	want(t, allow(t, l, "b", p, 1), true, 1, 0)
}

func testCosts(t *testing.T, l ratelimit.Limiter, _ *testclock.Clock) {
	p := mustPolicy("t", ratelimit.PerMinute(10))
	for _, cost := range []int64{-1, 11} {
		_, err := l.Allow(context.Background(), ratelimit.Request{Key: "k", KeyPolicy: p, Cost: cost})
		if !errors.Is(err, ratelimit.ErrInvalidCost) {
			t.Fatalf("cost %d: error %v, want ErrInvalidCost", cost, err)
		}
	}
	want(t, allow(t, l, "k", p, 4), true, 6, 0)
	want(t, allow(t, l, "k", p, 7), false, 6, 6*time.Second)
	want(t, allow(t, l, "k", p, 6), true, 0, 0)
}

func testClockBack(t *testing.T, l ratelimit.Limiter, c *testclock.Clock) {
	p := mustPolicy("t", ratelimit.PerMinute(10))
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
	p := mustPolicy("t", ratelimit.PerMinute(100))
	allowed := hammer(t, l, 8, 40, func(int) ratelimit.Request { return ratelimit.Request{Key: "k", KeyPolicy: p, Cost: 1} })
	if allowed != 100 {
		t.Fatalf("%d of 320 concurrent requests allowed under 100/min, want exactly 100", allowed)
	}
}

// hammer sends each requests from each of goroutines goroutines, those of
// goroutine g being req(g), and returns how many passed.
func hammer(t *testing.T, l ratelimit.Limiter, goroutines, each int, req func(g int) ratelimit.Request) int64 {
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := req(g)
			for range each {
				d, err := l.Allow(context.Background(), r)
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
	return allowed.Load()
}

func testTightest(t *testing.T, l ratelimit.Limiter, _ *testclock.Clock) {
	p := mustPolicy("t", ratelimit.PerMinute(10), ratelimit.PerDay(1000))
	d := allow(t, l, "k", p, 1)
	if d.Tightest != 0 || d.Limit != 10 || d.Remaining != 9 {
		t.Fatalf("allowed: tightest %d (%d/%d), want the minute window", d.Tightest, d.Remaining, d.Limit)
	}
	p2 := mustPolicy("t2", ratelimit.PerMinute(10), ratelimit.PerMinute(10))
	d = allow(t, l, "k2", p2, 1)
	if d.Tightest != 0 {
		t.Fatalf("equal windows: tightest %d, want the lower index", d.Tightest)
	}
}

func testFourWindows(t *testing.T, l ratelimit.Limiter, _ *testclock.Clock) {
	week := ratelimit.Window{Name: "week", Limit: 5, Period: 7 * 24 * time.Hour, Fixed: true}
	p := mustPolicy("t4", ratelimit.PerMinute(10), ratelimit.PerHour(100), ratelimit.PerDay(1000), week)
	for i := range 5 {
		want(t, allow(t, l, "k", p, 1), true, 4-int64(i), 0)
	}
	d := allow(t, l, "k", p, 1)
	if d.Allowed || d.Tightest != 3 || d.Limit != 5 || d.Remaining != 0 || d.RetryAfter <= 0 {
		t.Fatalf("sixth request under 5 per week: %+v; want a denial by the week window", d)
	}
	// The same key under a policy of two of those windows keeps what
	// they spent.
	want(t, allow(t, l, "k", mustPolicy("t2", ratelimit.PerMinute(10), ratelimit.PerDay(1000)), 1), true, 4, 0)
}

// Ten keys of one account share the free plan: exactly 10 requests a
// minute and 1,000 a day, however many keys the account spreads them
// over; another account is untouched.
func testAccountShared(t *testing.T, l ratelimit.Limiter, c *testclock.Clock) {
	plan := mustPolicy("free", ratelimit.PerMinute(10), ratelimit.PerDay(1000))
	c.Set(time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC))
	total := 0
	for minute := range 110 {
		allowed := 0
		for try := range 30 {
			d := decide(t, l, ratelimit.Request{Account: "a", AccountPolicy: plan, Key: string(rune('0' + try%10)), Cost: 1})
			if d.Allowed {
				allowed++
			} else if d.Policy != plan {
				t.Fatalf("minute %d: denied by %s, want the account's plan", minute, d.Policy.Name())
			}
		}
		want := 10
		if minute >= 100 {
			want = 0 // the day's 1,000 are spent
		}
		if allowed != want {
			t.Fatalf("minute %d: %d requests allowed across 10 keys of an account on 10/min and 1,000/day, want %d", minute, allowed, want)
		}
		total += allowed
		c.Advance(time.Minute)
	}
	if total != 1000 {
		t.Fatalf("%d requests in a day, want 1000", total)
	}
	d := decide(t, l, ratelimit.Request{Account: "b", AccountPolicy: plan, Key: "0", Cost: 1})
	want(t, d, true, 9, 0)
}

// A key's own policy caps it within its account: the key's refusal takes
// nothing from the account, and the account's refusal nothing from the
// key.
func testKeyCap(t *testing.T, l ratelimit.Limiter, _ *testclock.Clock) {
	plan := mustPolicy("acct", ratelimit.PerMinute(10))
	cap3 := mustPolicy("cap", ratelimit.PerMinute(3))
	r := ratelimit.Request{Account: "a", AccountPolicy: plan, Key: "k1", KeyPolicy: cap3, Cost: 1}
	for i := range 3 {
		d := decide(t, l, r)
		want(t, d, true, int64(2-i), 0)
		if d.Policy != cap3 {
			t.Fatalf("binding policy %s, want the key's cap (fewest left)", d.Policy.Name())
		}
	}
	for range 2 {
		if d := decide(t, l, r); d.Allowed || d.Policy != cap3 {
			t.Fatalf("fourth request under a cap of 3: %+v; want a denial by the key's cap", d)
		}
	}
	other := ratelimit.Request{Account: "a", AccountPolicy: plan, Key: "k2", KeyPolicy: cap3, Cost: 1}
	for range 3 {
		decide(t, l, other)
	}
	third := ratelimit.Request{Account: "a", AccountPolicy: plan, Key: "k3", Cost: 1}
	for i := range 4 {
		want(t, decide(t, l, third), true, int64(3-i), 0)
	}
	// The account is spent; k4's cap is untouched by the refusal.
	fourth := ratelimit.Request{Account: "a", AccountPolicy: plan, Key: "k4", KeyPolicy: cap3, Cost: 1}
	if d := decide(t, l, fourth); d.Allowed || d.Policy != plan {
		t.Fatalf("eleventh request of the account: %+v; want a denial by the account", d)
	}
	if d := decide(t, l, ratelimit.Request{Account: "a", Key: "k4", KeyPolicy: cap3, Cost: 0}); d.Remaining != 3 || d.Policy != cap3 {
		t.Fatalf("k4's cap after the account refused it: %d left, want 3", d.Remaining)
	}
}

// Many goroutines on ten keys of one account: exactly the account's
// limit passes.
func testConcurrentAccount(t *testing.T, l ratelimit.Limiter, _ *testclock.Clock) {
	plan := mustPolicy("t", ratelimit.PerMinute(100), ratelimit.PerDay(1000))
	allowed := hammer(t, l, 20, 20, func(g int) ratelimit.Request {
		return ratelimit.Request{Account: "a", AccountPolicy: plan, Key: string(rune('0' + g%10)), Cost: 1}
	})
	if allowed != 100 {
		t.Fatalf("%d of 400 concurrent requests over 10 keys allowed under the account's 100/min, want exactly 100", allowed)
	}
}

// An upgrade and a downgrade start each window from what it had spent:
// 8 of 10 per minute spent is 8 of 60 after the upgrade; 9 of 60 is 9 of
// 10 after the downgrade, and the day's count carries both ways.
func testPolicyChange(t *testing.T, l ratelimit.Limiter, _ *testclock.Clock) {
	free := mustPolicy("free", ratelimit.PerMinute(10), ratelimit.PerDay(1000))
	starter := mustPolicy("starter", ratelimit.PerMinute(60), ratelimit.PerDay(20))
	r := ratelimit.Request{Account: "a", AccountPolicy: free, Key: "k", Cost: 1}
	for range 8 {
		decide(t, l, r)
	}
	r.AccountPolicy = starter
	d := decide(t, l, r)
	if !d.Allowed || d.Tightest != 1 || d.Remaining != 11 {
		t.Fatalf("after the upgrade: %+v; want 9 of the day's 20 spent, 11 left", d)
	}
	r.AccountPolicy = free
	want(t, decide(t, l, r), true, 0, 0)
	if d := decide(t, l, r); d.Allowed || d.Tightest != 0 {
		t.Fatalf("after the downgrade: %+v; want the minute spent", d)
	}
	// A window with no counterpart in the old policy starts full.
	hourly := mustPolicy("hourly", ratelimit.PerHour(5))
	r.AccountPolicy = hourly
	want(t, decide(t, l, r), true, 4, 0)
	// Windows spent past a new, lower limit have none left, never fewer
	// than none: 8 spent this minute and today, against 2 and 5.
	r = ratelimit.Request{Account: "b", AccountPolicy: free, Key: "k", Cost: 1}
	for range 8 {
		decide(t, l, r)
	}
	tiny := mustPolicy("tiny", ratelimit.PerMinute(2), ratelimit.PerDay(5))
	r.AccountPolicy, r.Cost = tiny, 0
	d = decide(t, l, r)
	for _, w := range d.Windows {
		if w.Remaining != 0 {
			t.Fatalf("a window spent past its new limit: %+v; want 0 remaining", w)
		}
	}
	if len(d.Windows) != 2 || d.Remaining != 0 {
		t.Fatalf("after a downgrade past what was spent: %+v; want 0 remaining in both windows", d)
	}
}

// A request of cost 0 passes, even when the windows are spent, and
// reports them.
func testCostZero(t *testing.T, l ratelimit.Limiter, _ *testclock.Clock) {
	p := mustPolicy("t", ratelimit.PerMinute(2))
	want(t, allow(t, l, "k", p, 0), true, 2, 0)
	allow(t, l, "k", p, 2)
	d := allow(t, l, "k", p, 0)
	if !d.Allowed || d.Remaining != 0 || d.Limit != 2 {
		t.Fatalf("cost 0 on a spent window: %+v; want allowed, 0 of 2 left", d)
	}
}

func testNoPolicy(t *testing.T, l ratelimit.Limiter, _ *testclock.Clock) {
	_, err := l.Allow(context.Background(), ratelimit.Request{Account: "a", Key: "k", Cost: 1})
	if !errors.Is(err, ratelimit.ErrInvalidPolicy) {
		t.Fatalf("a request with no policy: %v, want ErrInvalidPolicy", err)
	}
}

// creditPlan is a loose policy for the credit tests: the balance binds.
var creditPlan = mustPolicy("credits", ratelimit.PerMinute(1_000_000))

// 1,000 concurrent requests against a balance of 100 spend exactly 100;
// the refused ones are quota refusals that waiting will not lift.
func testCreditsConcurrent(t *testing.T, l ratelimit.Limiter, _ *testclock.Clock) {
	credits := &ratelimit.Credits{Balance: 100, Granted: start}
	allowed := hammer(t, l, 50, 20, func(g int) ratelimit.Request {
		return ratelimit.Request{Account: "a", AccountPolicy: creditPlan, Key: string(rune('0' + g%10)), Credits: credits, Cost: 1}
	})
	if allowed != 100 {
		t.Fatalf("%d of 1,000 concurrent requests allowed against a balance of 100, want exactly 100", allowed)
	}
	d := decide(t, l, ratelimit.Request{Account: "a", AccountPolicy: creditPlan, Key: "0", Credits: credits, Cost: 1})
	if d.Allowed || !d.Quota || d.Policy != nil || d.Balance != 0 || d.Remaining != 0 || d.Limit != 100 || d.RetryAfter >= 0 || d.RetryAfterSeconds() != 0 {
		t.Fatalf("a request on a spent balance with no refill: %+v; want a quota refusal, no retry", d)
	}
}

// A daily refill replaces the balance once a day, at the stated instant.
func testCreditsDaily(t *testing.T, l ratelimit.Limiter, c *testclock.Clock) {
	first := start.Add(time.Hour)
	credits := &ratelimit.Credits{Balance: 3, Granted: start, Refill: 5, RefillAt: first}
	r := ratelimit.Request{Account: "a", AccountPolicy: creditPlan, Key: "k", Credits: credits, Cost: 1}
	for i := range 3 {
		if d := decide(t, l, r); !d.Allowed || d.Balance != int64(2-i) {
			t.Fatalf("request %d on a balance of 3: %+v", i, d)
		}
	}
	d := decide(t, l, r)
	if d.Allowed || !d.Quota || d.RetryAfter != time.Hour || !d.Reset.Equal(first) || d.Limit != 5 {
		t.Fatalf("fourth request: %+v; want a quota refusal until the refill an hour later", d)
	}
	c.Set(first.Add(-time.Millisecond))
	if d := decide(t, l, r); d.Allowed {
		t.Fatalf("a millisecond before the refill: allowed")
	}
	c.Set(first)
	for i := range 5 {
		if d := decide(t, l, r); !d.Allowed || d.Balance != int64(4-i) {
			t.Fatalf("request %d after the refill of 5: %+v", i, d)
		}
	}
	if d := decide(t, l, r); d.Allowed || !d.Reset.Equal(first.Add(24*time.Hour)) {
		t.Fatalf("sixth request after the refill: %+v; want refused until the next day's refill", d)
	}
	// Three days idle: one refill's worth, replaced, not three.
	c.Set(first.Add(3*24*time.Hour + time.Minute))
	if d := decide(t, l, r); !d.Allowed || d.Balance != 4 || !d.Reset.Equal(first.Add(4*24*time.Hour)) {
		t.Fatalf("after three days: %+v; want a balance of 5 (replaced), 4 after the request", d)
	}
}

// A monthly refill that adds comes on its day of the month, the month's
// last day when shorter, and adds once per month.
func testCreditsMonthly(t *testing.T, l ratelimit.Limiter, c *testclock.Clock) {
	first := time.Date(2030, 1, 31, 12, 0, 0, 0, time.UTC)
	credits := &ratelimit.Credits{Balance: 0, Granted: start, Refill: 10, Monthly: true, RefillAt: first, Add: true}
	r := ratelimit.Request{Account: "a", AccountPolicy: creditPlan, Key: "k", Credits: credits, Cost: 4}
	if d := decide(t, l, r); d.Allowed || d.RetryAfter != first.Sub(start) {
		t.Fatalf("on an empty balance: %+v; want refused until %v", d, first)
	}
	c.Set(first)
	if d := decide(t, l, r); !d.Allowed || d.Balance != 6 {
		t.Fatalf("after the first refill: %+v; want 10 - 4", d)
	}
	feb := time.Date(2030, 2, 28, 12, 0, 0, 0, time.UTC)
	c.Set(feb.Add(-time.Second))
	decide(t, l, r)
	if d := decide(t, l, r); d.Allowed || d.Balance != 2 || !d.Reset.Equal(feb) || d.RetryAfter != time.Second {
		t.Fatalf("the day before February's refill: %+v; want 2 left, refused until %v", d, feb)
	}
	c.Set(time.Date(2030, 3, 31, 12, 0, 0, 0, time.UTC))
	if d := decide(t, l, r); !d.Allowed || d.Balance != 2+10+10-4 {
		t.Fatalf("after February's and March's refills: %+v; want 2 + 10 + 10 - 4", d)
	}
	// Needing more than one refill: the wait is until enough have come,
	// and the next refill is on April's last day.
	big := r
	big.Cost = 30
	if d := decide(t, l, big); d.Allowed || !d.Quota || !d.Reset.Equal(time.Date(2030, 4, 30, 12, 0, 0, 0, time.UTC)) ||
		d.RetryAfter != time.Date(2030, 5, 31, 12, 0, 0, 0, time.UTC).Sub(c.Now()) {
		t.Fatalf("a cost of 30 on 18 with 10 a month: %+v; want refused until May's refill", d)
	}
}

// A new grant starts a new balance; requests of the old grant's terms
// continue the one they share.
func testCreditsGrant(t *testing.T, l ratelimit.Limiter, c *testclock.Clock) {
	old := &ratelimit.Credits{Balance: 5, Granted: start}
	r := ratelimit.Request{Account: "a", AccountPolicy: creditPlan, Key: "k", Credits: old, Cost: 2}
	decide(t, l, r)
	r.Credits = &ratelimit.Credits{Balance: 5, Granted: start}
	if d := decide(t, l, r); d.Balance != 1 {
		t.Fatalf("the same grant again: balance %d, want 1", d.Balance)
	}
	c.Advance(time.Minute)
	r.Credits = &ratelimit.Credits{Balance: 50, Granted: c.Now()}
	if d := decide(t, l, r); !d.Allowed || d.Balance != 48 {
		t.Fatalf("a new grant of 50: %+v; want 48 left", d)
	}
	other := ratelimit.Request{Account: "b", AccountPolicy: creditPlan, Key: "k", Credits: old, Cost: 1}
	if d := decide(t, l, other); d.Balance != 4 {
		t.Fatalf("another account: balance %d, want its own 5 - 1", d.Balance)
	}
}

// A refusal by a window spends no credit, and a refusal for credits no
// window.
func testCreditsAllOrNothing(t *testing.T, l ratelimit.Limiter, _ *testclock.Clock) {
	plan := mustPolicy("t", ratelimit.PerMinute(3))
	credits := &ratelimit.Credits{Balance: 4, Granted: start}
	r := ratelimit.Request{Account: "a", AccountPolicy: plan, Key: "k", Credits: credits, Cost: 1}
	for range 3 {
		decide(t, l, r)
	}
	if d := decide(t, l, r); d.Allowed || d.Quota || d.Policy != plan || d.Balance != 1 {
		t.Fatalf("the window spent: %+v; want a rate refusal, 1 credit left", d)
	}
	r2 := ratelimit.Request{Account: "b", AccountPolicy: plan, Key: "k", Credits: credits, Cost: 3}
	decide(t, l, r2)
	r2.Cost = 2
	if d := decide(t, l, r2); d.Allowed || !d.Quota {
		t.Fatalf("2 on a balance of 1: %+v; want a quota refusal", d)
	}
	r2.Cost = 0
	if d := decide(t, l, r2); d.Policy != plan || d.Remaining != 0 {
		t.Fatalf("the window after the quota refusal: %+v; want it as spent by the first request only", d)
	}
}

// A request of cost 0 gets every window, the account's first; the
// binding one among them is what the decision describes.
func testReport(t *testing.T, l ratelimit.Limiter, _ *testclock.Clock) {
	acct := mustPolicy("acct", ratelimit.PerMinute(10), ratelimit.PerDay(100))
	key := mustPolicy("key", ratelimit.PerMinute(3))
	r := ratelimit.Request{Account: "a", AccountPolicy: acct, Key: "k", KeyPolicy: key, Cost: 1}
	if d := decide(t, l, r); d.Windows != nil {
		t.Fatalf("Windows for a request that costs: %+v", d.Windows)
	}
	r.Cost = 0
	d := decide(t, l, r)
	midnight := time.Date(2030, 1, 3, 0, 0, 0, 0, time.UTC)
	want := []ratelimit.WindowState{
		{Policy: acct, Index: 0, Remaining: 9, Reset: start.Add(6 * time.Second)},
		{Policy: acct, Index: 1, Remaining: 99, Reset: midnight},
		{Policy: key, Index: 0, Remaining: 2, Reset: start.Add(20 * time.Second)},
	}
	if len(d.Windows) != len(want) {
		t.Fatalf("report: %+v; want %+v", d.Windows, want)
	}
	for i := range want {
		if g := d.Windows[i]; g.Policy != want[i].Policy || g.Index != want[i].Index || g.Remaining != want[i].Remaining || !g.Reset.Equal(want[i].Reset) {
			t.Fatalf("window %d: %+v; want %+v", i, g, want[i])
		}
	}
}

// Monthly refills from the 31st and from a leap day, and daily ones, each
// seen from a microsecond before and at every refill for three years: the
// next refill reported is the one the calendar gives.
func testCreditsCalendar(t *testing.T, l ratelimit.Limiter, c *testclock.Clock) {
	for i, first := range []time.Time{
		time.Date(2030, 12, 31, 23, 30, 0, 0, time.UTC),
		time.Date(2032, 2, 29, 6, 0, 0, 0, time.UTC),
	} {
		credits := &ratelimit.Credits{Granted: start, Refill: 1, Monthly: true, RefillAt: first, Add: true}
		r := ratelimit.Request{Account: fmt.Sprint("cal", i), AccountPolicy: creditPlan, Key: "k", Credits: credits}
		// refill returns refill k the calendar's way: first's day of the
		// month, or the month's last day.
		refill := func(k int) time.Time {
			y, m, d := first.Date()
			days := time.Date(y, m+time.Month(k)+1, 0, 0, 0, 0, 0, time.UTC).Day()
			h, mi, _ := first.Clock()
			return time.Date(y, m+time.Month(k), min(d, days), h, mi, 0, 0, time.UTC)
		}
		for k := range 36 {
			c.Set(refill(k).Add(-time.Microsecond))
			if d := decide(t, l, r); !d.Reset.Equal(refill(k)) || d.Balance != int64(k) {
				t.Fatalf("just before refill %d of %v: next refill %v, balance %d; want %v, %d", k, first, d.Reset, d.Balance, refill(k), k)
			}
			c.Set(refill(k))
			if d := decide(t, l, r); !d.Reset.Equal(refill(k+1)) || d.Balance != int64(k+1) {
				t.Fatalf("at refill %d of %v: next refill %v, balance %d; want %v, %d", k, first, d.Reset, d.Balance, refill(k+1), k+1)
			}
		}
	}
	first := time.Date(2030, 3, 9, 1, 30, 0, 0, time.UTC)
	daily := &ratelimit.Credits{Granted: start, Refill: 1, RefillAt: first, Add: true}
	r := ratelimit.Request{Account: "daily", AccountPolicy: creditPlan, Key: "k", Credits: daily}
	c.Set(first.Add(1000*24*time.Hour - time.Microsecond))
	if d := decide(t, l, r); d.Balance != 1000 || !d.Reset.Equal(first.Add(1000*24*time.Hour)) {
		t.Fatalf("daily, a microsecond before refill 1000: balance %d, next %v", d.Balance, d.Reset)
	}
}

// A monthly window counts per calendar month, UTC: it resets at 00:00 on
// the first, not a microsecond before, through a leap February and a
// year's end, reports that instant as its reset, and keeps what was spent
// when the policy around it changes.
func testMonth(t *testing.T, l ratelimit.Limiter, c *testclock.Clock) {
	p := mustPolicy("monthly", ratelimit.PerMinute(100), ratelimit.PerMonth(3))
	req := ratelimit.Request{Account: "a", AccountPolicy: p, Key: "k", Cost: 1}
	for _, tc := range []struct{ spend, end time.Time }{
		{time.Date(2032, 2, 10, 12, 0, 0, 0, time.UTC), time.Date(2032, 3, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(2032, 12, 31, 23, 0, 0, 0, time.UTC), time.Date(2033, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		c.Set(tc.spend)
		for i := range 3 {
			d := decide(t, l, req)
			if !d.Allowed || d.Remaining != 2-int64(i) || d.Tightest != 1 || !d.Reset.Equal(tc.end) {
				t.Fatalf("%v, request %d of 3 a month: %+v; want allowed, %d left, reset %v", tc.spend, i+1, d, 2-i, tc.end)
			}
		}
		c.Set(tc.end.Add(-time.Microsecond))
		d := decide(t, l, req)
		if d.Allowed || d.Limit != 3 || d.RetryAfter != time.Microsecond || !d.Reset.Equal(tc.end) {
			t.Fatalf("a microsecond before the month ends: %+v; want a denial until %v", d, tc.end)
		}
		c.Set(tc.end)
		if d := decide(t, l, req); !d.Allowed || d.Remaining != 2 || !d.Reset.Equal(tc.end.AddDate(0, 1, 0)) {
			t.Fatalf("at the month's end: %+v; want the next month's first request", d)
		}
	}
	// A bigger quota starts from what this month spent.
	bigger := mustPolicy("monthly-5", ratelimit.PerMinute(100), ratelimit.PerMonth(5))
	d := decide(t, l, ratelimit.Request{Account: "a", AccountPolicy: bigger, Key: "k", Cost: 1})
	if !d.Allowed || d.Remaining != 3 {
		t.Fatalf("after a change to 5 a month: %+v; want 3 left of 5 (2 spent)", d)
	}
}

// mustPolicy returns the policy of windows, which are valid.
func mustPolicy(name string, windows ...ratelimit.Window) *ratelimit.Policy {
	p, err := ratelimit.NewPolicy(name, windows...)
	if err != nil {
		panic(err)
	}
	return p
}

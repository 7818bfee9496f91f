package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/keygate/keygate/ratelimit"
)

// The free plan: ten requests a minute, a thousand a day. The eleventh
// request in a minute is denied until one token returns.
func Example() {
	now := time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)
	limiter := ratelimit.NewMemory(ratelimit.MemoryConfig{Clock: func() time.Time { return now }})
	defer limiter.Close()
	plans := ratelimit.DefaultPlans()

	var d ratelimit.Decision
	for range 11 {
		d, _ = limiter.Allow(context.Background(), "key_1", plans.Resolve("key_1", "free"), 1)
	}
	h := http.Header{}
	ratelimit.SetHeaders(h, &d)
	fmt.Println(d.Allowed, d.Remaining, d.RetryAfter)
	fmt.Println(h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"), h.Get("Retry-After"))

	now = now.Add(6 * time.Second)
	d, _ = limiter.Allow(context.Background(), "key_1", plans.Resolve("key_1", "free"), 1)
	fmt.Println(d.Allowed, d.Remaining, d.Reset)
	// Output:
	// false 0 6s
	// 10 0 6
	// true 0 2030-01-02 10:01:06 +0000 UTC
}

package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/keygate/keygate/ratelimit"
)

// The free plan, shared by all of an account's keys: ten requests a
// minute, a thousand a day. The eleventh request in a minute, whichever
// key makes it, is denied until one token returns.
func Example() {
	now := time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)
	limiter := ratelimit.NewMemory(ratelimit.MemoryConfig{Clock: func() time.Time { return now }})
	defer limiter.Close()
	free, _ := ratelimit.DefaultPlans().Lookup("free")

	var d ratelimit.Decision
	for i := range 11 {
		key := fmt.Sprint("key_", i%3) // three keys of one account
		d, _ = limiter.Allow(context.Background(), ratelimit.Request{Account: "acct_1", AccountPolicy: free, Key: key, Cost: 1})
	}
	h := http.Header{}
	ratelimit.SetHeaders(h, &d)
	fmt.Println(d.Allowed, d.Remaining, d.RetryAfter)
	fmt.Println(h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"), h.Get("Retry-After"))

	now = now.Add(6 * time.Second)
	d, _ = limiter.Allow(context.Background(), ratelimit.Request{Account: "acct_1", AccountPolicy: free, Key: "key_0", Cost: 1})
	fmt.Println(d.Allowed, d.Remaining, d.Reset)
	// Output:
	// false 0 6s
	// 10 0 6
	// true 0 2030-01-02 10:01:06 +0000 UTC
}

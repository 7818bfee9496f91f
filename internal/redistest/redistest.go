// Package redistest connects the module's tests to a real Redis, the same
// way everywhere: $REDIS_URL (default the local server); without a
// reachable server a test is skipped, unless KEYGATE_REQUIRE_REDIS=1 (as
// in CI) makes it fail, so CI never silently skips the Redis tests.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// URL is where the tests find Redis.
func URL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Client returns a client of the test Redis, closed after the test, or
// skips (fails under KEYGATE_REQUIRE_REDIS=1) when none answers.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(URL())
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		if os.Getenv("KEYGATE_REQUIRE_REDIS") == "1" {
			t.Fatalf("KEYGATE_REQUIRE_REDIS=1 but Redis at %s is unreachable: %v", URL(), err)
		}
		t.Skipf("no Redis at %s (%v); set REDIS_URL to run the Redis tests", URL(), err)
	}
	return client
}

// Name returns a name no other test uses, "kgtest-<kind>-<random>", for a
// namespace or key prefix, and deletes every key containing it after the
// test.
func Name(t testing.TB, client redis.UniversalClient, kind string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "kgtest-" + kind + "-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx := context.Background()
		iter := client.Scan(ctx, 0, "*"+name+"*", 1000).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
	})
	return name
}

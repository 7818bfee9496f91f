package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store/cachestore"
	"github.com/keygate/keygate/store/redisstore"
	"github.com/keygate/keygate/store/storetest"
)

// redisURL is where the tests find Redis: $REDIS_URL, or the local default.
func redisURL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// newClient connects to the test Redis. Without one it skips the test,
// unless KEYGATE_REQUIRE_REDIS=1 (as in CI), where it fails: CI never
// silently skips the Redis tests.
func newClient(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(redisURL())
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		if os.Getenv("KEYGATE_REQUIRE_REDIS") == "1" {
			t.Fatalf("KEYGATE_REQUIRE_REDIS=1 but Redis at %s is unreachable: %v", redisURL(), err)
		}
		t.Skipf("no Redis at %s (%v); set REDIS_URL to run the Redis tests", redisURL(), err)
	}
	return client
}

// namespace returns a fresh namespace and deletes its keys after the test.
func namespace(t testing.TB, client redis.UniversalClient) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	ns := "kgtest-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx := context.Background()
		iter := client.Scan(ctx, 0, "{"+ns+"}:*", 1000).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
	})
	return ns
}

// newStack returns a fresh namespace, a store in it and a service over
// that store.
func newStack(t testing.TB, client redis.UniversalClient) (string, *redisstore.Store, *apikey.Service) {
	t.Helper()
	ns := namespace(t, client)
	rs, err := redisstore.New(client, redisstore.Config{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := apikey.New(rs, apikey.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return ns, rs, svc
}

func newStore(t testing.TB, client redis.UniversalClient) *redisstore.Store {
	t.Helper()
	_, rs, _ := newStack(t, client)
	return rs
}

func TestConformance(t *testing.T) {
	client := newClient(t)
	storetest.Run(t, func(t *testing.T) apikey.Store { return newStore(t, client) })
}

// The cache in front of Redis passes the same suite.
func TestConformanceWithCache(t *testing.T) {
	client := newClient(t)
	storetest.Run(t, func(t *testing.T) apikey.Store {
		cs, err := cachestore.New(newStore(t, client), cachestore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cs.Close() })
		return cs
	})
}

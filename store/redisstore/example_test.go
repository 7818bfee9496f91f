package redisstore_test

import (
	"context"
	"log"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/usage"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/ratelimit/redislimit"
	"github.com/keygate/keygate/store/cachestore"
	"github.com/keygate/keygate/store/redisstore"
)

// The stack for many instances: keys and usage in Redis, verification
// from an in-process cache that revocations clear everywhere, and limits
// shared through Redis.
func Example() {
	ctx := context.Background()
	client := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 []string{"127.0.0.1:6379"},
		ContextTimeoutEnabled: true, // required: so that the store's timeouts bound each call
	})
	defer client.Close()

	store, err := redisstore.New(ctx, client, redisstore.Config{Namespace: "myservice"})
	if err != nil {
		log.Fatal(err) // unreachable, or a maxmemory-policy that evicts keys
	}
	cache, err := cachestore.New(store, cachestore.Config{}) // listens for revocations
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	svc, err := apikey.New(cache, apikey.Config{})
	if err != nil {
		log.Fatal(err)
	}
	recorder, err := usage.New(store, usage.Config{}) // batched: never a write per request
	if err != nil {
		log.Fatal(err)
	}
	defer recorder.Close(ctx)
	limiter, err := redislimit.New(client, redislimit.Config{}) // one script, one round trip
	if err != nil {
		log.Fatal(err)
	}
	mw, err := middleware.New(middleware.Config{Verifier: svc, Limiter: limiter, Usage: recorder})
	if err != nil {
		log.Fatal(err)
	}
	_ = mw // mw.Authenticate(mux), as with the memory store
}

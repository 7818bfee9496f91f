package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/usage"
	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/store/cachestore"
	"github.com/keygate/keygate/store/memstore"
)

// BenchmarkFloorGET is one bare round trip: a GET of a missing key.
func BenchmarkFloorGET(b *testing.B) {
	ctx := context.Background()
	client := redistest.Client(b)
	for b.Loop() {
		_ = client.Get(ctx, "{keygate-bench}:missing").Err()
	}
}

// BenchmarkVerify compares a verification against the memory store, Redis
// without a cache (one GET) and Redis behind the cache.
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	client := redistest.Client(b)
	hook := &roundTrips{}
	client.AddHook(hook)
	cached, err := cachestore.New(newStore(b, client), cachestore.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cached.Close() })
	stores := []struct {
		name  string
		store apikey.Store
	}{
		{"store=memory", memstore.New()},
		{"store=redis", newStore(b, client)},
		{"store=redis+cache", cached},
	}
	for _, st := range stores {
		svc, err := apikey.New(st.store, apikey.Config{})
		if err != nil {
			b.Fatal(err)
		}
		issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		key := issued.Secret.Reveal()
		b.Run(st.name, func(b *testing.B) {
			if _, err := svc.Verify(ctx, key); err != nil {
				b.Fatal(err)
			}
			before := hook.n.Load()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := svc.Verify(ctx, key); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(hook.n.Load()-before)/float64(b.N), "redis-calls/op")
		})
	}
}

// BenchmarkRecordUsage is the per-request cost of usage counting: no
// allocation for a key already in the batch and no Redis call (the metric
// counts them with a go-redis hook); the flush after the loop is one call.
func BenchmarkRecordUsage(b *testing.B) {
	ctx := context.Background()
	client := redistest.Client(b)
	hook := &roundTrips{}
	client.AddHook(hook)
	_, rs, svc := newStack(b, client)
	issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	rec, err := usage.New(rs, usage.Config{FlushInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	id, now := issued.Key.ID, time.Now()
	rec.Record(id, "GET /api/v1/recordings", 200, now)
	before := hook.n.Load()
	b.ReportAllocs()
	for b.Loop() {
		rec.Record(id, "GET /api/v1/recordings", 200, now)
	}
	b.ReportMetric(float64(hook.n.Load()-before)/float64(b.N), "redis-calls/op")
	if err := rec.Close(ctx); err != nil {
		b.Fatal(err)
	}
}

package ratelimit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/keygate/keygate/ratelimit"
)

// unlimited never denies, so the benchmarks measure the allowing path: a
// minute bucket and a fixed day window, like the seed plans.
var unlimited = mustPolicy("bench",
	ratelimit.Window{Name: "min", Limit: 1_000_000_000, Period: time.Minute},
	ratelimit.Window{Name: "day", Limit: 1 << 50, Period: 24 * time.Hour, Fixed: true},
)

var sinkRemaining int64

// BenchmarkFloorRateLimiter is one x/time/rate limiter's Allow: one
// window, one key, no lookup.
func BenchmarkFloorRateLimiter(b *testing.B) {
	l := rate.NewLimiter(rate.Inf, 1)
	b.ReportAllocs()
	for b.Loop() {
		_ = l.Allow()
	}
}

func BenchmarkMemory(b *testing.B) {
	ctx := context.Background()
	b.Run("hot-key", func(b *testing.B) {
		m := ratelimit.NewMemory(ratelimit.MemoryConfig{SweepInterval: -1})
		b.ReportAllocs()
		for b.Loop() {
			d, err := m.Allow(ctx, ratelimit.Request{Key: "key_hot", KeyPolicy: unlimited, Cost: 1})
			if err != nil || !d.Allowed {
				b.Fatal(d, err)
			}
			sinkRemaining = d.Remaining
		}
	})
	b.Run("keys=10000/parallel", func(b *testing.B) {
		m := ratelimit.NewMemory(ratelimit.MemoryConfig{SweepInterval: -1})
		keys := make([]string, 10_000)
		for i := range keys {
			keys[i] = fmt.Sprint("key_", i)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := m.Allow(ctx, ratelimit.Request{Key: keys[i%len(keys)], KeyPolicy: unlimited, Cost: 1}); err != nil {
					b.Error(err)
					return
				}
				i += 7
			}
		})
	})
	// Every iteration is a key never seen before: B/op is the memory each
	// new key costs, its map entry included (key strings are made before
	// the timer starts).
	b.Run("new-keys", func(b *testing.B) {
		m := ratelimit.NewMemory(ratelimit.MemoryConfig{SweepInterval: -1})
		keys := make([]string, b.N)
		for i := range keys {
			keys[i] = fmt.Sprint("key_", i)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if _, err := m.Allow(ctx, ratelimit.Request{Key: keys[i], KeyPolicy: unlimited, Cost: 1}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

package ratelimit_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/keygate/keygate/ratelimit"
)

func TestPlans(t *testing.T) {
	ps := ratelimit.DefaultPlans()
	assert.Same(t, ratelimit.Starter, ps.Resolve("k1", "starter"))
	assert.Same(t, ratelimit.Free, ps.Resolve("k1", "unknown"), "unknown plans fall back to free")
	p, ok := ps.Lookup("business")
	assert.True(t, ok)
	assert.Same(t, ratelimit.Business, p)

	vip := ratelimit.MustPolicy("vip", ratelimit.PerMinute(1000))
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				_ = ps.Resolve("k1", "free")
			}
		}()
	}
	ps.Override("k1", vip)
	wg.Wait()
	assert.Same(t, vip, ps.Resolve("k1", "free"), "an override wins over the plan")
	assert.Same(t, ratelimit.Free, ps.Resolve("k2", "free"))
	ps.Override("k1", nil)
	assert.Same(t, ratelimit.Free, ps.Resolve("k1", "free"))
}

func TestCosts(t *testing.T) {
	m := ratelimit.NewMemory(ratelimit.MemoryConfig{SweepInterval: -1})
	p := ratelimit.MustPolicy("t", ratelimit.PerMinute(10), ratelimit.PerDay(5))
	for _, tc := range []struct {
		cost int64
		want error
	}{{1, nil}, {4, nil}, {0, ratelimit.ErrInvalidCost}, {-1, ratelimit.ErrInvalidCost}, {6, ratelimit.ErrInvalidCost}} {
		_, err := m.Allow(context.Background(), "k", p, tc.cost)
		if tc.want == nil {
			assert.NoError(t, err, "cost %d", tc.cost)
		} else {
			assert.ErrorIs(t, err, tc.want, "cost %d", tc.cost)
		}
	}
	_, err := m.Allow(context.Background(), "k", nil, 1)
	assert.ErrorIs(t, err, ratelimit.ErrInvalidPolicy)
}

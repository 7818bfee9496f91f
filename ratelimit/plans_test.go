package ratelimit_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/ratelimit"
)

func TestPlans(t *testing.T) {
	ps := ratelimit.DefaultPlans()
	for name, want := range map[string]*ratelimit.Policy{"free": ratelimit.Free, "starter": ratelimit.Starter, "business": ratelimit.Business} {
		p, ok := ps.Lookup(name)
		assert.True(t, ok, name)
		assert.Same(t, want, p, name)
	}
	_, ok := ps.Lookup("enterprise")
	assert.False(t, ok, "an unknown plan is not found, never a fallback")

	_, err := ratelimit.NewPlans(ratelimit.Free, ratelimit.MustPolicy("free", ratelimit.PerMinute(1)))
	require.ErrorIs(t, err, ratelimit.ErrInvalidPolicy, "two plans of one name")
	_, err = ratelimit.NewPlans(ratelimit.Free, nil)
	require.ErrorIs(t, err, ratelimit.ErrInvalidPolicy)
}

func TestCosts(t *testing.T) {
	m := ratelimit.NewMemory(ratelimit.MemoryConfig{SweepInterval: -1})
	p := ratelimit.MustPolicy("t", ratelimit.PerMinute(10), ratelimit.PerDay(5))
	for _, tc := range []struct {
		cost int64
		want error
	}{{1, nil}, {4, nil}, {0, nil}, {-1, ratelimit.ErrInvalidCost}, {6, ratelimit.ErrInvalidCost}} {
		_, err := m.Allow(context.Background(), ratelimit.Request{Key: "k", KeyPolicy: p, Cost: tc.cost})
		if tc.want == nil {
			assert.NoError(t, err, "cost %d", tc.cost)
		} else {
			assert.ErrorIs(t, err, tc.want, "cost %d", tc.cost)
		}
	}
	small := ratelimit.MustPolicy("small", ratelimit.PerMinute(2))
	_, err := m.Allow(context.Background(), ratelimit.Request{Account: "a", AccountPolicy: p, Key: "k", KeyPolicy: small, Cost: 3})
	assert.ErrorIs(t, err, ratelimit.ErrInvalidCost, "a cost above the key's capacity")
	_, err = m.Allow(context.Background(), ratelimit.Request{Key: "k", Cost: 1})
	assert.ErrorIs(t, err, ratelimit.ErrInvalidPolicy)
}

package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/ratelimit"
)

func TestPlans(t *testing.T) {
	ps := ratelimit.DefaultPlans()
	for name, want := range map[string][]ratelimit.Window{
		"free":     {ratelimit.PerMinute(10), ratelimit.PerDay(1_000)},
		"starter":  {ratelimit.PerMinute(60), ratelimit.PerDay(10_000)},
		"business": {ratelimit.PerMinute(300), ratelimit.PerDay(100_000)},
	} {
		p, ok := ps.Lookup(name)
		require.True(t, ok, name)
		assert.Equal(t, name, p.Name())
		for i := range want {
			assert.Equal(t, want[i].Limit, p.Windows()[i].Limit, name)
			assert.Equal(t, want[i].Period, p.Windows()[i].Period, name)
		}
	}
	def, _ := ps.Lookup("")
	assert.Equal(t, "free", def.Name(), "the default plan")
	same, _ := ratelimit.DefaultPlans().Lookup("free")
	assert.Same(t, def, same, "one policy, however often the plans are asked for")
	_, ok := ps.Lookup("enterprise")
	assert.False(t, ok, "an unknown plan is not found, never a fallback")

	_, err := ratelimit.NewPlans(def, mustPolicy("free", ratelimit.PerMinute(1)))
	require.ErrorIs(t, err, ratelimit.ErrInvalidPolicy, "two plans of one name")
	_, err = ratelimit.NewPlans(def, nil)
	require.ErrorIs(t, err, ratelimit.ErrInvalidPolicy)
}

func TestCosts(t *testing.T) {
	m := ratelimit.NewMemory(ratelimit.MemoryConfig{SweepInterval: -1})
	p := mustPolicy("t", ratelimit.PerMinute(10), ratelimit.PerDay(5))
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
	small := mustPolicy("small", ratelimit.PerMinute(2))
	_, err := m.Allow(context.Background(), ratelimit.Request{Account: "a", AccountPolicy: p, Key: "k", KeyPolicy: small, Cost: 3})
	assert.ErrorIs(t, err, ratelimit.ErrInvalidCost, "a cost above the key's capacity")
	_, err = m.Allow(context.Background(), ratelimit.Request{Key: "k", Cost: 1})
	assert.ErrorIs(t, err, ratelimit.ErrInvalidPolicy)
}

// Custom windows follow one rule, a day or longer is a fixed UTC window,
// and equal windows are one policy.
func TestCustom(t *testing.T) {
	p, err := ratelimit.Custom(ratelimit.Window{Limit: 5000, Period: time.Minute}, ratelimit.Window{Limit: 50, Period: 24 * time.Hour},
		ratelimit.Window{Limit: 9, Monthly: true})
	require.NoError(t, err)
	ws := p.Windows()
	assert.False(t, ws[0].Fixed, "a minute is a token bucket")
	assert.True(t, ws[1].Fixed, "a day is a fixed UTC window")
	assert.True(t, ws[2].Monthly)
	same, err := ratelimit.Custom(ratelimit.Window{Limit: 5000, Period: time.Minute, Name: "x", Burst: 7}, ratelimit.Window{Limit: 50, Period: 24 * time.Hour},
		ratelimit.Window{Limit: 9, Monthly: true})
	require.NoError(t, err)
	assert.Same(t, p, same, "equal windows, one policy; other fields ignored")
	other, err := ratelimit.Custom(ratelimit.Window{Limit: 5001, Period: time.Minute})
	require.NoError(t, err)
	assert.NotSame(t, p, other)
	_, err = ratelimit.Custom()
	require.ErrorIs(t, err, ratelimit.ErrInvalidPolicy)
}

// mustPolicy returns the policy of windows, which are valid.
func mustPolicy(name string, windows ...ratelimit.Window) *ratelimit.Policy {
	p, err := ratelimit.NewPolicy(name, windows...)
	if err != nil {
		panic(err)
	}
	return p
}

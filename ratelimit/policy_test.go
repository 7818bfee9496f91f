package ratelimit_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/ratelimit"
)

func TestNewPolicyRejects(t *testing.T) {
	t.Parallel()
	for name, windows := range map[string][]ratelimit.Window{
		"no windows":             nil,
		"five windows":           {ratelimit.PerMinute(1), ratelimit.PerMinute(2), ratelimit.PerMinute(3), ratelimit.PerMinute(4), ratelimit.PerMinute(5)},
		"zero limit":             {{Limit: 0, Period: time.Minute}},
		"negative limit":         {{Limit: -1, Period: time.Minute}},
		"zero period":            {{Limit: 1}},
		"negative period":        {{Limit: 1, Period: -time.Minute}},
		"sub-millisecond period": {{Limit: 1, Period: time.Microsecond}},
		"negative burst":         {{Limit: 1, Period: time.Minute, Burst: -1}},
		"faster than 1/ns":       {{Limit: 2, Period: time.Millisecond, Burst: 1}, {Limit: 1 << 40, Period: time.Millisecond}},
		"monthly with a period":  {{Limit: 1, Period: time.Hour, Monthly: true}},
	} {
		_, err := ratelimit.NewPolicy("p", windows...)
		assert.ErrorIs(t, err, ratelimit.ErrInvalidPolicy, name)
	}
}

func TestPerMonth(t *testing.T) {
	t.Parallel()
	p, err := ratelimit.NewPolicy("p", ratelimit.PerMonth(1000), ratelimit.Window{Limit: 5, Monthly: true})
	require.NoError(t, err)
	w := p.Windows()
	assert.Equal(t, ratelimit.Window{Name: "month", Limit: 1000, Burst: 1000, Fixed: true, Monthly: true}, w[0])
	assert.Equal(t, "month", w[1].Name)
}

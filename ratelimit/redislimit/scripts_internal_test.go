package redislimit

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/ratelimit"
)

// A policy built per account and per change (custom limits) must not
// grow the limiter without bound: the cache of script arguments starts
// over past maxScripts.
func TestScriptCacheIsBounded(t *testing.T) {
	l, err := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true}), Config{}) // never contacted
	require.NoError(t, err)
	for i := range 3 * maxScripts {
		p := mustPolicy("custom", ratelimit.Window{Limit: int64(i + 1), Period: time.Hour})
		require.NotNil(t, l.scriptFor(p))
	}
	n := 0
	l.scripts.Range(func(any, any) bool { n++; return true })
	assert.LessOrEqual(t, n, maxScripts)
	assert.Positive(t, n)
}

// mustPolicy returns the policy of windows, which are valid.
func mustPolicy(name string, windows ...ratelimit.Window) *ratelimit.Policy {
	p, err := ratelimit.NewPolicy(name, windows...)
	if err != nil {
		panic(err)
	}
	return p
}

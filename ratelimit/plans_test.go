package ratelimit_test

import (
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

package ratelimit_test

import (
	"testing"
	"time"

	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/ratelimit/ratelimittest"
)

func TestMemoryLimiter(t *testing.T) {
	ratelimittest.Run(t, func(t *testing.T, now func() time.Time) ratelimit.Limiter {
		m := ratelimit.NewMemory(ratelimit.MemoryConfig{Clock: now, SweepInterval: -1})
		t.Cleanup(func() { _ = m.Close() })
		return m
	})
}

package redislimit

import (
	"time"

	"github.com/redis/go-redis/v9"
)

// NewWithClock is New with clock in place of Redis server time, so that
// the tests decide at instants of their choosing.
func NewWithClock(client redis.UniversalClient, cfg Config, clock func() time.Time) (*Limiter, error) {
	l, err := New(client, cfg)
	if err != nil {
		return nil, err
	}
	l.clock, l.local.Clock = clock, clock
	return l, nil
}

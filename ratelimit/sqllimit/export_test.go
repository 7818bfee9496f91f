package sqllimit

import (
	"context"
	"database/sql"
	"time"
)

// NewWithClock is New with clock in place of the database's time, so
// that the tests decide at instants of their choosing.
func NewWithClock(ctx context.Context, db *sql.DB, cfg Config, clock func() time.Time) (*Limiter, error) {
	l, err := New(ctx, db, cfg)
	if err != nil {
		return nil, err
	}
	l.clock, l.local.Clock = clock, clock
	return l, nil
}

// Calls returns how many decisions l made with the database.
func (l *Limiter) Calls() int64 { return l.calls.Load() }

package ratelimit

import (
	"fmt"
	"time"

	"github.com/keygate/keygate/internal/binding"
)

// Refill is how often a credit balance refills.
type Refill int

// The refill periods.
const (
	// NoRefill: the balance only goes down, until a new grant.
	NoRefill Refill = iota
	// Daily refills every 24 hours from [Credits].RefillAt.
	Daily
	// Monthly refills once a month from [Credits].RefillAt, on its day of
	// the month (the month's last day when the month is shorter: the 31st
	// becomes the 30th of April) at its time of day, UTC.
	Monthly
)

// MaxCredits bounds a balance and a refill, so that every count stays
// exact in any limiter (Redis's Lua counts in doubles).
const MaxCredits = 1 << 50

// Credits is an account's balance: each request takes its cost from it,
// as from a window, and is refused ("quota exceeded") when the balance
// lacks it; a refused request takes nothing.
//
// The limiter keeps the balance; Credits says how it starts and refills.
// A balance follows its grant: requests that bring the same Granted spend
// one balance, and a request with another Granted (the host set a new
// balance) starts again from Balance.
type Credits struct {
	// Balance is the balance granted at Granted; at least 0.
	Balance int64
	// Granted is when Balance was granted; it identifies the grant.
	Granted time.Time
	// Refill is the amount of each refill; at least 0, and 0 with
	// NoRefill.
	Refill int64
	// Every is how often the balance refills.
	Every Refill
	// RefillAt is the first refill; the others follow every day or month
	// (see [Monthly]). Refills at or before Granted do not count. Required
	// when Every is not NoRefill.
	RefillAt time.Time
	// Add adds Refill to the balance at each refill. Otherwise the balance
	// becomes Refill: what was left lapses.
	Add bool
}

// validate reports whether c can be kept.
func (c *Credits) validate() error {
	switch {
	case c.Balance < 0 || c.Refill < 0 || c.Balance > MaxCredits || c.Refill > MaxCredits:
		return fmt.Errorf("%w: a balance or refill not between 0 and %d", ErrInvalidCredits, int64(MaxCredits))
	case c.Every < NoRefill || c.Every > Monthly:
		return fmt.Errorf("%w: unknown refill period %d", ErrInvalidCredits, c.Every)
	case (c.Every == NoRefill) != (c.Refill == 0):
		return fmt.Errorf("%w: a refill needs both an amount and a period", ErrInvalidCredits)
	case c.Every != NoRefill && c.RefillAt.IsZero():
		return fmt.Errorf("%w: a refill needs its first instant", ErrInvalidCredits)
	}
	return nil
}

// schedule returns c in the limiters' terms, in unix nanoseconds.
func (c *Credits) schedule() binding.Credits {
	return binding.Credits{
		Balance: c.Balance, Granted: c.Granted.UnixNano(), Refill: c.Refill, Add: c.Add,
		Monthly: c.Every == Monthly, First: c.RefillAt.UnixNano(),
	}
}

// NextRefill returns c's first refill after now; the zero time with
// NoRefill.
func (c *Credits) NextRefill(now time.Time) time.Time {
	if c.Every == NoRefill {
		return time.Time{}
	}
	s := c.schedule()
	return time.Unix(0, s.At(s.Due(now.UnixNano()))).UTC()
}

package ratelimit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/keygate/keygate/internal/binding"
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
//
// Its JSON form, as stores keep it and APIs show it, names the fields
// balance, granted_at, refill_amount, refill_period ("day" or "month"),
// refill_at and refill_mode ("replace" or "add").
type Credits struct {
	// Balance is the balance granted at Granted; 0 to MaxCredits.
	Balance int64
	// Granted is when Balance was granted; it identifies the grant.
	Granted time.Time
	// Refill is the amount of each refill; 0 (no refill: the balance
	// only goes down, until a new grant) to MaxCredits.
	Refill int64
	// Monthly refills once a month, on RefillAt's day of the month (the
	// month's last day when the month is shorter: the 31st becomes the
	// 30th of April) at its time of day, UTC. Otherwise refills come
	// every 24 hours.
	Monthly bool
	// RefillAt is the first refill; the others follow every day or
	// month. Refills at or before Granted do not count. Required with a
	// Refill.
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
	case c.Refill == 0 && (c.Monthly || c.Add || !c.RefillAt.IsZero()):
		return fmt.Errorf("%w: a refill schedule without an amount", ErrInvalidCredits)
	case c.Refill != 0 && c.RefillAt.IsZero():
		return fmt.Errorf("%w: a refill needs its first instant", ErrInvalidCredits)
	}
	return nil
}

// schedule returns c in the limiters' terms, in unix nanoseconds.
func (c *Credits) schedule() binding.Credits {
	return binding.Credits{
		Balance: c.Balance, Granted: c.Granted.UnixNano(), Refill: c.Refill, Add: c.Add,
		Monthly: c.Monthly, First: c.RefillAt.UnixNano(),
	}
}

// NextRefill returns c's first refill after now; the zero time without
// a refill.
func (c *Credits) NextRefill(now time.Time) time.Time {
	if c.Refill == 0 {
		return time.Time{}
	}
	s := c.schedule()
	return time.Unix(0, s.At(s.Due(now.UnixNano()))).UTC()
}

// creditsJSON is the JSON form of [Credits].
type creditsJSON struct {
	Balance      int64     `json:"balance"`
	GrantedAt    time.Time `json:"granted_at,omitzero"`
	RefillAmount int64     `json:"refill_amount,omitempty"`
	RefillPeriod string    `json:"refill_period,omitempty"`
	RefillAt     time.Time `json:"refill_at,omitzero"`
	RefillMode   string    `json:"refill_mode,omitempty"`
}

// The values of refill_period and refill_mode.
const (
	periodDay     = "day"
	periodMonth   = "month"
	modeReplace   = "replace"
	modeAdd       = "add"
	creditsFields = `balance, granted_at, refill_amount, refill_period, refill_at, refill_mode`
)

// MarshalJSON writes c's JSON form; a refill states its period and mode.
func (c Credits) MarshalJSON() ([]byte, error) {
	out := creditsJSON{Balance: c.Balance, GrantedAt: c.Granted, RefillAmount: c.Refill, RefillAt: c.RefillAt}
	if c.Refill != 0 {
		out.RefillPeriod, out.RefillMode = periodDay, modeReplace
		if c.Monthly {
			out.RefillPeriod = periodMonth
		}
		if c.Add {
			out.RefillMode = modeAdd
		}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads c's JSON form. It fails for a field it does not
// know, a period other than "day" or "month", a mode other than
// "replace" or "add", and a period or mode without a refill_amount (or
// the reverse); it leaves c unchanged then.
func (c *Credits) UnmarshalJSON(data []byte) error {
	var in creditsJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return fmt.Errorf("%w: %v (the fields are %s)", ErrInvalidCredits, err, creditsFields)
	}
	out := Credits{Balance: in.Balance, Granted: in.GrantedAt, Refill: in.RefillAmount, RefillAt: in.RefillAt}
	switch in.RefillPeriod {
	case "":
	case periodDay:
	case periodMonth:
		out.Monthly = true
	default:
		return fmt.Errorf("%w: refill_period %q is not %q or %q", ErrInvalidCredits, in.RefillPeriod, periodDay, periodMonth)
	}
	switch in.RefillMode {
	case "", modeReplace:
	case modeAdd:
		out.Add = true
	default:
		return fmt.Errorf("%w: refill_mode %q is not %q or %q", ErrInvalidCredits, in.RefillMode, modeReplace, modeAdd)
	}
	if (in.RefillAmount == 0) != (in.RefillPeriod == "") || in.RefillAmount == 0 && in.RefillMode != "" {
		return fmt.Errorf("%w: a refill states both refill_amount and refill_period", ErrInvalidCredits)
	}
	*c = out
	return nil
}

package binding

import (
	"math"
	"time"
)

// Never is the Retry of a credit balance that no refill will restore.
const Never = math.MaxInt64

const day = int64(24 * time.Hour)

// Credits is a credit balance's schedule, in unix nanoseconds.
type Credits struct {
	Balance int64 // granted at Granted
	Granted int64
	Refill  int64 // added, or set, at each refill
	Add     bool
	// Refills happen at First and then every day (Monthly false) or on
	// First's day of every month (its last day when shorter) at First's
	// time of day. No refills when Refill is 0.
	Monthly bool
	First   int64
}

// At returns the instant of refill k, counted from 0 at First.
func (c *Credits) At(k int64) int64 {
	if !c.Monthly {
		return c.First + k*day
	}
	f := time.Unix(0, c.First).UTC()
	y, m, d := f.Date()
	tod := c.First - time.Date(y, m, d, 0, 0, 0, 0, time.UTC).UnixNano()
	month := time.Date(y, m+time.Month(k), 1, 0, 0, 0, 0, time.UTC)
	last := month.AddDate(0, 1, -1).Day()
	return month.AddDate(0, 0, min(d, last)-1).UnixNano() + tod
}

// Due returns how many refills are at or before t.
func (c *Credits) Due(t int64) int64 {
	if c.Refill == 0 || t < c.First {
		return 0
	}
	if !c.Monthly {
		return (t-c.First)/day + 1
	}
	ty, tm, _ := time.Unix(0, t).UTC().Date()
	fy, fm, _ := time.Unix(0, c.First).UTC().Date()
	k := int64(ty-fy)*12 + int64(tm-fm)
	if c.At(k) <= t {
		k++
	}
	return k
}

// Bring returns the balance and the count of refills applied, brought up
// to now from a state of a grant (balance b after n refills): a state of
// another grant starts from Balance after the refills due at Granted.
func (c *Credits) Bring(grant, b, n, now int64) (int64, int64) {
	if grant != c.Granted {
		b, n = c.Balance, c.Due(c.Granted)
	}
	if k := c.Due(now); k > n {
		if c.Add {
			b += (k - n) * c.Refill
		} else {
			b = c.Refill
		}
		n = k
	}
	return b, n
}

// Fresh reports whether a state of balance b after n refills, brought up
// to now, is what a new state would be: keeping it changes nothing.
func (c *Credits) Fresh(b, n, now int64) bool {
	b, n = c.Bring(c.Granted, b, n, now)
	fb, fn := c.Bring(c.Granted, c.Balance, c.Due(c.Granted), now)
	return b == fb && n == fn
}

// Report returns what the balance reports after a request of cost was
// decided at now: balance b after n refills. Reset is the next refill
// (now when there is none); a denial for want of credits waits for the
// refill that restores enough, or Never.
func (c *Credits) Report(b, n, now, cost int64, allowed bool) State {
	s := State{Remaining: b, Reset: now}
	if c.Refill > 0 {
		s.Reset = c.At(n)
	}
	if allowed || b >= cost {
		return s
	}
	switch {
	case c.Refill == 0 || (!c.Add && c.Refill < cost):
		s.Retry = Never
	case c.Add:
		s.Retry = max(c.At(n+(cost-b+c.Refill-1)/c.Refill-1)-now, 1)
	default:
		s.Retry = max(c.At(n)-now, 1)
	}
	return s
}

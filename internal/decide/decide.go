// Package decide turns the states of a decided request into the
// [ratelimit.Decision] the shared limiters (redislimit, sqllimit) answer,
// by the rules ratelimit.Memory follows.
package decide

import (
	"time"

	"github.com/keygate/keygate/internal/binding"
	"github.com/keygate/keygate/ratelimit"
)

// Decision returns the answer for r. states holds what each window of
// r's account policy (acct) reports, then each of its key policy's (key),
// then with credits the balance, whose value after the decision is
// balance. Times count units since the epoch.
func Decision(r *ratelimit.Request, acct, key []binding.Window, allowed bool, states []binding.State, balance, now int64, unit time.Duration) ratelimit.Decision {
	at := func(t int64) time.Time { return time.Unix(0, t*int64(unit)).UTC() }
	i := binding.Pick(allowed, states)
	w := &states[i]
	d := ratelimit.Decision{
		Allowed:    allowed,
		Balance:    balance,
		Remaining:  w.Remaining,
		Reset:      at(w.Reset),
		ResetAfter: time.Duration(w.Reset-now) * unit,
		RetryAfter: time.Duration(w.Retry) * unit,
	}
	if w.Retry == binding.Never {
		d.RetryAfter = -1
	}
	na, nk := len(acct), len(key)
	if r.Cost == 0 {
		d.Windows = make([]ratelimit.WindowState, 0, na+nk)
	}
	for k := range states {
		p, j, ws := r.AccountPolicy, k, acct
		switch {
		case k >= na+nk: // the balance, last
			p, ws = nil, nil
		case k >= na:
			p, j, ws = r.KeyPolicy, k-na, key
		}
		if k == i {
			d.Policy, d.Tightest, d.Quota = p, j, p == nil
			if p != nil {
				d.Limit = ws[j].Limit
			} else if d.Limit = r.Credits.Refill; d.Limit == 0 {
				d.Limit = r.Credits.Balance
			}
		}
		if r.Cost == 0 && p != nil {
			d.Windows = append(d.Windows, ratelimit.WindowState{Policy: p, Index: j, Remaining: states[k].Remaining, Reset: at(states[k].Reset)})
		}
	}
	return d
}

// Schedule returns c's schedule in nanoseconds, as the limiters keep it.
func Schedule(c *ratelimit.Credits) binding.Credits {
	return binding.Credits{
		Balance: c.Balance, Granted: c.Granted.UnixNano(), Refill: c.Refill, Add: c.Add,
		Monthly: c.Monthly, First: c.RefillAt.UnixNano(),
	}
}

package ratelimit

import (
	"context"
	"time"
)

// Limiter decides whether a request under a policy may pass. Both
// implementations in this module, [Memory] and redislimit.Limiter, are
// safe for concurrent use; ratelimittest checks any Limiter.
type Limiter interface {
	// Allow takes cost tokens for key from every window of p, or from none
	// when any window lacks them. A cost of 0 or less, or above a window's
	// capacity, fails with [ErrInvalidCost]. Other errors mean the limiter
	// could not decide (a store failure).
	Allow(ctx context.Context, key string, p *Policy, cost int64) (Decision, error)
}

// WindowState is one window's part of a [Decision].
type WindowState struct {
	// Remaining is how many requests the window would still admit.
	Remaining int64
	// Reset is when the window is whole again: a bucket full, a fixed
	// window started anew.
	Reset time.Time
	// RetryAfter is how long until the window admits the request; 0 if it
	// does now.
	RetryAfter time.Duration
}

// Decision is a limiter's answer for one request.
type Decision struct {
	// Allowed reports whether the request passes.
	Allowed bool
	// Policy is the policy decided under.
	Policy *Policy
	// Tightest is the index of the window the headers describe: when
	// denied, the violated window with the longest RetryAfter; when
	// allowed, the window with the fewest Remaining. Ties go to the longer
	// Reset, then the lower index.
	Tightest int
	// Limit, Remaining and Reset describe the tightest window.
	Limit     int64
	Remaining int64
	Reset     time.Time
	// RetryAfter is 0 when allowed; otherwise how long until every
	// violated window admits the request.
	RetryAfter time.Duration
	// FailedOpen reports a request allowed because the limiter failed and
	// was configured to fail open; the other fields are then zero.
	FailedOpen bool

	windows   [MaxWindows]windowState
	decidedAt int64 // unix nanoseconds, on the limiter's clock
}

// windowState is WindowState in integers (unix nanoseconds), which keeps a
// Decision small and cheap to return.
type windowState struct {
	remaining, reset, retry int64
}

// NumWindows returns the number of windows decided, 0 for a zero Decision.
func (d *Decision) NumWindows() int {
	if d.Policy == nil || d.FailedOpen {
		return 0
	}
	return len(d.Policy.windows)
}

// Window returns the state of window i of the policy.
func (d *Decision) Window(i int) WindowState {
	w := d.windows[i]
	return WindowState{Remaining: w.remaining, Reset: time.Unix(0, w.reset).UTC(), RetryAfter: time.Duration(w.retry)}
}

// finish picks the tightest window and fills the summary fields.
func (d *Decision) finish() {
	n := len(d.Policy.windows)
	best := -1
	for i := range n {
		if !d.Allowed && d.windows[i].retry == 0 {
			continue
		}
		if best < 0 || d.tighter(i, best) {
			best = i
		}
	}
	d.Tightest = best
	w := &d.windows[best]
	d.Limit = d.Policy.windows[best].Limit
	d.Remaining = w.remaining
	d.Reset = time.Unix(0, w.reset).UTC()
	d.RetryAfter = time.Duration(w.retry)
}

// tighter reports whether window i describes the decision better than j.
func (d *Decision) tighter(i, j int) bool {
	a, b := &d.windows[i], &d.windows[j]
	switch {
	case !d.Allowed && a.retry != b.retry:
		return a.retry > b.retry
	case d.Allowed && a.remaining != b.remaining:
		return a.remaining < b.remaining
	}
	return a.reset > b.reset
}

// NewDecision assembles a Decision from the state of each window of p (in
// the policy's order), decided at the instant at: the constructor for
// [Limiter] implementations outside this package. It picks the tightest
// window as Allow does.
func NewDecision(p *Policy, allowed bool, at time.Time, windows []WindowState) Decision {
	d := Decision{Allowed: allowed, Policy: p, decidedAt: at.UnixNano()}
	for i := range min(len(windows), len(p.windows), MaxWindows) {
		w := windows[i]
		d.windows[i] = windowState{remaining: w.Remaining, reset: w.Reset.UnixNano(), retry: int64(w.RetryAfter)}
	}
	d.finish()
	return d
}

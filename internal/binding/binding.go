// Package binding holds what the rate limiters (ratelimit.Memory,
// redislimit and sqllimit) compute alike: a window's state and how a
// request changes it, what each window reports once a request has been
// decided, and which window binds.
package binding

import "time"

// MaxWindows is the most windows a policy may have.
const MaxWindows = 4

// Window is one window of a policy, in the limiter's unit of time (the
// memory limiter's nanoseconds, the Redis limiter's microseconds).
type Window struct {
	Limit int64 // requests per period
	// A token bucket kept as GCRA: Interval is the time one token takes
	// to return, and Tau the time a full bucket spans (burst × Interval).
	Interval, Tau int64
	// Period is the window's length (a bucket's too, so that a state
	// carries over only between windows of one length); 0 for a calendar
	// month.
	Period int64
	// Monthly marks a fixed window of one calendar month, UTC. Unit is
	// then the limiter's unit of time in nanoseconds.
	Monthly bool
	Unit    int64
}

// IsBucket reports whether w is a token bucket; otherwise it is a fixed
// window (of a Period, or a calendar month).
func (w *Window) IsBucket() bool { return w.Interval > 0 }

// Start returns the start of fixed window w that holds now.
func (w *Window) Start(now int64) int64 {
	if w.Monthly {
		return w.monthStart(now)
	}
	return now - now%w.Period
}

// End returns the end of fixed window w that starts at t.
func (w *Window) End(t int64) int64 {
	if w.Monthly {
		return w.monthEnd(t)
	}
	return t + w.Period
}

// monthStart and monthEnd are out of Start and End so that those inline
// on the hot path of windows that are not monthly.
func (w *Window) monthStart(now int64) int64 {
	y, m, _ := time.Unix(0, now*w.Unit).UTC().Date()
	return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC).UnixNano() / w.Unit
}

func (w *Window) monthEnd(t int64) int64 {
	return time.Unix(0, t*w.Unit).UTC().AddDate(0, 1, 0).UnixNano() / w.Unit
}

// State is one window's part of a decision.
type State struct {
	Remaining int64 // requests the window would still admit
	Reset     int64 // when the window is whole again
	Retry     int64 // how long until it admits the request; 0 if it does now
}

// Report returns what window w reports after a request of cost was
// decided at now, from its state then: a bucket's theoretical arrival
// time t (at least now), or a fixed window's start t and count v.
func (w *Window) Report(t, v, now, cost int64, allowed bool) State {
	switch {
	case w.IsBucket():
		return w.Bucket(t, now, cost, allowed)
	case w.Monthly:
		return w.Month(t, v, now, cost, allowed)
	}
	return w.Fixed(t, v, now, cost, allowed)
}

// Fixed is [Window.Report] for a fixed window of a Period. Split from
// Report so that the memory limiter's hot path, which knows the window's
// kind, inlines it.
func (w *Window) Fixed(t, v, now, cost int64, allowed bool) State {
	return w.counter(t+w.Period, v, now, cost, allowed)
}

// Month is [Window.Report] for a calendar month.
func (w *Window) Month(t, v, now, cost int64, allowed bool) State {
	return w.counter(w.monthEnd(t), v, now, cost, allowed)
}

// counter reports a fixed window that ends at end.
func (w *Window) counter(end, v, now, cost int64, allowed bool) State {
	// A lowered limit can be spent past: none left, never fewer.
	s := State{Remaining: max(w.Limit-v, 0), Reset: end}
	if !allowed && v+cost > w.Limit {
		s.Retry = max(s.Reset-now, 1)
	}
	return s
}

// Bucket is [Window.Report] for a token bucket; see [Window.Fixed].
func (w *Window) Bucket(t, now, cost int64, allowed bool) State {
	s := State{Remaining: max(min((w.Tau-(t-now))/w.Interval, w.Limit), 0), Reset: t}
	if !allowed {
		s.Retry = max(t+cost*w.Interval-now-w.Tau, 0)
	}
	return s
}

// Pick returns the index of the window a decision reports: when denied,
// the refusing window with the longest Retry; when allowed, the window
// with the fewest Remaining. Ties go to the later Reset, then to the
// lower index, so every limiter picks the same one.
func Pick(allowed bool, ws []State) int {
	best := -1
	for i := range ws {
		if !allowed && ws[i].Retry == 0 {
			continue
		}
		if best < 0 || tighter(allowed, &ws[i], &ws[best]) {
			best = i
		}
	}
	return max(best, 0)
}

func tighter(allowed bool, a, b *State) bool {
	switch {
	case !allowed && a.Retry != b.Retry:
		return a.Retry > b.Retry
	case allowed && a.Remaining != b.Remaining:
		return a.Remaining < b.Remaining
	}
	return a.Reset > b.Reset
}

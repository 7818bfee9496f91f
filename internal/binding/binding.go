// Package binding holds what both rate limiters (ratelimit.Memory and
// redislimit) decide alike once each window of a policy has been checked:
// which window, the binding one, a decision reports.
package binding

// State is one window's part of a decision, in integer time units (the
// memory limiter's nanoseconds, the Redis limiter's microseconds).
type State struct {
	Remaining int64 // requests the window would still admit
	Reset     int64 // when the window is whole again
	Retry     int64 // how long until it admits the request; 0 if it does now
}

// Pick returns the index of the window a decision reports: when
// denied, the refusing window with the longest Retry; when allowed, the
// window with the fewest Remaining. Ties go to the later Reset, then to
// the lower index, so every limiter picks the same one.
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

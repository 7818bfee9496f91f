package binding

import "math"

// Cell is one window's state: a token bucket's theoretical arrival time
// T (GCRA: the instant the bucket is full again), or a fixed window's
// start T and count V. The zero Cell is a new window's state.
type Cell struct{ T, V int64 }

// Admits brings c up to now, which changes nothing a request could
// observe (a fixed window past its end starts anew, a bucket's T is never
// in the past), and reports whether w admits cost.
func (w *Window) Admits(c *Cell, now, cost int64) bool {
	if !w.IsBucket() {
		// A window never goes back: a stale clock counts in the current
		// one.
		if now >= w.End(c.T) {
			c.V, c.T = 0, w.Start(now)
		}
		return c.V+cost <= w.Limit
	}
	// max(T, now): a clock that steps back finds the bucket no fuller.
	c.T = max(c.T, now)
	return c.T+cost*w.Interval-now <= w.Tau
}

// Take takes cost from c when allowed (after [Window.Admits] at now) and
// reports w.
func (w *Window) Take(c *Cell, now, cost int64, allowed bool) State {
	switch {
	case w.IsBucket():
		if allowed {
			c.T += cost * w.Interval
		}
		return w.Bucket(c.T, now, cost, allowed)
	case allowed:
		c.V += cost
	}
	if w.Monthly {
		return w.Month(c.T, c.V, now, cost, allowed)
	}
	return w.Fixed(c.T, c.V, now, cost, allowed)
}

// FreshAt returns when cells, the state of windows ws, equal new ones:
// every bucket full, every fixed window that counted past its end.
func FreshAt(ws []Window, cells []Cell) int64 {
	fresh := int64(math.MinInt64)
	for i := range ws {
		w, c := &ws[i], &cells[i]
		switch {
		case w.IsBucket():
			fresh = max(fresh, c.T)
		case c.V > 0:
			fresh = max(fresh, w.End(c.T))
		}
	}
	return fresh
}

// Carry sets cells, the state of windows ws, from olds, the state of the
// windows was that a changed policy had, at now: each window starts from
// the old window of the same kind and length, a bucket's spent tokens
// rescaled to its new rate (rounded up, so that a change never mints a
// token); a window with no counterpart starts new.
func Carry(ws []Window, cells []Cell, was []Window, olds []Cell, now int64) {
	for i := range ws {
		w := &ws[i]
		cells[i] = Cell{}
		for j := range was {
			o := &was[j]
			if o.IsBucket() != w.IsBucket() || o.Period != w.Period || o.Monthly != w.Monthly {
				continue
			}
			c := olds[j]
			if w.IsBucket() && o.Interval != w.Interval && c.T > now {
				spent := (c.T - now + o.Interval - 1) / o.Interval
				c.T = now + spent*w.Interval
			}
			cells[i] = c
			break
		}
	}
}

// Package testclock is the manual clock of the module's tests and test
// suites.
package testclock

import (
	"sync/atomic"
	"time"
)

// Clock is a manual clock, safe for concurrent use. It reads in UTC; the
// zero value reads the Unix epoch.
type Clock struct{ ns atomic.Int64 }

// New returns a Clock that reads t.
func New(t time.Time) *Clock {
	c := &Clock{}
	c.Set(t)
	return c
}

// Now returns the clock's time; pass the method value as a Clock option.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Advance moves the clock by d, backwards when d is negative.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

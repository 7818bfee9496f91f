package ratelimit

import (
	"context"
	"time"
)

// Limiter decides whether a request may pass. [Memory] and
// redislimit.Limiter implement it; ratelimittest checks any Limiter.
type Limiter interface {
	// Allow takes r.Cost from every window of r.AccountPolicy and
	// r.KeyPolicy, or from none when any window lacks it: one decision for
	// both. A policy that is nil has no windows; both nil, a negative cost
	// or a cost above a window's capacity fail with [ErrInvalidCost] or
	// [ErrInvalidPolicy]. Other errors mean the limiter could not decide
	// (a store failure). It is safe for concurrent use.
	Allow(ctx context.Context, r Request) (Decision, error)
}

// Request is one request for a [Limiter] to decide.
//
// State follows the names, not the policies: when the policy for a name
// changes (a plan upgraded, an override set), each window of the new
// policy whose period and kind match a window of the old one starts from
// what the old one had spent, never from full.
type Request struct {
	// Account names the account the request is made for. Its windows,
	// AccountPolicy, are shared by all its keys.
	Account       string
	AccountPolicy *Policy
	// Key names the key the request is made with, within Account: the
	// first key of its rotation chain, so that a rotated key continues
	// its predecessor's windows. Its windows, KeyPolicy, cap the key
	// within the account.
	Key       string
	KeyPolicy *Policy
	// Credits, when set, is the account's credit balance: Cost is taken
	// from it too, in the same decision.
	Credits *Credits
	// Cost is taken from every window and the balance. 0 takes nothing
	// and always passes: the decision reports where they stand, every
	// window in [Decision].Windows.
	Cost int64
}

// Decision is a limiter's answer for one request. Limit, Remaining, Reset
// and the after-durations describe one limit, the binding one: when
// denied, the refusing limit that frees up last; when allowed, the limit
// with the fewest requests left. Ties go to the later reset, then to the
// earlier limit: the account's windows, the key's, then the credit
// balance.
//
// When the balance binds (Quota), Limit is the refill amount (the
// granted balance when it never refills), Remaining the balance and
// Reset the next refill; a balance that no refill will restore has its
// Reset at the decision and, when denied, a negative RetryAfter.
type Decision struct {
	// Allowed reports whether the request passes.
	Allowed bool
	// FailedOpen reports a request allowed because the limiter failed and
	// was configured to fail open; the other fields are then zero.
	FailedOpen bool
	// Policy is the policy of the binding window: the request's
	// AccountPolicy or KeyPolicy; nil when the balance binds.
	Policy *Policy
	// Quota reports that the credit balance binds: a denial is "quota
	// exceeded", not a rate limit.
	Quota bool
	// Balance is the credit balance after the decision; 0 without
	// credits.
	Balance int64
	// Tightest is the index in Policy of the binding window.
	Tightest int
	// Limit is the binding window's limit.
	Limit int64
	// Remaining is how many more requests the binding window would admit.
	Remaining int64
	// Reset is when the binding window is whole again: a bucket full, a
	// fixed window started anew.
	Reset time.Time
	// ResetAfter is how long after the decision Reset is.
	ResetAfter time.Duration
	// RetryAfter is 0 when allowed; otherwise how long until every
	// refusing limit admits the request, or negative when waiting will
	// not (credits that no refill restores enough).
	RetryAfter time.Duration
	// Windows, for a request of Cost 0, holds every window: the account
	// policy's, then the key policy's. It is nil otherwise, which spares
	// the request path an allocation.
	Windows []WindowState
}

// WindowState is where one window stands after a decision.
type WindowState struct {
	Policy    *Policy
	Index     int // in Policy's windows
	Remaining int64
	Reset     time.Time
}

// RetryAfterSeconds returns RetryAfter in whole seconds, rounded up: 0
// for an allowed request and for one that waiting will not admit, at
// least 1 otherwise.
func (d *Decision) RetryAfterSeconds() int64 {
	if d.Allowed || d.RetryAfter < 0 {
		return 0
	}
	return max(ceilSeconds(int64(d.RetryAfter)), 1)
}

func ceilSeconds(ns int64) int64 { return (ns + int64(time.Second) - 1) / int64(time.Second) }

package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/internal/binding"
)

// Errors returned for bad policies and requests.
var (
	// ErrInvalidPolicy reports a policy that cannot be enforced.
	ErrInvalidPolicy = errors.New("ratelimit: invalid policy")
	// ErrInvalidCost reports a negative cost, or more than a window can
	// ever hold.
	ErrInvalidCost = errors.New("ratelimit: invalid cost")
	// ErrInvalidCredits reports credits that cannot be kept.
	ErrInvalidCredits = errors.New("ratelimit: invalid credits")
)

// Window is one limit of a [Policy]: Limit requests per Period.
//
// A window is a token bucket by default: it holds up to Burst tokens
// (Limit when Burst is 0) and refills at Limit per Period, so a burst of
// Burst may be followed by a steady Limit per Period. A rate is not a
// quota: in any one Period a bucket can admit up to Burst + Limit.
//
// A Fixed window is a counter instead, reset at every multiple of Period
// since the Unix epoch: a one-day window resets at 00:00 UTC and never
// admits more than Limit within one UTC day. Its Reset is the window's
// end. Use it for quotas ("10,000 per day").
//
// A Monthly window is a counter reset at 00:00 UTC on the first of every
// month: a quota per calendar month, 28 to 31 days long.
type Window struct {
	// Name labels the window in the IETF RateLimit fields ("min", "day").
	// Default: "w" followed by the period in seconds.
	Name string `json:"name,omitempty"`
	// Limit is the number of requests per Period; at least 1.
	Limit int64 `json:"limit"`
	// Period is the window length; at least one millisecond, and 0 for a
	// Monthly window.
	Period time.Duration `json:"period"`
	// Burst is a token bucket's capacity. Default Limit. Ignored by Fixed
	// windows.
	Burst int64 `json:"burst,omitempty"`
	// Fixed makes the window a counter aligned to Period (see above).
	Fixed bool `json:"fixed,omitempty"`
	// Monthly makes the window a counter per calendar month, UTC (see
	// above); it implies Fixed.
	Monthly bool `json:"monthly,omitempty"`
}

// PerMinute returns a token-bucket window of n requests per minute.
func PerMinute(n int64) Window { return Window{Name: "min", Limit: n, Period: time.Minute} }

// PerHour returns a token-bucket window of n requests per hour.
func PerHour(n int64) Window { return Window{Name: "hour", Limit: n, Period: time.Hour} }

// PerDay returns a fixed window of n requests per UTC day.
func PerDay(n int64) Window {
	return Window{Name: "day", Limit: n, Period: 24 * time.Hour, Fixed: true}
}

// PerMonth returns a window of n requests per calendar month, UTC.
func PerMonth(n int64) Window { return Window{Name: "month", Limit: n, Monthly: true} }

// Policy is one or more windows enforced together: a request passes only
// if every window has room for it, and then takes from every window; a
// denied request takes from none. Create one with [NewPolicy]; a Policy is
// immutable and safe to share.
type Policy struct {
	name    string
	windows []Window         // defaults filled in
	limits  []binding.Window // the same windows as the limiters decide them, in nanoseconds
	maxCost int64            // the smallest capacity: no larger cost can ever pass
}

// NewPolicy validates windows, 1 to 4 of them, and returns their policy.
func NewPolicy(name string, windows ...Window) (*Policy, error) {
	if len(windows) == 0 || len(windows) > binding.MaxWindows {
		return nil, fmt.Errorf("%w %q: %d windows, want 1 to %d", ErrInvalidPolicy, name, len(windows), binding.MaxWindows)
	}
	p := &Policy{name: name, maxCost: math.MaxInt64}
	for i, w := range windows {
		switch {
		case w.Limit < 1:
			return nil, fmt.Errorf("%w %q: window %d limit %d is below 1", ErrInvalidPolicy, name, i, w.Limit)
		case w.Monthly && w.Period != 0:
			return nil, fmt.Errorf("%w %q: window %d is monthly and has a period %v", ErrInvalidPolicy, name, i, w.Period)
		case !w.Monthly && w.Period < time.Millisecond:
			return nil, fmt.Errorf("%w %q: window %d period %v is below 1ms", ErrInvalidPolicy, name, i, w.Period)
		case w.Burst < 0:
			return nil, fmt.Errorf("%w %q: window %d burst %d is negative", ErrInvalidPolicy, name, i, w.Burst)
		}
		w.Fixed = w.Fixed || w.Monthly
		if w.Burst == 0 || w.Fixed {
			w.Burst = w.Limit
		}
		switch {
		case w.Name != "":
		case w.Monthly:
			w.Name = "month"
		default:
			w.Name = fmt.Sprintf("w%d", int64(w.Period/time.Second))
		}
		bw := binding.Window{Limit: w.Limit, Period: int64(w.Period), Monthly: w.Monthly, Unit: 1}
		if !w.Fixed {
			bw.Interval = int64(w.Period) / w.Limit
			if bw.Interval < 1 {
				return nil, fmt.Errorf("%w %q: window %d allows more than one request per nanosecond", ErrInvalidPolicy, name, i)
			}
			bw.Tau = w.Burst * bw.Interval
		}
		p.maxCost = min(p.maxCost, w.Burst)
		p.windows = append(p.windows, w)
		p.limits = append(p.limits, bw)
	}
	return p, nil
}

// mustPolicy is [NewPolicy] for the presets, known to be valid.
func mustPolicy(name string, windows ...Window) *Policy {
	p, err := NewPolicy(name, windows...)
	if err != nil {
		panic(err)
	}
	return p
}

// customs interns the policies of [Custom], by their windows, up to
// maxCustoms of them: key owners choose their keys' custom limits, so
// the distinct sets are theirs to multiply, and past the bound the
// interning starts over (a policy built again is equal, only not the
// same pointer, which costs a limiter a cache entry, not correctness).
var (
	customs  sync.Map // string -> *Policy
	nCustoms atomic.Int64
)

const maxCustom = 4096

// Custom returns the policy of custom windows, as an account's or a
// key's contract states them by Limit and Period (or Monthly): a window
// of a day or longer counts per fixed window aligned to UTC (never more
// than Limit in one calendar day, for a day), a shorter one is a token
// bucket, and a Monthly one counts per calendar month, UTC. Other fields
// are ignored. Equal windows give the same *Policy, so that whatever
// derives state per policy (the limiters do) holds one entry per
// distinct set of windows in use, however many accounts, keys and
// changes have it (a few thousand distinct sets are kept; past that the
// identity starts over). Errors are [NewPolicy]'s.
func Custom(windows ...Window) (*Policy, error) {
	var id strings.Builder
	ws := make([]Window, len(windows))
	for i, w := range windows {
		ws[i] = Window{Limit: w.Limit, Period: w.Period, Monthly: w.Monthly, Fixed: w.Period >= 24*time.Hour}
		fmt.Fprintf(&id, "%d/%d/%t;", w.Limit, w.Period, w.Monthly)
	}
	if p, ok := customs.Load(id.String()); ok {
		return p.(*Policy), nil
	}
	p, err := NewPolicy("custom", ws...)
	if err != nil {
		return nil, err
	}
	if nCustoms.Add(1) > maxCustom {
		customs.Clear()
		nCustoms.Store(1)
	}
	actual, _ := customs.LoadOrStore(id.String(), p)
	return actual.(*Policy), nil
}

// capacity returns the most any one request can take from p: its
// smallest window's capacity, unbounded for a nil policy.
func (p *Policy) capacity() int64 {
	if p == nil {
		return math.MaxInt64
	}
	return p.maxCost
}

// Validate reports whether r can be decided: what every [Limiter] checks
// first. It fails with [ErrInvalidPolicy] when r has no policy, with
// [ErrInvalidCost] for a negative cost or one above the smallest window's
// capacity, and with [ErrInvalidCredits] for bad credits or credits
// without an account. A cost above the credit balance is valid: it is
// refused.
func (r *Request) Validate() error {
	switch limit := min(r.AccountPolicy.capacity(), r.KeyPolicy.capacity()); {
	case r.AccountPolicy == nil && r.KeyPolicy == nil:
		return fmt.Errorf("%w: the request has no policy", ErrInvalidPolicy)
	case r.Cost < 0 || r.Cost > limit:
		return fmt.Errorf("%w: %d is not between 0 and the smallest window capacity %d", ErrInvalidCost, r.Cost, limit)
	case r.Credits == nil:
		return nil
	case r.Account == "":
		return fmt.Errorf("%w: credits are an account's; the request names none", ErrInvalidCredits)
	}
	return r.Credits.validate()
}

// len returns the number of p's windows, 0 for a nil policy.
func (p *Policy) len() int {
	if p == nil {
		return 0
	}
	return len(p.windows)
}

// Name returns the policy's name.
func (p *Policy) Name() string { return p.name }

// Windows returns a copy of the policy's windows, defaults filled in.
func (p *Policy) Windows() []Window {
	return slices.Clone(p.windows)
}

// The usual plans of an API, which [DefaultPlans] returns. Unexported,
// so that no caller can replace them for everyone.
var (
	free     = mustPolicy("free", PerMinute(10), PerDay(1_000))
	starter  = mustPolicy("starter", PerMinute(60), PerDay(10_000))
	business = mustPolicy("business", PerMinute(300), PerDay(100_000))
)

// Plans maps plan names to policies. Create one with [NewPlans]; it is
// immutable and safe for concurrent use.
type Plans struct {
	policies []*Policy // the default first
	names    []string
}

// NewPlans returns plans holding policies by their names; the first is
// the default plan, which Lookup("") returns. It fails with
// [ErrInvalidPolicy] for no policy, a nil one or two of one name.
func NewPlans(policies ...*Policy) (*Plans, error) {
	if len(policies) == 0 {
		return nil, fmt.Errorf("%w: no plans", ErrInvalidPolicy)
	}
	ps := &Plans{}
	for _, p := range policies {
		if p == nil {
			return nil, fmt.Errorf("%w: a nil plan", ErrInvalidPolicy)
		}
		if p.name == "" || slices.Contains(ps.names, p.name) {
			return nil, fmt.Errorf("%w: a plan named %q twice, or unnamed", ErrInvalidPolicy, p.name)
		}
		ps.policies = append(ps.policies, p)
		ps.names = append(ps.names, p.name)
	}
	return ps, nil
}

// DefaultPlans returns the usual plans of an API: free (the default; 10
// a minute and 1,000 a UTC day), starter (60 a minute, 10,000 a day) and
// business (300 a minute, 100,000 a day).
func DefaultPlans() *Plans {
	ps, _ := NewPlans(free, starter, business)
	return ps
}

// Names returns the names of the plans, the default first.
func (ps *Plans) Names() []string { return slices.Clone(ps.names) }

// Lookup returns the policy named plan; "" names the default plan.
func (ps *Plans) Lookup(plan string) (*Policy, bool) {
	if plan == "" {
		return ps.policies[0], true
	}
	// A scan: plans are few, and comparing a name or two costs less than
	// hashing it for a map.
	for _, p := range ps.policies {
		if p.name == plan {
			return p, true
		}
	}
	return nil, false
}

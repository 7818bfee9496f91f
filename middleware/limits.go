package middleware

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/ratelimit"
)

// checkCosts checks cfg's costs against the plans.
func checkCosts(cfg Config, plans *ratelimit.Plans) error {
	if cfg.Limiter == nil {
		return nil
	}
	for route, cost := range cfg.Costs {
		for _, name := range plans.Names() {
			p, _ := plans.Lookup(name)
			if err := (&ratelimit.Request{KeyPolicy: p, Cost: cost}).Validate(); err != nil {
				return fmt.Errorf("middleware: %w: the cost of %q under plan %q: %w", apikey.ErrInvalidConfig, route, name, err)
			}
		}
	}
	return nil
}

// limit decides r, made with p's key, under its account's policy and
// credits and its key's policy.
func (m *Middleware) limit(r *http.Request, p apikey.Principal, pattern string) (ratelimit.Decision, error) {
	acct := p.Account()
	ap, credits, err := m.accountTerms(&acct)
	if err != nil {
		return ratelimit.Decision{}, err
	}
	kp, err := m.keyPolicy(p)
	if err != nil {
		return ratelimit.Decision{}, err
	}
	cost := int64(1)
	if len(m.cfg.Costs) > 0 {
		if c, ok := m.cfg.Costs[pattern]; ok {
			cost = c
		}
	}
	return m.cfg.Limiter.Allow(r.Context(), ratelimit.Request{
		Account: acct.ID, AccountPolicy: ap, Credits: credits,
		Key: p.Lineage(), KeyPolicy: kp, Cost: cost,
	})
}

// terms are what an account's requests are limited by: its plan's policy
// or its custom one, and its credits.
type terms struct {
	account apikey.Account // what they were built from
	policy  *ratelimit.Policy
	credits *ratelimit.Credits
}

// of reports whether t were built from a's plan, limits and credits.
// UpdatedAt alone would not do: two changes can share an instant.
func (t *terms) of(a *apikey.Account) bool {
	b := &t.account
	if a.Plan != b.Plan || !slices.Equal(a.Limits, b.Limits) || (a.Credits == nil) != (b.Credits == nil) {
		return false
	}
	if a.Credits == nil {
		return true
	}
	x, y := a.Credits, b.Credits
	return x.Balance == y.Balance && x.RefillAmount == y.RefillAmount && x.RefillPeriod == y.RefillPeriod &&
		x.RefillMode == y.RefillMode && x.RefillAt.Equal(y.RefillAt) && x.GrantedAt.Equal(y.GrantedAt)
}

// accountTerms returns the terms of a. Terms of custom limits or credits
// are built once per change of the account and kept, so that the limiter
// sees one policy for as long as the limits hold; the middleware keeps
// them for each account that has custom limits or credits.
func (m *Middleware) accountTerms(a *apikey.Account) (*ratelimit.Policy, *ratelimit.Credits, error) {
	if len(a.Limits) == 0 && a.Credits == nil {
		return LimitsOf(m.plans, a) // the plan's policy: nothing to build
	}
	if v, ok := m.custom.Load(a.ID); ok && v.(*terms).of(a) {
		return v.(*terms).policy, v.(*terms).credits, nil
	}
	p, c, err := LimitsOf(m.plans, a)
	if err != nil {
		return nil, nil, err
	}
	m.custom.Store(a.ID, &terms{account: *a, policy: p, credits: c})
	return p, c, nil
}

// LimitsOf returns what the middleware limits account a's requests by:
// the policy of its plan in plans, or of its custom limits
// ([ratelimit.Custom]), and its credits, nil when it has none.
func LimitsOf(plans *ratelimit.Plans, a *apikey.Account) (*ratelimit.Policy, *ratelimit.Credits, error) {
	p, ok := plans.Lookup(a.Plan)
	if !ok {
		return nil, nil, fmt.Errorf("the account's plan %q has no policy", a.Plan)
	}
	if len(a.Limits) > 0 {
		var err error
		if p, err = ratelimit.Custom(a.Limits...); err != nil {
			return nil, nil, fmt.Errorf("the account's limits: %w", err)
		}
	}
	c := a.Credits
	if c == nil {
		return p, nil, nil
	}
	credits := &ratelimit.Credits{
		Balance: c.Balance, Granted: c.GrantedAt, Refill: c.RefillAmount,
		RefillAt: c.RefillAt, Add: c.RefillMode == apikey.RefillAdd,
	}
	switch c.RefillPeriod {
	case apikey.RefillDay:
		credits.Every = ratelimit.Daily
	case apikey.RefillMonth:
		credits.Every = ratelimit.Monthly
	}
	return p, credits, nil
}

// keyTerms are what caps one key of custom limits.
type keyTerms struct {
	limits []ratelimit.Window // what they were built from
	policy *ratelimit.Policy
}

// keyPolicy returns the policy that caps p's key on its own: its custom
// limits', else its plan's, else nil. Like an account's, a key's custom
// policy is built once per change and kept, under its lineage.
func (m *Middleware) keyPolicy(p apikey.Principal) (*ratelimit.Policy, error) {
	limits := p.Limits()
	if len(limits) == 0 {
		plan := p.Plan()
		if plan == "" {
			return nil, nil
		}
		kp, ok := m.plans.Lookup(plan)
		if !ok {
			return nil, fmt.Errorf("the key's plan %q has no policy", plan)
		}
		return kp, nil
	}
	lineage := p.Lineage()
	if v, ok := m.keys.Load(lineage); ok && slices.Equal(v.(*keyTerms).limits, limits) {
		return v.(*keyTerms).policy, nil
	}
	kp, err := ratelimit.Custom(limits...)
	if err != nil {
		return nil, fmt.Errorf("the key's limits: %w", err)
	}
	m.keys.Store(lineage, &keyTerms{limits: limits, policy: kp})
	return kp, nil
}

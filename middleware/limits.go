package middleware

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event/notice"
	"github.com/keygate/keygate/internal/terms"
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

// limit decides r, made with p's key, under its account's (acct, p's)
// policy and credits and its key's policy, which it returns too.
func (m *Middleware) limit(r *http.Request, p apikey.Principal, acct *apikey.Account, pattern string) (ratelimit.Decision, *ratelimit.Policy, error) {
	ap, err := m.accountPolicy(acct)
	if err != nil {
		return ratelimit.Decision{}, nil, err
	}
	kp, err := m.keyPolicy(p)
	if err != nil {
		return ratelimit.Decision{}, nil, err
	}
	cost := int64(1)
	if len(m.cfg.Costs) > 0 {
		if c, ok := m.cfg.Costs[pattern]; ok {
			cost = c
		}
	}
	d, err := m.cfg.Limiter.Allow(r.Context(), ratelimit.Request{
		Account: acct.ID, AccountPolicy: ap, Credits: acct.Credits,
		Key: p.Lineage(), KeyPolicy: kp, Cost: cost,
	})
	return d, kp, err
}

// notice hands d to Config.Notices when it left its window or balance
// past the first threshold: a non-blocking send of a value, only then.
func (m *Middleware) notice(p apikey.Principal, acct *apikey.Account, kp *ratelimit.Policy, d *ratelimit.Decision) {
	n := m.cfg.Notices
	if n == nil || d.FailedOpen || !n.Near(d.Limit, d.Remaining, !d.Allowed) {
		return
	}
	n.Offer(notice.Crossing{
		Account: acct.ID, KeyID: p.KeyID(), Lineage: p.Lineage(),
		Policy: d.Policy, Index: d.Tightest, Key: d.Policy != nil && d.Policy == kp, Credits: acct.Credits,
		Limit: d.Limit, Remaining: d.Remaining, Reset: d.Reset, Denied: !d.Allowed,
	})
}

// customTerms are what limits the requests of one account of custom
// limits.
type customTerms struct {
	limits []ratelimit.Window // what they were built from
	policy *ratelimit.Policy
}

// accountPolicy returns the policy that limits a's requests. A custom
// one is built once per change of the account's limits and kept, so that
// a request costs no policy lookup.
func (m *Middleware) accountPolicy(a *apikey.Account) (*ratelimit.Policy, error) {
	if len(a.Limits) == 0 {
		return terms.Account(m.plans, a) // the plan's policy: nothing to build
	}
	if v, ok := m.custom.Load(a.ID); ok && slices.Equal(v.(*customTerms).limits, a.Limits) {
		return v.(*customTerms).policy, nil
	}
	p, err := terms.Account(m.plans, a)
	if err != nil {
		return nil, err
	}
	m.custom.Store(a.ID, &customTerms{limits: a.Limits, policy: p})
	return p, nil
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

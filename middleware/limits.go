package middleware

import (
	"fmt"
	"net/http"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/ratelimit"
)

// checkPlans checks cfg's plans against the Verifier's and its costs
// against the plans.
func checkPlans(cfg Config) error {
	if cfg.Limiter == nil {
		return nil
	}
	if lister, ok := cfg.Verifier.(interface{ Plans() []string }); ok {
		names := lister.Plans()
		for _, name := range names {
			if _, ok := cfg.Plans.Lookup(name); !ok {
				return fmt.Errorf("middleware: %w: the key service's plan %q has no policy in Config.Plans", apikey.ErrInvalidConfig, name)
			}
		}
		if def, _ := cfg.Plans.Lookup(""); len(names) > 0 && def.Name() != names[0] {
			return fmt.Errorf("middleware: %w: the key service's default plan is %q, Config.Plans's %q", apikey.ErrInvalidConfig, names[0], def.Name())
		}
	}
	for route, cost := range cfg.Costs {
		for _, name := range cfg.Plans.Names() {
			p, _ := cfg.Plans.Lookup(name)
			if err := (&ratelimit.Request{KeyPolicy: p, Cost: cost}).Validate(); err != nil {
				return fmt.Errorf("middleware: %w: the cost of %q under plan %q: %w", apikey.ErrInvalidConfig, route, name, err)
			}
		}
	}
	return nil
}

// limit decides r, made with p's key, under its account's policy and its
// key's.
func (m *Middleware) limit(r *http.Request, p apikey.Principal, pattern string) (ratelimit.Decision, error) {
	acct := p.Account()
	ap, err := m.accountPolicy(&acct)
	if err != nil {
		return ratelimit.Decision{}, err
	}
	var kp *ratelimit.Policy
	if plan := p.Plan(); plan != "" {
		var ok bool
		if kp, ok = m.cfg.Plans.Lookup(plan); !ok {
			return ratelimit.Decision{}, fmt.Errorf("the key's plan %q has no policy", plan)
		}
	}
	cost := int64(1)
	if len(m.cfg.Costs) > 0 {
		if c, ok := m.cfg.Costs[pattern]; ok {
			cost = c
		}
	}
	return m.cfg.Limiter.Allow(r.Context(), ratelimit.Request{
		Account: acct.ID, AccountPolicy: ap, Key: p.Lineage(), KeyPolicy: kp, Cost: cost,
	})
}

// customPolicy is the policy of an account's custom limits, as they were
// at updated.
type customPolicy struct {
	updated time.Time
	policy  *ratelimit.Policy
}

// accountPolicy returns the policy of a's plan, or of its custom limits.
// A custom policy is built once per change of the account and kept, so
// that the limiter sees one policy for as long as the limits hold; the
// middleware keeps one per account that has custom limits.
func (m *Middleware) accountPolicy(a *apikey.Account) (*ratelimit.Policy, error) {
	if len(a.Limits) == 0 {
		p, ok := m.cfg.Plans.Lookup(a.Plan)
		if !ok {
			return nil, fmt.Errorf("the account's plan %q has no policy", a.Plan)
		}
		return p, nil
	}
	if v, ok := m.custom.Load(a.ID); ok && v.(*customPolicy).updated.Equal(a.UpdatedAt) {
		return v.(*customPolicy).policy, nil
	}
	windows := make([]ratelimit.Window, len(a.Limits))
	for i, l := range a.Limits {
		windows[i] = ratelimit.Window{Limit: l.Limit, Period: l.Period, Fixed: l.Period >= 24*time.Hour}
	}
	p, err := ratelimit.NewPolicy("custom", windows...)
	if err != nil {
		return nil, fmt.Errorf("the account's limits: %w", err)
	}
	m.custom.Store(a.ID, &customPolicy{updated: a.UpdatedAt, policy: p})
	return p, nil
}

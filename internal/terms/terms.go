// Package terms finds the rate-limit policy of an account in the plans
// of its key service: one rule for the middleware, which enforces it,
// and manage, which reports it.
package terms

import (
	"fmt"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/ratelimit"
)

// Account returns the policy that limits a's requests: that of its
// custom limits ([ratelimit.Custom]) when it has them, else its plan's
// in plans.
func Account(plans *ratelimit.Plans, a *apikey.Account) (*ratelimit.Policy, error) {
	if len(a.Limits) > 0 {
		p, err := ratelimit.Custom(a.Limits...)
		if err != nil {
			return nil, fmt.Errorf("the account's limits: %w", err)
		}
		return p, nil
	}
	p, ok := plans.Lookup(a.Plan)
	if !ok {
		return nil, fmt.Errorf("the account's plan %q has no policy", a.Plan)
	}
	return p, nil
}

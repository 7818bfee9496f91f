package apikey

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Account is an owner of keys: the plan all its keys share, and what
// overrides it. An account exists once a key is created for it or
// [Service.CreateAccount] creates it; until [Service.SetAccount] stores
// it, it is on the default plan (the first of [Config].Plans).
type Account struct {
	// ID is the owner named by its keys' [Key].Owner.
	ID string `json:"id"`
	// Plan names the rate-limit plan the account's keys share.
	Plan string `json:"plan"`
	// Limits, when set, replace the plan's windows for this account: a
	// custom plan, such as an Enterprise contract.
	Limits []Limit `json:"limits,omitempty"`
	// UpdatedAt is when the account was last changed.
	UpdatedAt time.Time `json:"updated_at"`
}

// Limit is one window of a custom plan: Limit requests per Period.
// Periods of a day or longer are counters aligned to UTC (never more than
// Limit in one calendar day, for a day); shorter ones are token buckets,
// as the plans' minute windows are.
type Limit struct {
	Limit  int64         `json:"limit"`
	Period time.Duration `json:"period"`
}

// The bounds of a custom plan.
const (
	maxLimits     = 4
	minLimitSpan  = time.Second
	maxLimitSpan  = 366 * 24 * time.Hour
	maxLimitCount = 1 << 40
)

// clone returns a copy of a sharing no memory with it.
func (a Account) clone() Account {
	a.Limits = append([]Limit(nil), a.Limits...)
	return a
}

// AccountStore is the part of a [Store] that keeps accounts. A store
// without it, or whose methods fail with [errors.ErrUnsupported] (a
// wrapper around a store without it), keeps no accounts: every account
// is then on the default plan and [Service.SetAccount] fails with
// errors.ErrUnsupported. store/storetest checks it.
//
// Accounts cross the interface as pointers and are immutable once they
// have, as records are.
type AccountStore interface {
	// Account returns the account id, or [ErrNotFound].
	Account(ctx context.Context, id string) (*Account, error)
	// PutAccount stores a, replacing the account of its ID. With create
	// set it fails with [ErrDuplicate] when the account exists; without,
	// with [ErrNotFound] when it does not. The check and the write are
	// one atomic step. A cache in front of the store drops its copy of
	// the account, on every instance, as it drops a revoked key.
	PutAccount(ctx context.Context, a *Account, create bool) error
}

// checkPlan reports whether plan is one of the service's plans.
func (s *Service) checkPlan(field, plan string) error {
	switch {
	case len(s.plans) == 0:
		return invalid(field, "this service has no plans")
	case !slices.Contains(s.plans, plan):
		return invalid(field, "unknown plan %q; must be one of %q", plan, s.plans)
	}
	return nil
}

// defaultPlan is the plan of a new account.
func (s *Service) defaultPlan() string {
	if len(s.plans) == 0 {
		return ""
	}
	return s.plans[0]
}

// Account returns account id: as stored, or on the default plan when it
// has never been stored (or the store keeps no accounts). Errors are
// store failures.
func (s *Service) Account(ctx context.Context, id string) (Account, error) {
	if as, ok := s.store.(AccountStore); ok && id != "" {
		a, err := as.Account(ctx, id)
		switch {
		case err == nil:
			return a.clone(), nil
		case !errors.Is(err, ErrNotFound) && !errors.Is(err, errors.ErrUnsupported):
			return Account{}, fmt.Errorf("apikey: account: %w", err)
		}
	}
	return Account{ID: id, Plan: s.defaultPlan()}, nil
}

// CreateAccount stores a new account, for a host that signs accounts up
// before they have keys. Plan "" is the default plan. It fails with
// [ErrDuplicate] when the account exists, with an [*InputError] for an
// unknown plan or a bad limit, and with [errors.ErrUnsupported] when the
// store keeps no accounts.
func (s *Service) CreateAccount(ctx context.Context, a Account) error {
	return s.putAccount(ctx, a, true)
}

// SetAccount replaces an account's plan and limits; every instance
// applies them within its cache's invalidation bound, and the rate
// limits already spent carry over. Plan "" is the default plan. It fails
// with [ErrNotFound] for an account that was never created (neither by
// [Service.CreateAccount] nor by a key), with an [*InputError] for an
// unknown plan or a bad limit, and with [errors.ErrUnsupported] when the
// store keeps no accounts.
func (s *Service) SetAccount(ctx context.Context, a Account) error {
	err := s.putAccount(ctx, a, false)
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	// Keys issued before accounts were stored imply their account.
	keys, lerr := s.store.List(ctx, a.ID)
	if lerr != nil {
		return fmt.Errorf("apikey: set account: %w", lerr)
	}
	if len(keys) == 0 {
		return ErrNotFound
	}
	err = s.putAccount(ctx, a, true)
	if errors.Is(err, ErrDuplicate) { // created meanwhile
		err = s.putAccount(ctx, a, false)
	}
	return err
}

func (s *Service) putAccount(ctx context.Context, a Account, create bool) error {
	as, ok := s.store.(AccountStore)
	if !ok {
		return fmt.Errorf("apikey: the store keeps no accounts: %w", errors.ErrUnsupported)
	}
	a = a.clone()
	if err := s.validateAccount(&a); err != nil {
		return err
	}
	a.UpdatedAt = s.now()
	err := as.PutAccount(ctx, &a, create)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound):
		return ErrNotFound
	case errors.Is(err, ErrDuplicate):
		return ErrDuplicate
	}
	return fmt.Errorf("apikey: account: %w", err)
}

// validateAccount checks a, filling in the default plan.
func (s *Service) validateAccount(a *Account) error {
	if !validText(a.ID, maxOwnerLength, false) || a.ID == "" {
		return invalid("id", "must be 1 to %d printable characters", maxOwnerLength)
	}
	if a.Plan == "" {
		a.Plan = s.defaultPlan()
	}
	if a.Plan != "" {
		if err := s.checkPlan("plan", a.Plan); err != nil {
			return err
		}
	}
	if len(a.Limits) > maxLimits {
		return invalid("limits", "has %d windows, at most %d", len(a.Limits), maxLimits)
	}
	for i, l := range a.Limits {
		switch {
		case l.Limit < 1 || l.Limit > maxLimitCount:
			return invalid("limits", "window %d: limit %d is not between 1 and %d", i, l.Limit, int64(maxLimitCount))
		case l.Period < minLimitSpan || l.Period > maxLimitSpan || l.Period%time.Second != 0:
			return invalid("limits", "window %d: the period is not a whole number of seconds between 1 second and 366 days", i)
		case l.Period < 24*time.Hour && l.Period/time.Duration(l.Limit) < time.Microsecond:
			return invalid("limits", "window %d: more than one request per microsecond", i)
		}
	}
	return nil
}

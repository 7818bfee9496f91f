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
	// Credits, when set, is a balance each request spends on top of the
	// rate limits.
	Credits *Credits `json:"credits,omitempty"`
	// UpdatedAt is when the account was last changed.
	UpdatedAt time.Time `json:"updated_at"`
}

// Limit is one window of a custom plan: Limit requests per Period.
// Periods of a day or longer are counters aligned to UTC (never more than
// Limit in one calendar day, for a day); shorter ones are token buckets,
// as the plans' minute windows are. A Monthly window has no Period: it
// counts per calendar month, UTC, from 00:00 on the first.
type Limit struct {
	Limit   int64         `json:"limit"`
	Period  time.Duration `json:"period"`
	Monthly bool          `json:"monthly,omitempty"`
}

// Credits is an account's credit balance: each request spends its
// route's cost from it, and is refused ("quota exceeded") when the
// balance lacks it. The rate limiter keeps the balance; Credits says how
// it starts and refills.
type Credits struct {
	// Balance is the balance granted at GrantedAt.
	Balance int64 `json:"balance"`
	// RefillAmount is added to the balance, or becomes the balance, at
	// every refill (see RefillMode); 0 for none.
	RefillAmount int64 `json:"refill_amount,omitempty"`
	// RefillPeriod is "day" or "month"; "" with no refill.
	RefillPeriod string `json:"refill_period,omitempty"`
	// RefillAt is the first refill: in the future when the credits are
	// set; by default the next midnight UTC ("day") or the first of the
	// next month ("month"). Daily refills follow every 24 hours, monthly
	// ones on its day of the month (the month's last day when shorter)
	// at its time of day.
	RefillAt time.Time `json:"refill_at,omitzero"`
	// RefillMode is "replace" (the default: what was left lapses) or
	// "add".
	RefillMode string `json:"refill_mode,omitempty"`
	// GrantedAt is when the balance was set; [Service.SetAccount] stamps
	// it whenever the credits change, which starts a new balance, and
	// keeps it otherwise, so that changing an account's plan keeps what
	// its credits have spent.
	GrantedAt time.Time `json:"granted_at,omitzero"`
}

// The refill periods and modes of [Credits].
const (
	RefillDay     = "day"
	RefillMonth   = "month"
	RefillReplace = "replace"
	RefillAdd     = "add"
)

// sameTerms reports whether c and o grant the same balance on the same
// schedule.
func (c *Credits) sameTerms(o *Credits) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.RefillAt.Equal(o.RefillAt) && c.Balance == o.Balance && c.RefillAmount == o.RefillAmount &&
		c.RefillPeriod == o.RefillPeriod && c.RefillMode == o.RefillMode
}

// The bounds of a custom plan.
const (
	maxLimits     = 4
	minLimitSpan  = time.Second
	maxLimitSpan  = 366 * 24 * time.Hour
	maxLimitCount = 1 << 40
	maxCredits    = 1 << 50
)

// clone returns a copy of a sharing no memory with it.
func (a Account) clone() Account {
	a.Limits = append([]Limit(nil), a.Limits...)
	if a.Credits != nil {
		c := *a.Credits
		a.Credits = &c
	}
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

// SetAccount replaces an account's plan, limits and credits; every
// instance applies them within its cache's invalidation bound, and the
// rate limits already spent carry over. Credits whose terms differ from
// the stored ones are a new grant: the balance starts again. Plan "" is
// the default plan. It fails with [ErrNotFound] for an account that was
// never created (neither by [Service.CreateAccount] nor by a key), with
// an [*InputError] for an unknown plan, a bad limit or bad credits, and
// with [errors.ErrUnsupported] when the store keeps no accounts.
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
	now := s.now()
	if a.Credits != nil {
		var old *Credits
		if !create {
			if stored, err := as.Account(ctx, a.ID); err == nil {
				old = stored.Credits
			} else if !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("apikey: account: %w", err)
			}
		}
		if err := grant(a.Credits, old, now); err != nil {
			return err
		}
	}
	a.UpdatedAt = now
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
	if err := validateLimits(a.Limits); err != nil {
		return err
	}
	if c := a.Credits; c != nil {
		switch {
		case c.Balance < 0 || c.Balance > maxCredits || c.RefillAmount < 0 || c.RefillAmount > maxCredits:
			return invalid("credits", "the balance and the refill amount must be between 0 and %d", int64(maxCredits))
		case c.RefillPeriod != "" && c.RefillPeriod != RefillDay && c.RefillPeriod != RefillMonth:
			return invalid("credits", "refill period %q must be %q, %q or empty", c.RefillPeriod, RefillDay, RefillMonth)
		case (c.RefillPeriod == "") != (c.RefillAmount == 0):
			return invalid("credits", "a refill needs both an amount and a period")
		case c.RefillMode != "" && c.RefillMode != RefillReplace && c.RefillMode != RefillAdd:
			return invalid("credits", "refill mode %q must be %q or %q", c.RefillMode, RefillReplace, RefillAdd)
		}
		if c.RefillMode == "" && c.RefillPeriod != "" {
			c.RefillMode = RefillReplace
		}
	}
	return nil
}

// grant stamps credits c set at now: new terms are a new grant, whose
// first refill must be in the future (by default the next period's
// start); the terms of old keep old's grant, and so its balance.
func grant(c, old *Credits, now time.Time) error {
	if c.RefillPeriod != "" && c.RefillAt.IsZero() {
		y, m, d := now.UTC().Date()
		c.RefillAt = time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
		if c.RefillPeriod == RefillMonth {
			c.RefillAt = time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
		}
	}
	if c.sameTerms(old) {
		c.GrantedAt = old.GrantedAt
		return nil
	}
	if c.RefillPeriod != "" && !c.RefillAt.After(now) {
		return invalid("credits", "the first refill, %v, is not in the future", c.RefillAt)
	}
	c.RefillAt = c.RefillAt.UTC()
	c.GrantedAt = now
	return nil
}

// validateLimits checks custom windows, an account's or a key's.
func validateLimits(limits []Limit) error {
	if len(limits) > maxLimits {
		return invalid("limits", "has %d windows, at most %d", len(limits), maxLimits)
	}
	for i, l := range limits {
		switch {
		case l.Limit < 1 || l.Limit > maxLimitCount:
			return invalid("limits", "window %d: limit %d is not between 1 and %d", i, l.Limit, int64(maxLimitCount))
		case l.Monthly && l.Period != 0:
			return invalid("limits", "window %d: a monthly window has no period", i)
		case l.Monthly:
		case l.Period < minLimitSpan || l.Period > maxLimitSpan || l.Period%time.Second != 0:
			return invalid("limits", "window %d: the period is not a whole number of seconds between 1 second and 366 days", i)
		case l.Period < 24*time.Hour && l.Period/time.Duration(l.Limit) < time.Microsecond:
			return invalid("limits", "window %d: more than one request per microsecond", i)
		}
	}
	return nil
}

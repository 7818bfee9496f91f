package apikey

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/ratelimit"
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
	// custom plan, such as an Enterprise contract. Each window states
	// Limit and Period, or Limit and Monthly; its kind follows
	// [ratelimit.Custom]'s rule.
	Limits []ratelimit.Window `json:"limits,omitempty"`
	// Credits, when set, is a balance each request spends on top of the
	// rate limits. Credits whose terms differ from the stored ones are a
	// new grant: the Service stamps Granted whenever they change, which
	// starts a new balance, and keeps it otherwise, so that changing the
	// plan keeps what the credits have spent. A refill's first instant,
	// RefillAt, must be in the future; by default it is the next
	// midnight UTC, or the first of the next month when Monthly.
	Credits *ratelimit.Credits `json:"credits,omitempty"`
	// Webhooks are the endpoints the account registered for its keys'
	// events, up to [event.MaxEndpoints] (middleware/manage serves them;
	// apikey/event/webhook delivers to them). [Principal].Account leaves
	// them out.
	Webhooks []event.Endpoint `json:"webhooks,omitempty"`
	// UpdatedAt is when the account was last changed.
	UpdatedAt time.Time `json:"updated_at"`
	// Version counts the account's changes: 1 when it is created, one
	// more at each change. A store compares it to refuse a change made
	// to a copy that is no longer the stored one ([AccountStore]).
	Version int64 `json:"version"`
}

// sameTerms reports whether c and o grant the same balance on the same
// schedule.
func sameTerms(c, o *ratelimit.Credits) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.RefillAt.Equal(o.RefillAt) && c.Balance == o.Balance && c.Refill == o.Refill &&
		c.Monthly == o.Monthly && c.Add == o.Add
}

// The bounds of a custom plan.
const (
	maxLimits     = 4
	minLimitSpan  = time.Second
	maxLimitSpan  = 366 * 24 * time.Hour
	maxLimitCount = 1 << 40
)

// latestRefill bounds a first refill: limiters count time in nanoseconds
// since 1970, which end in 2262.
var latestRefill = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// clone returns a copy of a sharing no memory with it.
func (a Account) clone() Account {
	a.Limits = append([]ratelimit.Window(nil), a.Limits...)
	if a.Credits != nil {
		c := *a.Credits
		a.Credits = &c
	}
	a.Webhooks = slices.Clone(a.Webhooks)
	for i := range a.Webhooks {
		e := &a.Webhooks[i]
		e.Events, e.Secrets = slices.Clone(e.Events), slices.Clone(e.Secrets)
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
	// PutAccount stores next, a compare-and-set on [Account].Version:
	// with prev nil it creates next, and fails with [ErrDuplicate] when
	// an account of next.ID exists; otherwise it replaces the stored
	// account with next only if the stored Version is still
	// prev.Version, and fails with [ErrNotFound] when there is none and
	// with [ErrConflict] when another change landed first. The check and
	// the write are one atomic step, so that of concurrent changes made
	// to one stored account exactly one wins. The caller sets
	// next.Version (one more than prev's); the store compares, it never
	// counts. A cache in front of the store drops its copy of the
	// account, on every instance, as it drops a revoked key.
	PutAccount(ctx context.Context, prev, next *Account) error
}

// checkPlan reports whether plan is one of the service's plans.
func (s *Service) checkPlan(field, plan string) error {
	switch {
	case len(s.planNames) == 0:
		return invalid(field, "this service has no plans")
	case !slices.Contains(s.planNames, plan):
		return invalid(field, "unknown plan %q; must be one of %q", plan, s.planNames)
	}
	return nil
}

// defaultPlan is the plan of a new account.
func (s *Service) defaultPlan() string {
	if len(s.planNames) == 0 {
		return ""
	}
	return s.planNames[0]
}

// Account returns account id: as stored, or on the default plan when it
// has never been stored (or the store keeps no accounts). It fails with
// an [*InputError] for an ID that no account can have; other errors are
// store failures.
func (s *Service) Account(ctx context.Context, id string) (Account, error) {
	if id != "" {
		if err := checkAccountID(id); err != nil {
			return Account{}, err
		}
	}
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
	as, ok := s.store.(AccountStore)
	if !ok {
		return errNoAccounts
	}
	a = a.clone()
	return s.putAccount(ctx, as, nil, &a)
}

// SetAccount replaces an account's plan, limits and credits; every
// instance applies them within its cache's invalidation bound, and the
// rate limits already spent carry over. Credits whose terms differ from
// the stored ones are a new grant: the balance starts again. Plan "" is
// the default plan. It fails with [ErrNotFound] for an account that was
// never created (neither by [Service.CreateAccount] nor by a key), and
// otherwise as [Service.UpdateAccount] does.
func (s *Service) SetAccount(ctx context.Context, a Account) error {
	_, err := s.updateAccount(ctx, a.ID, false, func(cur *Account) error {
		cur.Plan, cur.Limits, cur.Credits = a.Plan, a.Limits, a.Credits
		return nil
	})
	return err
}

// accountAttempts bounds how often [Service.UpdateAccount] reads an
// account again after losing a race to another change: each loss means
// another change landed, so this many in a row is a hot account.
const accountAttempts = 8

// UpdateAccount applies change to account id as stored (on the default
// plan when it is not: the caller vouches for the ID, and the account is
// created) and stores the result, if no other change landed in between;
// when one did, it reads the account again and applies change again, so
// that concurrent changes of different fields all land and none is
// written back over another. It returns the account as stored.
//
// change may modify Plan, Limits and Credits; the ID, version and times
// are the Service's. Credits whose terms differ from the stored ones are
// a new grant. It fails with change's own error, with an [*InputError]
// for an unknown plan, a bad limit or bad credits, with [ErrConflict]
// when other changes won every one of its attempts, and with
// [errors.ErrUnsupported] when the store keeps no accounts.
func (s *Service) UpdateAccount(ctx context.Context, id string, change func(*Account) error) (Account, error) {
	return s.updateAccount(ctx, id, true, change)
}

var errNoAccounts = fmt.Errorf("apikey: the store keeps no accounts: %w", errors.ErrUnsupported)

func (s *Service) updateAccount(ctx context.Context, id string, create bool, change func(*Account) error) (Account, error) {
	as, ok := s.store.(AccountStore)
	if !ok {
		return Account{}, errNoAccounts
	}
	if err := checkAccountID(id); err != nil {
		return Account{}, err
	}
	for attempt := 1; ; attempt++ {
		prev, err := as.Account(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			prev = nil
		case err != nil:
			return Account{}, fmt.Errorf("apikey: account: %w", err)
		}
		next := Account{ID: id, Plan: s.defaultPlan()}
		if prev != nil {
			next = prev.clone()
		} else if !create {
			// Keys issued before accounts were stored imply their account.
			keys, err := s.store.List(ctx, id)
			if err != nil {
				return Account{}, fmt.Errorf("apikey: account: %w", err)
			}
			if len(keys) == 0 {
				return Account{}, ErrNotFound
			}
		}
		if err := change(&next); err != nil {
			return Account{}, err
		}
		// A copy: change may have set values the caller still holds
		// (SetAccount's credits), which putAccount stamps.
		next = next.clone()
		err = s.putAccount(ctx, as, prev, &next)
		// A store behind a cache may have answered from a stale copy:
		// the cache dropped it when the write was refused, so the next
		// attempt reads the stored account.
		lost := errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) && prev != nil ||
			errors.Is(err, ErrDuplicate) && prev == nil
		switch {
		case !lost:
			if err != nil {
				return Account{}, err
			}
			return next.clone(), nil
		case attempt == accountAttempts:
			return Account{}, ErrConflict
		}
	}
}

// putAccount validates next, stamps it as the change of prev (nil: a new
// account) and stores it. The store keeps next: the caller must not
// change it afterwards.
func (s *Service) putAccount(ctx context.Context, as AccountStore, prev, next *Account) error {
	if err := s.validateAccount(next); err != nil {
		return err
	}
	now := s.now()
	next.Version = 1
	var old *ratelimit.Credits
	if prev != nil {
		next.Version, old = prev.Version+1, prev.Credits
	}
	if next.Credits != nil {
		if err := grant(next.Credits, old, now); err != nil {
			return err
		}
	}
	next.UpdatedAt = now
	err := as.PutAccount(ctx, prev, next)
	for _, sentinel := range []error{ErrNotFound, ErrDuplicate, ErrConflict} {
		if errors.Is(err, sentinel) {
			return sentinel
		}
	}
	if errors.Is(err, errors.ErrUnsupported) {
		return errNoAccounts
	}
	if err != nil {
		return fmt.Errorf("apikey: account: %w", err)
	}
	return nil
}

// validateAccount checks a, filling in the default plan.
func (s *Service) validateAccount(a *Account) error {
	if err := checkAccountID(a.ID); err != nil {
		return err
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
	if len(a.Webhooks) > event.MaxEndpoints {
		return invalid("webhooks", "an account has at most %d endpoints", event.MaxEndpoints)
	}
	for i, e := range a.Webhooks {
		switch {
		case e.ID == "" || e.URL == "" || len(e.Secrets) == 0:
			return invalid("webhooks", "endpoint %d needs an ID, a URL and a secret", i)
		case slices.ContainsFunc(a.Webhooks[:i], func(o event.Endpoint) bool { return o.ID == e.ID }):
			return invalid("webhooks", "two endpoints with the ID %q", e.ID)
		}
	}
	if c := a.Credits; c != nil {
		switch {
		case c.Balance < 0 || c.Balance > ratelimit.MaxCredits || c.Refill < 0 || c.Refill > ratelimit.MaxCredits:
			return invalid("credits", "the balance and the refill amount must be between 0 and %d", int64(ratelimit.MaxCredits))
		case c.Refill == 0 && (c.Monthly || c.Add || !c.RefillAt.IsZero()):
			return invalid("credits", "a refill schedule needs a refill amount")
		case c.RefillAt.After(latestRefill):
			return invalid("credits", "the first refill must be before %d", latestRefill.Year())
		}
	}
	return nil
}

// checkAccountID refuses an account ID that no key can have (bytes
// that are not UTF-8, control characters), before it reaches a store
// whose encoding might refuse it in a way of its own.
func checkAccountID(id string) error {
	if !validText(id, maxOwnerLength, false) || id == "" {
		return invalid("account", "must be 1 to %d printable characters", maxOwnerLength)
	}
	return nil
}

// grant stamps credits c set at now: new terms are a new grant, whose
// first refill must be in the future (by default the next period's
// start); the terms of old keep old's grant, and so its balance.
func grant(c, old *ratelimit.Credits, now time.Time) error {
	if c.Refill != 0 && c.RefillAt.IsZero() {
		y, m, d := now.UTC().Date()
		c.RefillAt = time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
		if c.Monthly {
			c.RefillAt = time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
		}
	}
	if sameTerms(c, old) {
		c.Granted = old.Granted
		return nil
	}
	if c.Refill != 0 && !c.RefillAt.After(now) {
		return invalid("credits", "the first refill, %v, is not in the future", c.RefillAt)
	}
	c.RefillAt = c.RefillAt.UTC()
	c.Granted = now
	return nil
}

// validateLimits checks custom windows, an account's or a key's.
func validateLimits(limits []ratelimit.Window) error {
	if len(limits) > maxLimits {
		return invalid("limits", "has %d windows, at most %d", len(limits), maxLimits)
	}
	for i, l := range limits {
		switch {
		case l.Limit < 1 || l.Limit > maxLimitCount:
			return invalid("limits", "window %d: limit %d is not between 1 and %d", i, l.Limit, int64(maxLimitCount))
		case l.Name != "" || l.Burst != 0 || l.Fixed:
			return invalid("limits", "window %d: a custom window states its limit and period (or monthly) only: its kind follows from them", i)
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

package apikey_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/store/memstore"
)

// Bad accounts are refused with the field named, and change nothing.
func TestSetAccountRejectsBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _, _ := newTestService(t, apikey.Config{Plans: plansOf("free", "business")})
	_, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	for name, a := range map[string]apikey.Account{
		"unknown plan":      {ID: "acct", Plan: "enterprise"},
		"no id":             {Plan: "free"},
		"zero limit":        {ID: "acct", Limits: []ratelimit.Window{{Limit: 0, Period: time.Minute}}},
		"negative limit":    {ID: "acct", Limits: []ratelimit.Window{{Limit: -5, Period: time.Minute}}},
		"no period":         {ID: "acct", Limits: []ratelimit.Window{{Limit: 5}}},
		"part of a second":  {ID: "acct", Limits: []ratelimit.Window{{Limit: 5, Period: 1500 * time.Millisecond}}},
		"too many windows":  {ID: "acct", Limits: make([]ratelimit.Window, 5)},
		"too fast":          {ID: "acct", Limits: []ratelimit.Window{{Limit: 1 << 30, Period: time.Second}}},
		"monthly, a period": {ID: "acct", Limits: []ratelimit.Window{{Limit: 5, Period: time.Hour, Monthly: true}}},
		"a burst":           {ID: "acct", Limits: []ratelimit.Window{{Limit: 5, Period: time.Minute, Burst: 9}}},
		"a kind stated":     {ID: "acct", Limits: []ratelimit.Window{{Limit: 5, Period: time.Minute, Fixed: true}}},
	} {
		err := svc.SetAccount(ctx, a)
		require.ErrorIs(t, err, apikey.ErrInvalidInput, name)
		got, err := svc.Account(ctx, "acct")
		require.NoError(t, err)
		assert.Equal(t, "free", got.Plan, "%s changed the account", name)
		assert.Empty(t, got.Limits, name)
	}
	err = svc.SetAccount(ctx, apikey.Account{ID: "acct_never_seen", Plan: "business"})
	require.ErrorIs(t, err, apikey.ErrNotFound, "an override for an unknown account")
}

func TestAccounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _, clock := newTestService(t, apikey.Config{Plans: plansOf("free", "business")})
	a, err := svc.Account(ctx, "acct")
	require.NoError(t, err)
	assert.Equal(t, apikey.Account{ID: "acct", Plan: "free"}, a, "a new account is on the default plan")

	require.NoError(t, svc.CreateAccount(ctx, apikey.Account{ID: "acct"}))
	require.ErrorIs(t, svc.CreateAccount(ctx, apikey.Account{ID: "acct"}), apikey.ErrDuplicate)
	limits := []ratelimit.Window{{Limit: 5000, Period: time.Minute}, {Limit: 10_000_000, Period: 24 * time.Hour}}
	clock.Advance(time.Hour)
	require.NoError(t, svc.SetAccount(ctx, apikey.Account{ID: "acct", Plan: "business", Limits: limits}))
	a, err = svc.Account(ctx, "acct")
	require.NoError(t, err)
	assert.Equal(t, "business", a.Plan)
	assert.Equal(t, limits, a.Limits)
	assert.Equal(t, clock.Now(), a.UpdatedAt)

	// The verified key carries its account.
	issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	p, err := svc.Verify(ctx, issued.Secret.Reveal())
	require.NoError(t, err)
	assert.Equal(t, "business", p.Account().Plan)
	assert.Equal(t, limits, p.Account().Limits)

	// Keys issued before the account was stored imply it.
	_, err = svc.Create(ctx, apikey.CreateParams{Owner: "acct_keys_only"})
	require.NoError(t, err)
	require.NoError(t, svc.SetAccount(ctx, apikey.Account{ID: "acct_keys_only", Plan: "business"}))
}

// A rotated key continues its predecessor's lineage, through any number
// of rotations, so its rate limits follow it.
func TestRotationKeepsLineage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _, _ := newTestService(t, apikey.Config{})
	first, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	id := first.Key.ID
	for range 3 {
		next, err := svc.Rotate(ctx, "acct", id, time.Hour)
		require.NoError(t, err)
		assert.Equal(t, first.Key.ID, next.Key.Lineage)
		p, err := svc.Verify(ctx, next.Secret.Reveal())
		require.NoError(t, err)
		assert.Equal(t, first.Key.ID, p.Lineage())
		id = next.Key.ID
	}
	p, err := svc.Verify(ctx, first.Secret.Reveal())
	require.NoError(t, err, "within its grace period")
	assert.Equal(t, first.Key.ID, p.Lineage(), "the first key is its own lineage")
}

// A store that keeps no accounts leaves every account on the default
// plan, and says so when asked to change one.
func TestAccountsUnsupported(t *testing.T) {
	t.Parallel()
	svc, err := apikey.New(keysOnly{memstore.New()}, apikey.Config{Plans: plansOf("free")})
	require.NoError(t, err)
	ctx := context.Background()
	issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	p, err := svc.Verify(ctx, issued.Secret.Reveal())
	require.NoError(t, err)
	assert.Equal(t, apikey.Account{ID: "acct", Plan: "free"}, p.Account(), "the default plan, named as Service.Account names it")
	err = svc.SetAccount(ctx, apikey.Account{ID: "acct", Plan: "free"})
	assert.True(t, errors.Is(err, errors.ErrUnsupported), "%v", err)
}

// keysOnly hides every capability of the store it wraps but apikey.Store.
type keysOnly struct{ apikey.Store }

// SetAccount stamps its own copy of the credits: the caller's value, which
// it may reuse, is left as it was.
func TestSetAccountLeavesTheCallersCredits(t *testing.T) {
	ctx := context.Background()
	svc, err := apikey.New(memstore.New(), apikey.Config{Plans: plansOf("free")})
	require.NoError(t, err)
	require.NoError(t, svc.CreateAccount(ctx, apikey.Account{ID: "acct"}))
	credits := &ratelimit.Credits{Balance: 5, Refill: 5}
	require.NoError(t, svc.SetAccount(ctx, apikey.Account{ID: "acct", Credits: credits}))
	assert.Equal(t, ratelimit.Credits{Balance: 5, Refill: 5}, *credits)
	a, err := svc.Account(ctx, "acct")
	require.NoError(t, err)
	assert.False(t, a.Credits.RefillAt.IsZero(), "the first refill is the next midnight")
	assert.False(t, a.Credits.Granted.IsZero())
}

// Custom windows and credits keep the JSON form stores already hold:
// accounts stored before they were ratelimit's decode alike, and encode
// alike.
func TestAccountLimitsKeepTheirStoredForm(t *testing.T) {
	limits := `"limits":[{"limit":5000,"period":60000000000},{"limit":9,"period":0,"monthly":true}]`
	credits := `"credits":{"balance":100,"granted_at":"2030-01-02T03:04:05Z","refill_amount":50,"refill_period":"month","refill_at":"2030-02-01T00:00:00Z","refill_mode":"add"}`
	stored := `{"id":"acct","plan":"free",` + limits + `,` + credits + `,"updated_at":"2030-01-02T03:04:05Z","version":3}`
	var a apikey.Account
	require.NoError(t, json.Unmarshal([]byte(stored), &a))
	assert.Equal(t, []ratelimit.Window{{Limit: 5000, Period: time.Minute}, {Limit: 9, Monthly: true}}, a.Limits)
	granted := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	assert.Equal(t, &ratelimit.Credits{Balance: 100, Granted: granted, Refill: 50, Monthly: true, RefillAt: time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC), Add: true}, a.Credits)
	out, err := json.Marshal(a)
	require.NoError(t, err)
	assert.Equal(t, stored, string(out))

	// Credits without a refill, as stored before: no period or mode.
	require.NoError(t, json.Unmarshal([]byte(`{"id":"b","plan":"free","credits":{"balance":7,"granted_at":"2030-01-02T03:04:05Z"}}`), &a))
	assert.Equal(t, &ratelimit.Credits{Balance: 7, Granted: granted}, a.Credits)
}

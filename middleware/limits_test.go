package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/store/memstore"
)

// freePlan is the default plans' policy of that name.
var freePlan, _ = ratelimit.DefaultPlans().Lookup("free")

// limited is a service on the default plans and a middleware with a
// memory limiter on one clock, around a mux of a cheap, a free and a
// costly route.
type limited struct {
	svc   *apikey.Service
	h     http.Handler
	clock *testclock.Clock
}

func newLimited(t *testing.T) *limited {
	t.Helper()
	clock := testclock.New(time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC))
	svc, err := apikey.New(memstore.New(), apikey.Config{Plans: ratelimit.DefaultPlans(), MaxActiveKeys: 20, Clock: clock.Now})
	require.NoError(t, err)
	limiter := ratelimit.NewMemory(ratelimit.MemoryConfig{Clock: clock.Now})
	t.Cleanup(func() { _ = limiter.Close() })
	mw, err := middleware.New(middleware.Config{
		Verifier: svc,
		Limiter:  limiter,
		Costs:    map[string]int64{"GET /status": 0, "POST /reports": 5},
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	for _, route := range []string{"GET /items", "GET /status", "POST /reports"} {
		mux.HandleFunc(route, func(http.ResponseWriter, *http.Request) {})
	}
	return &limited{svc: svc, h: mw.Authenticate(mux), clock: clock}
}

// do sends a request with key and returns its status and
// X-RateLimit-Remaining.
func (l *limited) do(method, path, key string) (int, string) {
	r := httptest.NewRequest(method, path, nil)
	r.Header.Set("X-API-Key", key)
	w := httptest.NewRecorder()
	l.h.ServeHTTP(w, r)
	return w.Code, w.Header().Get("X-RateLimit-Remaining")
}

func (l *limited) key(t *testing.T, owner, plan string) (string, string) {
	t.Helper()
	issued, err := l.svc.Create(context.Background(), apikey.CreateParams{Owner: owner, Plan: plan, Permissions: []apikey.Permission{apikey.Read, apikey.Write}})
	require.NoError(t, err)
	return issued.Key.ID, issued.Secret.Reveal()
}

// Ten keys of an account on the free plan get 10 requests a minute
// between them; rotation, with and without grace, starts no key afresh.
func TestAccountLimitsAcrossKeysAndRotation(t *testing.T) {
	l := newLimited(t)
	ctx := context.Background()
	var keys []string
	var first string
	for i := range 10 {
		id, key := l.key(t, "acct", "")
		if i == 0 {
			first = id
		}
		keys = append(keys, key)
	}
	for i, key := range keys[:8] {
		code, remaining := l.do("GET", "/items", key)
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, 9-i, atoi(t, remaining))
	}
	graced, err := l.svc.Rotate(ctx, "acct", first, time.Hour)
	require.NoError(t, err)
	code, remaining := l.do("GET", "/items", graced.Secret.Reveal())
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "1", remaining, "the replacement spends the account's minute, not a fresh one")
	now, err := l.svc.Rotate(ctx, "acct", graced.Key.ID, 0)
	require.NoError(t, err)
	code, remaining = l.do("GET", "/items", now.Secret.Reveal())
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "0", remaining)
	code, _ = l.do("GET", "/items", keys[9])
	assert.Equal(t, http.StatusTooManyRequests, code, "the eleventh request of the account's minute")
}

// A key's own plan caps it and survives its rotation: the replacement
// continues the predecessor's windows.
func TestKeyCapFollowsRotation(t *testing.T) {
	l := newLimited(t)
	id, key := l.key(t, "acct", "free")
	require.NoError(t, l.svc.SetAccount(context.Background(), apikey.Account{ID: "acct", Plan: "business"}))
	for range 7 {
		code, _ := l.do("GET", "/items", key)
		require.Equal(t, http.StatusOK, code)
	}
	next, err := l.svc.Rotate(context.Background(), "acct", id, 0)
	require.NoError(t, err)
	code, remaining := l.do("GET", "/items", next.Secret.Reveal())
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "2", remaining, "8 of the key's 10 spent, across the rotation")
}

// A key's custom limits cap it on its own, within its account's plan
// and instead of its own plan; its rotation keeps them and what they
// spent; bad limits are refused at creation.
func TestKeyCustomLimits(t *testing.T) {
	l := newLimited(t)
	ctx := context.Background()
	issued, err := l.svc.Create(ctx, apikey.CreateParams{
		Owner: "acct", Plan: "free", Limits: []ratelimit.Window{{Limit: 3, Period: time.Minute}, {Limit: 100, Monthly: true}},
	})
	require.NoError(t, err)
	require.NoError(t, l.svc.SetAccount(ctx, apikey.Account{ID: "acct", Plan: "business"}))
	assert.Equal(t, []ratelimit.Window{{Limit: 3, Period: time.Minute}, {Limit: 100, Monthly: true}}, issued.Key.Limits)
	for i := range 2 {
		code, remaining := l.do("GET", "/items", issued.Secret.Reveal())
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, strconv.Itoa(2-i), remaining, "the key's 3 a minute bind, not free's 10 nor business's 300")
	}
	next, err := l.svc.Rotate(ctx, "acct", issued.Key.ID, 0)
	require.NoError(t, err)
	assert.Equal(t, issued.Key.Limits, next.Key.Limits)
	code, _ := l.do("GET", "/items", next.Secret.Reveal())
	assert.Equal(t, http.StatusOK, code)
	code, _ = l.do("GET", "/items", next.Secret.Reveal())
	assert.Equal(t, http.StatusTooManyRequests, code, "the fourth request of the key's minute, across its rotation")
	_, other := l.key(t, "acct", "")
	code, _ = l.do("GET", "/items", other)
	assert.Equal(t, http.StatusOK, code, "another key of the account is not capped")

	for name, limits := range map[string][]ratelimit.Window{
		"zero limit":        {{Limit: 0, Period: time.Minute}},
		"no period":         {{Limit: 5}},
		"monthly, a period": {{Limit: 5, Period: time.Hour, Monthly: true}},
		"too many windows":  make([]ratelimit.Window, 5),
	} {
		_, err := l.svc.Create(ctx, apikey.CreateParams{Owner: "acct", Limits: limits})
		assert.ErrorIs(t, err, apikey.ErrInvalidInput, name)
	}
}

// A plan change keeps what was spent: an upgrade continues from the
// spent requests, a downgrade refuses at once when they exceed the new
// plan, and custom limits apply to the next request.
func TestPlanChangeKeepsWhatWasSpent(t *testing.T) {
	l := newLimited(t)
	ctx := context.Background()
	_, key := l.key(t, "acct", "")
	for range 9 {
		code, _ := l.do("GET", "/items", key)
		require.Equal(t, http.StatusOK, code)
	}
	require.NoError(t, l.svc.SetAccount(ctx, apikey.Account{ID: "acct", Plan: "starter"}))
	_, remaining := l.do("GET", "/items", key)
	assert.Equal(t, "50", remaining, "10 of starter's 60 spent")
	require.NoError(t, l.svc.SetAccount(ctx, apikey.Account{ID: "acct", Plan: "free"}))
	code, _ := l.do("GET", "/items", key)
	assert.Equal(t, http.StatusTooManyRequests, code, "10 spent of free's 10")

	require.NoError(t, l.svc.SetAccount(ctx, apikey.Account{ID: "acct", Limits: []ratelimit.Window{{Limit: 1000, Period: time.Minute}}}))
	code, remaining = l.do("GET", "/items", key)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "989", remaining, "the custom minute continues from the 10 spent")
}

// A route's cost is taken from every window; a cost of 0 verifies and
// takes nothing.
func TestRouteCosts(t *testing.T) {
	l := newLimited(t)
	_, key := l.key(t, "acct", "")
	code, remaining := l.do("POST", "/reports", key)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "5", remaining)
	for range 3 {
		code, remaining = l.do("GET", "/status", key)
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, "5", remaining, "cost 0 takes nothing")
	}
	code, remaining = l.do("POST", "/reports", key)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "0", remaining)
	code, _ = l.do("GET", "/items", key)
	assert.Equal(t, http.StatusTooManyRequests, code)
	code, _ = l.do("GET", "/status", key)
	assert.Equal(t, http.StatusOK, code, "a cost-0 route passes even when the windows are spent")
	_, _ = l.do("GET", "/status", "kg_live_nope")
	code, _ = l.do("GET", "/status", "kg_live_nope")
	assert.Equal(t, http.StatusUnauthorized, code, "cost 0 still verifies the key")

	_, err := middleware.New(middleware.Config{Verifier: l.svc, Limiter: ratelimit.NewMemory(ratelimit.MemoryConfig{SweepInterval: -1}),
		Costs: map[string]int64{"POST /reports": 11}})
	require.ErrorIs(t, err, apikey.ErrInvalidConfig, "a cost no free window can ever admit")
	_, err = middleware.New(middleware.Config{Verifier: l.svc, Limiter: ratelimit.NewMemory(ratelimit.MemoryConfig{SweepInterval: -1}),
		Costs: map[string]int64{"POST /reports": -1}})
	require.ErrorIs(t, err, apikey.ErrInvalidConfig)
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err, "%q", s)
	return n
}

// An account's credits: each request spends its route's cost, a refusal
// is "Quota exceeded" until the refill, and a plan change keeps the
// balance while new credit terms start a new one.
func TestAccountCredits(t *testing.T) {
	l := newLimited(t)
	ctx := context.Background()
	_, key := l.key(t, "acct", "")
	refill := time.Date(2030, 1, 3, 0, 0, 0, 0, time.UTC)
	require.NoError(t, l.svc.SetAccount(ctx, apikey.Account{ID: "acct", Credits: &ratelimit.Credits{Balance: 7, Refill: 7}}))
	a, err := l.svc.Account(ctx, "acct")
	require.NoError(t, err)
	require.True(t, a.Credits.RefillAt.Equal(refill), "the default first refill is the next midnight: %v", a.Credits.RefillAt)

	code, _ := l.do("POST", "/reports", key) // costs 5
	require.Equal(t, http.StatusOK, code)
	code, remaining := l.do("GET", "/items", key)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "1", remaining, "the balance binds: 1 credit left")
	code, _ = l.do("GET", "/status", key) // costs nothing
	require.Equal(t, http.StatusOK, code)

	// An upgrade keeps the balance.
	a.Plan = "business"
	require.NoError(t, l.svc.SetAccount(ctx, a))
	code, _ = l.do("GET", "/items", key)
	require.Equal(t, http.StatusOK, code)

	r := httptest.NewRequest("GET", "/items", nil)
	r.Header.Set("X-API-Key", key)
	w := httptest.NewRecorder()
	l.h.ServeHTTP(w, r)
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.JSONEq(t, `{"error":"Quota exceeded","retry_after":50400}`, w.Body.String())
	assert.Equal(t, "50400", w.Header().Get("Retry-After"), "until the refill at midnight")
	assert.Equal(t, "0", w.Header().Get("X-RateLimit-Remaining"))
	assert.Equal(t, strconv.FormatInt(refill.Unix(), 10), w.Header().Get("X-RateLimit-Reset"))

	l.clock.Set(refill)
	code, remaining = l.do("GET", "/items", key)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "6", remaining)

	// New terms, a balance with no refill: a new grant, and once it is
	// spent, a refusal with no Retry-After, since waiting will not help.
	a, err = l.svc.Account(ctx, "acct")
	require.NoError(t, err)
	a.Credits = &ratelimit.Credits{Balance: 1}
	require.NoError(t, l.svc.SetAccount(ctx, a))
	code, _ = l.do("GET", "/items", key)
	require.Equal(t, http.StatusOK, code)
	w = httptest.NewRecorder()
	l.h.ServeHTTP(w, r)
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.JSONEq(t, `{"error":"Quota exceeded"}`, w.Body.String())
	assert.Empty(t, w.Header().Get("Retry-After"))
}

// Bad credits are refused and change nothing.
func TestAccountCreditsBadInput(t *testing.T) {
	l := newLimited(t)
	ctx := context.Background()
	l.key(t, "acct", "")
	past := l.clock.Now().Add(-time.Hour)
	for name, c := range map[string]ratelimit.Credits{
		"negative balance":        {Balance: -1},
		"balance above the most":  {Balance: ratelimit.MaxCredits + 1},
		"negative refill":         {Balance: 1, Refill: -1},
		"monthly without refill":  {Balance: 1, Monthly: true},
		"adding without refill":   {Balance: 1, Add: true},
		"first refill, no refill": {Balance: 1, RefillAt: l.clock.Now().Add(time.Hour)},
		"refill in the past":      {Balance: 1, Refill: 5, RefillAt: past},
	} {
		err := l.svc.SetAccount(ctx, apikey.Account{ID: "acct", Credits: &c})
		var input *apikey.InputError
		require.ErrorAs(t, err, &input, name)
		a, err := l.svc.Account(ctx, "acct")
		require.NoError(t, err)
		require.Nil(t, a.Credits, name)
	}
}

// recorder is a limiter that remembers the account policies it was asked
// about and allows everything.
type recorder struct {
	mu       sync.Mutex
	policies map[*ratelimit.Policy]bool
}

func (r *recorder) Allow(_ context.Context, req ratelimit.Request) (ratelimit.Decision, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.policies[req.AccountPolicy] = true
	return ratelimit.Decision{Allowed: true, Policy: req.AccountPolicy, Limit: 1, Remaining: 1}, nil
}

// Accounts with the same custom limits, and an account whose limits
// change and change back, share one policy: limiters that derive state
// per policy do not grow with accounts or changes.
func TestCustomLimitsShareAPolicy(t *testing.T) {
	ctx := context.Background()
	plans, err := ratelimit.NewPlans(freePlan)
	require.NoError(t, err)
	svc, err := apikey.New(memstore.New(), apikey.Config{Plans: plans})
	require.NoError(t, err)
	rec := &recorder{policies: map[*ratelimit.Policy]bool{}}
	mw, err := middleware.New(middleware.Config{Verifier: svc, Limiter: rec})
	require.NoError(t, err)
	h := mw.Authenticate(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	enterprise := []ratelimit.Window{{Limit: 5000, Period: time.Minute}}
	other := []ratelimit.Window{{Limit: 10, Period: time.Second}}
	for i := range 20 {
		owner := fmt.Sprint("acct_", i)
		issued, err := svc.Create(ctx, apikey.CreateParams{Owner: owner})
		require.NoError(t, err)
		for _, limits := range [][]ratelimit.Window{enterprise, other, enterprise} {
			require.NoError(t, svc.SetAccount(ctx, apikey.Account{ID: owner, Limits: limits}))
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("X-API-Key", issued.Secret.Reveal())
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			require.Equal(t, http.StatusOK, w.Code)
		}
	}
	assert.Len(t, rec.policies, 2, "one policy per set of limits")
}

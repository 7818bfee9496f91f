package notice_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/apikey/event/notice"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/store/memstore"
)

// Through the middleware: a free-plan account's minute window crossing
// 80% and 100% is told once each, however many requests follow; a credit
// balance is low at 80% spent and exhausted at 100%.
func TestLimitThresholds(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	clock := testclock.New(time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC))
	svc, err := apikey.New(store, apikey.Config{Clock: clock.Now, Plans: ratelimit.DefaultPlans()})
	require.NoError(t, err)
	limits, err := notice.NewLimits(notice.LimitsConfig{Facts: store, Clock: clock.Now})
	require.NoError(t, err)
	run, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); limits.Run(run) }()
	t.Cleanup(func() { stop(); <-done })
	mw, err := middleware.New(middleware.Config{Verifier: svc, Limiter: ratelimit.NewMemory(ratelimit.MemoryConfig{Clock: clock.Now, SweepInterval: -1}), Notices: limits})
	require.NoError(t, err)
	h := mw.Authenticate(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	call := func(key string) int {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-API-Key", key)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	types := func(account, keyID string) []string {
		page, err := svc.Events(ctx, account, keyID, "", 100)
		require.NoError(t, err)
		var out []string
		for _, e := range page.Items {
			out = append([]string{string(e.Type) + " " + e.Data["threshold"]}, out...)
		}
		return out
	}

	issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct_free"})
	require.NoError(t, err)
	for range 15 {
		call(issued.Secret.Reveal())
	}
	want := []string{"key.created ", "limit.threshold 80", "limit.threshold 100"}
	require.Eventually(t, func() bool { return len(types("acct_free", issued.Key.ID)) >= 3 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, want, types("acct_free", issued.Key.ID))
	page, err := svc.Events(ctx, "acct_free", issued.Key.ID, "", 1)
	require.NoError(t, err)
	assert.Equal(t, "account", page.Items[0].Data["subject"])
	assert.Equal(t, "min", page.Items[0].Data["window"])

	paid, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct_paid"})
	require.NoError(t, err)
	err = svc.SetAccount(ctx, apikey.Account{ID: "acct_paid", Plan: "business", Credits: &ratelimit.Credits{Balance: 5}})
	require.NoError(t, err)
	for range 7 {
		call(paid.Secret.Reveal())
	}
	require.Eventually(t, func() bool { return len(types("acct_paid", paid.Key.ID)) >= 3 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, []string{"key.created ", string(event.CreditsLow) + " 80", string(event.CreditsExhausted) + " 100"}, types("acct_paid", paid.Key.ID))
	assert.Zero(t, limits.Dropped())
}

// A key that a rotation replaced, used in its grace period, is told
// once an hour, however often it is used.
func TestRotatedKeyUsed(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	clock := testclock.New(time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC))
	limits, err := notice.NewLimits(notice.LimitsConfig{Facts: store, Clock: clock.Now})
	require.NoError(t, err)
	svc, err := apikey.New(store, apikey.Config{Clock: clock.Now, OnRotatedKeyUsed: limits.RotatedKeyUsed})
	require.NoError(t, err)
	run, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); limits.Run(run) }()
	t.Cleanup(func() { stop(); <-done })

	old, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct_r"})
	require.NoError(t, err)
	_, err = svc.Verify(ctx, old.Secret.Reveal())
	require.NoError(t, err)
	_, err = svc.Rotate(ctx, "acct_r", old.Key.ID, 24*time.Hour)
	require.NoError(t, err)
	count := func() int {
		page, err := svc.Events(ctx, "acct_r", old.Key.ID, "", 100)
		require.NoError(t, err)
		n := 0
		for _, e := range page.Items {
			if e.Type == event.RotatedKeyUsed {
				n++
			}
		}
		return n
	}
	for range 5 {
		_, err = svc.Verify(ctx, old.Secret.Reveal())
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return count() == 1 }, 10*time.Second, time.Millisecond)
	clock.Advance(time.Hour)
	_, err = svc.Verify(ctx, old.Secret.Reveal())
	require.NoError(t, err)
	require.Eventually(t, func() bool { return count() == 2 }, 10*time.Second, time.Millisecond)
}

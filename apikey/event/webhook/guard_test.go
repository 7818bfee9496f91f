package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/apikey/event/webhook"
	"github.com/keygate/keygate/store/memstore"
)

// An endpoint saved while its name resolved to a public address, and
// that resolves to a loopback one by the time of a delivery (DNS
// rebinding), receives nothing: the address is checked as it is
// dialled. With AllowPrivate it is delivered.
func TestDeliveriesCheckTheDialledAddress(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	secret := webhook.NewSecret()
	endpoints := func(context.Context, string) ([]event.Endpoint, error) {
		return []event.Endpoint{{ID: "whep_1", URL: srv.URL, Secrets: []string{secret}, CreatedAt: time.Now()}}, nil
	}
	e := event.Event{ID: "1", Type: event.KeyCreated, Account: "acct_1", KeyID: "k", At: time.Now()}

	guarded, err := webhook.NewAccounts(webhook.AccountsConfig{Endpoints: endpoints})
	require.NoError(t, err)
	err = guarded.Deliver(context.Background(), e)
	require.ErrorIs(t, err, webhook.ErrUnsafeURL)
	assert.Zero(t, hits.Load(), "nothing reached the loopback address")

	open, err := webhook.NewAccounts(webhook.AccountsConfig{Endpoints: endpoints, AllowPrivate: true})
	require.NoError(t, err)
	require.NoError(t, open.Deliver(context.Background(), e))
	assert.Equal(t, int64(1), hits.Load())
}

// An endpoint that does not select an event's type, or that is off,
// gets nothing.
func TestDeliveriesFollowTheEndpoint(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	secret := webhook.NewSecret()
	eps := []event.Endpoint{
		{ID: "revocations", URL: srv.URL, Secrets: []string{secret}, Events: []string{"key.revoked"}},
		{ID: "off", URL: srv.URL, Secrets: []string{secret}, DisabledAt: time.Now()},
		{ID: "all-keys", URL: srv.URL, Secrets: []string{secret}, Events: []string{"key.*"}},
	}
	a, err := webhook.NewAccounts(webhook.AccountsConfig{AllowPrivate: true,
		Endpoints: func(context.Context, string) ([]event.Endpoint, error) { return eps, nil }})
	require.NoError(t, err)
	require.NoError(t, a.Deliver(context.Background(), event.Event{ID: "1", Type: event.KeyCreated, Account: "a"}))
	assert.Equal(t, int64(1), hits.Load(), "key.* only")
	require.NoError(t, a.Deliver(context.Background(), event.Event{ID: "2", Type: event.KeyRevoked, Account: "a"}))
	assert.Equal(t, int64(3), hits.Load(), "both that select it")
	require.NoError(t, a.Deliver(context.Background(), event.Event{ID: "3", Type: event.LimitThreshold, Account: "a"}))
	assert.Equal(t, int64(3), hits.Load(), "none")
}

// When one endpoint of an account fails, the retry goes to it alone:
// the delivery log shows the others took the event.
func TestRetryGoesOnlyWhereItFailed(t *testing.T) {
	var good, bad atomic.Int64
	ok := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { good.Add(1) }))
	t.Cleanup(ok.Close)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		bad.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(failing.Close)
	secret := webhook.NewSecret()
	eps := []event.Endpoint{{ID: "good", URL: ok.URL, Secrets: []string{secret}}, {ID: "bad", URL: failing.URL, Secrets: []string{secret}}}
	a, err := webhook.NewAccounts(webhook.AccountsConfig{AllowPrivate: true, Log: memstore.New(),
		Endpoints: func(context.Context, string) ([]event.Endpoint, error) { return eps, nil }})
	require.NoError(t, err)
	e := event.Event{ID: "7", Type: event.KeyCreated, Account: "acct_1"}
	for range 3 {
		require.Error(t, a.Deliver(context.Background(), e))
	}
	assert.Equal(t, int64(1), good.Load(), "delivered once")
	assert.Equal(t, int64(3), bad.Load(), "tried each time")
	log, err := a.Attempts(context.Background(), "acct_1", "bad")
	require.NoError(t, err)
	require.Len(t, log, 3)
	assert.Equal(t, http.StatusBadGateway, log[0].Code)
}

// An endpoint that never took an event by the time it is dropped past
// the retry horizon is turned off, with endpoint.disabled; one that took
// it stays on.
func TestGiveUpTurnsOffWhatNeverTookIt(t *testing.T) {
	store := memstore.New()
	took := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(took.Close)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	t.Cleanup(failing.Close)
	secret := webhook.NewSecret()
	eps := []event.Endpoint{{ID: "took", URL: took.URL, Secrets: []string{secret}}, {ID: "failing", URL: failing.URL, Secrets: []string{secret}}}
	var off []string
	a, err := webhook.NewAccounts(webhook.AccountsConfig{AllowPrivate: true, Log: store, Facts: store,
		Endpoints: func(context.Context, string) ([]event.Endpoint, error) { return eps, nil },
		OnGone:    func(_ context.Context, _, endpoint string) { off = append(off, endpoint) }})
	require.NoError(t, err)
	e := event.Event{ID: "9", Type: event.KeyRevoked, Account: "acct_1", KeyID: "k"}
	require.Error(t, a.Deliver(context.Background(), e))
	a.GiveUp(context.Background(), e)
	assert.Equal(t, []string{"failing"}, off)
	trail, err := store.Events(context.Background(), "acct_1", "", "", 10)
	require.NoError(t, err)
	require.Len(t, trail, 1)
	assert.Equal(t, event.EndpointDisabled, trail[0].Type)
	assert.Equal(t, "failing", trail[0].Data["reason"])
}

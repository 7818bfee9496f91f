package dispatch_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/apikey/event/dispatch"
	"github.com/keygate/keygate/apikey/event/webhook"
	"github.com/keygate/keygate/internal/sqltest"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/store/sqlstore"
)

// receiver is a webhook endpoint that answers status (200 by default)
// and keeps what it was sent, verified.
type receiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	status int
	got    []event.Event // answered 2xx
	tries  map[string]int
}

func newReceiver(t *testing.T) (*receiver, *httptest.Server) {
	r := &receiver{t: t, secret: webhook.NewSecret(), status: http.StatusOK, tries: map[string]int{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	// Signed now, by the test clock: verified at the message's own time.
	if !assert.NoError(r.t, webhook.Verify(r.secret, req.Header, body)) {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var e event.Event
	require.NoError(r.t, json.Unmarshal(body, &e))
	assert.Equal(r.t, webhook.MessageID(&e), req.Header.Get(webhook.HeaderID))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries[e.ID]++
	w.WriteHeader(r.status)
	if r.status < 300 {
		r.got = append(r.got, e)
	}
}

func (r *receiver) set(status int) {
	r.mu.Lock()
	r.status = status
	r.mu.Unlock()
}

func (r *receiver) received() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.got...)
}

// setup returns a key service on a SQLite store with its outbox, and a
// dispatcher sending its events to a receiver.
func setup(t *testing.T) (*apikey.Service, *sqlstore.Store, *testclock.Clock, *receiver, dispatch.Config) {
	db, _ := sqltest.Fresh(t, sqlstore.SQLite)
	ctx := context.Background()
	require.NoError(t, sqlstore.Migrate(ctx, db, sqlstore.SQLite))
	store, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: sqlstore.SQLite, Outbox: true})
	require.NoError(t, err)
	clock := testclock.New(time.Now().Truncate(time.Second))
	svc, err := apikey.New(store, apikey.Config{Clock: clock.Now})
	require.NoError(t, err)
	r, srv := newReceiver(t)
	sender, err := webhook.NewSender(webhook.SenderConfig{URL: srv.URL, Secrets: []string{r.secret}})
	require.NoError(t, err)
	return svc, store, clock, r, dispatch.Config{Outbox: store, Sink: sender, Clock: clock.Now}
}

// Events reach the receiver, each once, in order per key, with their
// audit trail's IDs; a receiver that fails gets them again after a
// backoff, with the same webhook-id, and never a key's later event
// before its earlier one.
func TestDeliversInOrderThroughFailures(t *testing.T) {
	svc, _, clock, r, cfg := setup(t)
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	cfg.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	d, err := dispatch.New(cfg)
	require.NoError(t, err)
	const owner = "acct_1"
	a, err := svc.Create(ctx, apikey.CreateParams{Owner: owner, Name: "a"})
	require.NoError(t, err)
	b, err := svc.Create(ctx, apikey.CreateParams{Owner: owner, Name: "b"})
	require.NoError(t, err)

	r.set(http.StatusInternalServerError)
	n, err := d.Once(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "the creation of each key")
	_, err = svc.Disable(ctx, owner, a.Key.ID)
	require.NoError(t, err)
	require.NoError(t, svc.Revoke(ctx, owner, a.Key.ID))
	n, err = d.Once(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing is due before the backoff ends, and a key's later events wait")

	r.set(http.StatusOK)
	clock.Advance(5 * time.Second) // the first retry waits 2.5 to 5 s
	for range 3 {
		_, err = d.Once(ctx)
		require.NoError(t, err)
	}
	got := r.received()
	var order []string
	for _, e := range got {
		if e.KeyID == a.Key.ID {
			order = append(order, string(e.Type))
		}
	}
	assert.Equal(t, []string{"key.created", "key.disabled", "key.revoked"}, order)
	assert.Len(t, got, 4)
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	counts := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "keygate.event.deliveries" {
				for _, dp := range sum.DataPoints {
					v, _ := dp.Attributes.Value("outcome")
					counts[v.AsString()] += dp.Value
				}
			}
		}
	}
	assert.Equal(t, map[string]int64{"failed": 2, "delivered": 4}, counts, "two creations failed, then four events went")
	trail, err := svc.Events(ctx, owner, "", "", 100)
	require.NoError(t, err)
	ids := map[string]bool{}
	for _, e := range trail.Items {
		ids[e.ID] = true
	}
	for _, e := range got {
		assert.True(t, ids[e.ID], "delivered ID %s is an audit trail's", e.ID)
		if e.KeyID == a.Key.ID && e.Type == event.KeyCreated || e.KeyID == b.Key.ID {
			assert.Equal(t, 2, r.tries[e.ID], "a creation failed once, then arrived with the same webhook-id")
		}
	}
}

// A receiver that answers 410 Gone stops the dispatcher; the event stays
// in the outbox.
func TestGoneStops(t *testing.T) {
	svc, _, _, r, cfg := setup(t)
	_, err := svc.Create(context.Background(), apikey.CreateParams{Owner: "acct_1"})
	require.NoError(t, err)
	r.set(http.StatusGone)
	d, err := dispatch.New(cfg)
	require.NoError(t, err)
	err = d.Run(context.Background())
	require.ErrorIs(t, err, dispatch.ErrGone)
}

// An event still undelivered past the horizon is dropped, once.
func TestHorizonDrops(t *testing.T) {
	svc, store, clock, r, cfg := setup(t)
	ctx := context.Background()
	_, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct_1"})
	require.NoError(t, err)
	r.set(http.StatusServiceUnavailable)
	cfg.Horizon = time.Hour
	var dropped []string
	cfg.OnDrop = func(_ context.Context, e event.Event) { dropped = append(dropped, string(e.Type)) }
	d, err := dispatch.New(cfg)
	require.NoError(t, err)
	attempts := 0
	for range 30 { // ten minutes each: past the hour's horizon
		n, err := d.Once(ctx)
		require.NoError(t, err)
		attempts += n
		clock.Advance(10 * time.Minute)
	}
	left, err := store.Lease(ctx, clock.Now(), 10, time.Minute)
	require.NoError(t, err)
	assert.Empty(t, left, "the event left the outbox")
	assert.Equal(t, []string{"key.created"}, dropped, "OnDrop heard of it, once")
	assert.Empty(t, r.received())
	assert.Greater(t, attempts, 3, "retried until the horizon")
	assert.Less(t, attempts, 20, "then dropped")
}

// Two dispatchers on one store deliver each event once.
func TestTwoDispatchersShareTheOutbox(t *testing.T) {
	svc, _, _, r, cfg := setup(t)
	ctx := context.Background()
	for i := range 30 {
		_, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct_" + string(rune('a'+i%26)) + string(rune('a'+i/26))})
		require.NoError(t, err)
	}
	cfg.Batch = 4
	var wg sync.WaitGroup
	for range 2 {
		d, err := dispatch.New(cfg)
		require.NoError(t, err)
		wg.Go(func() {
			for range 10 {
				_, err := d.Once(ctx)
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	assert.Len(t, r.received(), 30)
	for id, n := range r.tries {
		assert.Equal(t, 1, n, "event %s", id)
	}
}

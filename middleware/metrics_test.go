package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/store/memstore"
)

// counts returns the sums of counter name by their attributes, written
// as "outcome" or "outcome/plan", leaving out those at 0.
func counts(t *testing.T, rm *metricdata.ResourceMetrics, name string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				if dp.Value == 0 {
					continue
				}
				k, _ := dp.Attributes.Value("outcome")
				if plan, ok := dp.Attributes.Value("plan"); ok {
					out[k.AsString()+"/"+plan.AsString()] += dp.Value
				} else {
					out[k.AsString()] += dp.Value
				}
			}
		}
	}
	return out
}

// The middleware counts verifications and limiter decisions by outcome,
// and never names a key, a key ID or an account in them.
func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	clock := testclock.New(time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC))
	svc, err := apikey.New(memstore.New(), apikey.Config{Plans: ratelimit.DefaultPlans(), Clock: clock.Now})
	require.NoError(t, err)
	limiter := ratelimit.NewMemory(ratelimit.MemoryConfig{Clock: clock.Now})
	t.Cleanup(func() { _ = limiter.Close() })
	mw, err := middleware.New(middleware.Config{Verifier: svc, Limiter: limiter, MeterProvider: provider})
	require.NoError(t, err)
	h := mw.Authenticate(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	issued, err := svc.Create(context.Background(), apikey.CreateParams{Owner: "acct_metrics_owner", Permissions: []apikey.Permission{apikey.Read}})
	require.NoError(t, err)
	send := func(key string) int {
		r := httptest.NewRequest("GET", "/items", nil)
		if key != "" {
			r.Header.Set("X-API-Key", key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for range 12 { // the free plan: 10 a minute
		send(issued.Secret.Reveal())
	}
	send("")
	send("kg_live_garbage")

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	assert.Equal(t, map[string]int64{"ok": 12, "invalid": 2}, counts(t, &rm, "keygate.verifications"))
	assert.Equal(t, map[string]int64{"allowed/free": 10, "rate_limited/free": 2}, counts(t, &rm, "keygate.ratelimit.decisions"))
	// Durations are measured on a sample, 1 request in 64: enough
	// requests give some, far fewer than the requests.
	durations := func() uint64 {
		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(context.Background(), &rm))
		var n uint64
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == "keygate.verification.duration" {
					for _, dp := range h.DataPoints {
						n += dp.Count
					}
				}
			}
		}
		return n
	}
	sent := 14
	for ; (durations() == 0 || sent < 2_000) && sent < 20_000; sent += 100 {
		for range 100 {
			send(issued.Secret.Reveal())
		}
	}
	require.NotZero(t, durations())
	require.Less(t, durations(), uint64(sent/8), "every request measured: %d of %d", durations(), sent)

	all := fmt.Sprintf("%+v", rm)
	for _, secret := range []string{issued.Secret.Reveal(), issued.Key.ID, issued.Key.DisplayPrefix, "acct_metrics_owner"} {
		assert.NotContains(t, all, secret)
	}
}

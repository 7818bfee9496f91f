package cachestore_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store/cachestore"
	"github.com/keygate/keygate/store/memstore"
)

// The cache reports whether its feed lets entries live their TTL, and
// how many keys it holds.
func TestMetrics(t *testing.T) {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	cache, err := cachestore.New(memstore.New(), cachestore.Config{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cache.Close() })
	svc, err := apikey.New(cache, apikey.Config{})
	require.NoError(t, err)
	issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct_1"})
	require.NoError(t, err)
	_, err = svc.Verify(ctx, issued.Secret.Reveal())
	require.NoError(t, err)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && len(g.DataPoints) == 1 {
				got[m.Name] = g.DataPoints[0].Value
			}
		}
	}
	assert.Equal(t, map[string]int64{"keygate.cache.feed.healthy": 1, "keygate.cache.keys": 1}, got)
}

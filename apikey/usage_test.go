package apikey_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store/memstore"
)

// flakySink wraps a memory store's usage and fails while down is set.
type flakySink struct {
	*memstore.Store
	down    atomic.Bool
	flushes atomic.Int32
}

func (f *flakySink) AddUsage(ctx context.Context, d []apikey.UsageDelta) error {
	f.flushes.Add(1)
	if f.down.Load() {
		return errors.New("store down")
	}
	return f.Store.AddUsage(ctx, d)
}

func TestRecorderBatchesAndFlushesOnClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, store, _ := newTestService(t, apikey.Config{})
	issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	id := issued.Key.ID
	sink := &flakySink{Store: store}
	rec, err := apikey.NewRecorder(sink, apikey.RecorderConfig{FlushInterval: time.Hour, MaxEndpoints: 2})
	require.NoError(t, err)

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				status := 200
				if i%10 == 0 {
					status = 429
				}
				rec.Record(id, []string{"GET /a", "GET /b", "GET /c"}[g%3], status, now.Add(time.Duration(i)*time.Second))
			}
		}()
	}
	wg.Wait()
	assert.Zero(t, sink.flushes.Load(), "nothing is written per request")

	sink.down.Store(true)
	require.Error(t, rec.Flush(ctx), "a failed flush reports its error")
	rec.Record(id, "GET /a", 500, now.Add(time.Hour))
	sink.down.Store(false)
	require.NoError(t, rec.Close(ctx))

	u, err := svc.Usage(ctx, "acct", id)
	require.NoError(t, err)
	assert.EqualValues(t, 801, u.TotalRequests, "nothing lost across the failed flush")
	assert.EqualValues(t, 81, u.Errors)
	assert.Equal(t, now.Add(time.Hour), u.LastUsedAt)
	var sum int64
	for _, n := range u.ByEndpoint {
		sum += n
	}
	assert.EqualValues(t, 801, sum)
	// Endpoints a and b get 300 requests, c 200; whichever came third is
	// counted as "other".
	assert.Contains(t, []int64{200, 300}, u.ByEndpoint[apikey.OtherEndpoint])
	assert.InDelta(t, 81.0/801, u.ErrorRate(), 1e-9)

	_, err = svc.Usage(ctx, "acct_other", id)
	require.ErrorIs(t, err, apikey.ErrNotFound)

	k, err := svc.Get(ctx, "acct", id)
	require.NoError(t, err)
	assert.Equal(t, now.Add(time.Hour), k.LastUsedAt, "Get fills the last use from usage")
	keys, err := svc.List(ctx, "acct")
	require.NoError(t, err)
	require.Len(t, keys, 1)
	assert.Equal(t, now.Add(time.Hour), keys[0].LastUsedAt, "List too")
}

func TestRecorderFlushesWhenManyKeys(t *testing.T) {
	t.Parallel()
	sink := &flakySink{Store: memstore.New()}
	rec, err := apikey.NewRecorder(sink, apikey.RecorderConfig{FlushInterval: time.Hour, FlushKeys: 64})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rec.Close(context.Background()) })
	for i := range 1000 {
		rec.Record(fmt.Sprint("key-", i), "GET /a", 200, now)
	}
	require.Eventually(t, func() bool { return sink.flushes.Load() > 0 }, 5*time.Second, time.Millisecond)
}

func TestRecordAllocatesNothingForASeenKey(t *testing.T) {
	rec, err := apikey.NewRecorder(memstore.New(), apikey.RecorderConfig{FlushInterval: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rec.Close(context.Background()) })
	rec.Record("key-1", "GET /a", 200, now)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { rec.Record("key-1", "GET /a", 200, now) }))
}

func TestUsageUnsupported(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, err := apikey.New(noUsage{memstore.New()}, apikey.Config{})
	require.NoError(t, err)
	issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	_, err = svc.Usage(ctx, "acct", issued.Key.ID)
	require.ErrorIs(t, err, errors.ErrUnsupported)
	k, err := svc.Get(ctx, "acct", issued.Key.ID)
	require.NoError(t, err, "a store without usage still serves Get")
	assert.True(t, k.LastUsedAt.IsZero())
	_, err = apikey.NewRecorder(nil, apikey.RecorderConfig{})
	require.ErrorIs(t, err, apikey.ErrInvalidConfig)
}

// noUsage hides the memory store's usage capability.
type noUsage struct{ apikey.Store }

package usage_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/usage"
	"github.com/keygate/keygate/store/memstore"
)

var now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// flakyStore is a memory store whose usage writes fail while down is set
// and wait for their deadline while hang is.
type flakyStore struct {
	*memstore.Store
	down    atomic.Bool
	hang    atomic.Bool
	flushes atomic.Int32
	// lost names a key whose deltas fail alone, as a key on a Cluster
	// master that is down would.
	lost atomic.Pointer[string]
}

// newFlakyStore returns a flakyStore holding a key for each id, since a
// store keeps usage only for keys it knows.
func newFlakyStore(t *testing.T, ids ...string) *flakyStore {
	t.Helper()
	s := &flakyStore{Store: memstore.New()}
	for _, id := range ids {
		rec := &apikey.Record{Key: apikey.Key{ID: id, Owner: "acct"}, Hash: apikey.Hash(sha256.Sum256([]byte(id)))}
		require.NoError(t, s.Create(context.Background(), rec, 0, now, nil))
	}
	return s
}

func (f *flakyStore) AddUsage(ctx context.Context, deltas []usage.Delta) error {
	f.flushes.Add(1)
	if f.hang.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	if f.down.Load() {
		return errors.New("store down")
	}
	if lost := f.lost.Load(); lost != nil {
		var added []usage.Delta
		partial := &usage.PartialError{Err: errors.New("master down")}
		for _, d := range deltas {
			if d.KeyID == *lost {
				partial.Failed = append(partial.Failed, d)
			} else {
				added = append(added, d)
			}
		}
		if err := f.Store.AddUsage(ctx, added); err != nil {
			return err
		}
		if len(partial.Failed) > 0 {
			return fmt.Errorf("flaky: %w", partial)
		}
		return nil
	}
	return f.Store.AddUsage(ctx, deltas)
}

// A flush that adds some keys' usage but not others' keeps only the
// others for the next flush: none is lost, none counted twice.
func TestRecorderRetriesOnlyWhatWasNotAdded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := newFlakyStore(t, "key-a", "key-b")
	rec, err := usage.New(store, usage.Config{FlushInterval: time.Hour})
	require.NoError(t, err)
	lost := "key-b"
	store.lost.Store(&lost)
	for range 3 {
		rec.Record("key-a", "GET /a", 200, now)
		rec.Record("key-b", "GET /a", 200, now)
		err := rec.Flush(ctx)
		require.Error(t, err)
		_, partial := errors.AsType[*usage.PartialError](err)
		assert.True(t, partial, "the error says what was not added: %v", err)
	}
	store.lost.Store(nil)
	require.NoError(t, rec.Close(ctx))
	for _, id := range []string{"key-a", "key-b"} {
		u, err := store.Usage(ctx, id)
		require.NoError(t, err)
		assert.EqualValues(t, 3, u.TotalRequests, id)
	}
}

func TestRecorderBatchesAndFlushesOnClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const id = "key-1"
	store := newFlakyStore(t, id)
	rec, err := usage.New(store, usage.Config{FlushInterval: time.Hour, MaxEndpoints: 2})
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
	assert.Zero(t, store.flushes.Load(), "nothing is written per request")

	store.down.Store(true)
	require.Error(t, rec.Flush(ctx), "a failed flush reports its error")
	rec.Record(id, "GET /a", 500, now.Add(time.Hour))
	store.down.Store(false)
	require.NoError(t, rec.Close(ctx))

	u, err := store.Usage(ctx, id)
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
	assert.Contains(t, []int64{200, 300}, u.ByEndpoint[usage.OtherEndpoint])
	assert.InDelta(t, 81.0/801, u.ErrorRate(), 1e-9)
}

func TestRecorderFlushesWhenManyKeys(t *testing.T) {
	t.Parallel()
	store := newFlakyStore(t)
	rec, err := usage.New(store, usage.Config{FlushInterval: time.Hour, FlushKeys: 64})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rec.Close(context.Background()) })
	for i := range 1000 {
		rec.Record(fmt.Sprint("key-", i), "GET /a", 200, now)
	}
	require.Eventually(t, func() bool { return store.flushes.Load() > 0 }, time.Minute, time.Millisecond)
}

// A store that hangs holds a background flush for FlushTimeout only, so
// Close returns.
func TestBackgroundFlushHasADeadline(t *testing.T) {
	t.Parallel()
	store := newFlakyStore(t)
	store.hang.Store(true)
	errs := make(chan error, 10)
	rec, err := usage.New(store, usage.Config{FlushInterval: 10 * time.Millisecond, FlushTimeout: 50 * time.Millisecond,
		OnError: func(err error) { errs <- err }})
	require.NoError(t, err)
	rec.Record("key-1", "GET /a", 200, now)
	select {
	case err := <-errs:
		require.ErrorIs(t, err, context.DeadlineExceeded)
	case <-time.After(time.Minute): // a hang guard
		t.Fatal("the background flush never gave up")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = rec.Close(ctx)
	require.Error(t, err, "Close reports the counts it could not write")
	require.ErrorIs(t, err, context.DeadlineExceeded, "Close gave up at its context's deadline")
}

func TestRecordAllocatesNothingForASeenKey(t *testing.T) {
	rec, err := usage.New(memstore.New(), usage.Config{FlushInterval: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rec.Close(context.Background()) })
	rec.Record("key-1", "GET /a", 200, now)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { rec.Record("key-1", "GET /a", 200, now) }))
}

func TestNewRefusesNilStore(t *testing.T) {
	_, err := usage.New(nil, usage.Config{})
	require.ErrorIs(t, err, apikey.ErrInvalidConfig)
}

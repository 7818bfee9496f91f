package cachestore_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/store/cachestore"
	"github.com/keygate/keygate/store/memstore"
	"github.com/keygate/keygate/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) apikey.Store {
		s, err := cachestore.New(memstore.New(), cachestore.Config{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// counting counts the lookups that reach the store behind the cache, and
// can hold one lookup until released.
type counting struct {
	apikey.Store
	lookups atomic.Int32
	hold    chan struct{}
}

func (c *counting) Lookup(ctx context.Context, h apikey.Hash, route string) (*apikey.Record, error) {
	c.lookups.Add(1)
	if c.hold != nil {
		<-c.hold
	}
	return c.Store.Lookup(ctx, h, route)
}

// feed is a fake apikey.ChangeFeed: the test sends key changes and
// health.
type feed struct {
	*counting
	mu         sync.Mutex
	invalidate func(apikey.Hash)
	healthy    func(bool)
	ready      chan struct{}
}

func (f *feed) WatchChanges(ctx context.Context, invalidate func(apikey.Hash), _ func(string), healthy func(bool)) error {
	f.mu.Lock()
	f.invalidate, f.healthy = invalidate, healthy
	f.mu.Unlock()
	close(f.ready)
	<-ctx.Done()
	return nil
}

func setup(t *testing.T, cfg cachestore.Config) (*cachestore.Store, *counting, *testclock.Clock, apikey.Record) {
	t.Helper()
	c := testclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg.Clock = c.Now
	inner := &counting{Store: memstore.New()}
	s, err := cachestore.New(inner, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	rec := apikey.Record{Key: apikey.Key{ID: "k1", Owner: "acct"}, Hash: apikey.Hash(sha256.Sum256([]byte("k1")))}
	require.NoError(t, s.Create(context.Background(), &rec, 0, c.Now(), nil))
	return s, inner, c, rec
}

// Unknown, revoked, expired and disabled keys are all kept for the
// negative lifetime, so that none is answered in a time of its own: the
// store behind is asked about each once per NegativeTTL.
func TestRefusedKeysShareOneLifetime(t *testing.T) {
	ctx := context.Background()
	s, inner, clock, _ := setup(t, cachestore.Config{TTL: time.Minute, NegativeTTL: time.Second})
	now := clock.Now()
	hashes := []apikey.Hash{apikey.Hash(sha256.Sum256([]byte("never issued")))}
	for _, k := range []apikey.Key{
		{ID: "revoked", Owner: "acct", RevokedAt: now.Add(-time.Hour)},
		{ID: "expired", Owner: "acct", ExpiresAt: now.Add(-time.Hour)},
		{ID: "disabled", Owner: "acct", DisabledAt: now.Add(-time.Hour)},
	} {
		rec := apikey.Record{Key: k, Hash: apikey.Hash(sha256.Sum256([]byte(k.ID)))}
		require.NoError(t, s.Create(ctx, &rec, 0, now, nil))
		hashes = append(hashes, rec.Hash)
	}
	for round := int32(1); round <= 3; round++ {
		before := inner.lookups.Load()
		for range 10 {
			for _, h := range hashes {
				_, _ = s.Lookup(ctx, h, "")
			}
		}
		assert.Equal(t, int32(len(hashes)), inner.lookups.Load()-before, "round %d: each asked once", round)
		clock.Advance(time.Second)
	}
}

func TestHitsAreServedFromMemory(t *testing.T) {
	ctx := context.Background()
	s, inner, clock, rec := setup(t, cachestore.Config{TTL: time.Minute, NegativeTTL: time.Second})
	for range 100 {
		got, err := s.Lookup(ctx, rec.Hash, "")
		require.NoError(t, err)
		assert.Equal(t, "k1", got.ID)
	}
	assert.EqualValues(t, 1, inner.lookups.Load())

	unknown := apikey.Hash(sha256.Sum256([]byte("nope")))
	for range 100 {
		_, err := s.Lookup(ctx, unknown, "")
		require.ErrorIs(t, err, apikey.ErrNotFound)
	}
	assert.EqualValues(t, 2, inner.lookups.Load(), "misses are cached too")

	clock.Advance(time.Second)
	_, _ = s.Lookup(ctx, unknown, "")
	_, _ = s.Lookup(ctx, rec.Hash, "")
	assert.EqualValues(t, 3, inner.lookups.Load(), "the negative entry expired, the positive one did not")
	clock.Advance(time.Minute)
	_, _ = s.Lookup(ctx, rec.Hash, "")
	assert.EqualValues(t, 4, inner.lookups.Load())

	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = s.Lookup(ctx, rec.Hash, "") }))
}

func TestRevokeThroughTheCacheDropsTheEntry(t *testing.T) {
	ctx := context.Background()
	s, _, clock, rec := setup(t, cachestore.Config{})
	_, err := s.Lookup(ctx, rec.Hash, "")
	require.NoError(t, err)
	require.NoError(t, s.Revoke(ctx, rec.ID, clock.Now(), nil))
	got, err := s.Lookup(ctx, rec.Hash, "")
	require.NoError(t, err)
	assert.False(t, got.RevokedAt.IsZero(), "the revoked record, not the cached one")
}

func TestSizeIsBounded(t *testing.T) {
	ctx := context.Background()
	s, _, _, _ := setup(t, cachestore.Config{MaxEntries: 640})
	for i := range 10_000 {
		_, _ = s.Lookup(ctx, apikey.Hash(sha256.Sum256([]byte(string(rune(i))+"x"))), "")
	}
	assert.LessOrEqual(t, s.Len(), 640)
}

// A lookup that read the store before an invalidation does not cache what
// it read.
func TestInvalidationDuringLookupWins(t *testing.T) {
	ctx := context.Background()
	inner := &counting{Store: memstore.New(), hold: make(chan struct{})}
	f := &feed{counting: inner, ready: make(chan struct{})}
	s, err := cachestore.New(f, cachestore.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	<-f.ready
	f.healthy(true)
	rec := apikey.Record{Key: apikey.Key{ID: "k1", Owner: "acct"}, Hash: apikey.Hash(sha256.Sum256([]byte("k1")))}
	require.NoError(t, s.Create(ctx, &rec, 0, time.Now(), nil))

	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = s.Lookup(ctx, rec.Hash, "")
	}()
	for inner.lookups.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	f.invalidate(rec.Hash) // arrives while the lookup is in flight
	inner.hold <- struct{}{}
	<-done
	assert.Zero(t, s.Len(), "the in-flight result was not cached")
	close(inner.hold)
}

// While the feed is down, entries live at most StaleTTL; each change of
// the feed's health empties the cache.
func TestUnhealthyFeedBoundsStaleness(t *testing.T) {
	ctx := context.Background()
	c := &testclock.Clock{}
	inner := &counting{Store: memstore.New()}
	f := &feed{counting: inner, ready: make(chan struct{})}
	s, err := cachestore.New(f, cachestore.Config{TTL: time.Hour, StaleTTL: time.Second, Clock: c.Now})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	<-f.ready
	rec := apikey.Record{Key: apikey.Key{ID: "k1", Owner: "acct"}, Hash: apikey.Hash(sha256.Sum256([]byte("k1")))}
	require.NoError(t, s.Create(ctx, &rec, 0, c.Now(), nil))

	lookup := func() { _, err := s.Lookup(ctx, rec.Hash, ""); require.NoError(t, err) }
	lookup()
	c.Advance(time.Second)
	lookup()
	assert.EqualValues(t, 2, inner.lookups.Load(), "before the feed connects, StaleTTL applies")

	f.healthy(true)
	assert.Zero(t, s.Len())
	lookup()
	c.Advance(30 * time.Minute)
	lookup()
	assert.EqualValues(t, 3, inner.lookups.Load(), "a healthy feed allows the full TTL")

	f.healthy(false)
	assert.Zero(t, s.Len(), "going down empties the cache")
	lookup()
	c.Advance(time.Second)
	lookup()
	assert.EqualValues(t, 5, inner.lookups.Load())
}

// failing is a store behind that fails its lookups while down is set.
type failing struct {
	apikey.Store
	down atomic.Bool
}

func (f *failing) Lookup(ctx context.Context, h apikey.Hash, route string) (*apikey.Record, error) {
	if f.down.Load() {
		return nil, errors.New("store down")
	}
	return f.Store.Lookup(ctx, h, "")
}

// While the feed is up, a record the store cannot answer for is served
// past its TTL: no change to it has happened, or its invalidation would
// have dropped it. Without the feed, errors are errors.
func TestServedPastTTLWhileTheStoreFailsAndTheFeedIsUp(t *testing.T) {
	ctx := context.Background()
	c := &testclock.Clock{}
	inner := &failing{Store: memstore.New()}
	f := &feed{counting: &counting{Store: inner}, ready: make(chan struct{})}
	s, err := cachestore.New(f, cachestore.Config{TTL: time.Minute, StaleTTL: time.Second, Clock: c.Now})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	<-f.ready
	f.healthy(true)
	cached := apikey.Record{Key: apikey.Key{ID: "k1", Owner: "acct"}, Hash: apikey.Hash(sha256.Sum256([]byte("k1")))}
	other := apikey.Record{Key: apikey.Key{ID: "k2", Owner: "acct"}, Hash: apikey.Hash(sha256.Sum256([]byte("k2")))}
	for _, rec := range []*apikey.Record{&cached, &other} {
		require.NoError(t, s.Create(ctx, rec, 0, c.Now(), nil))
		_, err = s.Lookup(ctx, rec.Hash, "")
		require.NoError(t, err)
	}
	unknown := apikey.Hash(sha256.Sum256([]byte("nope")))
	_, err = s.Lookup(ctx, unknown, "")
	require.ErrorIs(t, err, apikey.ErrNotFound)

	inner.down.Store(true)
	c.Advance(time.Hour)
	got, err := s.Lookup(ctx, cached.Hash, "")
	require.NoError(t, err, "served past its TTL while the store fails")
	assert.Equal(t, "k1", got.ID)
	_, err = s.Lookup(ctx, unknown, "")
	require.Error(t, err)
	assert.NotErrorIs(t, err, apikey.ErrNotFound, "a remembered miss is not repeated as an answer")

	f.invalidate(other.Hash)
	_, err = s.Lookup(ctx, other.Hash, "")
	require.Error(t, err, "an invalidated entry is gone")

	f.healthy(false)
	f.healthy(true)
	_, err = s.Lookup(ctx, cached.Hash, "")
	require.Error(t, err, "a feed that broke may have lost invalidations")

	inner.down.Store(false)
	_, err = s.Lookup(ctx, cached.Hash, "")
	require.NoError(t, err)
}

// Package cachestore keeps verified key records in process in front of any
// [apikey.Store], so that verification costs no network round trip on the
// hot path.
//
// Found records are cached for [Config].TTL and unknown hashes for the
// shorter [Config].NegativeTTL, so a flood of bad keys cannot hammer the
// store behind. Revoke, Rotate and Delete through the cache drop the entry
// at once. Changes made through other instances reach the cache through
// the store's [apikey.ChangeFeed], when it has one (store/redisstore:
// Redis pub/sub, each change dropped everywhere within milliseconds;
// store/sqlstore: a polled change table). While that feed is down, and until it first connects, no
// entry is trusted for longer than [Config].StaleTTL, and the cache is
// emptied whenever the feed goes down or comes back, because messages may
// have been lost in between. How soon a feed that dies without closing is
// known to be down is the feed's to bound (store/redisstore: its
// FeedTimeout, 1 second by default, measured at 1.0 s). While the feed is up,
// a cached record whose store fails to answer keeps being served past its
// TTL until the store answers again (see [Store.Lookup]).
package cachestore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
	"go.opentelemetry.io/otel/metric"
)

// Defaults of [Config].
const (
	DefaultTTL         = time.Minute
	DefaultNegativeTTL = 5 * time.Second
	DefaultStaleTTL    = time.Second
	DefaultMaxEntries  = 100_000
)

// Config configures a [Store]. The zero value selects every default.
type Config struct {
	// TTL bounds how long a found record is served from memory while
	// invalidations arrive (or when the store behind is not shared and
	// has no [apikey.ChangeFeed]). Default [DefaultTTL].
	TTL time.Duration
	// NegativeTTL bounds how long an unknown hash, or a record that
	// cannot verify (revoked, expired, disabled), is remembered: the same
	// for all, so that the time of an answer does not tell a key that
	// never existed from one that did. Default [DefaultNegativeTTL].
	NegativeTTL time.Duration
	// StaleTTL bounds every entry while the store behind has an
	// [apikey.ChangeFeed] that is down: the longest a revocation made elsewhere can go
	// unseen. Default [DefaultStaleTTL].
	StaleTTL time.Duration
	// MaxEntries bounds the cache's keys, and its accounts apart; past
	// it, arbitrary entries are evicted, so that a flood of unknown keys
	// or account IDs costs bounded memory. Default [DefaultMaxEntries].
	MaxEntries int
	// Clock returns the current time. Default [time.Now].
	Clock func() time.Time
	// MeterProvider, when set, reports through the OpenTelemetry metric
	// API, read at each collection: keygate.cache.feed.healthy (1 while
	// [Store.Healthy], else 0) and keygate.cache.keys (the keys held).
	// Default: none.
	MeterProvider metric.MeterProvider
}

const shardCount = 64

// Store is an [apikey.Store] that caches lookups of the store it wraps.
// It is safe for concurrent use. Call [Store.Close] to stop listening for
// invalidations.
type Store struct {
	// unobserve ends the metrics' callback; nil without a MeterProvider.
	unobserve func() error
	inner     apikey.Store
	ttl       int64
	negTTL    int64
	staleTTL  int64
	perShard  int
	now       func() time.Time

	shards   [shardCount]shard
	accounts [shardCount]accountShard
	seed     maphash.Seed
	// gen counts invalidations; a lookup caches its result only if no
	// invalidation happened while it was reading the store behind.
	gen atomic.Uint64
	// trusted is false while the change feed is down.
	trusted atomic.Bool
	// watched is set when the store behind has a change feed.
	watched bool

	stop context.CancelFunc
	done chan struct{}
}

type shard struct {
	mu      sync.RWMutex
	entries map[apikey.Hash]entry
}

// entry is a cached lookup: rec nil means "not found".
type entry struct {
	rec    *apikey.Record
	filled int64 // unix nanoseconds
	// refused is set for an unknown hash, and for a record that cannot
	// verify (revoked, expired, disabled): all are kept for NegativeTTL,
	// so that none answers in a time of its own.
	refused bool
}

var _ apikey.Store = (*Store)(nil)

// New wraps inner. If inner implements [apikey.ChangeFeed], New starts
// listening to it in the background until [Store.Close].
func New(inner apikey.Store, cfg Config) (*Store, error) {
	if inner == nil {
		return nil, fmt.Errorf("cachestore: %w: nil store", apikey.ErrInvalidConfig)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.NegativeTTL <= 0 {
		cfg.NegativeTTL = DefaultNegativeTTL
	}
	if cfg.StaleTTL <= 0 {
		cfg.StaleTTL = DefaultStaleTTL
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	s := &Store{
		inner:    inner,
		ttl:      int64(cfg.TTL),
		negTTL:   int64(min(cfg.NegativeTTL, cfg.TTL)),
		staleTTL: int64(cfg.StaleTTL),
		perShard: max(1, cfg.MaxEntries/shardCount),
		seed:     maphash.MakeSeed(),
		now:      cfg.Clock,
		done:     make(chan struct{}),
	}
	for i := range s.shards {
		s.shards[i].entries = make(map[apikey.Hash]entry)
		s.accounts[i].entries = make(map[string]accountEntry)
	}
	if cfg.MeterProvider != nil {
		if err := s.observe(cfg.MeterProvider); err != nil {
			return nil, err
		}
	}
	feed, ok := inner.(apikey.ChangeFeed)
	if !ok {
		s.trusted.Store(true)
		close(s.done)
		s.stop = func() {}
		return s, nil
	}
	s.watched = true
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	go func() {
		defer close(s.done)
		_ = feed.WatchChanges(ctx, s.invalidate, s.invalidateAccount, s.setTrusted)
	}()
	return s, nil
}

// observe registers the gauges of Config.MeterProvider.
func (s *Store) observe(provider metric.MeterProvider) error {
	meter := provider.Meter("github.com/keygate/keygate/store/cachestore")
	healthy, err := meter.Int64ObservableGauge("keygate.cache.feed.healthy",
		metric.WithDescription("1 while the cache may keep its entries their full TTL (its invalidation feed is up), 0 otherwise."))
	if err != nil {
		return fmt.Errorf("cachestore: %w", err)
	}
	keys, err := meter.Int64ObservableGauge("keygate.cache.keys", metric.WithUnit("{key}"),
		metric.WithDescription("The keys the cache holds."))
	if err != nil {
		return fmt.Errorf("cachestore: %w", err)
	}
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		up := int64(0)
		if s.Healthy() {
			up = 1
		}
		o.ObserveInt64(healthy, up)
		n := 0
		for i := range s.shards {
			sh := &s.shards[i]
			sh.mu.RLock()
			n += len(sh.entries)
			sh.mu.RUnlock()
		}
		o.ObserveInt64(keys, int64(n))
		return nil
	}, healthy, keys)
	if err != nil {
		return fmt.Errorf("cachestore: %w", err)
	}
	s.unobserve = reg.Unregister
	return nil
}

// Close stops listening for invalidations. The Store keeps working, with
// every entry bounded by StaleTTL. It does not close the store behind.
func (s *Store) Close() error {
	if s.unobserve != nil {
		_ = s.unobserve()
	}
	s.stop()
	<-s.done
	s.setTrusted(false)
	return nil
}

func (s *Store) shard(h apikey.Hash) *shard { return &s.shards[h[0]%shardCount] }

// Lookup implements [apikey.Store]. A fresh entry is answered from
// memory; otherwise the store behind is asked and its answer (found or
// not found, never an error) is cached.
//
// When the store behind fails (not "not found": an error) and its
// invalidation feed is up, a found record past its TTL keeps being
// served until the store answers again: every change that succeeded
// while the entry lived has dropped it, so it is what the store holds.
// That keeps the keys in use verifying while, say, one Redis Cluster
// master is down. Without a feed, or while it is down, the error is
// returned.
func (s *Store) Lookup(ctx context.Context, hash apikey.Hash, route string) (*apikey.Record, error) {
	sh := s.shard(hash)
	sh.mu.RLock()
	e, ok := sh.entries[hash]
	sh.mu.RUnlock()
	now := s.now().UnixNano()
	if ok && now-e.filled < s.lifetime(e.refused) {
		if e.rec == nil {
			return nil, apikey.ErrNotFound
		}
		return e.rec, nil
	}
	gen := s.gen.Load()
	rec, err := s.inner.Lookup(ctx, hash, route)
	if err != nil && !errors.Is(err, apikey.ErrNotFound) {
		if ok && e.rec != nil && s.watched && s.trusted.Load() {
			// Still cached: no invalidation dropped it meanwhile.
			sh.mu.RLock()
			cur, still := sh.entries[hash]
			sh.mu.RUnlock()
			if still && cur.rec == e.rec {
				return e.rec, nil
			}
		}
		return nil, err
	}
	sh.mu.Lock()
	if s.gen.Load() == gen {
		if len(sh.entries) >= s.perShard {
			sh.evict(now, s)
		}
		sh.entries[hash] = entry{rec: rec, filled: now, refused: refused(rec, now)}
	}
	sh.mu.Unlock()
	if err != nil {
		return nil, apikey.ErrNotFound
	}
	return rec, nil
}

// refused reports whether rec (nil: unknown) cannot verify at now (unix
// nanoseconds).
func refused(rec *apikey.Record, now int64) bool {
	if rec == nil || !rec.DisabledAt.IsZero() {
		return true
	}
	ended := rec.EndedAt()
	return !ended.IsZero() && ended.UnixNano() <= now
}

// lifetime is how long an entry may be served now.
func (s *Store) lifetime(negative bool) int64 {
	ttl := s.ttl
	if negative {
		ttl = s.negTTL
	}
	if !s.trusted.Load() {
		ttl = min(ttl, s.staleTTL)
	}
	return ttl
}

// evict makes room in a full shard: expired entries first, else one
// arbitrary entry. sh.mu must be held.
func (sh *shard) evict(now int64, s *Store) {
	for h, e := range sh.entries {
		if now-e.filled >= s.lifetime(e.refused) {
			delete(sh.entries, h)
		}
	}
	for h := range sh.entries {
		if len(sh.entries) < s.perShard {
			return
		}
		delete(sh.entries, h)
	}
}

// invalidate drops the entry of the key whose hash is h.
func (s *Store) invalidate(h apikey.Hash) {
	s.gen.Add(1)
	sh := s.shard(h)
	sh.mu.Lock()
	delete(sh.entries, h)
	sh.mu.Unlock()
}

// invalidateAccount drops the entry of account id.
func (s *Store) invalidateAccount(id string) {
	s.gen.Add(1)
	as := s.accountShard(id)
	as.mu.Lock()
	delete(as.entries, id)
	as.mu.Unlock()
}

// setTrusted records the state of the invalidation feed and empties the
// cache: what it holds may have missed invalidations.
func (s *Store) setTrusted(ok bool) {
	s.trusted.Store(ok)
	s.gen.Add(1)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		clear(sh.entries)
		sh.mu.Unlock()
		as := &s.accounts[i]
		as.mu.Lock()
		clear(as.entries)
		as.mu.Unlock()
	}
}

// Healthy reports whether entries may live their full TTL: the store
// behind has no change feed, or its feed is connected. Useful for health
// checks: while false, every lookup older than StaleTTL goes to the store.
func (s *Store) Healthy() bool { return s.trusted.Load() }

// Create implements [apikey.Store]; it forgets a cached "not found" for the
// new hash.
func (s *Store) Create(ctx context.Context, rec *apikey.Record, maxActive int, now time.Time, ev *event.Event) error {
	err := s.inner.Create(ctx, rec, maxActive, now, ev)
	if err == nil {
		s.invalidate(rec.Hash)
	}
	return err
}

// Get implements [apikey.Store]; it is not cached.
func (s *Store) Get(ctx context.Context, id string) (*apikey.Record, error) {
	return s.inner.Get(ctx, id)
}

// Route implements [apikey.Router]: the inner store's route, "" when it
// does not route.
func (s *Store) Route(owner string) string {
	if r, ok := s.inner.(apikey.Router); ok {
		return r.Route(owner)
	}
	return ""
}

// GetOwned implements [apikey.OwnedGetter]: the store behind's, or its
// Get with the owner compared; it is not cached.
func (s *Store) GetOwned(ctx context.Context, owner, id string) (*apikey.Record, error) {
	if og, ok := s.inner.(apikey.OwnedGetter); ok {
		return og.GetOwned(ctx, owner, id)
	}
	rec, err := s.inner.Get(ctx, id)
	if err == nil && rec != nil && owner != "" && rec.Owner != owner {
		return nil, apikey.ErrNotFound
	}
	return rec, err
}

// List implements [apikey.Store]; it is not cached.
func (s *Store) List(ctx context.Context, owner string) ([]*apikey.Record, error) {
	return s.inner.List(ctx, owner)
}

// Expiring implements [apikey.Store]; it is not cached.
func (s *Store) Expiring(ctx context.Context, from, to time.Time) ([]*apikey.Record, error) {
	return s.inner.Expiring(ctx, from, to)
}

// forget drops the cached entry of the key with the given ID, if any.
func (s *Store) forget(ctx context.Context, id string) {
	if rec, err := s.inner.Get(ctx, id); err == nil {
		s.invalidate(rec.Hash)
	}
}

// Revoke implements [apikey.Store] and drops the key from this cache at
// once.
func (s *Store) Revoke(ctx context.Context, id string, at time.Time, ev *event.Event) error {
	err := s.inner.Revoke(ctx, id, at, ev)
	if err == nil {
		s.forget(ctx, id)
	}
	return err
}

// Rotate implements [apikey.Store] and drops the old key from this cache.
func (s *Store) Rotate(ctx context.Context, old *apikey.Record, retireAt time.Time, replacement *apikey.Record, maxActive int, now time.Time, ev *event.Event) error {
	err := s.inner.Rotate(ctx, old, retireAt, replacement, maxActive, now, ev)
	if err == nil {
		s.invalidate(old.Hash)
		s.invalidate(replacement.Hash)
	}
	return err
}

// Delete implements [apikey.Store] and drops the key from this cache.
func (s *Store) Delete(ctx context.Context, id string, ev *event.Event) error {
	rec, getErr := s.inner.Get(ctx, id)
	err := s.inner.Delete(ctx, id, ev)
	if err == nil && getErr == nil {
		s.invalidate(rec.Hash)
	}
	return err
}

// Update implements [apikey.Store] and drops the key from this cache.
func (s *Store) Update(ctx context.Context, prev, next *apikey.Record, ev *event.Event) error {
	err := s.inner.Update(ctx, prev, next, ev)
	if err == nil {
		s.invalidate(next.Hash)
	}
	return err
}

// Purge implements [apikey.Store]. The records it deletes had stopped
// verifying already, so entries cached for them keep failing until they
// leave the cache.
func (s *Store) Purge(ctx context.Context, cutoff time.Time, limit int, ev *event.Event) (int, error) {
	return s.inner.Purge(ctx, cutoff, limit, ev)
}

var _ event.Store = (*Store)(nil)

// Events passes the store behind's [event.Store] through; it fails
// with [errors.ErrUnsupported] when that store keeps no events.
func (s *Store) Events(ctx context.Context, account, keyID, before string, limit int) ([]event.Event, error) {
	es, ok := s.inner.(event.Store)
	if !ok {
		return nil, fmt.Errorf("cachestore: events: %w", errors.ErrUnsupported)
	}
	return es.Events(ctx, account, keyID, before, limit)
}

// Package memstore is the in-process [apikey.Store], with usage counters:
// zero setup, for tests and a single process. Nothing is persisted: keys
// live as long as the process.
//
// It is the reference implementation of the contract. memstore.go is the
// plain shape of an adapter: maps under one mutex, which serialises the
// management writes (create, revoke, rotate, delete) and so makes the
// per-owner limit atomic. index.go is the hash index that verification
// reads without taking a lock. Records are replaced, never modified, so a
// record handed out stays consistent. To write an adapter for your own
// database, start from examples/customstore.
package memstore

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/usage"
)

// Store keeps key records in memory. The zero value is not usable; call
// [New]. It is safe for concurrent use.
type Store struct {
	byHash *index // read without a lock; written under mu

	mu      sync.RWMutex // guards the fields below, serialises writers
	byID    map[string]*apikey.Record
	byOwner map[string]map[string]struct{}
	usage   map[string]*usage.Usage

	accounts sync.Map // ID -> *apikey.Account; read without a lock, written under mu
}

var _ apikey.Store = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	return &Store{
		byHash:  newIndex(),
		byID:    make(map[string]*apikey.Record),
		byOwner: make(map[string]map[string]struct{}),
		usage:   make(map[string]*usage.Usage),
	}
}

// Lookup implements [apikey.Store]. It takes no lock.
func (s *Store) Lookup(_ context.Context, hash apikey.Hash) (*apikey.Record, error) {
	rec := s.byHash.get(hash)
	if rec == nil {
		return nil, apikey.ErrNotFound
	}
	return rec, nil
}

// Create implements [apikey.Store].
func (s *Store) Create(_ context.Context, rec *apikey.Record, maxActive int, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkNew(rec); err != nil {
		return err
	}
	if s.atLimit(rec.Owner, maxActive, now) {
		return apikey.ErrTooManyKeys
	}
	s.put(rec)
	return nil
}

// atLimit reports whether owner has maxActive (when positive) active
// records at now. s.mu must be held.
func (s *Store) atLimit(owner string, maxActive int, now time.Time) bool {
	if maxActive <= 0 {
		return false
	}
	active := 0
	for id := range s.byOwner[owner] {
		if s.byID[id].Active(now) {
			active++
		}
	}
	return active >= maxActive
}

// checkNew reports whether rec's ID or hash is taken. s.mu must be held.
func (s *Store) checkNew(rec *apikey.Record) error {
	if _, ok := s.byID[rec.ID]; ok {
		return apikey.ErrDuplicate
	}
	if s.byHash.get(rec.Hash) != nil {
		return apikey.ErrDuplicate
	}
	return nil
}

// put stores rec, replacing any record with its ID. s.mu must be held.
func (s *Store) put(rec *apikey.Record) {
	s.byID[rec.ID] = rec
	ids := s.byOwner[rec.Owner]
	if ids == nil {
		ids = make(map[string]struct{})
		s.byOwner[rec.Owner] = ids
	}
	ids[rec.ID] = struct{}{}
	s.byHash.put(rec)
}

// Get implements [apikey.Store].
func (s *Store) Get(_ context.Context, id string) (*apikey.Record, error) {
	s.mu.RLock()
	rec := s.byID[id]
	s.mu.RUnlock()
	if rec == nil {
		return nil, apikey.ErrNotFound
	}
	return rec, nil
}

// List implements [apikey.Store].
func (s *Store) List(_ context.Context, owner string) ([]*apikey.Record, error) {
	s.mu.RLock()
	recs := make([]*apikey.Record, 0, len(s.byOwner[owner]))
	for id := range s.byOwner[owner] {
		recs = append(recs, s.byID[id])
	}
	s.mu.RUnlock()
	slices.SortFunc(recs, func(a, b *apikey.Record) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return recs, nil
}

// Revoke implements [apikey.Store].
func (s *Store) Revoke(_ context.Context, id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.byID[id]
	if old == nil {
		return apikey.ErrNotFound
	}
	if !old.RevokedAt.IsZero() {
		return nil
	}
	rec := *old
	rec.RevokedAt = at
	s.put(&rec)
	return nil
}

// Rotate implements [apikey.Store].
func (s *Store) Rotate(_ context.Context, oldID string, retireAt time.Time, replacement *apikey.Record, maxActive int, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.byID[oldID]
	if old == nil {
		return apikey.ErrNotFound
	}
	retired := *old
	if err := retired.Retire(replacement.ID, retireAt); err != nil {
		return err
	}
	if err := s.checkNew(replacement); err != nil {
		return err
	}
	if retireAt.After(now) && s.atLimit(old.Owner, maxActive, now) {
		return apikey.ErrTooManyKeys
	}
	s.put(&retired)
	s.put(replacement)
	return nil
}

// Delete implements [apikey.Store].
func (s *Store) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.byID[id]
	if rec == nil {
		return apikey.ErrNotFound
	}
	delete(s.byID, id)
	delete(s.usage, id)
	if ids := s.byOwner[rec.Owner]; len(ids) <= 1 {
		delete(s.byOwner, rec.Owner)
	} else {
		delete(ids, id)
	}
	s.byHash.remove(rec.Hash)
	return nil
}

// Expiring implements [apikey.Store]. It scans every record, which takes
// milliseconds per million keys: fine for a periodic notification job.
func (s *Store) Expiring(_ context.Context, from, to time.Time) ([]*apikey.Record, error) {
	var recs []*apikey.Record
	s.mu.RLock()
	for _, rec := range s.byID {
		if rec.ExpiresWithin(from, to) {
			recs = append(recs, rec)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(recs, func(a, b *apikey.Record) int {
		return cmp.Or(a.ExpiresAt.Compare(b.ExpiresAt), cmp.Compare(a.ID, b.ID))
	})
	return recs, nil
}

var _ usage.Store = (*Store)(nil)

// AddUsage implements [usage.Store]. Usage of keys that no longer
// exist is dropped.
func (s *Store) AddUsage(_ context.Context, deltas []usage.Delta) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range deltas {
		if s.byID[d.KeyID] == nil {
			continue
		}
		u := s.usage[d.KeyID]
		if u == nil {
			u = &usage.Usage{ByEndpoint: make(map[string]int64)}
			s.usage[d.KeyID] = u
		}
		u.TotalRequests += d.Requests
		u.Errors += d.Errors
		if d.LastUsedAt.After(u.LastUsedAt) {
			u.LastUsedAt = d.LastUsedAt
		}
		for ep, n := range d.ByEndpoint {
			if _, ok := u.ByEndpoint[ep]; !ok && ep != usage.OtherEndpoint && endpoints(u) >= usage.MaxEndpoints {
				ep = usage.OtherEndpoint
			}
			u.ByEndpoint[ep] += n
		}
	}
	return nil
}

// endpoints counts u's endpoints but the one that collects the rest.
func endpoints(u *usage.Usage) int {
	if _, ok := u.ByEndpoint[usage.OtherEndpoint]; ok {
		return len(u.ByEndpoint) - 1
	}
	return len(u.ByEndpoint)
}

// Usage implements [usage.Store].
func (s *Store) Usage(_ context.Context, id string) (usage.Usage, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.usage[id]
	if u == nil {
		return usage.Usage{ByEndpoint: map[string]int64{}}, nil
	}
	out := *u
	out.ByEndpoint = maps.Clone(u.ByEndpoint)
	return out, nil
}

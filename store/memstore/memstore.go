// Package memstore is the in-process [apikey.Store], with usage counters:
// zero setup, for tests and a single process. Nothing is persisted: keys
// live as long as the process.
//
// It is the reference implementation of the contract, in the plain shape
// of an adapter: maps under one read-write mutex, which serialises the
// changes (create, revoke, rotate, delete) and so makes the per-owner
// limit atomic. Records are replaced, never modified, so a record handed
// out stays consistent. Put store/cachestore in front of it, as of any
// store, for verification that takes no shared lock. To write an adapter
// for your own database, start from examples/customstore.
package memstore

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/apikey/usage"
)

// Store keeps key records in memory. The zero value is not usable; call
// [New]. It is safe for concurrent use.
type Store struct {
	mu       sync.RWMutex // guards every field, serialises writers
	byHash   map[apikey.Hash]*apikey.Record
	byID     map[string]*apikey.Record
	byOwner  map[string]map[string]struct{}
	usage    map[string]*usage.Usage
	events   map[string][]event.Event // by account, oldest first
	seq      uint64                   // the last event's ID
	accounts map[string]*apikey.Account
	facts    map[string]time.Time          // claimed facts, by the time of their event
	attempts map[[2]string][]event.Attempt // delivery logs by account and endpoint, newest first
	// deliveries are the outbox's state by account (see outbox.go).
	deliveries map[string]*delivery
}

var _ apikey.Store = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	return &Store{
		byHash:     make(map[apikey.Hash]*apikey.Record),
		facts:      make(map[string]time.Time),
		attempts:   make(map[[2]string][]event.Attempt),
		deliveries: make(map[string]*delivery),
		byID:       make(map[string]*apikey.Record),
		byOwner:    make(map[string]map[string]struct{}),
		usage:      make(map[string]*usage.Usage),
		events:     make(map[string][]event.Event),
		accounts:   make(map[string]*apikey.Account),
	}
}

// Lookup implements [apikey.Store].
func (s *Store) Lookup(_ context.Context, hash apikey.Hash, _ string) (*apikey.Record, error) {
	s.mu.RLock()
	rec := s.byHash[hash]
	s.mu.RUnlock()
	if rec == nil {
		return nil, apikey.ErrNotFound
	}
	return rec, nil
}

// Create implements [apikey.Store].
func (s *Store) Create(_ context.Context, rec *apikey.Record, maxActive int, now time.Time, ev *event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkNew(rec); err != nil {
		return err
	}
	if s.atLimit(rec.Owner, maxActive, now) {
		return apikey.ErrTooManyKeys
	}
	s.put(rec)
	s.record(ev)
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
	if s.byHash[rec.Hash] != nil {
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
	s.byHash[rec.Hash] = rec
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
func (s *Store) Revoke(_ context.Context, id string, at time.Time, ev *event.Event) error {
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
	s.record(ev)
	return nil
}

// Update implements [apikey.Store].
func (s *Store) Update(_ context.Context, prev, next *apikey.Record, ev *event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.byID[next.ID]
	switch {
	case cur == nil:
		return apikey.ErrNotFound
	case cur != prev && !cur.Same(prev):
		return apikey.ErrConflict
	}
	s.put(next)
	s.record(ev)
	return nil
}

// Rotate implements [apikey.Store].
func (s *Store) Rotate(_ context.Context, prev *apikey.Record, retireAt time.Time, replacement *apikey.Record, maxActive int, now time.Time, ev *event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.byID[prev.ID]
	if old == nil {
		return apikey.ErrNotFound
	}
	retired := *old
	if err := retired.Retire(prev, replacement.ID, retireAt); err != nil {
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
	s.record(ev)
	return nil
}

// Delete implements [apikey.Store].
func (s *Store) Delete(_ context.Context, id string, ev *event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.byID[id]
	if rec == nil {
		return apikey.ErrNotFound
	}
	s.remove(rec)
	s.record(ev)
	return nil
}

// remove deletes rec. s.mu must be held.
func (s *Store) remove(rec *apikey.Record) {
	id := rec.ID
	delete(s.byHash, rec.Hash)
	delete(s.byID, id)
	delete(s.usage, id)
	if ids := s.byOwner[rec.Owner]; len(ids) <= 1 {
		delete(s.byOwner, rec.Owner)
	} else {
		delete(ids, id)
	}
}

// Purge implements [apikey.Store]. It scans every record.
func (s *Store) Purge(_ context.Context, cutoff time.Time, limit int, ev *event.Event) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var old []*apikey.Record
	for _, rec := range s.byID {
		if end := rec.EndedAt(); !end.IsZero() && end.Before(cutoff) {
			old = append(old, rec)
		}
	}
	slices.SortFunc(old, func(a, b *apikey.Record) int {
		return cmp.Or(a.EndedAt().Compare(b.EndedAt()), cmp.Compare(a.ID, b.ID))
	})
	old = old[:min(limit, len(old))]
	for _, rec := range old {
		s.remove(rec)
		if ev != nil {
			e := *ev
			e.KeyID, e.Account = rec.ID, rec.Owner
			s.record(&e)
		}
	}
	return len(old), nil
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

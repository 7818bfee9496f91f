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
	"math"
	"slices"
	"strconv"
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
	events  map[string][]apikey.Event // by account, oldest first
	seq     uint64                    // the last event's ID

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
		events:  make(map[string][]apikey.Event),
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
func (s *Store) Create(_ context.Context, rec *apikey.Record, maxActive int, now time.Time, ev *apikey.Event) error {
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
func (s *Store) Revoke(_ context.Context, id string, at time.Time, ev *apikey.Event) error {
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
func (s *Store) Update(_ context.Context, prev, next *apikey.Record, ev *apikey.Event) error {
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
func (s *Store) Rotate(_ context.Context, prev *apikey.Record, retireAt time.Time, replacement *apikey.Record, maxActive int, now time.Time, ev *apikey.Event) error {
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
func (s *Store) Delete(_ context.Context, id string, ev *apikey.Event) error {
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

// remove deletes rec, its hash index entry first. s.mu must be held.
func (s *Store) remove(rec *apikey.Record) {
	id := rec.ID
	s.byHash.remove(rec.Hash)
	delete(s.byID, id)
	delete(s.usage, id)
	if ids := s.byOwner[rec.Owner]; len(ids) <= 1 {
		delete(s.byOwner, rec.Owner)
	} else {
		delete(ids, id)
	}
}

// Purge implements [apikey.Store]. It scans every record.
func (s *Store) Purge(_ context.Context, cutoff time.Time, limit int, ev *apikey.Event) (int, error) {
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

// record appends ev to its account's events, after dropping the
// account's events older than [apikey.EventRetention] before it and, past
// [apikey.EventsPerKey] of its key, that key's oldest. s.mu must be held.
func (s *Store) record(ev *apikey.Event) {
	if ev == nil {
		return
	}
	s.seq++
	e := *ev
	e.ID = strconv.FormatUint(s.seq, 10)
	e.Changes = maps.Clone(e.Changes)
	cutoff := e.At.Add(-apikey.EventRetention)
	evs := slices.DeleteFunc(s.events[e.Account], func(old apikey.Event) bool { return old.At.Before(cutoff) })
	n := 0
	for _, old := range evs {
		if old.KeyID == e.KeyID {
			n++
		}
	}
	if n >= apikey.EventsPerKey {
		i := slices.IndexFunc(evs, func(old apikey.Event) bool { return old.KeyID == e.KeyID })
		evs = slices.Delete(evs, i, i+1)
	}
	s.events[e.Account] = append(evs, e)
}

var _ apikey.EventStore = (*Store)(nil)

// Events implements [apikey.EventStore]; an event's ID is a decimal
// sequence number.
func (s *Store) Events(_ context.Context, account, keyID, before string, limit int) ([]apikey.Event, error) {
	var from uint64 = math.MaxUint64
	if before != "" {
		n, err := strconv.ParseUint(before, 10, 64)
		if err != nil {
			return nil, &apikey.InputError{Field: "cursor", Reason: "is not an event ID"}
		}
		from = n
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	evs := s.events[account]
	out := []apikey.Event{}
	for i := len(evs) - 1; i >= 0 && len(out) < limit; i-- {
		e := evs[i]
		if n, _ := strconv.ParseUint(e.ID, 10, 64); n < from && (keyID == "" || e.KeyID == keyID) {
			e.Changes = maps.Clone(e.Changes)
			out = append(out, e)
		}
	}
	return out, nil
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

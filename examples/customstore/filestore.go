package main

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
)

// fileStore is an apikey.Store that keeps every record, and every
// account (apikey.AccountStore: plans, custom limits, credits), in one
// JSON file.
// It is the smallest adapter that honours the whole contract and passes
// store/storetest: a template for an adapter on the database you already
// run. Each method is written as your adapter would be: reads look the
// record up; writes run as one transaction (write), which applies the
// change to a copy of the records and commits it by rewriting the file
// atomically (temporary file, then rename), so a failed write changes
// nothing. One process owns the file. It keeps no audit trail (the
// optional event.Store): the event each change passes is ignored.
type fileStore struct {
	path string
	mu   sync.Mutex           // serialises transactions
	data atomic.Pointer[data] // the committed records; readers take no lock
}

var (
	_ apikey.Store        = (*fileStore)(nil)
	_ apikey.AccountStore = (*fileStore)(nil)
)

// data is the store's content. A committed data is never modified.
type data struct {
	byID     map[string]*apikey.Record
	byHash   map[apikey.Hash]*apikey.Record
	accounts map[string]*apikey.Account
}

// disk is the file's content.
type disk struct {
	Keys     []diskRecord      `json:"keys"`
	Accounts []*apikey.Account `json:"accounts"`
}

// diskRecord is a record as the file holds it: the hash hex-encoded.
type diskRecord struct {
	apikey.Key
	Hash        string `json:"hash"`
	HashVersion int    `json:"hash_version"`
}

// openFileStore loads path, or starts empty if it does not exist.
func openFileStore(path string) (*fileStore, error) {
	s := &fileStore{path: path}
	d := &data{byID: map[string]*apikey.Record{}, byHash: map[apikey.Hash]*apikey.Record{}, accounts: map[string]*apikey.Account{}}
	s.data.Store(d)
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	var f disk
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("filestore: %s is corrupt: %w", path, err)
	}
	for _, a := range f.Accounts {
		d.accounts[a.ID] = a
	}
	for _, r := range f.Keys {
		rec := &apikey.Record{Key: r.Key, HashVersion: r.HashVersion}
		if n, err := hex.Decode(rec.Hash[:], []byte(r.Hash)); err != nil || n != len(rec.Hash) {
			return nil, fmt.Errorf("filestore: %s: record %s has a bad hash", path, r.ID)
		}
		d.byID[rec.ID], d.byHash[rec.Hash] = rec, rec
	}
	return s, nil
}

// write runs change on a copy of the records and commits the copy: the
// file first, then memory. If change or the file fails, nothing changes.
func (s *fileStore) write(change func(d *data) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.data.Load()
	next := &data{byID: maps.Clone(cur.byID), byHash: maps.Clone(cur.byHash), accounts: maps.Clone(cur.accounts)}
	if err := change(next); err != nil {
		return err
	}
	if err := s.save(next); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	s.data.Store(next)
	return nil
}

// save writes every record and account of d to the file atomically.
func (s *fileStore) save(d *data) error {
	f := disk{Keys: make([]diskRecord, 0, len(d.byID)), Accounts: slices.Collect(maps.Values(d.accounts))}
	for _, rec := range d.byID {
		f.Keys = append(f.Keys, diskRecord{Key: rec.Key, Hash: hex.EncodeToString(rec.Hash[:]), HashVersion: rec.HashVersion})
	}
	slices.SortFunc(f.Keys, func(a, b diskRecord) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(f.Accounts, func(a, b *apikey.Account) int { return cmp.Compare(a.ID, b.ID) })
	raw, err := json.Marshal(f)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".keys-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), s.path)
}

// insert adds rec unless its ID or hash is taken or, with maxActive
// positive, its owner already has maxActive active keys at now.
func (d *data) insert(rec *apikey.Record, maxActive int, now time.Time) error {
	if d.byID[rec.ID] != nil || d.byHash[rec.Hash] != nil {
		return apikey.ErrDuplicate
	}
	active := 0
	for _, r := range d.byID {
		if r.Owner == rec.Owner && r.Active(now) {
			active++
		}
	}
	if maxActive > 0 && active >= maxActive {
		return apikey.ErrTooManyKeys
	}
	d.byID[rec.ID], d.byHash[rec.Hash] = rec, rec
	return nil
}

func (s *fileStore) Create(_ context.Context, rec *apikey.Record, maxActive int, now time.Time, _ *event.Event) error {
	return s.write(func(d *data) error { return d.insert(rec, maxActive, now) })
}

func (s *fileStore) Lookup(_ context.Context, hash apikey.Hash, _ string) (*apikey.Record, error) {
	if rec := s.data.Load().byHash[hash]; rec != nil {
		return rec, nil
	}
	return nil, apikey.ErrNotFound
}

func (s *fileStore) Get(_ context.Context, id string) (*apikey.Record, error) {
	if rec := s.data.Load().byID[id]; rec != nil {
		return rec, nil
	}
	return nil, apikey.ErrNotFound
}

func (s *fileStore) List(_ context.Context, owner string) ([]*apikey.Record, error) {
	return s.collect(func(r *apikey.Record) bool { return r.Owner == owner },
		func(r *apikey.Record) time.Time { return r.CreatedAt }), nil
}

func (s *fileStore) Expiring(_ context.Context, from, to time.Time) ([]*apikey.Record, error) {
	return s.collect(func(r *apikey.Record) bool { return r.ExpiresWithin(from, to) },
		func(r *apikey.Record) time.Time { return r.ExpiresAt }), nil
}

// collect returns the records keep accepts, ordered by the time at and
// then ID, as the contract asks of List and Expiring.
func (s *fileStore) collect(keep func(*apikey.Record) bool, at func(*apikey.Record) time.Time) []*apikey.Record {
	out := []*apikey.Record{}
	for _, r := range s.data.Load().byID {
		if keep(r) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *apikey.Record) int { return cmp.Or(at(a).Compare(at(b)), cmp.Compare(a.ID, b.ID)) })
	return out
}

// replace stores a changed copy of the record id, made by change.
func (d *data) replace(id string, change func(rec *apikey.Record) error) error {
	old := d.byID[id]
	if old == nil {
		return apikey.ErrNotFound
	}
	rec := *old // records are replaced, never modified
	if err := change(&rec); err != nil {
		return err
	}
	d.byID[id], d.byHash[rec.Hash] = &rec, &rec
	return nil
}

func (s *fileStore) Revoke(_ context.Context, id string, at time.Time, _ *event.Event) error {
	return s.write(func(d *data) error {
		return d.replace(id, func(rec *apikey.Record) error {
			if rec.RevokedAt.IsZero() {
				rec.RevokedAt = at
			}
			return nil
		})
	})
}

func (s *fileStore) Rotate(_ context.Context, old *apikey.Record, retireAt time.Time, replacement *apikey.Record, maxActive int, now time.Time, _ *event.Event) error {
	if !retireAt.After(now) {
		maxActive = 0 // the old key stops counting at once
	}
	return s.write(func(d *data) error {
		if err := d.replace(old.ID, func(rec *apikey.Record) error { return rec.Retire(old, replacement.ID, retireAt) }); err != nil {
			return err
		}
		// Counted with the old key still active: during a grace period
		// both verify.
		return d.insert(replacement, maxActive, now)
	})
}

func (s *fileStore) Update(_ context.Context, prev, next *apikey.Record, _ *event.Event) error {
	return s.write(func(d *data) error {
		return d.replace(next.ID, func(rec *apikey.Record) error {
			if !rec.Same(prev) {
				return apikey.ErrConflict
			}
			*rec = *next
			return nil
		})
	})
}

func (s *fileStore) Delete(_ context.Context, id string, _ *event.Event) error {
	return s.write(func(d *data) error {
		rec := d.byID[id]
		if rec == nil {
			return apikey.ErrNotFound
		}
		delete(d.byID, id)
		delete(d.byHash, rec.Hash)
		return nil
	})
}

// Purge deletes the records that ended before cutoff, at most limit, in
// one transaction.
func (s *fileStore) Purge(_ context.Context, cutoff time.Time, limit int, _ *event.Event) (int, error) {
	n := 0
	err := s.write(func(d *data) error {
		for id, rec := range d.byID {
			if end := rec.EndedAt(); n < limit && !end.IsZero() && end.Before(cutoff) {
				delete(d.byID, id)
				delete(d.byHash, rec.Hash)
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (s *fileStore) Account(_ context.Context, id string) (*apikey.Account, error) {
	if a := s.data.Load().accounts[id]; a != nil {
		return a, nil
	}
	return nil, apikey.ErrNotFound
}

func (s *fileStore) PutAccount(_ context.Context, prev, next *apikey.Account) error {
	return s.write(func(d *data) error {
		switch cur := d.accounts[next.ID]; {
		case prev == nil && cur != nil:
			return apikey.ErrDuplicate
		case prev != nil && cur == nil:
			return apikey.ErrNotFound
		case prev != nil && cur.Version != prev.Version:
			return apikey.ErrConflict
		}
		d.accounts[next.ID] = next
		return nil
	})
}

package main

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/keygate/keygate/apikey"
)

// fileStore is an apikey.Store that keeps every record in one JSON file,
// rewritten atomically (temporary file, then rename) on each change. It is
// the smallest adapter that honours the whole contract, and it passes
// store/storetest: a template for your own adapter on whatever database
// you already run. One process owns the file.
type fileStore struct {
	path string

	mu     sync.RWMutex // guards the maps; writers hold it while persisting
	byID   map[string]*apikey.Record
	byHash map[apikey.Hash]*apikey.Record
}

var _ apikey.Store = (*fileStore)(nil)

// diskRecord is a record as the file holds it: the hash hex-encoded.
type diskRecord struct {
	apikey.Key
	Hash        string `json:"hash"`
	HashVersion int    `json:"hash_version"`
}

// openFileStore loads path, or starts empty if it does not exist.
func openFileStore(path string) (*fileStore, error) {
	s := &fileStore{path: path, byID: map[string]*apikey.Record{}, byHash: map[apikey.Hash]*apikey.Record{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	var disk []diskRecord
	if err := json.Unmarshal(data, &disk); err != nil {
		return nil, fmt.Errorf("filestore: %s is corrupt: %w", path, err)
	}
	for _, d := range disk {
		rec := &apikey.Record{Key: d.Key, HashVersion: d.HashVersion}
		if n, err := hex.Decode(rec.Hash[:], []byte(d.Hash)); err != nil || n != len(rec.Hash) {
			return nil, fmt.Errorf("filestore: %s: record %s has a bad hash", path, d.ID)
		}
		s.byID[rec.ID], s.byHash[rec.Hash] = rec, rec
	}
	return s, nil
}

// persist writes every record to the file. s.mu must be held.
func (s *fileStore) persist() error {
	disk := make([]diskRecord, 0, len(s.byID))
	for _, rec := range s.byID {
		disk = append(disk, diskRecord{Key: rec.Key, Hash: hex.EncodeToString(rec.Hash[:]), HashVersion: rec.HashVersion})
	}
	slices.SortFunc(disk, func(a, b diskRecord) int { return cmp.Compare(a.ID, b.ID) })
	data, err := json.Marshal(disk)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".keys-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
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

// change applies put and drop to the maps, persists, and undoes both if
// the file cannot be written, so memory and disk never disagree. s.mu
// must be held.
func (s *fileStore) change(put []*apikey.Record, drop *apikey.Record) error {
	old := make([]*apikey.Record, len(put))
	for i, rec := range put {
		old[i] = s.byID[rec.ID]
		s.byID[rec.ID], s.byHash[rec.Hash] = rec, rec
	}
	if drop != nil {
		delete(s.byID, drop.ID)
		delete(s.byHash, drop.Hash)
	}
	if err := s.persist(); err != nil {
		for i, rec := range put {
			if old[i] == nil {
				delete(s.byID, rec.ID)
				delete(s.byHash, rec.Hash)
			} else {
				s.byID[rec.ID], s.byHash[rec.Hash] = old[i], old[i]
			}
		}
		if drop != nil {
			s.byID[drop.ID], s.byHash[drop.Hash] = drop, drop
		}
		return fmt.Errorf("filestore: %w", err)
	}
	return nil
}

func (s *fileStore) Create(_ context.Context, rec *apikey.Record, maxActive int, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID[rec.ID] != nil || s.byHash[rec.Hash] != nil {
		return apikey.ErrDuplicate
	}
	if s.atLimit(rec.Owner, maxActive, now) {
		return apikey.ErrTooManyKeys
	}
	return s.change([]*apikey.Record{rec}, nil)
}

// atLimit reports whether owner has maxActive (when positive) active
// records at now. s.mu must be held.
func (s *fileStore) atLimit(owner string, maxActive int, now time.Time) bool {
	if maxActive <= 0 {
		return false
	}
	active := 0
	for _, r := range s.byID {
		if r.Owner == owner && r.Active(now) {
			active++
		}
	}
	return active >= maxActive
}

func (s *fileStore) Lookup(_ context.Context, hash apikey.Hash) (*apikey.Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if rec := s.byHash[hash]; rec != nil {
		return rec, nil
	}
	return nil, apikey.ErrNotFound
}

func (s *fileStore) Get(_ context.Context, id string) (*apikey.Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if rec := s.byID[id]; rec != nil {
		return rec, nil
	}
	return nil, apikey.ErrNotFound
}

func (s *fileStore) List(_ context.Context, owner string) ([]*apikey.Record, error) {
	return s.collect(func(r *apikey.Record) bool { return r.Owner == owner },
		func(r *apikey.Record) time.Time { return r.CreatedAt }), nil
}

func (s *fileStore) Expiring(_ context.Context, from, to time.Time) ([]*apikey.Record, error) {
	return s.collect(func(r *apikey.Record) bool {
		return r.RevokedAt.IsZero() && !r.ExpiresAt.IsZero() && !r.ExpiresAt.Before(from) && r.ExpiresAt.Before(to)
	}, func(r *apikey.Record) time.Time { return r.ExpiresAt }), nil
}

// collect returns the records keep accepts, ordered by the time at and
// then ID, as the contract asks of List and Expiring.
func (s *fileStore) collect(keep func(*apikey.Record) bool, at func(*apikey.Record) time.Time) []*apikey.Record {
	s.mu.RLock()
	out := []*apikey.Record{}
	for _, r := range s.byID {
		if keep(r) {
			out = append(out, r)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b *apikey.Record) int { return cmp.Or(at(a).Compare(at(b)), cmp.Compare(a.ID, b.ID)) })
	return out
}

func (s *fileStore) Revoke(_ context.Context, id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.byID[id]
	switch {
	case old == nil:
		return apikey.ErrNotFound
	case !old.RevokedAt.IsZero():
		return nil
	}
	rec := *old // records are replaced, never modified
	rec.RevokedAt = at
	return s.change([]*apikey.Record{&rec}, nil)
}

func (s *fileStore) Rotate(_ context.Context, oldID string, retireAt time.Time, replacement *apikey.Record, maxActive int, now time.Time) error {
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
	if s.byID[replacement.ID] != nil || s.byHash[replacement.Hash] != nil {
		return apikey.ErrDuplicate
	}
	// During a grace period both keys verify, so both count.
	if retireAt.After(now) && s.atLimit(old.Owner, maxActive, now) {
		return apikey.ErrTooManyKeys
	}
	return s.change([]*apikey.Record{&retired, replacement}, nil)
}

func (s *fileStore) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.byID[id]
	if rec == nil {
		return apikey.ErrNotFound
	}
	return s.change(nil, rec)
}

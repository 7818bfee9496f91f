package cachestore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"

	"github.com/keygate/keygate/apikey"
)

// AccountChange returns what an [Invalidator] announces when account id
// changes: a hash of its own, which no key's hash can equal.
func AccountChange(id string) apikey.Hash {
	return sha256.Sum256([]byte("keygate account change\x00" + id))
}

// errNoAccounts is made once: a Service asks for the account of every
// key it verifies.
var errNoAccounts = fmt.Errorf("cachestore: the store behind keeps no accounts: %w", errors.ErrUnsupported)

type accountShard struct {
	mu      sync.RWMutex
	entries map[string]accountEntry
}

// accountEntry is a cached account: acct nil means "not found".
type accountEntry struct {
	acct   *apikey.Account
	change apikey.Hash
	filled int64 // unix nanoseconds
}

type changeShard struct {
	mu  sync.Mutex
	ids map[apikey.Hash]string
}

func (s *Store) accountShard(id string) *accountShard {
	return &s.accounts[maphash.String(s.seed, id)%shardCount]
}

// Account implements [apikey.AccountStore] for a store behind that does,
// cached like Lookup: a fresh entry (an account, or its absence) is
// answered from memory, and a change made on any instance drops it. It
// fails with [errors.ErrUnsupported] when the store behind keeps no
// accounts.
func (s *Store) Account(ctx context.Context, id string) (*apikey.Account, error) {
	inner, ok := s.inner.(apikey.AccountStore)
	if !ok {
		return nil, errNoAccounts
	}
	as := s.accountShard(id)
	as.mu.RLock()
	e, ok := as.entries[id]
	as.mu.RUnlock()
	now := s.now().UnixNano()
	if ok && now-e.filled < s.lifetime(e.acct == nil) {
		if e.acct == nil {
			return nil, apikey.ErrNotFound
		}
		return e.acct, nil
	}
	gen := s.gen.Load()
	acct, err := inner.Account(ctx, id)
	if err != nil && !errors.Is(err, apikey.ErrNotFound) {
		return nil, err
	}
	change := AccountChange(id)
	as.mu.Lock()
	if s.gen.Load() == gen {
		if len(as.entries) >= s.perShard {
			as.evict(now, s)
		}
		as.entries[id] = accountEntry{acct: acct, change: change, filled: now}
		// Only a cached account is findable by its change, so the
		// changes never outnumber the entries.
		cs := &s.changes[change[0]%shardCount]
		cs.mu.Lock()
		cs.ids[change] = id
		cs.mu.Unlock()
	}
	as.mu.Unlock()
	if err != nil {
		return nil, apikey.ErrNotFound
	}
	return acct, nil
}

// evict makes room in a full shard: expired entries first, else one
// arbitrary entry. as.mu must be held.
func (as *accountShard) evict(now int64, s *Store) {
	for id, e := range as.entries {
		if len(as.entries) < s.perShard && now-e.filled < s.lifetime(e.acct == nil) {
			continue
		}
		delete(as.entries, id)
		cs := &s.changes[e.change[0]%shardCount]
		cs.mu.Lock()
		delete(cs.ids, e.change)
		cs.mu.Unlock()
	}
}

// PutAccount implements [apikey.AccountStore] for a store behind that
// does, and drops the account from this cache whatever the outcome: a
// refused change most likely started from a stale copy.
func (s *Store) PutAccount(ctx context.Context, prev, next *apikey.Account) error {
	inner, ok := s.inner.(apikey.AccountStore)
	if !ok {
		return errNoAccounts
	}
	err := inner.PutAccount(ctx, prev, next)
	s.invalidate(AccountChange(next.ID))
	return err
}

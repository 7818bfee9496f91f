package cachestore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"

	"github.com/keygate/keygate/apikey"
)

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
	filled int64 // unix nanoseconds
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
	as.mu.Lock()
	if s.gen.Load() == gen {
		if len(as.entries) >= s.perShard {
			as.evict(now, s)
		}
		as.entries[id] = accountEntry{acct: acct, filled: now}
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
	s.invalidateAccount(next.ID)
	return err
}

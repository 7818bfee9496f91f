package memstore

import (
	"context"

	"github.com/keygate/keygate/apikey"
)

var _ apikey.AccountStore = (*Store)(nil)

// Account implements [apikey.AccountStore].
func (s *Store) Account(_ context.Context, id string) (*apikey.Account, error) {
	s.mu.RLock()
	a := s.accounts[id]
	s.mu.RUnlock()
	if a == nil {
		return nil, apikey.ErrNotFound
	}
	return a, nil
}

// PutAccount implements [apikey.AccountStore].
func (s *Store) PutAccount(_ context.Context, prev, next *apikey.Account) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.accounts[next.ID]
	switch {
	case prev == nil && cur != nil:
		return apikey.ErrDuplicate
	case prev != nil && cur == nil:
		return apikey.ErrNotFound
	case prev != nil && cur.Version != prev.Version:
		return apikey.ErrConflict
	}
	s.accounts[next.ID] = next
	return nil
}

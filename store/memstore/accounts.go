package memstore

import (
	"context"

	"github.com/keygate/keygate/apikey"
)

var _ apikey.AccountStore = (*Store)(nil)

// Account implements [apikey.AccountStore]. It takes no lock.
func (s *Store) Account(_ context.Context, id string) (*apikey.Account, error) {
	if a, ok := s.accounts.Load(id); ok {
		return a.(*apikey.Account), nil
	}
	return nil, apikey.ErrNotFound
}

// PutAccount implements [apikey.AccountStore].
func (s *Store) PutAccount(_ context.Context, prev, next *apikey.Account) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, exists := s.accounts.Load(next.ID)
	switch {
	case prev == nil && exists:
		return apikey.ErrDuplicate
	case prev != nil && !exists:
		return apikey.ErrNotFound
	case prev != nil && cur.(*apikey.Account).Version != prev.Version:
		return apikey.ErrConflict
	}
	s.accounts.Store(next.ID, next)
	return nil
}

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
func (s *Store) PutAccount(_ context.Context, a *apikey.Account, create bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, exists := s.accounts.Load(a.ID)
	switch {
	case create && exists:
		return apikey.ErrDuplicate
	case !create && !exists:
		return apikey.ErrNotFound
	}
	s.accounts.Store(a.ID, a)
	return nil
}

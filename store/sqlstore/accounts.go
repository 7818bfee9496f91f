package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store/cachestore"
)

var _ apikey.AccountStore = (*Store)(nil)

// Account implements [apikey.AccountStore]: one query on the primary key.
func (s *Store) Account(ctx context.Context, id string) (*apikey.Account, error) {
	var data string
	err := s.db.QueryRowContext(ctx, s.bind("SELECT record FROM keygate_accounts WHERE id = ?"), id).Scan(&data)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, apikey.ErrNotFound
	case err != nil:
		return nil, wrap("account", err)
	}
	a := &apikey.Account{}
	if err := json.Unmarshal([]byte(data), a); err != nil || a.ID != id {
		return nil, fmt.Errorf("sqlstore: account %q: a corrupt row", id)
	}
	return a, nil
}

// PutAccount implements [apikey.AccountStore] in one transaction, which
// also records the change in the feed that caches on every instance
// follow. A create is a plain INSERT, so that concurrent creates queue on
// the primary key alone.
func (s *Store) PutAccount(ctx context.Context, a *apikey.Account, create bool) error {
	data, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("sqlstore: encode account %q: %w", a.ID, err)
	}
	return s.tx(ctx, "put account", func(tx *sql.Tx) error {
		if create {
			if _, err := tx.ExecContext(ctx, s.bind("INSERT INTO keygate_accounts (id, record) VALUES (?, ?)"), a.ID, string(data)); err != nil {
				return &lostInsert{err: wrap("put account", err), exists: func(ctx context.Context) bool {
					_, err := s.Account(ctx, a.ID)
					return err == nil
				}}
			}
		} else {
			var got string
			err := tx.QueryRowContext(ctx, s.bind("SELECT id FROM keygate_accounts WHERE id = ?"+s.forUpdate()), a.ID).Scan(&got)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return apikey.ErrNotFound
			case err != nil:
				return wrap("put account", err)
			}
			if _, err := tx.ExecContext(ctx, s.bind("UPDATE keygate_accounts SET record = ? WHERE id = ?"), string(data), a.ID); err != nil {
				return wrap("put account", err)
			}
		}
		return s.changed(ctx, tx, cachestore.AccountChange(a.ID))
	})
}

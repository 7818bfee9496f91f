package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keygate/keygate/apikey"
)

var _ apikey.AccountStore = (*Store)(nil)

// Account implements [apikey.AccountStore]: one query on the primary key.
func (s *Store) Account(ctx context.Context, id string) (*apikey.Account, error) {
	var data string
	err := s.read(ctx, func(ctx context.Context) error {
		err := s.db.QueryRowContext(ctx, s.bind("SELECT record FROM keygate_accounts WHERE id = ?"), id).Scan(&data)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return apikey.ErrNotFound
		case err != nil:
			return wrap("account", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
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
// the primary key alone; a change locks the row, then compares the stored
// version with prev's.
func (s *Store) PutAccount(ctx context.Context, prev, next *apikey.Account) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	data, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("sqlstore: encode account %q: %w", next.ID, err)
	}
	return s.tx(ctx, "put account", func(tx *sql.Tx) error {
		if prev == nil {
			if _, err := tx.ExecContext(ctx, s.bind("INSERT INTO keygate_accounts (id, record) VALUES (?, ?)"), next.ID, string(data)); err != nil {
				return &lostInsert{err: wrap("put account", err), exists: func(ctx context.Context) bool {
					_, err := s.Account(ctx, next.ID)
					return err == nil
				}}
			}
		} else {
			var stored string
			err := tx.QueryRowContext(ctx, s.bind("SELECT record FROM keygate_accounts WHERE id = ?"+s.forUpdate()), next.ID).Scan(&stored)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return apikey.ErrNotFound
			case err != nil:
				return wrap("put account", err)
			}
			var cur struct{ Version int64 }
			if err := json.Unmarshal([]byte(stored), &cur); err != nil {
				return fmt.Errorf("sqlstore: account %q: a corrupt row", next.ID)
			}
			if cur.Version != prev.Version {
				return apikey.ErrConflict
			}
			if _, err := tx.ExecContext(ctx, s.bind("UPDATE keygate_accounts SET record = ? WHERE id = ?"), string(data), next.ID); err != nil {
				return wrap("put account", err)
			}
		}
		return s.accountChanged(ctx, tx, next.ID)
	})
}

package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/keygate/keygate/apikey"
)

var _ apikey.ChangeFeed = (*Store)(nil)

// Rows of the change feed are read back this far, since a transaction
// can commit after one that took a later sequence number, and kept this
// long.
const (
	feedLookback  = 30 * time.Second
	feedRetention = time.Hour
)

// changed records in tx that the key of hash changed, for the other
// instances' caches.
func (s *Store) changed(ctx context.Context, tx *sql.Tx, hash apikey.Hash) error {
	return s.feed(ctx, tx, hash, "")
}

// accountChanged records in tx that account id changed.
func (s *Store) accountChanged(ctx context.Context, tx *sql.Tx, id string) error {
	return s.feed(ctx, tx, apikey.Hash{}, id)
}

func (s *Store) feed(ctx context.Context, tx *sql.Tx, hash apikey.Hash, account string) error {
	if _, err := tx.ExecContext(ctx, s.bind("INSERT INTO keygate_changes (hash, account, at) VALUES (?, ?, ?)"),
		hash[:], account, time.Now().UnixMicro()); err != nil {
		return wrap("record the change", err)
	}
	return nil
}

// WatchChanges implements [apikey.ChangeFeed] by polling the change
// table every [Config].PollInterval: a key or an account changed through
// any Store on the database is reported within about that interval.
// healthy reports each poll that fails (false) and the first that
// succeeds after (true). It returns nil when ctx ends.
func (s *Store) WatchChanges(ctx context.Context, keyChanged func(apikey.Hash), accountChanged func(string), healthy func(bool)) error {
	t := time.NewTicker(s.pollInterval)
	defer t.Stop()
	seen := map[int64]int64{} // seq -> at, of the rows read within the lookback
	up := false
	lastPurge := time.Time{}
	for {
		err := s.poll(ctx, seen, keyChanged, accountChanged)
		if (err == nil) != up {
			up = err == nil
			healthy(up)
		}
		if up && time.Since(lastPurge) > time.Minute {
			lastPurge = time.Now()
			pctx, cancel := s.bound(ctx)
			_, _ = s.db.ExecContext(pctx, s.bind("DELETE FROM keygate_changes WHERE at < ?"), time.Now().Add(-feedRetention).UnixMicro())
			cancel()
		}
		select {
		case <-ctx.Done():
			if up {
				healthy(false)
			}
			return nil
		case <-t.C:
		}
	}
}

// poll reads the changes of the lookback window it has not seen.
func (s *Store) poll(ctx context.Context, seen map[int64]int64, keyChanged func(apikey.Hash), accountChanged func(string)) error {
	pctx, cancel := context.WithTimeout(ctx, max(s.pollInterval, time.Second))
	defer cancel()
	since := time.Now().Add(-feedLookback).UnixMicro()
	rows, err := s.db.QueryContext(pctx, s.bind("SELECT seq, hash, account, at FROM keygate_changes WHERE at >= ?"), since)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq, at int64
		var hash []byte
		var account string
		if err := rows.Scan(&seq, &hash, &account, &at); err != nil {
			return err
		}
		if _, ok := seen[seq]; ok {
			continue
		}
		seen[seq] = at
		switch {
		case account != "":
			accountChanged(account)
		case len(hash) == len(apikey.Hash{}):
			keyChanged(apikey.Hash(hash))
		}
	}
	for seq, at := range seen {
		if at < since {
			delete(seen, seq)
		}
	}
	return rows.Err()
}

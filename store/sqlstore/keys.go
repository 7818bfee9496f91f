package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
)

// tx runs fn in a transaction, committed when fn returns nil, and
// reports a [lostInsert] of a row that exists as [apikey.ErrDuplicate].
func (s *Store) tx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	err := s.run(ctx, op, fn)
	var lost *lostInsert
	if errors.As(err, &lost) && lost.exists(ctx) {
		return apikey.ErrDuplicate
	}
	return err
}

// lostInsert is an INSERT that failed, most likely on a unique key that
// a concurrent transaction took. [Store.tx] tells a duplicate (exists
// reports the row) from a fault once the transaction has ended: asked
// inside it, the question would wait for a second connection while
// holding one, and a busy pool would run dry.
type lostInsert struct {
	err    error
	exists func(ctx context.Context) bool
}

func (e *lostInsert) Error() string { return e.err.Error() }
func (e *lostInsert) Unwrap() error { return e.err }

// run runs fn in a transaction, committed when fn succeeds. PostgreSQL
// and MySQL run it at READ COMMITTED, so that a count made after a lock
// sees what the transaction before it committed.
func (s *Store) run(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	var opts *sql.TxOptions
	if s.dialect != SQLite {
		opts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return wrap(op, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return wrap(op, err)
	}
	return nil
}

// forUpdate locks the rows a SELECT reads until the transaction ends;
// SQLite's transactions hold the write lock from their start instead.
func (s *Store) forUpdate() string {
	if s.dialect == SQLite {
		return ""
	}
	return " FOR UPDATE"
}

// addOwner creates owner's row, which lockOwner locks. It runs before
// the transaction and outside it: two transactions inserting the row
// would each hold a shared lock on it and deadlock on the exclusive one.
func (s *Store) addOwner(ctx context.Context, owner string) error {
	insert := "INSERT INTO keygate_owners (owner) VALUES (?) ON CONFLICT DO NOTHING"
	if s.dialect == MySQL {
		insert = "INSERT IGNORE INTO keygate_owners (owner) VALUES (?)"
	}
	if _, err := s.db.ExecContext(ctx, s.bind(insert), owner); err != nil {
		return wrap("add owner", err)
	}
	return nil
}

// lockOwner takes owner's row lock (see addOwner) for the rest of tx, so
// that transactions that count the owner's active keys run one at a
// time.
func (s *Store) lockOwner(ctx context.Context, tx *sql.Tx, owner string) error {
	var got string
	if err := tx.QueryRowContext(ctx, s.bind("SELECT owner FROM keygate_owners WHERE owner = ?"+s.forUpdate()), owner).Scan(&got); err != nil {
		return wrap("lock owner", err)
	}
	return nil
}

// atLimit reports whether owner has maxActive (when positive) active
// keys at now.
func (s *Store) atLimit(ctx context.Context, tx *sql.Tx, owner string, maxActive int, now time.Time) (bool, error) {
	if maxActive <= 0 {
		return false, nil
	}
	var n int
	err := tx.QueryRowContext(ctx, s.bind(
		"SELECT COUNT(*) FROM keygate_keys WHERE owner = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)"),
		owner, now.UnixMicro()).Scan(&n)
	if err != nil {
		return false, wrap("count active keys", err)
	}
	return n >= maxActive, nil
}

// insert stores rec in tx, or fails with [apikey.ErrDuplicate].
func (s *Store) insert(ctx context.Context, tx *sql.Tx, rec *apikey.Record) error {
	var n int
	if err := tx.QueryRowContext(ctx, s.bind("SELECT COUNT(*) FROM keygate_keys WHERE id = ? OR hash = ?"), rec.ID, rec.Hash[:]).Scan(&n); err != nil {
		return wrap("insert", err)
	}
	if n > 0 {
		return apikey.ErrDuplicate
	}
	data, err := json.Marshal(rec.Key)
	if err != nil {
		return fmt.Errorf("sqlstore: encode record %s: %w", rec.ID, err)
	}
	_, err = tx.ExecContext(ctx, s.bind(
		"INSERT INTO keygate_keys (id, owner, hash, hash_version, created_at, expires_at, revoked_at, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
		rec.ID, rec.Owner, rec.Hash[:], rec.HashVersion, rec.CreatedAt.UnixMicro(),
		micros(rec.ExpiresAt, true), micros(rec.RevokedAt, false), string(data))
	if err != nil {
		return &lostInsert{err: wrap("insert", err), exists: func(ctx context.Context) bool {
			_, err := s.Get(ctx, rec.ID)
			return err == nil
		}}
	}
	return nil
}

// update writes rec, a changed copy of a stored record, in tx.
func (s *Store) update(ctx context.Context, tx *sql.Tx, rec *apikey.Record) error {
	data, err := json.Marshal(rec.Key)
	if err != nil {
		return fmt.Errorf("sqlstore: encode record %s: %w", rec.ID, err)
	}
	_, err = tx.ExecContext(ctx, s.bind("UPDATE keygate_keys SET expires_at = ?, revoked_at = ?, record = ? WHERE id = ?"),
		micros(rec.ExpiresAt, true), micros(rec.RevokedAt, false), string(data), rec.ID)
	if err != nil {
		return wrap("update", err)
	}
	return nil
}

// Create implements [apikey.Store]: the limit check and the insert are
// one transaction, behind the owner's row lock.
func (s *Store) Create(ctx context.Context, rec *apikey.Record, maxActive int, now time.Time, ev *event.Event) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if maxActive > 0 {
		if err := s.addOwner(ctx, rec.Owner); err != nil {
			return err
		}
	}
	return s.tx(ctx, "create", func(tx *sql.Tx) error {
		if maxActive > 0 {
			if err := s.lockOwner(ctx, tx, rec.Owner); err != nil {
				return err
			}
			if full, err := s.atLimit(ctx, tx, rec.Owner, maxActive, now); err != nil || full {
				if full {
					return apikey.ErrTooManyKeys
				}
				return err
			}
		}
		if err := s.insert(ctx, tx, rec); err != nil {
			return err
		}
		return s.record(ctx, tx, ev)
	})
}

// Lookup implements [apikey.Store] with one query on the hash index.
func (s *Store) Lookup(ctx context.Context, hash apikey.Hash, route string) (*apikey.Record, error) {
	var rec *apikey.Record
	err := s.read(ctx, func(ctx context.Context) (err error) {
		rec, err = s.one(ctx, s.db, "lookup", "hash = ?", hash[:])
		return err
	})
	if err == nil && rec.Hash != hash {
		return nil, fmt.Errorf("%w: stored under another hash", errCorrupt)
	}
	return rec, err
}

// Get implements [apikey.Store].
func (s *Store) Get(ctx context.Context, id string) (*apikey.Record, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.one(ctx, s.db, "get", "id = ?", id)
}

// GetOwned returns owner's record id, or [apikey.ErrNotFound] for an
// unknown ID and another owner's alike, with one query (see
// [apikey.Store]).
func (s *Store) GetOwned(ctx context.Context, owner, id string) (*apikey.Record, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.one(ctx, s.db, "get", "id = ? AND owner = ?", id, owner)
}

// List implements [apikey.Store].
func (s *Store) List(ctx context.Context, owner string) ([]*apikey.Record, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.many(ctx, "list", "owner = ?", func(r *apikey.Record) time.Time { return r.CreatedAt }, owner)
}

// Expiring implements [apikey.Store].
func (s *Store) Expiring(ctx context.Context, from, to time.Time) ([]*apikey.Record, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	recs, err := s.many(ctx, "expiring", "revoked_at IS NULL AND expires_at >= ? AND expires_at <= ?",
		func(r *apikey.Record) time.Time { return r.ExpiresAt }, from.UnixMicro(), to.UnixMicro()+1)
	if err != nil {
		return nil, err
	}
	kept := recs[:0]
	for _, rec := range recs {
		if rec.ExpiresWithin(from, to) { // the columns hold rounded microseconds
			kept = append(kept, rec)
		}
	}
	return kept, nil
}

// Revoke implements [apikey.Store].
func (s *Store) Revoke(ctx context.Context, id string, at time.Time, ev *event.Event) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.tx(ctx, "revoke", func(tx *sql.Tx) error {
		rec, err := s.one(ctx, tx, "revoke", "id = ?"+s.forUpdate(), id)
		if err != nil || !rec.RevokedAt.IsZero() {
			return err
		}
		rec.RevokedAt = at
		if err := s.update(ctx, tx, rec); err != nil {
			return err
		}
		if err := s.changed(ctx, tx, rec.Hash); err != nil {
			return err
		}
		return s.record(ctx, tx, ev)
	})
}

// Update implements [apikey.Store]: a compare-and-set under the record's
// row lock.
func (s *Store) Update(ctx context.Context, prev, next *apikey.Record, ev *event.Event) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.tx(ctx, "update", func(tx *sql.Tx) error {
		cur, err := s.one(ctx, tx, "update", "id = ?"+s.forUpdate(), next.ID)
		if err != nil {
			return err
		}
		if !cur.Same(prev) {
			return apikey.ErrConflict
		}
		if err := s.update(ctx, tx, next); err != nil {
			return err
		}
		if err := s.changed(ctx, tx, cur.Hash); err != nil {
			return err
		}
		return s.record(ctx, tx, ev)
	})
}

// Rotate implements [apikey.Store] in one transaction: the owner's row
// lock when the limit must be checked, then the old record's.
func (s *Store) Rotate(ctx context.Context, prev *apikey.Record, retireAt time.Time, replacement *apikey.Record, maxActive int, now time.Time, ev *event.Event) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if !retireAt.After(now) {
		maxActive = 0 // the old key stops counting at once: no check
	}
	if maxActive > 0 {
		if err := s.addOwner(ctx, replacement.Owner); err != nil {
			return err
		}
	}
	return s.tx(ctx, "rotate", func(tx *sql.Tx) error {
		if maxActive > 0 {
			if err := s.lockOwner(ctx, tx, replacement.Owner); err != nil {
				return err
			}
		}
		old, err := s.one(ctx, tx, "rotate", "id = ?"+s.forUpdate(), prev.ID)
		if err != nil {
			return err
		}
		if err := old.Retire(prev, replacement.ID, retireAt); err != nil {
			return err
		}
		// Counted with the old key still active: during a grace period
		// both verify.
		if full, err := s.atLimit(ctx, tx, old.Owner, maxActive, now); err != nil || full {
			if full {
				return apikey.ErrTooManyKeys
			}
			return err
		}
		if err := s.insert(ctx, tx, replacement); err != nil {
			return err
		}
		if err := s.update(ctx, tx, old); err != nil {
			return err
		}
		if err := s.changed(ctx, tx, old.Hash); err != nil {
			return err
		}
		return s.record(ctx, tx, ev)
	})
}

// Delete implements [apikey.Store]; the key's usage goes with it.
func (s *Store) Delete(ctx context.Context, id string, ev *event.Event) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.tx(ctx, "delete", func(tx *sql.Tx) error {
		rec, err := s.one(ctx, tx, "delete", "id = ?"+s.forUpdate(), id)
		if err != nil {
			return err
		}
		return s.remove(ctx, tx, rec, ev)
	})
}

// remove deletes rec and its usage in tx, with the event ev.
func (s *Store) remove(ctx context.Context, tx *sql.Tx, rec *apikey.Record, ev *event.Event) error {
	if _, err := tx.ExecContext(ctx, s.bind("DELETE FROM keygate_keys WHERE id = ?"), rec.ID); err != nil {
		return wrap("delete", err)
	}
	if err := s.changed(ctx, tx, rec.Hash); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.bind("DELETE FROM keygate_usage_counts WHERE key_id = ?"), rec.ID); err != nil {
		return wrap("delete", err)
	}
	return s.record(ctx, tx, ev)
}

// Purge implements [apikey.Store]: each record is deleted in its own
// transaction, under its row lock, if it is still there and still ended
// before cutoff.
func (s *Store) Purge(ctx context.Context, cutoff time.Time, limit int, ev *event.Event) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	us := cutoff.UnixMicro()
	rows, err := s.db.QueryContext(ctx, s.bind(
		"SELECT id FROM keygate_keys WHERE revoked_at < ? OR expires_at < ? ORDER BY id LIMIT ?"), us, us, limit)
	if err != nil {
		return 0, wrap("purge", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, wrap("purge", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, wrap("purge", err)
	}
	n := 0
	for _, id := range ids {
		err := s.tx(ctx, "purge", func(tx *sql.Tx) error {
			rec, err := s.one(ctx, tx, "purge", "id = ?"+s.forUpdate(), id)
			if err != nil {
				return err
			}
			if end := rec.EndedAt(); end.IsZero() || !end.Before(cutoff) {
				return apikey.ErrNotFound // changed since: not purged
			}
			var e *event.Event
			if ev != nil {
				e = new(*ev)
				e.KeyID, e.Account = rec.ID, rec.Owner
			}
			return s.remove(ctx, tx, rec, e)
		})
		switch {
		case err == nil:
			n++
		case !errors.Is(err, apikey.ErrNotFound): // another purge was first
			return n, err
		}
	}
	return n, nil
}

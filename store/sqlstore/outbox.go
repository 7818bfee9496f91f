package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/apikey/event"
)

var _ event.Outbox = (*Store)(nil)

// errNoOutbox is the error of the outbox's calls on a store without
// Config.Outbox.
var errNoOutbox = errors.New("sqlstore: the outbox is off (set Config.Outbox)")

// recordForDelivery inserts ev (as data) into the audit trail with
// insert, and into the outbox with the audit event's seq as its ID.
func (s *Store) recordForDelivery(ctx context.Context, tx *sql.Tx, insert string, ev *event.Event, data string, at int64) error {
	var seq int64
	if s.dialect == Postgres {
		if err := tx.QueryRowContext(ctx, s.bind(insert+" RETURNING seq"), ev.Account, ev.KeyID, data, at).Scan(&seq); err != nil {
			return wrap("record the event", err)
		}
	} else {
		res, err := tx.ExecContext(ctx, s.bind(insert), ev.Account, ev.KeyID, data, at)
		if err != nil {
			return wrap("record the event", err)
		}
		if seq, err = res.LastInsertId(); err != nil {
			return wrap("record the event", err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.bind("INSERT INTO keygate_outbox (event_seq, account, key_id, event, due_at) VALUES (?, ?, ?, ?, ?)"),
		seq, ev.Account, ev.KeyID, data, at); err != nil {
		return wrap("record the event for delivery", err)
	}
	return nil
}

// Lease implements [event.Outbox]: it picks the oldest event of each key
// that is due, then leases those still due in one conditional update, so
// that of two instances leasing at once each gets what the other did
// not.
func (s *Store) Lease(ctx context.Context, now time.Time, n int, ttl time.Duration) ([]event.Delivery, error) {
	if !s.outbox {
		return nil, errNoOutbox
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	due := now.UnixMicro()
	rows, err := s.db.QueryContext(ctx, s.bind(`SELECT seq FROM keygate_outbox o WHERE due_at <= ?
		AND NOT EXISTS (SELECT 1 FROM keygate_outbox p WHERE p.account = o.account AND p.key_id = o.key_id AND p.seq < o.seq)
		ORDER BY seq LIMIT ?`), due, n)
	if err != nil {
		return nil, wrap("lease events", err)
	}
	var seqs []any
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			rows.Close()
			return nil, wrap("lease events", err)
		}
		seqs = append(seqs, seq)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrap("lease events", err)
	}
	if len(seqs) == 0 {
		return nil, nil
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	lease := hex.EncodeToString(b[:])
	args := append([]any{now.Add(ttl).UnixMicro(), lease}, seqs...)
	args = append(args, due)
	if _, err := s.db.ExecContext(ctx, s.bind("UPDATE keygate_outbox SET due_at = ?, lease = ? WHERE seq IN (?"+strings.Repeat(", ?", len(seqs)-1)+") AND due_at <= ?"), args...); err != nil {
		return nil, wrap("lease events", err)
	}
	rows, err = s.db.QueryContext(ctx, s.bind("SELECT event_seq, event, attempts FROM keygate_outbox WHERE lease = ? ORDER BY seq"), lease)
	if err != nil {
		return nil, wrap("lease events", err)
	}
	defer rows.Close()
	var out []event.Delivery
	for rows.Next() {
		var seq int64
		var data string
		var d event.Delivery
		if err := rows.Scan(&seq, &data, &d.Attempts); err != nil {
			return nil, wrap("lease events", err)
		}
		if err := json.Unmarshal([]byte(data), &d.Event); err != nil {
			return nil, fmt.Errorf("sqlstore: a corrupt event %d in the outbox: %w", seq, err)
		}
		d.Event.ID, d.Lease = strconv.FormatInt(seq, 10), lease+":"+strconv.FormatInt(seq, 10)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("lease events", err)
	}
	return out, nil
}

// Settle implements [event.Outbox].
func (s *Store) Settle(ctx context.Context, d *event.Delivery, done bool, retry time.Time) error {
	if !s.outbox {
		return errNoOutbox
	}
	lease, seq, ok := strings.Cut(d.Lease, ":")
	if !ok {
		return fmt.Errorf("sqlstore: %q is not a lease of this store", d.Lease)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var err error
	if done {
		_, err = s.db.ExecContext(ctx, s.bind("DELETE FROM keygate_outbox WHERE event_seq = ? AND lease = ?"), seq, lease)
	} else {
		_, err = s.db.ExecContext(ctx, s.bind("UPDATE keygate_outbox SET due_at = ?, attempts = attempts + 1, lease = '' WHERE event_seq = ? AND lease = ?"),
			retry.UnixMicro(), seq, lease)
	}
	if err != nil {
		return wrap("settle a delivery", err)
	}
	return nil
}

var _ event.DeliveryLog = (*Store)(nil)

// LogAttempt implements [event.DeliveryLog].
func (s *Store) LogAttempt(ctx context.Context, account string, a *event.Attempt) error {
	data, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("sqlstore: encode an attempt: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.run(ctx, "log an attempt", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.bind("INSERT INTO keygate_deliveries (account, endpoint, attempt) VALUES (?, ?, ?)"), account, a.Endpoint, string(data)); err != nil {
			return wrap("log an attempt", err)
		}
		var oldest int64
		err := tx.QueryRowContext(ctx, s.bind("SELECT seq FROM keygate_deliveries WHERE account = ? AND endpoint = ? ORDER BY seq DESC LIMIT 1 OFFSET ?"),
			account, a.Endpoint, event.MaxAttempts).Scan(&oldest)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return nil
		case err != nil:
			return wrap("trim the delivery log", err)
		}
		if _, err := tx.ExecContext(ctx, s.bind("DELETE FROM keygate_deliveries WHERE account = ? AND endpoint = ? AND seq <= ?"), account, a.Endpoint, oldest); err != nil {
			return wrap("trim the delivery log", err)
		}
		return nil
	})
}

// Attempts implements [event.DeliveryLog].
func (s *Store) Attempts(ctx context.Context, account, endpoint string) ([]event.Attempt, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, s.bind("SELECT attempt FROM keygate_deliveries WHERE account = ? AND endpoint = ? ORDER BY seq DESC LIMIT ?"),
		account, endpoint, event.MaxAttempts)
	if err != nil {
		return nil, wrap("delivery log", err)
	}
	defer rows.Close()
	out := []event.Attempt{}
	for rows.Next() {
		var data string
		var a event.Attempt
		if err := rows.Scan(&data); err != nil {
			return nil, wrap("delivery log", err)
		}
		if err := json.Unmarshal([]byte(data), &a); err != nil {
			return nil, fmt.Errorf("sqlstore: a corrupt delivery attempt: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("delivery log", err)
	}
	return out, nil
}

package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
)

var _ event.Store = (*Store)(nil)

// record inserts ev in tx, and drops the account's events older than
// the retention before it and, past [event.PerKey] of its key,
// that key's oldest.
func (s *Store) record(ctx context.Context, tx *sql.Tx, ev *event.Event) error {
	if ev == nil {
		return nil
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("sqlstore: encode event: %w", err)
	}
	at := ev.At.UnixMicro()
	insert := "INSERT INTO keygate_events (account, key_id, event, at) VALUES (?, ?, ?, ?)"
	if !s.outbox {
		if _, err := tx.ExecContext(ctx, s.bind(insert), ev.Account, ev.KeyID, string(data), at); err != nil {
			return wrap("record the event", err)
		}
	} else if err := s.recordForDelivery(ctx, tx, insert, ev, string(data), at); err != nil {
		return err
	}
	// at 0: written before events had a time; the bound per key drops them.
	if _, err := tx.ExecContext(ctx, s.bind("DELETE FROM keygate_events WHERE account = ? AND at > 0 AND at < ?"),
		ev.Account, ev.At.Add(-s.eventRetention).UnixMicro()); err != nil {
		return wrap("trim the events", err)
	}
	var oldest int64
	err = tx.QueryRowContext(ctx, s.bind("SELECT seq FROM keygate_events WHERE account = ? AND key_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?"),
		ev.Account, ev.KeyID, event.PerKey).Scan(&oldest)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return wrap("trim the events", err)
	}
	if _, err := tx.ExecContext(ctx, s.bind("DELETE FROM keygate_events WHERE account = ? AND key_id = ? AND seq <= ?"), ev.Account, ev.KeyID, oldest); err != nil {
		return wrap("trim the events", err)
	}
	return nil
}

// Events implements [event.Store]; an event's ID is its row's
// sequence number.
func (s *Store) Events(ctx context.Context, account, keyID, before string, limit int) ([]event.Event, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	query, args := "SELECT seq, event FROM keygate_events WHERE account = ?", []any{account}
	if keyID != "" {
		query, args = query+" AND key_id = ?", append(args, keyID)
	}
	if before != "" {
		seq, err := strconv.ParseInt(before, 10, 64)
		if err != nil || seq <= 0 {
			return nil, &apikey.InputError{Field: "cursor", Reason: "is not an event ID"}
		}
		query, args = query+" AND seq < ?", append(args, seq)
	}
	rows, err := s.db.QueryContext(ctx, s.bind(query+" ORDER BY seq DESC LIMIT ?"), append(args, limit)...)
	if err != nil {
		return nil, wrap("events", err)
	}
	defer rows.Close()
	out := []event.Event{}
	for rows.Next() {
		var seq int64
		var data string
		if err := rows.Scan(&seq, &data); err != nil {
			return nil, wrap("events", err)
		}
		var e event.Event
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return nil, fmt.Errorf("%w: event %d: %w", errCorrupt, seq, err)
		}
		e.ID = strconv.FormatInt(seq, 10)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("events", err)
	}
	return out, nil
}

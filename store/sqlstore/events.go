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

var _ event.Facts = (*Store)(nil)

// errClaimed ends the transaction of a fact claimed before.
var errClaimed = errors.New("claimed")

// Once implements [event.Facts]: the claim is a row of keygate_facts,
// inserted unless it exists, and the event is recorded in the same
// transaction; claims older than the retention go then too.
func (s *Store) Once(ctx context.Context, fact string, ev *event.Event) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	insert := "INSERT INTO keygate_facts (fact, at) VALUES (?, ?) ON CONFLICT (fact) DO NOTHING"
	if s.dialect == MySQL {
		insert = "INSERT INTO keygate_facts (fact, at) VALUES (?, ?) ON DUPLICATE KEY UPDATE fact = fact"
	}
	err := s.run(ctx, "record a fact", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.bind(insert), fact, ev.At.UnixMicro())
		if err != nil {
			return wrap("claim a fact", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return wrap("claim a fact", err)
		} else if n != 1 {
			return errClaimed
		}
		if _, err := tx.ExecContext(ctx, s.bind("DELETE FROM keygate_facts WHERE at < ?"), ev.At.Add(-s.eventRetention).UnixMicro()); err != nil {
			return wrap("trim the facts", err)
		}
		return s.record(ctx, tx, ev)
	})
	if errors.Is(err, errClaimed) {
		return false, nil
	}
	return err == nil, err
}

package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
)

// Purge implements [apikey.Store]: it takes candidates from the expiry
// and revoked sets and deletes each record, as [Store.Delete] does, if it
// still ended before cutoff; an entry that no longer matches its record
// is corrected. Records revoked before the revoked set existed are not in
// it: delete those with [Store.Delete].
func (s *Store) Purge(ctx context.Context, cutoff time.Time, limit int, ev *event.Event) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ids := make([]string, 0, limit)
	for _, set := range []string{s.expKey(), s.revKey()} {
		found, err := s.client.ZRangeByScore(ctx, set, &redis.ZRangeBy{Min: "-inf", Max: "(" + micros(cutoff), Count: int64(limit - len(ids))}).Result()
		if err != nil {
			return 0, wrap("purge", err)
		}
		ids = append(ids, found...)
		if len(ids) == limit {
			break
		}
	}
	n := 0
	for _, id := range ids {
		var kept *apikey.Record // read, and not to be purged: its set entries are stale
		purged, err := s.run(ctx, change{op: "purge", id: id, delete: true, ev: ev, apply: func(rec *apikey.Record) (bool, error) {
			if end := rec.EndedAt(); !end.IsZero() && end.Before(cutoff) {
				return true, nil
			}
			kept = rec
			return false, nil
		}})
		switch {
		case purged:
			n++
		case errors.Is(err, apikey.ErrNotFound):
			kept, err = nil, nil
			fallthrough
		case err == nil:
			if err := s.reindex(ctx, id, kept); err != nil {
				return n, wrap("purge", err)
			}
		default:
			return n, err
		}
	}
	return n, nil
}

// reindex corrects the set entries of id from its record rec, nil when
// it no longer exists.
func (s *Store) reindex(ctx context.Context, id string, rec *apikey.Record) error {
	if rec == nil || rec.RevokedAt.IsZero() {
		if err := s.client.ZRem(ctx, s.revKey(), id).Err(); err != nil {
			return err
		}
	}
	if rec == nil {
		return s.client.ZRem(ctx, s.expKey(), id).Err()
	}
	s.cleanup(ctx, nil, rec, false)
	return s.index(ctx, nil, rec)
}

var _ event.Store = (*Store)(nil)

// eventCursor returns the exclusive end of a page before the event ID
// before: a Redis stream entry's ID, two 64-bit numbers of which the
// first (milliseconds) is not 0, since no entry has ID 0-0.
func eventCursor(before string) (string, error) {
	ms, seq, ok := strings.Cut(before, "-")
	n, errMs := strconv.ParseUint(ms, 10, 64)
	_, errSeq := strconv.ParseUint(seq, 10, 64)
	if !ok || errMs != nil || errSeq != nil || n == 0 {
		return "", &apikey.InputError{Field: "cursor", Reason: "is not an event ID"}
	}
	return "(" + before, nil
}

// Events implements [event.Store]: it reads the account's stream
// from the newest entry down, skipping other keys' events when keyID is
// set.
func (s *Store) Events(ctx context.Context, account, keyID, before string, limit int) ([]event.Event, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	end := "+"
	if before != "" {
		var err error
		if end, err = eventCursor(before); err != nil {
			return nil, err
		}
	}
	out := []event.Event{}
	for len(out) < limit {
		batch := max(limit-len(out), 100)
		msgs, err := s.client.XRevRangeN(ctx, s.eventKey(account), end, "-", int64(batch)).Result()
		if err != nil {
			return nil, wrap("events", err)
		}
		for _, m := range msgs {
			k, _ := m.Values["k"].(string)
			if keyID != "" && k != keyID {
				continue
			}
			data, _ := m.Values["e"].(string)
			var e event.Event
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				return nil, fmt.Errorf("redisstore: corrupt event %s: %w", m.ID, err)
			}
			e.ID, e.KeyID, e.Account = m.ID, k, account
			if out = append(out, e); len(out) == limit {
				break
			}
		}
		if len(msgs) < batch {
			break
		}
		end = "(" + msgs[len(msgs)-1].ID
	}
	return out, nil
}

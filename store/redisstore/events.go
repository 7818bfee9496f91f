package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
)

// Purge implements [apikey.Store]: it takes candidates from the expiry
// and revoked sets of every slot and deletes each record, as
// [Store.Delete] does, if it still ended before cutoff; an entry that no
// longer matches its record is corrected. Records revoked before the
// revoked sets existed are not in them: delete those with
// [Store.Delete]. The sets of a master that does not answer are
// skipped: Purge deletes what the others index, then reports it.
func (s *Store) Purge(ctx context.Context, cutoff time.Time, limit int, ev *event.Event) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var found []entry
	var lost []error
	for _, kind := range []string{"exp", "rev"} {
		more, err := s.rangeSets(ctx, kind, "-inf", "("+micros(cutoff), limit-len(found))
		if err != nil {
			lost = append(lost, err)
		}
		found = append(found, more...)
		if len(found) == limit {
			break
		}
	}
	n := 0
	for _, e := range found {
		var kept *apikey.Record // read, and not to be purged: its set entries are stale
		purged, err := s.run(ctx, change{op: "purge", id: e.id, delete: true, ev: ev, apply: func(rec *apikey.Record) (bool, error) {
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
			if err := s.reindex(ctx, e, kept); err != nil {
				return n, wrap("purge", err)
			}
		default:
			return n, err
		}
	}
	if len(lost) > 0 {
		return n, wrap("purge: the indexes of a master that did not answer", errors.Join(lost...))
	}
	return n, nil
}

// reindex corrects the stale entry e from its record rec, nil when it no
// longer exists: the entry goes, and rec's entries are written again.
func (s *Store) reindex(ctx context.Context, e entry, rec *apikey.Record) error {
	if err := s.client.ZRem(ctx, e.set, e.id).Err(); err != nil {
		return err
	}
	if rec == nil {
		return nil
	}
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

var _ event.Facts = (*Store)(nil)

// Once implements [event.Facts]: one script in the account's slot
// claims the fact (a key that expires with the retention) and records
// its event.
func (s *Store) Once(ctx context.Context, fact string, ev *event.Event) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	data, err := eventJSON(ev)
	if err != nil {
		return false, err
	}
	keys := append([]string{s.account(ev.Account) + "f:" + fact}, s.eventKeys(ev.Account, ev.KeyID)...)
	args := append(append([]any{data}, s.eventArgs(ev, ev.Account)...), ev.KeyID)
	n, err := factScript.Run(ctx, s.client, keys, args...).Int()
	if err != nil {
		return false, wrap("record a fact", err)
	}
	return n == 1, nil
}

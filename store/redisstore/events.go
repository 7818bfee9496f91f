package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/keygate/keygate/apikey"
)

// Purge implements [apikey.Store] with one script per call, which
// finds the records in the expiry and revoked sets. Records revoked
// before the revoked set existed are not in it: delete those with
// [Store.Delete].
func (s *Store) Purge(ctx context.Context, cutoff time.Time, limit int, ev *apikey.Event) (int, error) {
	e := *ev
	e.KeyID, e.Account = "", ""
	data, err := eventJSON(&e)
	if err != nil {
		return 0, err
	}
	n, err := purgeScript.Run(ctx, s.client, []string{s.expKey(), s.revKey()},
		s.prefix, micros(cutoff), limit, s.channel, data, apikey.EventsKept).Int()
	if err != nil {
		return 0, wrap("purge", err)
	}
	return n, nil
}

var _ apikey.EventStore = (*Store)(nil)

// streamID is the form of a Redis stream entry's ID, an event's ID here.
var streamID = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// Events implements [apikey.EventStore]: it reads the account's stream
// from the newest entry down, skipping other keys' events when keyID is
// set.
func (s *Store) Events(ctx context.Context, account, keyID, before string, limit int) ([]apikey.Event, error) {
	end := "+"
	if before != "" {
		if !streamID.MatchString(before) {
			return nil, &apikey.InputError{Field: "cursor", Reason: "is not an event ID"}
		}
		end = "(" + before
	}
	out := []apikey.Event{}
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
			var e apikey.Event
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

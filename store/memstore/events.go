package memstore

import (
	"context"
	"maps"
	"math"
	"slices"
	"strconv"

	"github.com/keygate/keygate/apikey"
)

// record appends ev to its account's events, after dropping the
// account's events older than [apikey.EventRetention] before it and, past
// [apikey.EventsPerKey] of its key, that key's oldest. s.mu must be held.
func (s *Store) record(ev *apikey.Event) {
	if ev == nil {
		return
	}
	s.seq++
	e := *ev
	e.ID = strconv.FormatUint(s.seq, 10)
	e.Changes = maps.Clone(e.Changes)
	cutoff := e.At.Add(-apikey.EventRetention)
	evs := slices.DeleteFunc(s.events[e.Account], func(old apikey.Event) bool { return old.At.Before(cutoff) })
	n := 0
	for _, old := range evs {
		if old.KeyID == e.KeyID {
			n++
		}
	}
	if n >= apikey.EventsPerKey {
		i := slices.IndexFunc(evs, func(old apikey.Event) bool { return old.KeyID == e.KeyID })
		evs = slices.Delete(evs, i, i+1)
	}
	s.events[e.Account] = append(evs, e)
}

var _ apikey.EventStore = (*Store)(nil)

// Events implements [apikey.EventStore]; an event's ID is a decimal
// sequence number.
func (s *Store) Events(_ context.Context, account, keyID, before string, limit int) ([]apikey.Event, error) {
	var from uint64 = math.MaxUint64
	if before != "" {
		n, err := strconv.ParseUint(before, 10, 64)
		if err != nil {
			return nil, &apikey.InputError{Field: "cursor", Reason: "is not an event ID"}
		}
		from = n
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	evs := s.events[account]
	out := []apikey.Event{}
	for i := len(evs) - 1; i >= 0 && len(out) < limit; i-- {
		e := evs[i]
		if n, _ := strconv.ParseUint(e.ID, 10, 64); n < from && (keyID == "" || e.KeyID == keyID) {
			e.Changes = maps.Clone(e.Changes)
			out = append(out, e)
		}
	}
	return out, nil
}

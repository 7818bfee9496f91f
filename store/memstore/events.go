package memstore

import (
	"context"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
)

// record appends ev to its account's events, after dropping the
// account's events older than [event.Retention] before it and, past
// [event.PerKey] of its key, that key's oldest. s.mu must be held.
func (s *Store) record(ev *event.Event) {
	if ev == nil {
		return
	}
	s.seq++
	e := *ev
	e.ID = strconv.FormatUint(s.seq, 10)
	e.Changes, e.Data = maps.Clone(e.Changes), maps.Clone(e.Data)
	cutoff := e.At.Add(-event.Retention)
	evs := slices.DeleteFunc(s.events[e.Account], func(old event.Event) bool { return old.At.Before(cutoff) })
	n := 0
	for _, old := range evs {
		if old.KeyID == e.KeyID {
			n++
		}
	}
	if n >= event.PerKey {
		i := slices.IndexFunc(evs, func(old event.Event) bool { return old.KeyID == e.KeyID })
		evs = slices.Delete(evs, i, i+1)
	}
	s.events[e.Account] = append(evs, e)
}

var _ event.Store = (*Store)(nil)

// Events implements [event.Store]; an event's ID is a decimal
// sequence number.
func (s *Store) Events(_ context.Context, account, keyID, before string, limit int) ([]event.Event, error) {
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
	out := []event.Event{}
	for i := len(evs) - 1; i >= 0 && len(out) < limit; i-- {
		e := evs[i]
		if n, _ := strconv.ParseUint(e.ID, 10, 64); n < from && (keyID == "" || e.KeyID == keyID) {
			e.Changes, e.Data = maps.Clone(e.Changes), maps.Clone(e.Data)
			out = append(out, e)
		}
	}
	return out, nil
}

var _ event.Facts = (*Store)(nil)

// Once implements [event.Facts]; claims older than [event.Retention]
// go when the next fact is recorded.
func (s *Store) Once(_ context.Context, fact string, ev *event.Event) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.facts[fact]; ok {
		return false, nil
	}
	cutoff := ev.At.Add(-event.Retention)
	maps.DeleteFunc(s.facts, func(_ string, at time.Time) bool { return at.Before(cutoff) })
	s.facts[fact] = ev.At
	s.record(ev)
	return true, nil
}

var _ event.DeliveryLog = (*Store)(nil)

// LogAttempt implements [event.DeliveryLog].
func (s *Store) LogAttempt(_ context.Context, account string, a *event.Attempt) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{account, a.Endpoint}
	log := append([]event.Attempt{*a}, s.attempts[k]...)
	s.attempts[k] = log[:min(len(log), event.MaxAttempts)]
	return nil
}

// Attempts implements [event.DeliveryLog].
func (s *Store) Attempts(_ context.Context, account, endpoint string) ([]event.Attempt, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]event.Attempt{}, s.attempts[[2]string{account, endpoint}]...), nil
}

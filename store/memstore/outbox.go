package memstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/apikey/event"
)

var _ event.Outbox = (*Store)(nil)

// The outbox is the audit trail itself, as on Redis: an account's
// events after its cursor (the last delivered) are pending, one at a
// time per account. It costs nothing beyond the trail, which is bounded,
// so it is always on; an event trimmed from the trail before it was
// delivered (past event.PerKey of its key) is skipped.

// delivery is an account's delivery state.
type delivery struct {
	cursor   uint64    // the last event delivered
	lease    string    // the lease under way, "" for none
	due      time.Time // when the next attempt may be leased
	attempts int
}

// Lease implements [event.Outbox].
func (s *Store) Lease(_ context.Context, now time.Time, n int, ttl time.Duration) ([]event.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	var out []event.Delivery
	// In one order, so that leases go through the accounts alike.
	for _, account := range slices.Sorted(maps.Keys(s.events)) {
		if len(out) == n {
			break
		}
		d := s.deliveries[account]
		if d == nil {
			d = &delivery{}
			s.deliveries[account] = d
		}
		if d.due.After(now) {
			continue
		}
		for _, e := range s.events[account] {
			if seq, _ := strconv.ParseUint(e.ID, 10, 64); seq > d.cursor {
				e.Changes, e.Data = maps.Clone(e.Changes), maps.Clone(e.Data)
				d.lease, d.due = token, now.Add(ttl)
				out = append(out, event.Delivery{Event: e, Attempts: d.attempts, Lease: account + "\x00" + token + "\x00" + e.ID})
				break
			}
		}
	}
	return out, nil
}

// Settle implements [event.Outbox].
func (s *Store) Settle(_ context.Context, dl *event.Delivery, done bool, retry time.Time) error {
	parts := strings.Split(dl.Lease, "\x00")
	if len(parts) != 3 {
		return fmt.Errorf("memstore: %q is not a lease of this store", dl.Lease)
	}
	seq, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil {
		return fmt.Errorf("memstore: %q is not a lease of this store", dl.Lease)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.deliveries[parts[0]]
	if d == nil || d.lease != parts[1] {
		return nil // expired, and perhaps another's now
	}
	d.lease = ""
	if done {
		d.cursor, d.attempts, d.due = seq, 0, time.Time{}
		return nil
	}
	d.attempts++
	d.due = retry
	return nil
}

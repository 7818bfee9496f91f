package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/apikey/event"
)

var _ event.Outbox = (*Store)(nil)

// errNoOutbox is the error of the outbox's calls on a store without
// Config.Outbox.
var errNoOutbox = errors.New("redisstore: the outbox is off (set Config.Outbox)")

// The outbox is the account's event stream itself, which every change
// already appends to in its script: an account with events to deliver
// is a member of its slot's outbox set (ns:{<slot>}:ob, scored by when
// it is next due), and ns:{acct}:od holds its cursor (the last event
// delivered), attempts and lease. Events go one at a time per account,
// so in order per key. An event trimmed from the stream before it was
// delivered (past [event.PerKey] of its key) is skipped.

// Lease implements [event.Outbox]: it reads the due accounts of every
// slot (from each master, as [Store.Purge] does), then leases each
// one's next event in a script of the account's slot.
func (s *Store) Lease(ctx context.Context, now time.Time, n int, ttl time.Duration) ([]event.Delivery, error) {
	if !s.outbox {
		return nil, errNoOutbox
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	due, err := s.rangeSets(ctx, "ob", "-inf", fmt.Sprint(now.UnixMilli()), n)
	if err != nil && len(due) == 0 {
		return nil, wrap("lease events", err)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	var out []event.Delivery
	for _, e := range due {
		owner := e.id
		res, err := leaseScript.Run(ctx, s.client, s.outboxKeys(owner), owner, now.UnixMilli(), ttl.Milliseconds(), token).Slice()
		if err != nil {
			if errors.Is(err, redis.Nil) {
				continue
			}
			return out, wrap("lease events", err)
		}
		if len(res) != 4 {
			return out, fmt.Errorf("redisstore: lease events: unexpected reply %v", res)
		}
		eid, _ := res[0].(string)
		keyID, _ := res[1].(string)
		data, _ := res[2].(string)
		var d event.Delivery
		if err := json.Unmarshal([]byte(data), &d.Event); err != nil {
			return out, fmt.Errorf("redisstore: corrupt event %s: %w", eid, err)
		}
		d.Event.ID, d.Event.KeyID, d.Event.Account = eid, keyID, owner
		attempts, _ := res[3].(string)
		d.Attempts, _ = strconv.Atoi(attempts)
		d.Lease = owner + "\x00" + token + "\x00" + eid
		out = append(out, d)
	}
	return out, nil
}

// Settle implements [event.Outbox].
func (s *Store) Settle(ctx context.Context, d *event.Delivery, done bool, retry time.Time) error {
	if !s.outbox {
		return errNoOutbox
	}
	parts := strings.Split(d.Lease, "\x00")
	if len(parts) != 3 {
		return fmt.Errorf("redisstore: %q is not a lease of this store", d.Lease)
	}
	owner, token, eid := parts[0], parts[1], parts[2]
	ctx, cancel := s.bound(ctx)
	defer cancel()
	flag := ""
	if done {
		flag = "1"
	}
	if err := settleScript.Run(ctx, s.client, s.outboxKeys(owner), owner, token, eid, flag, retry.UnixMilli()).Err(); err != nil {
		return wrap("settle a delivery", err)
	}
	return nil
}

// outboxKeys are the keys of the lease and settle scripts: the slot's
// outbox set, the account's delivery state and its event stream.
func (s *Store) outboxKeys(owner string) []string {
	return []string{s.slotKey(owner, "ob"), s.account(owner) + "od", s.eventKey(owner)}
}

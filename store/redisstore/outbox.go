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

var _ event.DeliveryLog = (*Store)(nil)

// LogAttempt implements [event.DeliveryLog]: a list per endpoint, in its
// account's slot, newest first, trimmed to [event.MaxAttempts].
func (s *Store) LogAttempt(ctx context.Context, account string, a *event.Attempt) error {
	data, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("redisstore: encode an attempt: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	key := s.account(account) + "dl:" + a.Endpoint
	_, err = s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, key, data)
		p.LTrim(ctx, key, 0, event.MaxAttempts-1)
		return nil
	})
	if err != nil {
		return wrap("log an attempt", err)
	}
	return nil
}

// Attempts implements [event.DeliveryLog].
func (s *Store) Attempts(ctx context.Context, account, endpoint string) ([]event.Attempt, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	items, err := s.client.LRange(ctx, s.account(account)+"dl:"+endpoint, 0, event.MaxAttempts-1).Result()
	if err != nil {
		return nil, wrap("delivery log", err)
	}
	out := make([]event.Attempt, len(items))
	for i, data := range items {
		if err := json.Unmarshal([]byte(data), &out[i]); err != nil {
			return nil, fmt.Errorf("redisstore: a corrupt delivery attempt: %w", err)
		}
	}
	return out, nil
}

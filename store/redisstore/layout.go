package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ErrOldLayout reports a namespace that holds records in the layout of
// keygate before Cluster sharding (every key under the hash tag {ns}, so
// in one slot). Run [Migrate] once, with the service's writers stopped.
var ErrOldLayout = errors.New("redisstore: the namespace holds records in the unsharded layout; run redisstore.Migrate")

// layoutVersion marks a namespace in the layout redisstore.go describes.
const layoutVersion = "2"

// checkLayout passes a namespace marked with this layout, and marks a
// namespace that holds no key of the old one: once, it scans the node
// that would hold them (an old namespace lives in the slot of {ns}).
// fault is the failure of a call to Redis, err a namespace refused.
func (s *Store) checkLayout(ctx context.Context) (fault, err error) {
	ns := strings.TrimSuffix(s.ns, ":")
	marker := s.ns + "layout"
	v, err := s.client.Get(ctx, marker).Result()
	switch {
	case err == nil && v == layoutVersion:
		return nil, nil
	case err != nil && !errors.Is(err, redis.Nil):
		return wrap("layout check", err), nil
	case err == nil:
		return nil, fmt.Errorf("redisstore: namespace %q is marked with layout %q, which this version does not know", ns, v)
	}
	old, err := oldKeys(ctx, s.client, ns, 1)
	if err != nil {
		return wrap("layout check", err), nil
	}
	if len(old) > 0 {
		return nil, fmt.Errorf("%w: namespace %q", ErrOldLayout, ns)
	}
	if err := s.client.SetNX(ctx, marker, layoutVersion, 0).Err(); err != nil {
		return wrap("layout check", err), nil
	}
	return nil, nil
}

// oldKeys scans the node holding the slot of {ns} for keys of the old
// layout, stopping after limit (0 = all).
func oldKeys(ctx context.Context, client redis.UniversalClient, ns string, limit int) ([]string, error) {
	node := redis.UniversalClient(client)
	if cc, ok := client.(*redis.ClusterClient); ok {
		c, err := cc.MasterForKey(ctx, "{"+ns+"}")
		if err != nil {
			return nil, err
		}
		node = c
	}
	var keys []string
	iter := node.Scan(ctx, 0, "{"+ns+"}:*", 10000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == limit {
			break
		}
	}
	return keys, iter.Err()
}

// Migrate moves a namespace from the unsharded layout of earlier keygate
// versions (see [ErrOldLayout]) to the current one, and
// returns how many key records it moved. Accounts, events and usage
// counters move with them; owner and index sets are rebuilt. Run it once
// with the service's writers stopped: a change made meanwhile through
// an old instance may be lost. It is safe to run again after an
// interruption (what was moved is kept), and does nothing on a namespace
// already moved. cfg's Namespace selects the namespace; its other fields
// are ignored.
func Migrate(ctx context.Context, client redis.UniversalClient, cfg Config) (int, error) {
	ns := cfg.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	_, err := New(ctx, client, Config{Namespace: ns, SkipEvictionCheck: true})
	switch {
	case err == nil:
		return 0, nil // nothing left in the old layout
	case !errors.Is(err, ErrOldLayout):
		return 0, err
	}
	s := &Store{client: client, ns: ns + ":", channel: ns + ":invalidate"}
	keys, err := oldKeys(ctx, client, ns, 0)
	if err != nil {
		return 0, wrap("migrate", err)
	}
	old := "{" + ns + "}:"
	moved := 0
	for _, k := range keys {
		rest := strings.TrimPrefix(k, old)
		switch {
		case strings.HasPrefix(rest, "a:"):
			err = s.migrateAccount(ctx, k, strings.TrimPrefix(rest, "a:"))
		case strings.HasPrefix(rest, "ev:"):
			err = s.migrateEvents(ctx, k, strings.TrimPrefix(rest, "ev:"))
		case strings.HasPrefix(rest, "id:"):
			var ok bool
			if ok, err = s.migrateRecord(ctx, old, strings.TrimPrefix(rest, "id:")); ok {
				moved++
			}
		}
		if err != nil {
			return moved, wrap("migrate "+k, err)
		}
	}
	for _, k := range keys {
		if err := client.Del(ctx, k).Err(); err != nil {
			return moved, wrap("migrate: delete "+k, err)
		}
	}
	fault, err := s.checkLayout(ctx)
	if fault != nil {
		return moved, fault
	}
	return moved, err
}

func (s *Store) migrateAccount(ctx context.Context, from, id string) error {
	data, err := s.client.Get(ctx, from).Result()
	if err != nil {
		return err
	}
	return s.client.SetNX(ctx, s.accountKey(id), data, 0).Err()
}

func (s *Store) migrateEvents(ctx context.Context, from, account string) error {
	to := s.eventKey(account)
	if n, err := s.client.XLen(ctx, to).Result(); err != nil || n > 0 {
		return err // moved before
	}
	msgs, err := s.client.XRange(ctx, from, "-", "+").Result()
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := s.client.XAdd(ctx, &redis.XAddArgs{Stream: to, ID: m.ID, Values: []any{"k", m.Values["k"], "e", m.Values["e"]}}).Err(); err != nil {
			return err
		}
	}
	return nil
}

// migrateRecord writes the record id of the old layout (prefix old) in
// the new one, its lookup copy last, so that it verifies only once whole;
// false when the old layout held only its ID index (a record deleted
// half-way, or moved by an interrupted run).
func (s *Store) migrateRecord(ctx context.Context, old, id string) (bool, error) {
	v, err := s.client.Get(ctx, old+"id:"+id).Result()
	if err != nil || len(v) < 64 {
		return false, fmt.Errorf("redisstore: corrupt ID index %q: %v", v, err)
	}
	data, err := s.client.Get(ctx, old+"h:"+v[:64]).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	rec, _, err := decode(data)
	if err != nil {
		return false, err
	}
	if data, err = encode(rec, 1); err != nil {
		return false, err
	}
	counters, err := s.client.HGetAll(ctx, old+"u:"+id).Result()
	if err != nil {
		return false, err
	}
	steps := []func() error{
		func() error { return s.client.Set(ctx, s.idKey(id), rec.Owner, 0).Err() },
		func() error { // as Create writes them; "dup" when an interrupted run did
			keys := append([]string{s.recKey(rec.Owner, id), s.ownerKey(rec.Owner)}, s.eventKeys(rec.Owner, id)...)
			return createScript.Run(ctx, s.client, keys, append([]any{data, id, 0, 0, activeScore(rec), ""}, s.eventArgs(nil, rec.Owner)...)...).Err()
		},
		func() error { return s.index(ctx, nil, rec) },
		func() error {
			if len(counters) == 0 {
				return nil
			}
			return s.client.HSet(ctx, s.usageKey(id), counters).Err()
		},
		func() error {
			return s.client.HSet(ctx, s.copyKey(rec.Route, hexOf(rec.Hash)), "r", data, "v", 1, "o", rec.Owner, "i", id).Err()
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return false, err
		}
	}
	return true, nil
}

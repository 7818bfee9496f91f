package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
)

// Writes that span slots.
//
// A change writes the record in its account's slot, then its copy, in
// this order: before changing the record it marks the copy held
// (version it will write, deadline); after, it writes the record's JSON
// into the copy unless the copy holds a later version, ends the hold
// and announces the change. A Lookup serves the copy as it is while a
// hold is young, so a key keeps verifying through an update; one held
// past its deadline (one second, the bound the invalidation feed has
// too) belonged to a writer that failed between the two writes, and the
// Lookup repairs it from the record before answering. So a crash
// between the writes leaves a copy that converges to the record by
// itself: a revoked key stops verifying within that second, and a created
// key whose record was never written never verifies. The expiry and
// revoked sets are written before the record and cleaned after it:
// their readers check every entry against the record.
//
// So the writes of every change are, in order: the expiry and revoked
// sets, the hold on the lookup copy, the account's script, then the copy
// and the cleanup of the sets.

// deadline is the hold deadline of a change starting now.
func deadline() string { return micros(time.Now().Add(holdLease)) }

// sync writes version (JSON data, "" for deleted) into the copy at key,
// of the key whose hash is h; it reports false when there was no copy.
func (s *Store) sync(ctx context.Context, key, h string, version int64, data string) (bool, error) {
	n, err := syncScript.Run(ctx, s.client, []string{key},
		version, data, time.Now().UnixMicro(), s.channel, h).Int()
	return n == 1, err
}

// claim creates rec's ID index and its held copy, or fails with
// [apikey.ErrDuplicate] when either is taken, leaving nothing behind.
func (s *Store) claim(ctx context.Context, rec *apikey.Record) error {
	ok, err := s.client.SetNX(ctx, s.idKey(rec.ID), rec.Owner, 0).Result()
	if err != nil {
		return wrap("create", err)
	}
	if !ok {
		return apikey.ErrDuplicate
	}
	n, err := claimScript.Run(ctx, s.client, []string{s.copyKey(rec.Route, hexOf(rec.Hash))}, rec.Owner, rec.ID, deadline()).Int()
	if err != nil || n == 0 {
		s.client.Del(ctx, s.idKey(rec.ID))
		if err != nil {
			return wrap("create", err)
		}
		return apikey.ErrDuplicate
	}
	if err := s.index(ctx, nil, rec); err != nil {
		return wrap("create", err) // the held copy repairs itself away
	}
	return nil
}

// unclaim undoes claim for a record that was not created.
func (s *Store) unclaim(ctx context.Context, rec *apikey.Record) {
	s.client.Del(ctx, s.copyKey(rec.Route, hexOf(rec.Hash)))
	s.client.Del(ctx, s.idKey(rec.ID))
	s.client.ZRem(ctx, s.slotKey(rec.Owner, "exp"), rec.ID)
}

// Create implements [apikey.Store]: claim the ID and the hash, insert the
// record in its account (limit check included), then fill the copy, with
// which the key starts to verify.
func (s *Store) Create(ctx context.Context, rec *apikey.Record, maxActive int, now time.Time, ev *event.Event) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	data, err := encode(rec, 1)
	if err != nil {
		return err
	}
	evData, err := eventJSON(ev)
	if err != nil {
		return err
	}
	if err := s.claim(ctx, rec); err != nil {
		return err
	}
	keys := append([]string{s.recKey(rec.Owner, rec.ID), s.ownerKey(rec.Owner)}, s.eventKeys(rec.Owner, rec.ID)...)
	args := append([]any{data, rec.ID, max(maxActive, 0), micros(now), activeScore(rec), evData}, s.eventArgs(ev, rec.Owner)...)
	res, err := createScript.Run(ctx, s.client, keys, args...).Text()
	if err != nil {
		return wrap("create", err) // whether it ran or not, the held copy converges to the record
	}
	switch res {
	case "dup":
		s.unclaim(ctx, rec)
		return apikey.ErrDuplicate
	case "limit":
		s.unclaim(ctx, rec)
		return apikey.ErrTooManyKeys
	}
	switch ok, err := s.sync(ctx, s.copyKey(rec.Route, hexOf(rec.Hash)), hexOf(rec.Hash), 1, data); {
	case err != nil:
		return wrap("create", err)
	case !ok:
		// Slower than holdLease: a Lookup found the copy held too long and
		// repaired it away before the record existed. Withdraw the record.
		_ = s.Delete(ctx, rec.ID, nil)
		return errors.New("redisstore: create: interrupted for longer than the hold lease; the key was not created")
	}
	return nil
}

// change describes one compare-and-set of a record.
type change struct {
	op          string
	id          string
	delete      bool           // delete the record instead of writing it
	replacement *apikey.Record // inserted in the same script (rotation)
	maxActive   int            // the owner's limit when inserting, at now
	now         time.Time
	ev          *event.Event
	// apply changes the record read; false leaves it as it is.
	apply func(*apikey.Record) (bool, error)
}

// run reads the record, applies the change and writes it back, retrying
// when another writer got there first. It reports whether the record
// changed (apply may leave it as it is).
func (s *Store) run(ctx context.Context, c change) (bool, error) {
	evData, err := eventJSON(c.ev)
	if err != nil {
		return false, err
	}
	for range maxRetries {
		owner, old, rec, version, err := s.read(ctx, c.id)
		if err != nil {
			return false, err
		}
		before := *rec
		if c.apply != nil {
			if ok, err := c.apply(rec); err != nil || !ok {
				return false, err
			}
		}
		done, err := s.write(ctx, c, owner, old, &before, rec, version, evData)
		if err != nil || done {
			return done, err
		}
	}
	return false, fmt.Errorf("redisstore: %s %s: too many concurrent updates", c.op, c.id)
}

// write performs one attempt of c, which made rec of before (read at
// version from old); false without an error means another writer got
// there first.
func (s *Store) write(ctx context.Context, c change, owner, old string, before, rec *apikey.Record, version int64, evData string) (bool, error) {
	next := version + 1
	h := hexOf(rec.Hash)
	ck := s.copyKey(rec.Route, h)
	data := ""
	if !c.delete {
		var err error
		if data, err = encode(rec, next); err != nil {
			return false, err
		}
		// The sets first: their readers check each entry against the record.
		if err := s.index(ctx, before, rec); err != nil {
			return false, wrap(c.op, err)
		}
	}
	switch res, err := holdScript.Run(ctx, s.client, []string{ck}, next, deadline()).Text(); {
	case err != nil:
		return false, wrap(c.op, err)
	case res == "stale":
		return false, nil
	}
	keys := append([]string{s.recKey(owner, c.id), s.ownerKey(owner)}, s.eventKeys(owner, c.id)...)
	args := append([]any{old, data, c.id, activeScore(rec), evData, "", "", "", max(c.maxActive, 0), micros(c.now)}, s.eventArgs(c.ev, owner)...)
	r := c.replacement
	var rdata string
	if r != nil {
		if r.Owner != owner {
			return false, fmt.Errorf("redisstore: %s: the replacement belongs to another owner", c.op)
		}
		var err error
		if rdata, err = encode(r, 1); err != nil {
			return false, err
		}
		if err := s.claim(ctx, r); err != nil {
			releaseScript.Run(ctx, s.client, []string{ck}, next)
			return false, err
		}
		keys = append(keys, s.recKey(owner, r.ID))
		args[5], args[6], args[7] = rdata, r.ID, activeScore(r)
	}
	res, err := changeScript.Run(ctx, s.client, keys, args...).Text()
	if err != nil {
		return false, wrap(c.op, err) // whether it ran or not, the held copies converge
	}
	if res != "ok" {
		releaseScript.Run(ctx, s.client, []string{ck}, next)
		if r != nil {
			s.unclaim(ctx, r)
		}
		switch res {
		case "conflict":
			return false, nil
		case "dup":
			return false, apikey.ErrDuplicate
		case "limit":
			return false, apikey.ErrTooManyKeys
		}
		return false, fmt.Errorf("redisstore: %s: unexpected reply %q", c.op, res)
	}
	if _, err := s.sync(ctx, ck, h, next, data); err != nil {
		return false, wrap(c.op, err)
	}
	if r != nil {
		if _, err := s.sync(ctx, s.copyKey(r.Route, hexOf(r.Hash)), hexOf(r.Hash), 1, rdata); err != nil {
			return false, wrap(c.op, err)
		}
	}
	s.cleanup(ctx, before, rec, c.delete)
	return true, nil
}

// index puts rec in the expiry and revoked sets it belongs to, unless it
// was there as before (nil: unknown).
func (s *Store) index(ctx context.Context, before, rec *apikey.Record) error {
	if at := expiry(rec); !at.IsZero() && (before == nil || !at.Equal(expiry(before))) {
		if err := s.client.ZAdd(ctx, s.slotKey(rec.Owner, "exp"), redis.Z{Score: score(at), Member: rec.ID}).Err(); err != nil {
			return err
		}
	}
	if !rec.RevokedAt.IsZero() && (before == nil || !rec.RevokedAt.Equal(before.RevokedAt)) {
		return s.client.ZAdd(ctx, s.slotKey(rec.Owner, "rev"), redis.Z{Score: score(rec.RevokedAt), Member: rec.ID}).Err()
	}
	return nil
}

// cleanup removes from the sets what applied to before (nil: unknown)
// and no longer applies to rec, and a deleted record's ID index and
// usage. It reports no error: the change is made, and a leftover entry is
// harmless (see the write order above). Entries of layout 2's sets go
// too: they are only ever removed.
func (s *Store) cleanup(ctx context.Context, before, rec *apikey.Record, deleted bool) {
	if !deleted && (!expiry(rec).IsZero() || before != nil && expiry(before).IsZero()) {
		return
	}
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		if deleted {
			p.Del(ctx, s.usageKey(rec.ID))
			p.Del(ctx, s.idKey(rec.ID))
			p.Del(ctx, s.legacyIDKey(rec.ID))
			p.ZRem(ctx, s.slotKey(rec.Owner, "rev"), rec.ID)
			p.ZRem(ctx, s.ns+"rev", rec.ID)
		}
		p.ZRem(ctx, s.slotKey(rec.Owner, "exp"), rec.ID)
		p.ZRem(ctx, s.ns+"exp", rec.ID)
		return nil
	})
}

// Revoke implements [apikey.Store].
func (s *Store) Revoke(ctx context.Context, id string, at time.Time, ev *event.Event) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.run(ctx, change{op: "revoke", id: id, now: at, ev: ev, apply: func(rec *apikey.Record) (bool, error) {
		if !rec.RevokedAt.IsZero() {
			return false, nil
		}
		rec.RevokedAt = at
		return true, nil
	}})
	return err
}

// Rotate implements [apikey.Store]: the old record and its replacement
// change in one script in their account's slot.
func (s *Store) Rotate(ctx context.Context, old *apikey.Record, retireAt time.Time, replacement *apikey.Record, maxActive int, now time.Time, ev *event.Event) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if !retireAt.After(now) {
		maxActive = 0 // the old key stops counting at once: no check
	}
	_, err := s.run(ctx, change{op: "rotate", id: old.ID, replacement: replacement, maxActive: maxActive, now: now, ev: ev,
		apply: func(rec *apikey.Record) (bool, error) { return true, rec.Retire(old, replacement.ID, retireAt) }})
	return err
}

// Update implements [apikey.Store].
func (s *Store) Update(ctx context.Context, prev, next *apikey.Record, ev *event.Event) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.run(ctx, change{op: "update", id: next.ID, ev: ev, apply: func(rec *apikey.Record) (bool, error) {
		if !rec.Same(prev) {
			return false, apikey.ErrConflict
		}
		*rec = *next
		return true, nil
	}})
	return err
}

// Delete implements [apikey.Store].
func (s *Store) Delete(ctx context.Context, id string, ev *event.Event) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.run(ctx, change{op: "delete", id: id, delete: true, ev: ev})
	return err
}

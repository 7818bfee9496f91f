package apikey

import (
	"context"
	"time"

	"github.com/keygate/keygate/apikey/event"
)

// Store persists key records. It is the contract between the lifecycle
// [Service] and an adapter (store/memstore, store/redisstore, or your own);
// store/storetest checks an adapter against every rule below.
//
// An adapter stores and finds; it makes no policy decisions beyond the ones
// spelled out here (the per-owner limit and the rotation rules must be
// applied atomically, so the adapter applies them). Every method must be
// safe for concurrent use. Errors other than the sentinels named here are
// for system failures only (network, timeouts, corrupt data) and must never
// be returned as [ErrNotFound]: a store that cannot answer must say so, not
// claim the key does not exist.
//
// A store may have optional capabilities, each a small interface found
// by type assertion: [OwnedGetter], [AccountStore], [event.Store],
// [ChangeFeed], and usage.Store.
//
// Every call that changes a record takes the [event.Event] that describes the
// change, for a store that keeps the audit trail ([event.Store]); a store
// that does not ignores it. A nil event records none.
//
// Records cross the interface as pointers and are immutable once they have:
// an adapter owns a record passed to Create or Rotate and may keep it; a
// caller must not modify a record an adapter returns, and an adapter must
// not modify one it has returned (replace it instead).
type Store interface {
	// Create stores rec. It fails with [ErrDuplicate] when rec.ID or
	// rec.Hash is already stored, and with [ErrTooManyKeys] when maxActive
	// is positive and rec.Owner already has maxActive records for which
	// [Key.Active](now) holds. The check and the insert are one atomic step:
	// of any number of concurrent calls, at most the allowed number succeed.
	Create(ctx context.Context, rec *Record, maxActive int, now time.Time, ev *event.Event) error

	// Lookup returns the record whose Hash is hash, whatever its state
	// (revoked, expired). It returns [ErrNotFound] when there is none. This
	// is the verification hot path: a networked store should bound it
	// with a short timeout of its own (store/redisstore's Config.Timeout),
	// so that a server that hangs costs a request a bounded time. route
	// is what the key's text holds where a [Router] store's routes are,
	// "" when the store does not route: a Router finds the key by it
	// ([Record].Route, or random characters for a key issued without a
	// route), any other store ignores it.
	Lookup(ctx context.Context, hash Hash, route string) (*Record, error)

	// Get returns the record with the given ID, or [ErrNotFound].
	Get(ctx context.Context, id string) (*Record, error)

	// List returns every record of owner, in every state, ordered by
	// CreatedAt and then ID. An owner with no records gets an empty slice
	// and no error.
	List(ctx context.Context, owner string) ([]*Record, error)

	// Revoke sets RevokedAt to at on the record with the given ID. It is
	// idempotent: revoking a revoked key succeeds and keeps the first time.
	// It returns [ErrNotFound] when there is no such record.
	Revoke(ctx context.Context, id string, at time.Time, ev *event.Event) error

	// Rotate atomically retires the record old (as the caller read it)
	// and stores replacement. It fails with [ErrNotFound] when old.ID
	// does not exist, with [ErrRevoked] when it is revoked, with
	// [ErrRotated] when it already has ReplacedBy set (so of concurrent
	// rotations exactly one wins), with [ErrConflict] when it is
	// otherwise no longer old ([Record.Same]: an update landed first, so
	// the replacement would miss it), and with [ErrDuplicate] as Create
	// does. Retiring sets ReplacedBy to
	// replacement.ID and ExpiresAt to retireAt, unless ExpiresAt is already
	// set and earlier: [Record.Retire] does both checks and the change.
	//
	// The replacement takes the old key's place in the owner's limit,
	// except while both verify: when retireAt is after now (a grace
	// period) and maxActive is positive, Rotate fails with
	// [ErrTooManyKeys] if the owner already has maxActive records for
	// which [Key.Active](now) holds, the old one included. The check and
	// the change are one atomic step.
	Rotate(ctx context.Context, old *Record, retireAt time.Time, replacement *Record, maxActive int, now time.Time, ev *event.Event) error

	// Update replaces the record next.ID with next, if the stored record
	// is still prev ([Record.Same]): a compare-and-set, so that of
	// concurrent changes of one record (updates, rotations, revocations)
	// exactly one wins. It fails with [ErrNotFound] when there is no such
	// record and with [ErrConflict] when it is no longer prev. next has
	// prev's ID, owner and hash.
	Update(ctx context.Context, prev, next *Record, ev *event.Event) error

	// Delete removes the record with the given ID, after which Lookup and
	// Get report [ErrNotFound] for it. It returns [ErrNotFound] when there is
	// no such record.
	Delete(ctx context.Context, id string, ev *event.Event) error

	// Purge deletes up to limit records whose [Key.EndedAt] is before
	// cutoff (revoked or expired then; a rotated record expires when its
	// grace period ends), as Delete does, with the hash index entry of
	// each first, so that a purge cut short leaves no record that
	// verifies. ev is the template of each deletion's event:
	// the store fills in KeyID and Account. It returns how many records it
	// deleted; several purges may run at once, and each record is deleted
	// by one of them.
	Purge(ctx context.Context, cutoff time.Time, limit int, ev *event.Event) (int, error)

	// Expiring returns the records that are not revoked and whose ExpiresAt
	// is in [from, to), ordered by ExpiresAt and then ID, across all owners.
	Expiring(ctx context.Context, from, to time.Time) ([]*Record, error)
}

// OwnedGetter is the optional capability of a [Store] that finds a
// record by ID within one owner's. [Service] uses it for every call that
// names a key by ID, so that the time of an answer does not reveal that
// an ID exists in another account. store/storetest checks it.
type OwnedGetter interface {
	// GetOwned returns owner's record id, and [ErrNotFound] for an
	// unknown ID and another owner's alike, in the same time.
	GetOwned(ctx context.Context, owner, id string) (*Record, error)
}

// Router is the optional capability of a [Store] that keeps each
// account's data in one place of several (a Redis Cluster: one slot, on
// one master), so that an outage there costs only the accounts it holds.
// The [Service] puts the account's route at the start of the random body
// of every key it issues, when at least 22 random characters (128 bits)
// are left, sets [Record].Route, and passes what a key's text holds there
// to [Store.Lookup]; and it starts the IDs it makes (without
// [Config].NewID) with the route and "_". So a key's text and its ID
// both lead to its account's place. store/storetest checks it.
type Router interface {
	// Route returns owner's route: 1 to 4 base62 characters, as many for
	// every owner; "" for a store that does not route after all (a
	// wrapper around one that does not).
	Route(owner string) string
}

// ChangeFeed is the optional capability of a [Store] that several
// instances share: it tells each instance of every key and account
// changed through any of them, so that a cache in front of each
// (store/cachestore) drops its copies. store/storetest checks it
// (storetest.Invalidation).
type ChangeFeed interface {
	// WatchChanges blocks until ctx ends, then returns nil. It calls
	// keyChanged with the hash of every key revoked, rotated, deleted,
	// disabled, enabled or updated through any instance,
	// accountChanged with the ID of every account changed, and healthy
	// with true each time the feed is (re)established and with false
	// each time it breaks: changes made while it was broken are lost, so
	// a cache must drop what it holds at both moments. The callbacks may
	// be called from several goroutines at once.
	WatchChanges(ctx context.Context, keyChanged func(Hash), accountChanged func(id string), healthy func(bool)) error
}

// Package event is the audit trail of keys: what a lifecycle change
// records ([Event]), and the optional capabilities of a store that keeps
// them ([Store]) and keeps them for delivery ([Outbox]). The key service
// (apikey.Service) makes an Event of every change and hands it to its
// store, which writes it in the same atomic step as the change;
// apikey/event/dispatch delivers an outbox to a sink, as
// apikey/event/webhook's Sender.
package event

import (
	"context"
	"encoding/json"
	"time"
)

// Type names a lifecycle change.
type Type string

// The lifecycle changes the audit trail records.
const (
	KeyCreated  Type = "key.created"
	KeyUpdated  Type = "key.updated"
	KeyDisabled Type = "key.disabled"
	KeyEnabled  Type = "key.enabled"
	KeyRevoked  Type = "key.revoked"
	KeyRotated  Type = "key.rotated" // KeyID is the old key; replaced_by names the new one
	KeyDeleted  Type = "key.deleted"
	KeyPurged   Type = "key.purged"
)

// The facts about keys that are not changes, recorded once each (see
// [Facts]).
const (
	// KeyExpiring: the key expires within Data["threshold"] (as "7d" or
	// a Go duration), at Data["expires_at"] (RFC 3339).
	KeyExpiring Type = "key.expiring"
	// KeyExpired: the key expired at Data["expires_at"].
	KeyExpired Type = "key.expired"
	// KeyLeaked: the key was found in public, by Data["source"] (as
	// "github") at Data["url"].
	KeyLeaked Type = "key.leaked"
	// LimitThreshold: a request (by KeyID) left a window of the account
	// or of the key (Data["subject"]) Data["threshold"] percent spent.
	LimitThreshold Type = "limit.threshold"
	// CreditsLow: the account's credit balance is Data["threshold"]
	// percent spent.
	CreditsLow Type = "credits.low"
	// CreditsExhausted: the account's credit balance is spent.
	CreditsExhausted Type = "credits.exhausted"
	// RotatedKeyUsed: a key that a rotation replaced (KeyID) was used in
	// its grace period; told once an hour at most.
	RotatedKeyUsed Type = "key.rotation.old_key_used"
	// EndpointDisabled: the account's webhook endpoint Data["endpoint"]
	// (at Data["url"]) was turned off, for Data["reason"]: "gone" (it
	// answered 410) or "failing" (it never took an event before the
	// retry horizon). It has no KeyID.
	EndpointDisabled Type = "endpoint.disabled"
)

// How long and how much of the audit trail a shipped store keeps: every
// event for Retention by default (the store's Config can change it),
// and of those at least each key's latest PerKey, so that one key's
// churn never drops another key's history. Age is the event's own time
// ([Event].At, the key service's clock); an account's expired events go
// when it is next changed.
const (
	PerKey    = 1000
	Retention = 90 * 24 * time.Hour
)

// Event is one lifecycle change of a key, for the audit trail. It never
// holds the key's text or hash.
type Event struct {
	// ID orders an account's events (a later event has a greater ID, as
	// its store compares them) and is the cursor of [Store].Events. The
	// store assigns it.
	ID   string `json:"id"`
	Type Type   `json:"type"`
	// KeyID and Account name the key changed and its owner.
	KeyID   string `json:"key_id"`
	Account string `json:"account"`
	// Actor and IP are who made the change and from where, as the host
	// said (apikey.WithActor); "" when it did not.
	Actor string    `json:"actor,omitempty"`
	IP    string    `json:"ip,omitempty"`
	At    time.Time `json:"at"`
	// Changes maps each field that changed (by its JSON name in
	// apikey.Key) to its old and new values.
	Changes map[string]Change `json:"changes,omitempty"`
	// Data holds what a fact states (see [KeyExpiring]).
	Data map[string]string `json:"data,omitempty"`
}

// Change is a field's value before and after an [Event], as JSON; a
// value that was or became unset is omitted.
type Change struct {
	Old json.RawMessage `json:"old,omitempty"`
	New json.RawMessage `json:"new,omitempty"`
}

// Store is the optional capability of a key store (apikey.Store) that
// keeps the audit trail. Such a store writes the event passed to each of
// its changing calls in the same atomic step as the change, and only
// when the change happens (revoking a revoked key writes none). It keeps
// every event for a retention period and of those at least the latest
// [PerKey] of each key: writing one more of a key drops that key's
// oldest, never another key's. store/storetest checks it.
type Store interface {
	// Events returns up to limit events of account, or of its key keyID
	// when that is not "", newest first, starting after the event whose ID
	// is before ("" starts at the newest). A before that is not an event ID
	// of this store fails with an *apikey.InputError for the field
	// "cursor".
	Events(ctx context.Context, account, keyID, before string, limit int) ([]Event, error)
}

// Outbox is the optional capability of a key store (apikey.Store) that
// keeps its events for delivery: every event it writes to the audit
// trail (see [Store]) it also writes to its outbox, in the same atomic
// step, and keeps it there until a delivery is settled as done. A
// dispatcher (apikey/event/dispatch) drains it. store/storetest checks
// it.
type Outbox interface {
	// Lease returns up to n events due at now, oldest first, each leased
	// to this call for ttl: until then no other Lease returns it. Of
	// each key it returns at most the oldest event still in the outbox,
	// so that events of one key are delivered in order (a store may hold
	// back more: one event of an account at a time). An event's ID is
	// its audit trail's, unique within its account.
	Lease(ctx context.Context, now time.Time, n int, ttl time.Duration) ([]Delivery, error)
	// Settle ends the attempt of a leased delivery: done removes the
	// event from the outbox; otherwise it is due again at retry. A lease
	// that has expired (and may be another's by now) settles nothing.
	Settle(ctx context.Context, d *Delivery, done bool, retry time.Time) error
}

// Delivery is an event leased from an [Outbox].
type Delivery struct {
	Event Event
	// Attempts counts the attempts settled before this lease.
	Attempts int
	// Lease identifies the lease, for Settle.
	Lease string
}

// Facts is the optional capability of a key store that records facts
// that are not changes (a key about to expire, a key that expired) once
// each, however many instances notice them, and however often.
// store/storetest checks it.
type Facts interface {
	// Once writes ev to the audit trail (and to the outbox, when the
	// store keeps one) in one atomic step with a claim of fact, unless
	// fact was claimed before, and reports whether it wrote. A fact names
	// what it states: its subject, kind, threshold and window, as
	// "key.expiring/<key ID>/7d/<expiry>". A claim is kept for
	// [Retention] after ev.At.
	Once(ctx context.Context, fact string, ev *Event) (bool, error)
}

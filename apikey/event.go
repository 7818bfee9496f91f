package apikey

import (
	"bytes"
	"context"
	"encoding/json"
	"time"
)

// EventType names a lifecycle change.
type EventType string

// The lifecycle changes the audit trail records.
const (
	EventCreated  EventType = "key.created"
	EventUpdated  EventType = "key.updated"
	EventDisabled EventType = "key.disabled"
	EventEnabled  EventType = "key.enabled"
	EventRevoked  EventType = "key.revoked"
	EventRotated  EventType = "key.rotated" // KeyID is the old key; replaced_by names the new one
	EventDeleted  EventType = "key.deleted"
	EventPurged   EventType = "key.purged"
)

// How long and how much of the audit trail a shipped store keeps: every
// event for EventRetention by default (the store's Config can change it),
// and of those at least each key's latest EventsPerKey, so that one key's
// churn never drops another key's history. Age is the event's own time
// ([Event].At, the [Service]'s clock); an account's expired events go
// when it is next changed.
const (
	EventsPerKey   = 1000
	EventRetention = 90 * 24 * time.Hour
)

// Event is one lifecycle change of a key, for the audit trail. It never
// holds the key's text or hash.
type Event struct {
	// ID orders an account's events (a later event has a greater ID, as
	// its store compares them) and is the cursor of [Service.Events]. The
	// store assigns it.
	ID   string    `json:"id"`
	Type EventType `json:"type"`
	// KeyID and Account name the key changed and its owner.
	KeyID   string `json:"key_id"`
	Account string `json:"account"`
	// Actor and IP are who made the change and from where, as the host
	// said with [WithActor]; "" when it did not.
	Actor string    `json:"actor,omitempty"`
	IP    string    `json:"ip,omitempty"`
	At    time.Time `json:"at"`
	// Changes maps each field that changed (by its JSON name in [Key]) to
	// its old and new values.
	Changes map[string]Change `json:"changes,omitempty"`
}

// Change is a field's value before and after an [Event], as JSON; a
// value that was or became unset is omitted.
type Change struct {
	Old json.RawMessage `json:"old,omitempty"`
	New json.RawMessage `json:"new,omitempty"`
}

// EventStore is the optional capability of a [Store] that keeps the audit
// trail. Such a store writes the event passed to each of its changing
// calls in the same atomic step as the change, and only when the change
// happens (revoking a revoked key writes none). It keeps every event
// for a retention period and of those at least the latest
// [EventsPerKey] of each key: writing one more of a key drops that
// key's oldest, never another key's.
type EventStore interface {
	// Events returns up to limit events of account, or of its key keyID
	// when that is not "", newest first, starting after the event whose ID
	// is before ("" starts at the newest). A before that is not an event ID
	// of this store fails with an [*InputError] for the field "cursor".
	Events(ctx context.Context, account, keyID, before string, limit int) ([]Event, error)
}

// Actor is who makes a lifecycle change, for its [Event].
type Actor struct {
	// ID names the person or system, as the host's authentication knows
	// them.
	ID string
	// IP is the client's address.
	IP string
}

type actorKey struct{}

// WithActor returns a context under which the [Service]'s changes are
// recorded as made by a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// event returns the event of a change of a key from before to after (a
// zero Key for none) made under ctx at now.
func event(ctx context.Context, typ EventType, before, after *Key, now time.Time) *Event {
	k := after
	if k.ID == "" {
		k = before
	}
	a, _ := ctx.Value(actorKey{}).(Actor)
	return &Event{
		Type: typ, KeyID: k.ID, Account: k.Owner, Actor: a.ID, IP: a.IP, At: now,
		Changes: diff(before, after),
	}
}

// diff returns the fields of Key's JSON form that differ between before
// and after, but the ID and owner, which the event names anyway.
func diff(before, after *Key) map[string]Change {
	o, n := fields(before), fields(after)
	out := map[string]Change{}
	for name := range o {
		if _, ok := n[name]; !ok {
			n[name] = nil
		}
	}
	for name, nv := range n {
		if name == "id" || name == "owner" || bytes.Equal(o[name], nv) {
			continue
		}
		out[name] = Change{Old: o[name], New: nv}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// fields returns k's JSON form by field, with empty values left out.
func fields(k *Key) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	if k.ID == "" {
		return m
	}
	data, err := json.Marshal(k)
	if err != nil {
		return m // a Key always marshals
	}
	_ = json.Unmarshal(data, &m)
	for name, v := range m {
		switch string(v) {
		case `""`, `[]`, `{}`, `null`, `0`:
			delete(m, name)
		}
	}
	return m
}

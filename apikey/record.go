package apikey

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/keygate/keygate/ratelimit"
)

// Key describes an issued key: everything a service may show its owner.
// It never contains the key text or its hash. The JSON field names are
// snake_case.
type Key struct {
	// ID identifies the key in management calls; it is not secret.
	ID string `json:"id"`
	// Lineage is the ID of the first key of this key's rotation chain;
	// "" for a key never rotated from another. Rate limits of the key
	// follow it, so a rotated key continues its predecessor's windows.
	Lineage string `json:"lineage,omitempty"`
	// Permissions the key grants, sorted.
	Permissions Permissions `json:"permissions"`
	// Plan names a rate-limit plan that caps this key on its own, within
	// the plan its account's keys share; "" for none.
	Plan string `json:"plan,omitempty"`
	// Limits, when set, are custom windows that cap this key on its own,
	// instead of Plan's.
	Limits []ratelimit.Window `json:"limits,omitempty"`
	// ProjectID limits the key to one project; "" means account-wide.
	ProjectID string `json:"project_id,omitempty"`
	// NotBefore, when set, is the first instant the key verifies.
	NotBefore time.Time `json:"not_before,omitzero"`
	// ExpiresAt, when set, is the first instant the key no longer verifies.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// RevokedAt, when set, is when the key was revoked; from then on it
	// never verifies.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// DisabledAt, when set, is when the key was disabled: it does not
	// verify until it is enabled again.
	DisabledAt time.Time `json:"disabled_at,omitzero"`
	// Restrictions narrow where the key may be used.
	Restrictions Restrictions `json:"restrictions,omitzero"`
	// Owner is the account the key belongs to.
	Owner string `json:"owner"`
	// Name and Description are free text for humans.
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	// DisplayPrefix is the key's first characters (for example
	// "kg_live_8fQ2xZ"), which identify it in lists and logs.
	DisplayPrefix string `json:"key_prefix"`
	// Environment is the key's environment segment ("live", "test"), or ""
	// for formats without one.
	Environment string `json:"environment,omitempty"`
	// CreatedAt is when the key was issued.
	CreatedAt time.Time `json:"created_at"`
	// ReplacedBy is the ID of the key that replaced this one in a rotation.
	ReplacedBy string `json:"replaced_by,omitempty"`
	// Metadata is free-form, for the host service.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Status is the state of a key at one instant.
type Status string

// The states of a key.
const (
	StatusActive  Status = "active"
	StatusPending Status = "pending" // not yet valid
	StatusExpired Status = "expired" // past ExpiresAt, or rotated and past its grace period
	StatusRevoked Status = "revoked"
	// StatusDisabled is a key paused by [Service.Disable], until
	// [Service.Enable].
	StatusDisabled Status = "disabled"
	StatusRotated  Status = "rotated" // replaced by a rotation, verifying until its grace period ends
)

// Status returns the key's state at now. Revocation wins over expiry,
// and expiry over being disabled.
func (k *Key) Status(now time.Time) Status {
	switch {
	case !k.RevokedAt.IsZero():
		return StatusRevoked
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return StatusExpired
	case !k.DisabledAt.IsZero():
		return StatusDisabled
	case k.ReplacedBy != "":
		return StatusRotated
	case !k.NotBefore.IsZero() && now.Before(k.NotBefore):
		return StatusPending
	}
	return StatusActive
}

// EndedAt returns the instant from which the key never verifies again:
// the earlier of RevokedAt and ExpiresAt (a rotated key's ExpiresAt ends
// its grace period), zero while it has neither. [Store].Purge deletes
// the records that ended before its cutoff.
func (k *Key) EndedAt() time.Time {
	switch {
	case k.RevokedAt.IsZero():
		return k.ExpiresAt
	case k.ExpiresAt.IsZero() || k.RevokedAt.Before(k.ExpiresAt):
		return k.RevokedAt
	}
	return k.ExpiresAt
}

// ExpiresWithin reports whether the key is unrevoked and expires in
// [from, to): the records [Store].Expiring returns.
func (k *Key) ExpiresWithin(from, to time.Time) bool {
	return k.RevokedAt.IsZero() && !k.ExpiresAt.IsZero() && !k.ExpiresAt.Before(from) && k.ExpiresAt.Before(to)
}

// Active reports whether the key counts toward its owner's limit at now:
// neither revoked nor expired. A key that is disabled or not yet valid
// counts, and so does a rotated key until its grace period ends.
func (k *Key) Active(now time.Time) bool {
	switch k.Status(now) {
	case StatusRevoked, StatusExpired:
		return false
	}
	return true
}

// clone returns a deep copy of k, sharing no slice or map with it.
func (k Key) clone() Key {
	k.Permissions = slices.Clone(k.Permissions)
	k.Limits = slices.Clone(k.Limits)
	k.Restrictions = k.Restrictions.clone()
	k.Metadata = maps.Clone(k.Metadata)
	return k
}

// Record is what a [Store] keeps for one key: its description and the hash
// of its text. It never holds the key text.
type Record struct {
	// Hash is the digest of the key text, the lookup index of [Store.Lookup].
	Hash Hash `json:"-"`
	// HashVersion is 0 for plain SHA-256, or the [Pepper] version of an
	// HMAC-SHA256 hash.
	HashVersion int `json:"-"`
	// Route is the route ([Router]) at the start of the key's body, ""
	// when it carries none. A store that routes places the key by it.
	Route string `json:"-"`
	Key
}

// Retire applies a rotation to r, the copy of a stored record that a
// [Store] is about to write back, of the record the caller read as old:
// ReplacedBy becomes replacementID and ExpiresAt becomes retireAt,
// unless r already expires sooner. It fails, changing nothing, with
// [ErrRevoked] when r is revoked, with [ErrRotated] when r is already
// replaced, and otherwise with [ErrConflict] when r is no longer old
// ([Record.Same]). Stores call it so that every one keeps Rotate's
// contract alike.
func (r *Record) Retire(old *Record, replacementID string, retireAt time.Time) error {
	switch {
	case !r.RevokedAt.IsZero():
		return ErrRevoked
	case r.ReplacedBy != "":
		return ErrRotated
	case !r.Same(old):
		return ErrConflict
	}
	r.ReplacedBy = replacementID
	if r.ExpiresAt.IsZero() || retireAt.Before(r.ExpiresAt) {
		r.ExpiresAt = retireAt
	}
	return nil
}

// Same reports whether r and o hold the same key and hash, whatever the
// time zones or nil-versus-empty collections they were decoded with: the
// comparison of [Store].Update.
func (r *Record) Same(o *Record) bool {
	if r.Hash != o.Hash || r.HashVersion != o.HashVersion {
		return false
	}
	a, errA := json.Marshal(&r.Key)
	b, errB := json.Marshal(&o.Key)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

package apikey

import (
	"log/slog"
	"slices"
	"time"
)

// Principal is who a verified key speaks for: the key's owner, permissions,
// project scope and restrictions. It is an immutable view, cheap to copy
// (one pointer), and never exposes the key or its hash. The zero Principal
// has no permissions and no owner.
type Principal struct {
	rec *Record
}

// NewPrincipal returns the principal of a stored record. [Service.Verify]
// is the usual source; this constructor serves custom verification paths
// and tests. rec must not be modified afterwards.
func NewPrincipal(rec *Record) Principal { return Principal{rec: rec} }

func (p Principal) key() *Key {
	if p.rec == nil {
		return &Key{}
	}
	return &p.rec.Key
}

// IsZero reports whether p is the zero Principal.
func (p Principal) IsZero() bool { return p.rec == nil }

// KeyID returns the ID of the key that authenticated.
func (p Principal) KeyID() string { return p.key().ID }

// Owner returns the account the key belongs to.
func (p Principal) Owner() string { return p.key().Owner }

// DisplayPrefix returns the key's display prefix, safe for logs.
func (p Principal) DisplayPrefix() string { return p.key().DisplayPrefix }

// ProjectID returns the key's project, or "" for an account-wide key.
func (p Principal) ProjectID() string { return p.key().ProjectID }

// CanAccessProject reports whether the key may act on project: always for
// an account-wide key, otherwise only for its own project.
func (p Principal) CanAccessProject(project string) bool {
	k := p.key()
	return k.ProjectID == "" || k.ProjectID == project
}

// Environment returns the key's environment, or "".
func (p Principal) Environment() string { return p.key().Environment }

// Plan returns the key's rate-limit plan name, or "".
func (p Principal) Plan() string { return p.key().Plan }

// ExpiresAt returns the key's expiry, zero if it never expires.
func (p Principal) ExpiresAt() time.Time { return p.key().ExpiresAt }

// Has reports whether the key grants perm. It allocates nothing.
func (p Principal) Has(perm Permission) bool { return p.key().Permissions.Has(perm) }

// Permissions returns a copy of the key's permissions.
func (p Principal) Permissions() Permissions { return slices.Clone(p.key().Permissions) }

// Restrictions returns a copy of the key's restrictions.
func (p Principal) Restrictions() Restrictions { return p.key().Restrictions.clone() }

// Restricted reports whether any restriction applies, so that callers can
// skip the checks for the common unrestricted key.
func (p Principal) Restricted() bool { return !p.key().Restrictions.IsZero() }

// Metadata returns the metadata value for name.
func (p Principal) Metadata(name string) (string, bool) {
	v, ok := p.key().Metadata[name]
	return v, ok
}

// LogValue identifies the key for log/slog without revealing it.
func (p Principal) LogValue() slog.Value {
	k := p.key()
	return slog.GroupValue(
		slog.String("key_id", k.ID),
		slog.String("key_prefix", k.DisplayPrefix),
		slog.String("owner", k.Owner),
	)
}

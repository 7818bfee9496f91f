package apikey

import (
	"log/slog"

	"github.com/keygate/keygate/ratelimit"
)

// Principal is who a verified key speaks for: the key's owner,
// permissions, project scope and restrictions. It is an immutable view,
// cheap to copy, and never exposes the key or its hash. The zero Principal
// has no permissions and no owner.
type Principal struct {
	rec  *Record
	acct *Account // the stored account, or the service's default one (no ID)
}

func (p Principal) key() *Key {
	if p.rec == nil {
		return &Key{}
	}
	return &p.rec.Key
}

// KeyID returns the ID of the key that authenticated.
func (p Principal) KeyID() string { return p.key().ID }

// Owner returns the account the key belongs to.
func (p Principal) Owner() string { return p.key().Owner }

// ProjectID returns the key's project, or "" for an account-wide key.
func (p Principal) ProjectID() string { return p.key().ProjectID }

// CanAccessProject reports whether the key may act on project: always for
// an account-wide key, otherwise only for its own project.
func (p Principal) CanAccessProject(project string) bool {
	k := p.key()
	return k.ProjectID == "" || k.ProjectID == project
}

// Plan returns the name of the plan that caps the key on its own, or ""
// for none.
func (p Principal) Plan() string { return p.key().Plan }

// Limits returns the key's custom windows, which cap it on its own
// instead of its plan's; nil for none. They are shared: do not modify
// them.
func (p Principal) Limits() []ratelimit.Window { return p.key().Limits }

// Lineage returns the ID of the first key of the key's rotation chain,
// under which its own rate limits are kept.
func (p Principal) Lineage() string {
	k := p.key()
	if k.Lineage != "" {
		return k.Lineage
	}
	return k.ID
}

// Account returns the key's account as it was when the key verified:
// its plan (the default plan when none was stored), custom limits and
// credits, without its webhooks (whose secrets a request has no use
// for). Limits and Credits are shared: do not modify them.
func (p Principal) Account() Account {
	if p.acct == nil {
		return Account{ID: p.Owner()}
	}
	a := *p.acct
	a.ID, a.Webhooks = p.Owner(), nil
	return a
}

// Has reports whether the key grants perm.
func (p Principal) Has(perm Permission) bool { return p.key().Permissions.Has(perm) }

// Restrictions returns the key's restrictions; [Restrictions.IsZero]
// when none applies. They are shared: do not modify them.
func (p Principal) Restrictions() Restrictions { return p.key().Restrictions }

// Key returns a copy of everything known about the key (its name,
// environment, expiry, metadata and so on), never its text or hash.
func (p Principal) Key() Key { return p.key().clone() }

// LogValue identifies the key for log/slog without revealing it.
func (p Principal) LogValue() slog.Value {
	k := p.key()
	return slog.GroupValue(
		slog.String("key_id", k.ID),
		slog.String("key_prefix", k.DisplayPrefix),
		slog.String("owner", k.Owner),
	)
}

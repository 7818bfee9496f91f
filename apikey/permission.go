package apikey

import "slices"

// Permission names one operation a key may perform. The built-in ones are
// [Read], [Write] and [Delete]; a service adds its own scopes (for example
// "billing:read") through [Config].Scopes.
type Permission string

// The built-in permissions.
const (
	Read   Permission = "read"
	Write  Permission = "write"
	Delete Permission = "delete"
)

const maxScopeLength = 64

// validScopeName reports whether name is 1 to 64 characters of lower-case
// letters, digits and ":._-", the alphabet of custom scopes.
func validScopeName(name Permission) bool {
	if name == "" || len(name) > maxScopeLength {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != ':' && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// Permissions is a set of permissions, kept sorted and without duplicates
// by [Service.Create].
type Permissions []Permission

// Has reports whether p is in the set.
func (ps Permissions) Has(p Permission) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// normalize returns a sorted, duplicate-free copy of ps, or an error naming
// the first permission that known does not accept.
func (ps Permissions) normalize(known func(Permission) bool) (Permissions, error) {
	out := make(Permissions, 0, len(ps))
	for _, p := range ps {
		if !known(p) {
			return nil, invalid("permissions", "unknown permission %q", string(p))
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

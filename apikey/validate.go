package apikey

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Input limits, in characters (runes) for free text and bytes otherwise.
const (
	maxOwnerLength       = 128
	maxIDLength          = 64
	maxNameLength        = 200
	maxDescriptionLength = 500
	maxProjectIDLength   = 128
	maxMetadataEntries   = 50
	maxMetadataName      = 64
	maxMetadataValue     = 512
	maxRestrictions      = 100 // entries in each restriction list

	maxPlanLength     = 64
	maxHostLength     = 253
	maxEndpointLength = 256
)

// The range of times a key may carry: what every store can keep (Unix
// microseconds, RFC 3339 with a four-digit year).
var (
	earliest = time.Unix(0, 0).UTC()
	latest   = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// validate checks p and returns the key it describes, sharing no memory
// with p.
func (s *Service) validate(p CreateParams, now time.Time) (Key, error) {
	k := Key{
		Owner:       p.Owner,
		ID:          p.ID,
		Name:        p.Name,
		Description: p.Description,
		ProjectID:   p.ProjectID,
		Environment: p.Environment,
		Plan:        p.Plan,
		NotBefore:   utc(p.NotBefore),
		ExpiresAt:   utc(p.ExpiresAt),
	}
	switch {
	case !validText(p.Owner, maxOwnerLength, false) || p.Owner == "":
		return Key{}, invalid("owner", "must be 1 to %d printable characters", maxOwnerLength)
	case p.ID != "" && !validToken(p.ID, maxIDLength):
		return Key{}, invalid("id", "must be 1 to %d letters, digits and \"._:-\"", maxIDLength)
	case !validText(p.Name, maxNameLength, false):
		return Key{}, invalid("name", "must be at most %d printable characters", maxNameLength)
	case !validText(p.Description, maxDescriptionLength, true):
		return Key{}, invalid("description", "must be at most %d characters of printable text", maxDescriptionLength)
	case p.ProjectID != "" && !validToken(p.ProjectID, maxProjectIDLength):
		return Key{}, invalid("project_id", "must be 1 to %d letters, digits and \"._:-\"", maxProjectIDLength)
	case !p.ExpiresAt.IsZero() && !p.ExpiresAt.After(now):
		return Key{}, invalid("expires_at", "is not in the future")
	case p.ExpiresAt.After(latest):
		return Key{}, invalid("expires_at", "is after the year 9999")
	case !p.NotBefore.IsZero() && (p.NotBefore.Before(earliest) || p.NotBefore.After(latest)):
		return Key{}, invalid("not_before", "is not between the years 1970 and 9999")
	case !p.ExpiresAt.IsZero() && !p.NotBefore.IsZero() && !p.ExpiresAt.After(p.NotBefore):
		return Key{}, invalid("expires_at", "is not after not_before")
	}
	envs := s.format.envs
	switch {
	case k.Environment == "" && len(envs) > 0:
		k.Environment = envs[0]
	case k.Environment != "" && !s.format.hasEnv(k.Environment):
		if len(envs) == 0 {
			return Key{}, invalid("environment", "this key format has no environments")
		}
		return Key{}, invalid("environment", "must be one of %q", envs)
	}
	if k.Plan != "" {
		if err := s.checkPlan("plan", k.Plan); err != nil {
			return Key{}, err
		}
	}
	if err := validateLimits(p.Limits); err != nil {
		return Key{}, err
	}
	if len(p.Limits) > 0 {
		k.Limits = slices.Clone(p.Limits)
	}
	var err error
	if k.Permissions, err = Permissions(p.Permissions).normalize(func(p Permission) bool { return s.scopes[p] }); err != nil {
		return Key{}, err
	}
	if k.Restrictions, err = normalizeRestrictions(p.Restrictions); err != nil {
		return Key{}, err
	}
	for _, e := range k.Restrictions.AllowedEndpoints {
		if err := s.checkEndpoint(e); err != nil {
			return Key{}, err
		}
	}
	if k.Metadata, err = normalizeMetadata(p.Metadata); err != nil {
		return Key{}, err
	}
	return k, nil
}

// utc returns t in UTC, keeping the zero time zero.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// validText reports whether s is valid UTF-8 of at most maxRunes runes
// without control characters (newlines and tabs allowed when multiline).
func validText(s string, maxRunes int, multiline bool) bool {
	if len(s) > 4*maxRunes || !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxRunes {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t' || r == '\r')) {
			return false
		}
	}
	return true
}

// validToken reports whether s is 1 to maxLen ASCII letters, digits and
// "._:-": safe in URLs, logs and store key names.
func validToken(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') &&
			c != '.' && c != '_' && c != ':' && c != '-' {
			return false
		}
	}
	return true
}

func normalizeMetadata(m map[string]string) (map[string]string, error) {
	if len(m) > maxMetadataEntries {
		return nil, invalid("metadata", "has more than %d entries", maxMetadataEntries)
	}
	for name, value := range m {
		if name == "" || !validText(name, maxMetadataName, false) {
			return nil, invalid("metadata", "name %q must be 1 to %d printable characters", name, maxMetadataName)
		}
		if !validText(value, maxMetadataValue, true) {
			return nil, invalid("metadata", "value of %q must be at most %d characters of printable text", name, maxMetadataValue)
		}
	}
	return maps.Clone(m), nil
}

func normalizeRestrictions(r Restrictions) (Restrictions, error) {
	if len(r.AllowedIPs) > maxRestrictions || len(r.AllowedReferrers) > maxRestrictions || len(r.AllowedEndpoints) > maxRestrictions {
		return Restrictions{}, invalid("restrictions", "a list has more than %d entries", maxRestrictions)
	}
	var out Restrictions
	for _, p := range r.AllowedIPs {
		if !p.IsValid() {
			return Restrictions{}, invalid("allowed_ips", "contains an invalid prefix")
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			// Written as IPv4 so that it matches the unmapped client
			// addresses AllowsIP compares.
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		p = p.Masked()
		if !slices.Contains(out.AllowedIPs, p) {
			out.AllowedIPs = append(out.AllowedIPs, p)
		}
	}
	for _, ref := range r.AllowedReferrers {
		host, ok := normalizeReferrer(ref)
		if !ok {
			return Restrictions{}, invalid("allowed_referrers", "%q is not a host name or *.domain pattern", ref)
		}
		if !slices.Contains(out.AllowedReferrers, host) {
			out.AllowedReferrers = append(out.AllowedReferrers, host)
		}
	}
	for _, ep := range r.AllowedEndpoints {
		norm, ok := normalizeEndpoint(ep)
		if !ok {
			return Restrictions{}, invalid("allowed_endpoints", "%q is not \"METHOD /pattern\"", ep)
		}
		if !slices.Contains(out.AllowedEndpoints, norm) {
			out.AllowedEndpoints = append(out.AllowedEndpoints, norm)
		}
	}
	return out, nil
}

// normalizeReferrer returns the lower-case host (or *.domain pattern) of an
// allowed referrer given as a host, pattern or URL.
func normalizeReferrer(ref string) (string, bool) {
	ref = strings.ToLower(strings.TrimSpace(ref))
	wildcard := strings.HasPrefix(ref, "*.")
	host := ref
	if wildcard {
		host = ref[2:]
	} else if strings.Contains(ref, "://") {
		host = refererHost(ref)
	}
	if host == "" || len(host) > maxHostLength {
		return "", false
	}
	for i := range len(host) {
		c := host[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '.' && c != '-' && c != ':' {
			return "", false
		}
	}
	if wildcard {
		return "*." + host, true
	}
	return host, true
}

// normalizeRoute returns a route pattern of [Config].Endpoints as
// "METHOD /path", or "/path" for a route of every method.
func normalizeRoute(route string) (string, bool) {
	route = strings.TrimSpace(route)
	if strings.HasPrefix(route, "/") {
		return route, !strings.ContainsAny(route, " \t\r\n*")
	}
	norm, ok := normalizeEndpoint(route)
	return norm, ok && !strings.HasPrefix(norm, "* ") && !strings.HasSuffix(norm, "*")
}

// checkEndpoint reports an endpoint restriction that names no route of
// [Config].Endpoints, when routes are configured.
func (s *Service) checkEndpoint(entry string) error {
	if len(s.routes) == 0 {
		return nil
	}
	method, path, _ := strings.Cut(entry, " ")
	prefix, wildcard := strings.CutSuffix(path, "*")
	servedBy := "" // the route a raw path would be served by
	for _, route := range s.routes {
		rm, rp := splitRoute(route)
		switch {
		case method != "*" && rm != "" && rm != method:
		case rp == path || (wildcard && strings.HasPrefix(rp, prefix)):
			return nil
		case !wildcard && servedBy == "" && pathInRoute(path, rp):
			servedBy = route
		}
	}
	if servedBy != "" {
		return invalid("allowed_endpoints", "%q names a path, not a route; use the route pattern %q", entry, servedBy)
	}
	return invalid("allowed_endpoints", "%q matches no route of this service", entry)
}

// splitRoute returns the method ("" for any) and path of a route.
func splitRoute(route string) (string, string) {
	if m, p, ok := strings.Cut(route, " "); ok {
		return m, p
	}
	return "", route
}

// pathInRoute reports whether a concrete path would be served by route,
// a pattern whose {wildcard} segments match any segment.
func pathInRoute(path, route string) bool {
	ps, rs := strings.Split(path, "/"), strings.Split(route, "/")
	if len(ps) != len(rs) {
		return false
	}
	for i := range rs {
		if rs[i] != ps[i] && !(strings.HasPrefix(rs[i], "{") && strings.HasSuffix(rs[i], "}")) {
			return false
		}
	}
	return true
}

// normalizeEndpoint returns "METHOD /pattern" with the method upper-cased.
func normalizeEndpoint(ep string) (string, bool) {
	method, pattern, ok := strings.Cut(strings.TrimSpace(ep), " ")
	pattern = strings.TrimSpace(pattern)
	if !ok || len(ep) > maxEndpointLength || !strings.HasPrefix(pattern, "/") || strings.ContainsAny(pattern, " \t\r\n") {
		return "", false
	}
	method = strings.ToUpper(method)
	if method != "*" {
		for i := range len(method) {
			if c := method[i]; c < 'A' || c > 'Z' {
				return "", false
			}
		}
		if method == "" {
			return "", false
		}
	}
	return method + " " + pattern, true
}

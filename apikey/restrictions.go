package apikey

import (
	"net/netip"
	"slices"
	"strings"
)

// Restrictions narrow where a key may be used. Each empty list allows
// everything of its kind; a non-empty list allows only what it names. The
// checks are here so that every transport applies them alike; the
// middleware package calls them with the request's values.
type Restrictions struct {
	// AllowedIPs are the networks the client address must fall in.
	AllowedIPs []netip.Prefix `json:"allowed_ips,omitempty"`
	// AllowedReferrers are host names the Referer header must name: an
	// exact host ("app.example.com") or a wildcard for its subdomains
	// ("*.example.com", which does not match example.com itself).
	AllowedReferrers []string `json:"allowed_referrers,omitempty"`
	// AllowedEndpoints are "METHOD /pattern" pairs. METHOD may be "*" for
	// any method; a pattern ending in "*" matches every path it prefixes.
	AllowedEndpoints []string `json:"allowed_endpoints,omitempty"`
}

// IsZero reports whether r restricts nothing.
func (r Restrictions) IsZero() bool {
	return len(r.AllowedIPs) == 0 && len(r.AllowedReferrers) == 0 && len(r.AllowedEndpoints) == 0
}

func (r Restrictions) clone() Restrictions {
	return Restrictions{
		AllowedIPs:       slices.Clone(r.AllowedIPs),
		AllowedReferrers: slices.Clone(r.AllowedReferrers),
		AllowedEndpoints: slices.Clone(r.AllowedEndpoints),
	}
}

// AllowsIP reports whether addr is in one of the allowed networks. An
// IPv4-mapped IPv6 address is compared as IPv4.
func (r Restrictions) AllowsIP(addr netip.Addr) bool {
	if len(r.AllowedIPs) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, p := range r.AllowedIPs {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// AllowsReferrer reports whether the host of referer (a Referer header
// value, a URL) is allowed. A missing or unparseable referrer is refused
// when the list is not empty.
func (r Restrictions) AllowsReferrer(referer string) bool {
	if len(r.AllowedReferrers) == 0 {
		return true
	}
	host := refererHost(referer)
	if host == "" {
		return false
	}
	for _, allowed := range r.AllowedReferrers {
		if sub, ok := strings.CutPrefix(allowed, "*."); ok {
			if len(host) > len(sub)+1 && host[len(host)-len(sub)-1] == '.' &&
				strings.EqualFold(host[len(host)-len(sub):], sub) {
				return true
			}
		} else if strings.EqualFold(host, allowed) {
			return true
		}
	}
	return false
}

// refererHost returns the host of a URL or bare host, without user info or
// port, or "".
func refererHost(s string) string {
	if _, after, ok := strings.Cut(s, "://"); ok {
		s = after
	}
	// A backslash ends the authority as "/" does, as browsers parse it:
	// "https://evil.com\@app.example.com" is a page of evil.com.
	if i := strings.IndexAny(s, "/?#\\"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	if strings.HasPrefix(s, "[") { // IPv6 literal
		if i := strings.IndexByte(s, ']'); i > 0 {
			return s[1:i]
		}
		return ""
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	return s
}

// AllowsEndpoint reports whether method and pattern (a route pattern such
// as "/api/v1/recordings/{id}", or a path) match an allowed endpoint.
func (r Restrictions) AllowsEndpoint(method, pattern string) bool {
	if len(r.AllowedEndpoints) == 0 {
		return true
	}
	for _, e := range r.AllowedEndpoints {
		m, p, _ := strings.Cut(e, " ")
		if m != "*" && m != method {
			continue
		}
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(pattern, prefix) {
				return true
			}
		} else if p == pattern {
			return true
		}
	}
	return false
}

package memstore

import (
	"context"
	"maps"

	"github.com/keygate/keygate/apikey/usage"
)

var _ usage.Store = (*Store)(nil)

// AddUsage implements [usage.Store]. Usage of keys that no longer
// exist is dropped.
func (s *Store) AddUsage(_ context.Context, deltas []usage.Delta) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range deltas {
		if s.byID[d.KeyID] == nil {
			continue
		}
		u := s.usage[d.KeyID]
		if u == nil {
			u = &usage.Usage{ByEndpoint: make(map[string]int64)}
			s.usage[d.KeyID] = u
		}
		u.TotalRequests += d.Requests
		u.Errors += d.Errors
		if d.LastUsedAt.After(u.LastUsedAt) {
			u.LastUsedAt = d.LastUsedAt
		}
		for ep, n := range d.ByEndpoint {
			if _, ok := u.ByEndpoint[ep]; !ok && ep != usage.OtherEndpoint && endpoints(u) >= usage.MaxEndpoints {
				ep = usage.OtherEndpoint
			}
			u.ByEndpoint[ep] += n
		}
	}
	return nil
}

// endpoints counts u's endpoints but the one that collects the rest.
func endpoints(u *usage.Usage) int {
	if _, ok := u.ByEndpoint[usage.OtherEndpoint]; ok {
		return len(u.ByEndpoint) - 1
	}
	return len(u.ByEndpoint)
}

// Usage implements [usage.Store].
func (s *Store) Usage(_ context.Context, id string) (usage.Usage, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.usage[id]
	if u == nil {
		return usage.Usage{ByEndpoint: map[string]int64{}}, nil
	}
	out := *u
	out.ByEndpoint = maps.Clone(u.ByEndpoint)
	return out, nil
}

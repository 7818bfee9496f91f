package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/apikey/usage"
)

var _ usage.Store = (*Store)(nil)

// AddUsage implements [usage.Store]: the whole batch is one script
// call, one round trip. Usage of keys that no longer exist is dropped.
func (s *Store) AddUsage(ctx context.Context, deltas []usage.Delta) error {
	if len(deltas) == 0 {
		return nil
	}
	args := make([]any, 0, 2+len(deltas)*7)
	args = append(args, s.prefix, usage.MaxEndpoints)
	for _, d := range deltas {
		args = append(args, d.KeyID, d.Requests, d.Errors, d.LastUsedAt.UnixMicro(), len(d.ByEndpoint))
		for ep, n := range d.ByEndpoint {
			args = append(args, ep, n)
		}
	}
	if err := addUsageScript.Run(ctx, s.client, []string{s.expKey()}, args...).Err(); err != nil {
		return wrap("add usage", err)
	}
	return nil
}

// Usage implements [usage.Store].
func (s *Store) Usage(ctx context.Context, id string) (usage.Usage, error) {
	fields, err := s.client.HGetAll(ctx, s.usageKey(id)).Result()
	if err != nil {
		return usage.Usage{}, wrap("usage", err)
	}
	u := usage.Usage{ByEndpoint: make(map[string]int64)}
	for name, value := range fields {
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return usage.Usage{}, fmt.Errorf("redisstore: corrupt usage of %s: %s=%q", id, name, value)
		}
		switch {
		case name == "total":
			u.TotalRequests = n
		case name == "errors":
			u.Errors = n
		case name == "last":
			u.LastUsedAt = time.UnixMicro(n).UTC()
		case strings.HasPrefix(name, "ep:"):
			u.ByEndpoint[name[len("ep:"):]] = n
		}
	}
	return u, nil
}

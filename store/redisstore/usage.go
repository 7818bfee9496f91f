package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/apikey/usage"
)

var _ usage.Store = (*Store)(nil)

// usageBatch is how many keys' deltas one pipeline carries: each is its
// own short script call (two keys in the key ID's slot), so no call holds
// a node for long, and a Cluster pipeline runs on every master at once.
const usageBatch = 500

// AddUsage implements [usage.Store]: one script call per key, pipelined
// by [usageBatch]. Usage of keys that no longer exist is dropped. When
// some calls fail (a master down), the others are kept and the error
// wraps a [usage.PartialError] naming the deltas not added. A call whose
// reply was lost (a timeout) counts as not added: its delta may then be
// added twice.
func (s *Store) AddUsage(ctx context.Context, deltas []usage.Delta) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var partial usage.PartialError
	for len(deltas) > 0 {
		batch := deltas[:min(len(deltas), usageBatch)]
		deltas = deltas[len(batch):]
		for i, err := range s.addUsage(ctx, batch) {
			if err != nil {
				partial.Failed = append(partial.Failed, batch[i])
				if partial.Err == nil {
					partial.Err = err
				}
			}
		}
	}
	if partial.Err != nil {
		return wrap("add usage", &partial)
	}
	return nil
}

// addUsage runs one pipeline of script calls by SHA, loading the script
// and repeating the calls Redis did not know it for (a restarted or new
// node), never one that ran. It returns each call's error.
func (s *Store) addUsage(ctx context.Context, deltas []usage.Delta) []error {
	cmds := make([]*redis.Cmd, len(deltas))
	run := func(p redis.Pipeliner, i int, sha bool) {
		d := deltas[i]
		keys := []string{s.idKey(d.KeyID), s.usageKey(d.KeyID)}
		args := make([]any, 0, 4+2*len(d.ByEndpoint))
		args = append(args, usage.MaxEndpoints, d.Requests, d.Errors, d.LastUsedAt.UnixMicro())
		for ep, n := range d.ByEndpoint {
			args = append(args, ep, n)
		}
		if sha {
			cmds[i] = addUsageScript.EvalSha(ctx, p, keys, args...)
		} else {
			cmds[i] = addUsageScript.Eval(ctx, p, keys, args...)
		}
	}
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range deltas {
			run(p, i, true)
		}
		return nil
	})
	var missing []int
	for i, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range missing {
				run(p, i, false)
			}
			return nil
		})
	}
	errs := make([]error, len(cmds))
	for i, cmd := range cmds {
		errs[i] = cmd.Err()
	}
	return errs
}

// Usage implements [usage.Store].
func (s *Store) Usage(ctx context.Context, id string) (usage.Usage, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
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

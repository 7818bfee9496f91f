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
// by [usageBatch]. Usage of keys that no longer exist is dropped. On an
// error, the deltas of the batches before it were added.
func (s *Store) AddUsage(ctx context.Context, deltas []usage.Delta) error {
	for len(deltas) > 0 {
		batch := deltas[:min(len(deltas), usageBatch)]
		deltas = deltas[len(batch):]
		if err := s.addUsage(ctx, batch); err != nil {
			return wrap("add usage", err)
		}
	}
	return nil
}

// addUsage runs one pipeline of script calls by SHA, loading the script
// and repeating the calls Redis did not know it for (a restarted or new
// node), never one that ran.
func (s *Store) addUsage(ctx context.Context, deltas []usage.Delta) error {
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
		switch err := cmd.Err(); {
		case err == nil:
		case redis.HasErrorPrefix(err, "NOSCRIPT"):
			missing = append(missing, i)
		default:
			return err
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, i := range missing {
			run(p, i, false)
		}
		return nil
	})
	for _, i := range missing {
		if err := cmds[i].Err(); err != nil {
			return err
		}
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

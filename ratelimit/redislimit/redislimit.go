// Package redislimit is the Redis [ratelimit.Limiter]: every instance of a
// service shares the same limits. One Lua script decides all windows of a
// policy in one round trip, on Redis server time (client clocks never
// matter), with the semantics of ratelimit.Memory: GCRA token buckets and
// fixed windows aligned to the Unix epoch, all or nothing across windows.
//
// State lives in one hash per key and policy, {prefix}{<key>}:<policy>
// (the key is the hash tag, so Cluster keeps each key's state in one
// slot), and expires once every window is back to its initial state, so
// idle keys cost nothing. Changing a key's policy starts it afresh.
//
// When Redis fails, Allow fails closed by default (an error: answer 503);
// with [Config].FailOpen it allows the request and marks the decision
// FailedOpen, reporting the error to [Config].OnError.
package redislimit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/ratelimit"
)

// DefaultPrefix prefixes every key when [Config].Prefix is "".
const DefaultPrefix = "keygate:rl:"

// Config configures a [Limiter]. The zero value selects every default.
type Config struct {
	// Prefix namespaces the limiter's keys. It must not contain braces.
	// Default [DefaultPrefix].
	Prefix string
	// FailOpen allows requests when Redis cannot answer. Default: fail
	// closed.
	FailOpen bool
	// OnError receives the Redis errors of failed-open requests. Default:
	// ignore.
	OnError func(error)
	// Clock, for tests only, replaces Redis server time with the given
	// clock's. Leave it nil in production.
	Clock func() time.Time
}

// Limiter is a [ratelimit.Limiter] on Redis. It is safe for concurrent use.
type Limiter struct {
	client redis.UniversalClient
	cfg    Config
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// New returns a Limiter on client. It does not contact Redis.
func New(client redis.UniversalClient, cfg Config) (*Limiter, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil redis client", ratelimit.ErrInvalidPolicy)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("redislimit: prefix %q must not contain braces", cfg.Prefix)
	}
	if cfg.OnError == nil {
		cfg.OnError = func(error) {}
	}
	return &Limiter{client: client, cfg: cfg}, nil
}

// allowScript decides every window of a policy at once.
//
// KEYS: the state hash.
// ARGV: cost, now in µs ("" = Redis TIME), window count n, then per window:
// capacity, interval (µs per token; 0 marks a fixed window), period (µs).
// Reply: allowed (1/0), now (µs), then per window: remaining, reset (µs),
// retry after (µs).
//
// Times are passed to redis.call as numbers, which Redis writes with all
// their digits; Lua's own tostring would keep 14, too few for microseconds
// since 1970. The script is kept lean: each Lua step costs Redis CPU that
// every instance shares.
var allowScript = redis.NewScript(`
local cost, n = tonumber(ARGV[1]), tonumber(ARGV[3])
local now = tonumber(ARGV[2])
if not now then
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
end
local s = redis.call('HMGET', KEYS[1], 't1', 'v1', 't2', 'v2', 't3', 'v3', 't4', 'v4')
local reply = {1, now}
for i = 1, n do
  local c, iv, p = tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2]), tonumber(ARGV[3 * i + 3])
  local t, v, r = tonumber(s[2 * i - 1]) or 0, tonumber(s[2 * i]) or 0, 0
  if iv == 0 then
    local start = now - now % p
    if start > t then t, v = start, 0 end
    if v + cost > c then reply[1], r = 0, t + p - now end
  else
    if now > t then t = now end
    r = t + (cost - c) * iv - now
    if r > 0 then reply[1] = 0 else r = 0 end
  end
  s[2 * i - 1], s[2 * i], reply[3 * i + 2] = t, v, r
end
local ok, ttl = reply[1], 1
for i = 1, n do
  local c, iv, p = tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2]), tonumber(ARGV[3 * i + 3])
  local t, v = s[2 * i - 1], s[2 * i]
  if iv == 0 then
    v = v + cost * ok
    s[2 * i] = v
    reply[3 * i], reply[3 * i + 1] = c - v, t + p
    if v > 0 and t + p - now > ttl then ttl = t + p - now end
  else
    t = t + cost * iv * ok
    s[2 * i - 1] = t
    reply[3 * i], reply[3 * i + 1] = math.floor((c * iv - t + now) / iv), t
    if t - now > ttl then ttl = t - now end
  end
end
if ok == 1 then
  if n == 1 then
    redis.call('HSET', KEYS[1], 't1', s[1], 'v1', s[2])
  elseif n == 2 then
    redis.call('HSET', KEYS[1], 't1', s[1], 'v1', s[2], 't2', s[3], 'v2', s[4])
  else
    for i = 1, n do redis.call('HSET', KEYS[1], 't' .. i, s[2 * i - 1], 'v' .. i, s[2 * i]) end
  end
  redis.call('PEXPIRE', KEYS[1], math.ceil(ttl / 1000) + 1)
end
return reply
`)

// Allow implements [ratelimit.Limiter] with one script call, one round
// trip.
func (l *Limiter) Allow(ctx context.Context, key string, p *ratelimit.Policy, cost int64) (ratelimit.Decision, error) {
	if p == nil {
		return ratelimit.Decision{}, fmt.Errorf("%w: nil policy", ratelimit.ErrInvalidPolicy)
	}
	if cost <= 0 {
		return ratelimit.Decision{}, fmt.Errorf("%w: %d", ratelimit.ErrInvalidCost, cost)
	}
	n := p.NumWindows()
	now := ""
	if l.cfg.Clock != nil {
		now = fmt.Sprint(l.cfg.Clock().UnixMicro())
	}
	args := make([]any, 0, 3+3*n)
	args = append(args, cost, now, n)
	for i := range n {
		w := p.Window(i)
		if cost > w.Burst {
			return ratelimit.Decision{}, fmt.Errorf("%w: %d exceeds window %d's capacity %d", ratelimit.ErrInvalidCost, cost, i, w.Burst)
		}
		interval := w.Period.Microseconds() / w.Limit
		switch {
		case w.Fixed:
			interval = 0
		case interval < 1:
			return ratelimit.Decision{}, fmt.Errorf("%w: window %d refills faster than one token per microsecond, the resolution of Redis time",
				ratelimit.ErrInvalidPolicy, i)
		}
		args = append(args, w.Burst, interval, w.Period.Microseconds())
	}
	reply, err := allowScript.Run(ctx, l.client, []string{l.cfg.Prefix + "{" + key + "}:" + p.Name()}, args...).Int64Slice()
	if err == nil && len(reply) != 2+3*n {
		err = errors.New("unexpected reply")
	}
	if err != nil {
		err = fmt.Errorf("redislimit: %w", err)
		if l.cfg.FailOpen {
			l.cfg.OnError(err)
			return ratelimit.Decision{Allowed: true, FailedOpen: true}, nil
		}
		return ratelimit.Decision{}, err
	}
	var windows [ratelimit.MaxWindows]ratelimit.WindowState
	for i := range n {
		r := reply[2+3*i:]
		windows[i] = ratelimit.WindowState{
			Remaining:  min(r[0], p.Window(i).Limit),
			Reset:      time.UnixMicro(r[1]),
			RetryAfter: time.Duration(r[2]) * time.Microsecond,
		}
	}
	return ratelimit.NewDecision(p, reply[0] == 1, time.UnixMicro(reply[1]), windows[:n]), nil
}

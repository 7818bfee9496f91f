// Package redislimit is the Redis [ratelimit.Limiter]: every instance of a
// service shares the same limits. One Lua script decides all windows of a
// policy in one round trip, on Redis server time (client clocks never
// matter), with the semantics of ratelimit.Memory: GCRA token buckets and
// fixed windows aligned to the Unix epoch, all or nothing across windows.
//
// State lives in one string per key and policy, {prefix}{<key>}:<policy>
// (the key is the hash tag, so Cluster keeps each key's state in one
// slot), and expires at most a minute after every window is back to its
// initial state, so idle keys cost nothing. Changing a key's policy, or
// the number of windows of a policy, starts it afresh.
//
// When Redis fails, Allow fails closed by default (an error: answer 503);
// with [Config].FailOpen it allows the request and marks the decision
// FailedOpen, reporting the error to [Config].OnError.
package redislimit

import (
	"context"
	_ "embed" // the Lua script
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/internal/binding"
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
	// Timeout bounds each Allow within any deadline of the caller's, so
	// that a Redis that hangs costs a request a bounded time (then an
	// error, or a pass with FailOpen). go-redis honours a context's
	// deadline only when the client's options set ContextTimeoutEnabled;
	// without it, its own ReadTimeout and retries apply (3 seconds a try
	// by default). Default 500 milliseconds.
	Timeout time.Duration
	// Clock, for tests only, replaces Redis server time with the given
	// clock's. Leave it nil in production.
	Clock func() time.Time
}

// Limiter is a [ratelimit.Limiter] on Redis. It is safe for concurrent use.
type Limiter struct {
	client  redis.UniversalClient
	cfg     Config
	scripts sync.Map // *ratelimit.Policy -> *script
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// New returns a Limiter on client. It does not contact Redis.
func New(client redis.UniversalClient, cfg Config) (*Limiter, error) {
	if client == nil {
		return nil, errors.New("redislimit: nil redis client")
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
	if cfg.Timeout <= 0 {
		cfg.Timeout = 500 * time.Millisecond
	}
	return &Limiter{client: client, cfg: cfg}, nil
}

// allowScript decides a request against every window of a policy; the
// script's header says what it takes and returns.
//
//go:embed allow.lua
var allowLua string

var allowScript = redis.NewScript(allowLua)

// maxSpan bounds a window's span and count: with times of about 2^51 µs
// added, every number stays below 2^53, which doubles hold exactly.
const maxSpan = 1 << 52

// maxSlack bounds how long an idle key's state outlives its use.
const maxSlack = int64(time.Minute / time.Microsecond)

// script is what Allow sends for one policy, derived once.
type script struct {
	spec    []byte           // the request for cost 1 (see allow.lua)
	args    []any            // the arguments for cost 1 on Redis time, boxed once
	windows []binding.Window // in microseconds
	maxCost int64            // the smallest capacity: no larger cost can ever pass
	err     error            // the policy cannot be enforced in microseconds
}

// scriptFor returns p's script arguments, derived on first use. Policies
// are expected to be few and long-lived (plans and overrides); each one
// used is remembered.
func (l *Limiter) scriptFor(p *ratelimit.Policy) *script {
	if sc, ok := l.scripts.Load(p); ok {
		return sc.(*script)
	}
	sc := &script{maxCost: math.MaxInt64}
	spec := []int64{1, maxSlack}
	for i, w := range p.Windows() {
		period := w.Period.Microseconds()
		span := period
		iv := period / w.Limit
		bw := binding.Window{Limit: w.Limit, Interval: iv, Tau: w.Burst * iv}
		switch {
		case w.Fixed:
			iv = -period
			bw = binding.Window{Limit: w.Limit, Period: period}
		case iv < 1:
			sc.err = fmt.Errorf("%w: window %d refills faster than one token per microsecond, the resolution of Redis time", ratelimit.ErrInvalidPolicy, i)
		default:
			span = w.Burst * iv
		}
		// Spans, counts and times (about 2^51 µs since 1970) must add up
		// below 2^53.
		if w.Burst > maxSpan/max(iv, 1) || period > maxSpan {
			sc.err = fmt.Errorf("%w: window %d spans more than 2^52 µs, too long for Redis's doubles", ratelimit.ErrInvalidPolicy, i)
		}
		spec[1] = min(spec[1], span)
		sc.maxCost = min(sc.maxCost, w.Burst)
		sc.windows = append(sc.windows, bw)
		spec = append(spec, w.Burst, iv)
	}
	for _, x := range spec {
		sc.spec = binary.LittleEndian.AppendUint64(sc.spec, math.Float64bits(float64(x)))
	}
	sc.args = []any{"", sc.spec}
	actual, _ := l.scripts.LoadOrStore(p, sc)
	return actual.(*script)
}

// Allow implements [ratelimit.Limiter] with one script call, one round
// trip.
func (l *Limiter) Allow(ctx context.Context, key string, p *ratelimit.Policy, cost int64) (ratelimit.Decision, error) {
	if p == nil {
		return ratelimit.Decision{}, fmt.Errorf("%w: nil policy", ratelimit.ErrInvalidPolicy)
	}
	sc := l.scriptFor(p)
	switch {
	case sc.err != nil:
		return ratelimit.Decision{}, sc.err
	case cost <= 0 || cost > sc.maxCost:
		return ratelimit.Decision{}, fmt.Errorf("%w: %d is not between 1 and the smallest window capacity %d", ratelimit.ErrInvalidCost, cost, sc.maxCost)
	}
	args := sc.args
	if cost != 1 || l.cfg.Clock != nil {
		at, spec := "", sc.spec
		if l.cfg.Clock != nil {
			at = strconv.FormatInt(l.cfg.Clock().UnixMicro(), 10)
		}
		if cost != 1 {
			spec = binary.LittleEndian.AppendUint64(nil, math.Float64bits(float64(cost)))
			spec = append(spec, sc.spec[8:]...)
		}
		args = []any{at, spec}
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	reply, err := allowScript.Run(ctx, l.client, []string{l.cfg.Prefix + "{" + key + "}:" + p.Name()}, args...).Text()
	n := len(sc.windows)
	if err == nil && len(reply) != 8*(3+2*n) {
		err = fmt.Errorf("unexpected reply of %d bytes", len(reply))
	}
	if err != nil {
		err = fmt.Errorf("redislimit: %w", err)
		if l.cfg.FailOpen {
			l.cfg.OnError(err)
			return ratelimit.Decision{Allowed: true, FailedOpen: true}, nil
		}
		return ratelimit.Decision{}, err
	}
	allowed, now := num(reply, 0) == 1, num(reply, 1)
	var states [ratelimit.MaxWindows]binding.State
	for i := range sc.windows {
		states[i] = sc.windows[i].Report(num(reply, 3+2*i), num(reply, 4+2*i), now, cost, allowed)
	}
	i := binding.Pick(allowed, states[:n])
	w := &states[i]
	return ratelimit.Decision{
		Allowed:    allowed,
		Policy:     p,
		Tightest:   i,
		Limit:      sc.windows[i].Limit,
		Remaining:  w.Remaining,
		Reset:      time.UnixMicro(w.Reset).UTC(),
		ResetAfter: time.Duration(w.Reset-now) * time.Microsecond,
		RetryAfter: time.Duration(w.Retry) * time.Microsecond,
	}, nil
}

// num returns the i-th little-endian double of b as an integer.
func num(b string, i int) int64 {
	return int64(math.Float64frombits(binary.LittleEndian.Uint64([]byte(b[8*i : 8*i+8]))))
}

// Package redislimit is the Redis [ratelimit.Limiter]: every instance of a
// service shares the same limits. One Lua script decides all windows of a
// policy in one round trip, on Redis server time (client clocks never
// matter), with the semantics of ratelimit.Memory: GCRA token buckets and
// fixed windows aligned to the Unix epoch, all or nothing across windows.
//
// State lives in one string per account, {prefix}{<account>}:a, and one
// per key, {prefix}{<account>}:k:<key>: the account is the hash tag, so
// Cluster keeps an account's state and its keys' in one slot (one script
// can touch them all) and spreads accounts over the cluster. A state
// expires at most a minute after every window is back to its initial
// state, so idle accounts and keys cost nothing. A request with no
// account tags its key's state with the key.
//
// With [Config].Local the limiter is local-first: it leases tokens from
// Redis through the same script and spends them in process, trading a
// bounded overshoot (see [Local]) for a Redis call per lease instead of
// one per request. In both modes a refusal is repeated in process,
// without a round trip, until shortly before the request would pass.
//
// When Redis fails, Allow fails closed by default (an error: answer 503);
// with [Config].FailOpen it allows the request and marks the decision
// FailedOpen, reporting the error to [Config].OnError. After three faults in
// a row (timeouts, refused or broken connections) on one node, requests
// whose state lives there get that answer at once, without a call, and
// one request every half second probes whether the node is back.
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
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"

	"github.com/keygate/keygate/internal/binding"
	"github.com/keygate/keygate/internal/breaker"
	"github.com/keygate/keygate/internal/decide"
	"github.com/keygate/keygate/internal/lease"
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
	// deadline only when the client's options set ContextTimeoutEnabled,
	// which [New] requires. Default 500 milliseconds.
	Timeout time.Duration
	// Local, when set, makes the limiter local-first: decisions in
	// process from tokens leased from Redis, with the overshoot bound
	// [Local] states. Default: exact, one round trip per request.
	Local *Local
	// MeterProvider, when set, reports the circuit breaker through the
	// OpenTelemetry metric API: keygate.breaker.open{component="redislimit"},
	// the servers whose breaker is open. Default: none.
	MeterProvider metric.MeterProvider
}

// Local configures the local-first mode (see [Config].Local): Share, the
// part of the request's smallest window limit one lease takes, in (0, 1]
// (default 0.01), and TTL, how long a lease's tokens may be spent before
// the rest are dropped (default 1 second).
//
// An instance takes tokens from Redis in advance, in the same
// all-or-nothing script as an exact decision, and spends them in
// process: steady traffic makes one Redis call per lease. The tokens an
// instance holds count as spent in Redis, so in any interval N instances
// admit at most N × lease requests more than exact mode would (with the
// default Share, N percent of the limit), and tokens unspent when a lease
// ends (after TTL, or when the instance stops) are lost to the window, at
// most N × lease per TTL. A request is decided exactly when its lease
// would be under 2 tokens (with the default Share, any window under 200
// requests: a free plan's 10 per minute stays exact), when it carries
// credits (they are money: never taken ahead) or costs 0, and, near the
// limit, when less than a lease is left.
type Local = lease.Config

// Limiter is a [ratelimit.Limiter] on Redis. It is safe for concurrent use.
type Limiter struct {
	client  redis.UniversalClient
	cfg     Config
	local   *lease.Leaser
	scripts sync.Map // *ratelimit.Policy -> *script
	cached  atomic.Int64
	// clock replaces Redis server time in the package's own tests
	// (export_test.go); nil everywhere else.
	clock func() time.Time
	// breakers answer at once (an error, or a pass with FailOpen) while
	// the node of a request's state is down, instead of after Timeout.
	breakers breaker.Set
}

// maxScripts bounds the policies whose script arguments are kept. Plans
// are few, but a custom policy is built per account and per change (and
// per management read), so the cache starts over when it outgrows this.
const maxScripts = 1024

var _ ratelimit.Limiter = (*Limiter)(nil)

// New returns a Limiter on client. It does not contact Redis. It fails
// for a client whose options do not set ContextTimeoutEnabled, since
// Timeout could not bound its calls.
func New(client redis.UniversalClient, cfg Config) (*Limiter, error) {
	if client == nil {
		return nil, errors.New("redislimit: nil redis client")
	}
	if !honoursDeadlines(client) {
		return nil, errors.New("redislimit: set ContextTimeoutEnabled in the client's options: without it a Redis that hangs holds every request for go-redis's ReadTimeout and retries")
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
	l := &Limiter{client: client, cfg: cfg}
	loc, err := lease.New(cfg.Local, l.exact)
	if err != nil {
		return nil, fmt.Errorf("redislimit: %w", err)
	}
	l.local = loc
	if cfg.MeterProvider != nil {
		// For the limiter's life: it has no Close.
		if _, err := l.breakers.Observe(cfg.MeterProvider, "redislimit"); err != nil {
			return nil, fmt.Errorf("redislimit: %w", err)
		}
	}
	return l, nil
}

// honoursDeadlines reports whether client ends a command at its
// context's deadline (ContextTimeoutEnabled). Without it go-redis waits
// for its own ReadTimeout, try after try, and no Timeout can bound a
// call. A client of another type is taken at its word.
func honoursDeadlines(client redis.UniversalClient) bool {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return true
}

// nodeOf names the master serving key on a Cluster, "" on one node.
func nodeOf(ctx context.Context, client redis.UniversalClient, key string) string {
	if c, ok := client.(*redis.ClusterClient); ok {
		if node, err := c.MasterForKey(ctx, key); err == nil {
			return node.Options().Addr
		}
	}
	return ""
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

// minMonth is the shortest calendar month, in microseconds.
const minMonth = int64(28 * 24 * time.Hour / time.Microsecond)

// maxSlack bounds how long an idle key's state outlives its use.
const maxSlack = int64(time.Minute / time.Microsecond)

// script is what Allow sends for one policy, derived once.
type script struct {
	spec    any              // the policy as allow.lua reads it: a string, boxed once
	windows []binding.Window // in microseconds
	err     error            // the policy cannot be enforced in microseconds
}

// scriptFor returns p's script arguments, derived on first use and kept
// (up to maxScripts policies); nil for a nil policy.
func (l *Limiter) scriptFor(p *ratelimit.Policy) *script {
	if p == nil {
		return nil
	}
	if sc, ok := l.scripts.Load(p); ok {
		return sc.(*script)
	}
	sc := &script{}
	spec := []int64{maxSlack}
	for i, w := range p.Windows() {
		period := w.Period.Microseconds()
		span := period
		iv := period / w.Limit
		bw := binding.Window{Limit: w.Limit, Interval: iv, Tau: w.Burst * iv, Period: period}
		switch {
		case w.Monthly:
			iv, span = -1, minMonth
			bw = binding.Window{Limit: w.Limit, Monthly: true, Unit: 1000}
		case w.Fixed:
			iv = -1
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
		spec[0] = min(spec[0], span)
		sc.windows = append(sc.windows, bw)
		spec = append(spec, w.Burst, iv, period)
	}
	var b []byte
	for _, x := range spec {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(float64(x)))
	}
	sc.spec = string(b)
	if l.cached.Add(1) > maxScripts {
		l.scripts.Clear()
		l.cached.Store(1)
	}
	actual, _ := l.scripts.LoadOrStore(p, sc)
	return actual.(*script)
}

// Allow implements [ratelimit.Limiter]. Exact: one script call, one
// round trip, for the account's windows, the key's and the credit balance
// together. Local-first (see [Local]): a round trip per lease. In both
// modes, a refusal is kept in process and repeated without a round trip
// until shortly before the request would pass, for requests of the same
// names, policies and credits that cost as much or more.
func (l *Limiter) Allow(ctx context.Context, r ratelimit.Request) (ratelimit.Decision, error) {
	if err := r.Validate(); err != nil {
		return ratelimit.Decision{}, err
	}
	smallest := int64(math.MaxInt64)
	for _, sc := range [2]*script{l.scriptFor(r.AccountPolicy), l.scriptFor(r.KeyPolicy)} {
		if sc == nil {
			continue
		}
		if sc.err != nil {
			return ratelimit.Decision{}, sc.err
		}
		for _, w := range sc.windows {
			smallest = min(smallest, w.Limit)
		}
	}
	return l.local.Decide(ctx, r, smallest)
}

// exact decides r with one script call.
func (l *Limiter) exact(ctx context.Context, r ratelimit.Request) (ratelimit.Decision, error) {
	acct, key := l.scriptFor(r.AccountPolicy), l.scriptFor(r.KeyPolicy)
	var args [5]any
	args[0] = ""
	if l.clock != nil {
		args[0] = strconv.FormatInt(l.clock().UnixMicro(), 10)
	}
	args[1], args[2], args[3], args[4] = costArg(r.Cost), "", "", ""
	for i, sc := range []*script{acct, key} {
		if sc != nil {
			args[2+i] = sc.spec
		}
	}
	var sched binding.Credits
	if r.Credits != nil {
		sched = decide.Schedule(r.Credits)
		args[4] = creditSpec(r.Credits)
	}
	tag := r.Account
	if tag == "" {
		tag = r.Key
	}
	base := l.cfg.Prefix + "{" + tag + "}:"
	keys := []string{base + "a", base + "k:" + r.Key, base + "c"}
	tctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	var reply []int64
	err := l.breakers.Do(ctx, nodeOf(tctx, l.client, keys[0]), func() (err error) {
		reply, err = allowScript.Run(tctx, l.client, keys, args[:]...).Int64Slice()
		return err
	})
	na, nk, nc := windows(acct), windows(key), 0
	if r.Credits != nil {
		nc = 1
	}
	if err == nil && len(reply) != 2+2*(na+nk+nc) {
		err = fmt.Errorf("unexpected reply of %d numbers", len(reply))
	}
	if err != nil {
		err = fmt.Errorf("redislimit: %w", err)
		if l.cfg.FailOpen {
			l.cfg.OnError(err)
			return ratelimit.Decision{Allowed: true, FailedOpen: true}, nil
		}
		return ratelimit.Decision{}, err
	}
	allowed, now := reply[0] == 1, reply[1]
	var states [2*binding.MaxWindows + 1]binding.State
	n, at := 0, 2 // at: the next window's t, followed by its v
	for _, sc := range [2]*script{acct, key} {
		for k := range windows(sc) {
			states[n] = sc.windows[k].Report(reply[at], reply[at+1], now, r.Cost, allowed)
			n++
			at += 2
		}
	}
	var balance int64
	if nc == 1 {
		// The schedule counts in nanoseconds; the script in microseconds.
		balance = reply[at]
		s := sched.Report(balance, reply[at+1], now*1000, r.Cost, allowed)
		s.Reset /= 1000
		if s.Retry != binding.Never {
			s.Retry = (s.Retry + 999) / 1000
		}
		states[n] = s
		n++
	}
	var acctWindows, keyWindows []binding.Window
	if acct != nil {
		acctWindows = acct.windows
	}
	if key != nil {
		keyWindows = key.windows
	}
	return decide.Decision(&r, acctWindows, keyWindows, allowed, states[:n], balance, now, time.Microsecond), nil
}

// creditSpec returns c as allow.lua reads it, in microseconds.
func creditSpec(c *ratelimit.Credits) string {
	first := c.RefillAt.UTC()
	y, m, d := first.Date()
	tod := first.Sub(time.Date(y, m, d, 0, 0, 0, 0, time.UTC)).Microseconds()
	b := make([]byte, 0, 80)
	for _, x := range [...]int64{
		c.Granted.UnixMicro(), c.Balance, c.Refill, boolNum(c.Add), boolNum(c.Monthly),
		first.UnixMicro(), int64(y), int64(m), int64(d), tod,
	} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(float64(x)))
	}
	return string(b)
}

func boolNum(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// costArg returns the script's cost argument; the usual cost 1 is boxed
// once.
func costArg(cost int64) any {
	if cost == 1 {
		return one
	}
	return strconv.FormatInt(cost, 10)
}

var one any = "1"

// windows returns the number of windows of sc, 0 for nil.
func windows(sc *script) int {
	if sc == nil {
		return 0
	}
	return len(sc.windows)
}

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
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
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
	client  redis.UniversalClient
	cfg     Config
	scripts sync.Map // *ratelimit.Policy -> *script
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

// allowScripts[n-1] decides every window of an n-window policy at once.
//
// KEYS: the state string.
// ARGV: now in µs ("" = Redis TIME); the request as little-endian
// doubles: cost, expiry slack in µs, then per window its capacity and its
// interval in µs per token, or minus its period for a fixed window.
// State: little-endian doubles: the expiry deadline set last, then per
// window t (a bucket's theoretical arrival time, a fixed window's start)
// and v (a fixed window's count).
// Reply: the doubles allowed (1/0) and now, then the state as it is after
// the decision.
//
// Strings, not a hash and numerals: GET and SET of one string cost Redis
// half the CPU of HMGET and HSET of the same fields, and the struct
// library packs or unpacks all of them in one call, where tonumber per
// argument adds up. Doubles hold microseconds since 1970 exactly (below
// 2^53). The expiry only moves when the state outlives the deadline set
// last, which it then pushes a slack further, so most writes keep the TTL
// (SET KEEPTTL) instead of paying for PEXPIRE. Each Lua step costs Redis
// CPU that every instance shares, so each window count has a script of
// its own, written out from one template with a local per number: the
// loop over tables it replaces cost a fifth more Redis CPU per call.
var allowScripts = func() (s [ratelimit.MaxWindows]*redis.Script) {
	for n := range s {
		s[n] = redis.NewScript(allowLua(n + 1))
	}
	return s
}()

// allowLua returns the script for n windows. In the templates, # stands
// for the window's number.
func allowLua(n int) string {
	var spec, state []string
	for i := 1; i <= n; i++ {
		spec = append(spec, fmt.Sprintf("c%d, i%d", i, i))
		state = append(state, fmt.Sprintf("t%d, v%d", i, i))
	}
	each := func(tmpl string) string {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			b.WriteString(strings.ReplaceAll(tmpl, "#", strconv.Itoa(i)))
		}
		return b.String()
	}
	r := strings.NewReplacer(
		"SPEC", strings.Join(spec, ", "),
		"STATE", strings.Join(state, ", "),
		"ZEROS", strings.Repeat(", 0", 2*n),
		"FMT", "'<"+strings.Repeat("d", 1+2*n)+"'",
		"FSPEC", "'<"+strings.Repeat("d", 2+2*n)+"'",
		"FREPLY", "'<"+strings.Repeat("d", 3+2*n)+"'",
		"SIZE", strconv.Itoa(8*(1+2*n)),
		"CHECK", each(`
if i# < 0 then
  local start = now - now % -i#
  if start > t# then t#, v# = start, 0 end
  if v# + cost > c# then ok = 0 end
else
  if now > t# then t# = now end
  if t# + (cost - c#) * i# > now then ok = 0 end
end`),
		"TAKE", each(`
  if i# < 0 then
    v# = v# + cost
    if t# - i# > need then need = t# - i# end
  else
    t# = t# + cost * i#
    if t# > need then need = t# end
  end`),
	)
	return r.Replace(`
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
end
local cost, slack, SPEC = struct.unpack(FSPEC, ARGV[2])
local raw = redis.call('GET', KEYS[1])
local x, STATE = 0ZEROS
if raw and #raw == SIZE then
  x, STATE = struct.unpack(FMT, raw)
end
local ok = 1CHECK
if ok == 1 then
  local need = 0TAKE
  if need > x then
    x = need + slack
    redis.call('SET', KEYS[1], struct.pack(FMT, x, STATE), 'PX', math.ceil((x - now) / 1000))
  else
    redis.call('SET', KEYS[1], struct.pack(FMT, x, STATE), 'KEEPTTL')
  end
end
return struct.pack(FREPLY, ok, now, x, STATE)
`)
}

// maxSpan bounds a window's span and count: with times of about 2^51 µs
// added, every number stays below 2^53, which doubles hold exactly.
const maxSpan = 1 << 52

// maxSlack bounds how long an idle key's state outlives its use.
const maxSlack = int64(time.Minute / time.Microsecond)

// script is what Allow sends for one policy, derived once.
type script struct {
	spec []byte  // the request for cost 1 (see allowScripts)
	args []any   // the arguments for cost 1 on Redis time, boxed once
	iv   []int64 // per window: µs per token, or minus the period of a fixed window
	err  error   // the policy cannot be enforced in microseconds
}

// scriptFor returns p's script arguments, derived on first use. Policies
// are expected to be few and long-lived (plans and overrides); each one
// used is remembered.
func (l *Limiter) scriptFor(p *ratelimit.Policy) *script {
	if sc, ok := l.scripts.Load(p); ok {
		return sc.(*script)
	}
	n := p.NumWindows()
	sc := &script{iv: make([]int64, n)}
	spec := []int64{1, maxSlack}
	for i := range n {
		w := p.Window(i)
		period := w.Period.Microseconds()
		span := period
		iv := period / w.Limit
		switch {
		case w.Fixed:
			iv = -period
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
		sc.iv[i] = iv
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
	if err := p.CheckCost(cost); err != nil {
		return ratelimit.Decision{}, err
	}
	sc := l.scriptFor(p)
	if sc.err != nil {
		return ratelimit.Decision{}, sc.err
	}
	n := len(sc.iv)
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
	reply, err := allowScripts[n-1].Run(ctx, l.client, []string{l.cfg.Prefix + "{" + key + "}:" + p.Name()}, args...).Text()
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
	var windows [ratelimit.MaxWindows]ratelimit.WindowState
	for i, iv := range sc.iv {
		w := p.Window(i)
		t, v := num(reply, 3+2*i), num(reply, 4+2*i)
		var remaining, reset, retry int64
		if iv < 0 {
			remaining, reset = w.Limit-v, t-iv
			if !allowed && v+cost > w.Limit {
				retry = reset - now
			}
		} else {
			remaining, reset = min((w.Burst*iv-t+now)/iv, w.Limit), t
			if !allowed {
				retry = max(t+(cost-w.Burst)*iv-now, 0)
			}
		}
		windows[i] = ratelimit.WindowState{
			Remaining:  remaining,
			Reset:      time.UnixMicro(reset),
			RetryAfter: time.Duration(retry) * time.Microsecond,
		}
	}
	return ratelimit.NewDecision(p, allowed, time.UnixMicro(now), windows[:n]), nil
}

// num returns the i-th little-endian double of b as an integer.
func num(b string, i int) int64 {
	return int64(math.Float64frombits(binary.LittleEndian.Uint64([]byte(b[8*i : 8*i+8]))))
}

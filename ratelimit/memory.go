package ratelimit

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/keygate/keygate/internal/binding"
)

// MemoryConfig configures a [Memory] limiter. The zero value selects every
// default.
type MemoryConfig struct {
	// Clock returns the current time; it is read under the key's lock, so
	// concurrent requests see it in order. Default: the wall time at
	// construction advanced by the monotonic clock, which never steps back
	// when the wall clock is set.
	Clock func() time.Time
	// SweepInterval is how often idle keys are evicted in the background.
	// Default one minute; negative disables the background sweep (call
	// [Memory.Sweep] yourself).
	SweepInterval time.Duration
}

const memShards = 128

// Memory is the in-process [Limiter]: state per account and per key in
// sharded maps, evicted once idle.
//
// It follows golang.org/x/time/rate's token-bucket semantics, with each
// bucket kept as the generic cell rate algorithm keeps it, one integer
// instant, so every figure is exact to the nanosecond. An account's state
// and its keys' share one shard, so one lock covers a whole decision. A
// name is evicted once every window is back to its initial state (buckets
// full, fixed windows past their end), which loses nothing: new state
// would be identical. Memory therefore follows the number of recently
// active accounts and keys: a request that spends nothing (cost 0, as
// when reading where an account's limits stand) keeps no state. Name
// strings are retained, not copied.
type Memory struct {
	// shards come first: Go's allocator starts an object this large on a
	// 64-byte boundary, so each shard is one cache line of its own.
	shards [memShards]memShard
	now    func() int64 // unix nanoseconds
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

type memShard struct {
	mu       sync.Mutex
	accounts map[string]*bucket
	keys     map[string]*bucket
	credits  map[string]*credit
	peak     int      // most entries since the maps were last rebuilt
	_        [24]byte // 40 bytes of fields, padded to a 64-byte cache line
}

// bucket is one account's or key's state under one policy. Two windows,
// as in every preset, fit inline; a policy of more keeps all of them in
// more.
type bucket struct {
	policy *Policy
	w      [2]binding.Cell
	more   *[binding.MaxWindows]binding.Cell
}

// reset gives b the initial state of p's windows.
func (b *bucket) reset(p *Policy) {
	b.policy, b.w, b.more = p, [2]binding.Cell{}, nil
	if len(p.windows) > len(b.w) {
		b.more = new([binding.MaxWindows]binding.Cell)
	}
}

// adopt moves b to policy p at now, keeping what was spent (see
// [binding.Carry]).
func (b *bucket) adopt(p *Policy, now int64) {
	old := b.policy
	var was [binding.MaxWindows]binding.Cell
	copy(was[:], b.state())
	b.reset(p)
	if old != nil {
		binding.Carry(p.limits, b.state(), old.limits, was[:], now)
	}
}

// state returns b's window states, at least one per window of its policy.
func (b *bucket) state() []binding.Cell {
	if b.more != nil {
		return b.more[:]
	}
	return b.w[:]
}

var _ Limiter = (*Memory)(nil)

// NewMemory returns a Memory limiter and starts its background sweep;
// [Memory.Close] stops it.
func NewMemory(cfg MemoryConfig) *Memory {
	m := &Memory{now: monotonicClock(), stop: make(chan struct{}), done: make(chan struct{})}
	if cfg.Clock != nil {
		m.now = func() int64 { return cfg.Clock().UnixNano() }
	}
	for i := range m.shards {
		m.shards[i].accounts = make(map[string]*bucket)
		m.shards[i].keys = make(map[string]*bucket)
		m.shards[i].credits = make(map[string]*credit)
	}
	interval := cfg.SweepInterval
	if interval == 0 {
		interval = time.Minute
	}
	if interval < 0 {
		close(m.done)
		return m
	}
	go func() {
		defer close(m.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				m.Sweep()
			}
		}
	}()
	return m
}

// Close stops the background sweep. The limiter keeps working.
func (m *Memory) Close() error {
	m.once.Do(func() { close(m.stop) })
	<-m.done
	return nil
}

// monotonicClock returns unix nanoseconds read from the monotonic clock,
// anchored to the wall time now.
func monotonicClock() func() int64 {
	start := time.Now()
	base := start.UnixNano()
	return func() int64 { return base + int64(time.Since(start)) }
}

// shardOf spreads keys over the shards by a multiplicative hash of their
// last eight bytes (key IDs and addresses differ most at the end). The
// map hashes the key again; this only has to balance the locks.
func shardOf(key string) int {
	var x uint64
	if len(key) >= 8 {
		x = binary.LittleEndian.Uint64([]byte(key[len(key)-8:]))
	} else {
		for i := range len(key) {
			x = x<<8 | uint64(key[i])
		}
	}
	x ^= uint64(len(key))
	return int((x * 0x9e3779b97f4a7c15) >> (64 - 7))
}

// Allow implements [Limiter]. It never fails for a valid request.
func (m *Memory) Allow(_ context.Context, r Request) (Decision, error) {
	if err := r.Validate(); err != nil {
		return Decision{}, err
	}
	var sched binding.Credits
	if r.Credits != nil {
		sched = r.Credits.schedule()
	}
	home := r.Account
	if home == "" {
		home = r.Key
	}
	sh := &m.shards[shardOf(home)]
	var out [2*binding.MaxWindows + 1]binding.State
	sh.mu.Lock()
	now := m.now()
	// A request that spends nothing only reads: it keeps no state for a
	// name that has none, so that reading the limits of many accounts
	// (a flood of account IDs) costs no memory.
	keep := r.Cost > 0
	acct := sh.get(sh.accounts, r.Account, r.AccountPolicy, now, keep)
	key := sh.get(sh.keys, r.Key, r.KeyPolicy, now, keep)
	// Both checks run: each brings its windows up to now for the report.
	allowed := acct.check(now, r.Cost)
	allowed = key.check(now, r.Cost) && allowed
	var c *credit
	if r.Credits != nil {
		c = sh.credit(r.Account, &sched, now, keep)
		allowed = c.balance >= r.Cost && allowed
	}
	na := acct.take(now, r.Cost, allowed, out[:])
	n := na + key.take(now, r.Cost, allowed, out[na:])
	var balance int64
	if c != nil {
		if allowed {
			c.balance -= r.Cost
		}
		balance = c.balance
		out[n] = sched.Report(c.balance, c.n, now, r.Cost, allowed)
		n++
	}
	sh.mu.Unlock()
	d := decision(&r, na, allowed, out[:n], now)
	d.Balance = balance
	return d, nil
}

// credit is an account's credit balance: balance after n refills of the
// grant of sched.
type credit struct {
	sched      binding.Credits
	balance, n int64
}

// credit returns the balance of account under sched, brought up to now,
// kept in sh when it is new only if keep is set.
func (sh *memShard) credit(account string, sched *binding.Credits, now int64, keep bool) *credit {
	c := sh.credits[account]
	if c == nil {
		c = &credit{sched: *sched, balance: sched.Balance, n: sched.Due(sched.Granted)}
		if keep {
			sh.credits[account] = c
			sh.peak = max(sh.peak, len(sh.accounts)+len(sh.keys)+len(sh.credits))
		}
	}
	c.balance, c.n = sched.Bring(c.sched.Granted, c.balance, c.n, now)
	c.sched = *sched
	return c
}

// get returns the state of name under p in m, created (and kept in m
// only if keep is set) or moved to p as needed; nil for a nil policy.
func (sh *memShard) get(m map[string]*bucket, name string, p *Policy, now int64, keep bool) *bucket {
	if p == nil {
		return nil
	}
	b := m[name]
	if b == nil {
		b = &bucket{}
		b.reset(p)
		if !keep {
			return b
		}
		m[name] = b
		sh.peak = max(sh.peak, len(sh.accounts)+len(sh.keys)+len(sh.credits))
	}
	if b.policy != p {
		b.adopt(p, now)
	}
	return b
}

// decision reports the binding limit of states, decided at now (in
// nanoseconds): r's account windows (the first na), its key's, then its
// balance.
func decision(r *Request, na int, allowed bool, states []binding.State, now int64) Decision {
	i := binding.Pick(allowed, states)
	w := &states[i]
	d := Decision{
		Allowed:    allowed,
		Remaining:  w.Remaining,
		Reset:      time.Unix(0, w.Reset).UTC(),
		ResetAfter: time.Duration(w.Reset - now),
		RetryAfter: time.Duration(w.Retry),
	}
	if w.Retry == binding.Never {
		d.RetryAfter = -1
	}
	if r.Cost == 0 {
		d.Windows = make([]WindowState, 0, len(states))
	}
	nw := na + r.KeyPolicy.len()
	for k := range states {
		p, j := r.AccountPolicy, k
		switch {
		case k >= nw: // the balance, last
			p, j = nil, 0
		case k >= na:
			p, j = r.KeyPolicy, k-na
		}
		if k == i {
			d.Policy, d.Tightest, d.Quota = p, j, p == nil
			if p != nil {
				d.Limit = p.windows[j].Limit
			} else if d.Limit = r.Credits.Refill; d.Limit == 0 {
				d.Limit = r.Credits.Balance
			}
		}
		if r.Cost == 0 && p != nil {
			d.Windows = append(d.Windows, WindowState{Policy: p, Index: j, Remaining: states[k].Remaining, Reset: time.Unix(0, states[k].Reset).UTC()})
		}
	}
	return d
}

// check reports whether every window of b admits cost at now, bringing
// each up to now first (see [binding.Window.Admits]). A nil b admits
// anything.
func (b *bucket) check(now, cost int64) bool {
	if b == nil {
		return true
	}
	// Equal lengths, checked once, so the loop indexes without checks.
	windows := b.policy.limits
	state := b.state()[:len(windows)]
	allowed := true
	for i := range windows {
		allowed = windows[i].Admits(&state[i], now, cost) && allowed
	}
	return allowed
}

// take takes cost from every window of b when allowed, reports each
// window in out and returns how many it reported.
func (b *bucket) take(now, cost int64, allowed bool, out []binding.State) int {
	if b == nil {
		return 0
	}
	windows := b.policy.limits
	state, out := b.state()[:len(windows)], out[:len(windows)]
	for i := range windows {
		out[i] = windows[i].Take(&state[i], now, cost, allowed)
	}
	return len(windows)
}

// Sweep evicts every key whose buckets are back to their initial state,
// and shrinks maps that have emptied, so memory returns after a burst of
// distinct keys.
func (m *Memory) Sweep() {
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		now := m.now()
		for _, bs := range []map[string]*bucket{sh.accounts, sh.keys} {
			for k, b := range bs {
				if binding.FreshAt(b.policy.limits, b.state()) <= now {
					delete(bs, k)
				}
			}
		}
		for k, c := range sh.credits {
			if c.sched.Fresh(c.balance, c.n, now) {
				delete(sh.credits, k)
			}
		}
		// Go maps never shrink; rebuild them when they hold under a
		// quarter of their peak.
		if n := len(sh.accounts) + len(sh.keys) + len(sh.credits); sh.peak > 64 && n < sh.peak/4 {
			sh.accounts, sh.keys, sh.credits, sh.peak = rebuilt(sh.accounts), rebuilt(sh.keys), rebuilt(sh.credits), n
		}
		sh.mu.Unlock()
	}
}

// rebuilt returns a copy of m sized for its entries (maps.Clone keeps the
// original's size).
func rebuilt[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, b := range m {
		out[k] = b
	}
	return out
}

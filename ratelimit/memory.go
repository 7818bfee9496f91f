package ratelimit

import (
	"context"
	"encoding/binary"
	"math"
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

// Memory is the in-process [Limiter]: state per key in sharded maps,
// evicted once idle.
//
// It follows golang.org/x/time/rate's token-bucket semantics, with each
// bucket kept as the generic cell rate algorithm keeps it, one integer
// instant, so every figure is exact to the nanosecond. A key is evicted
// once every window is back to its initial state (buckets full, fixed
// windows past their end), which loses nothing: a new bucket would be
// identical. Memory therefore follows the number of recently active keys.
// The key string is retained, not copied.
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
	mu      sync.Mutex
	buckets map[string]*bucket
	peak    int      // most buckets since the map was last rebuilt
	_       [40]byte // 24 bytes of fields, padded to a 64-byte cache line
}

// bucket is one key's state under one policy. Two windows, as in every
// preset, fit inline; a policy of more keeps all of them in more.
type bucket struct {
	policy *Policy
	w      [2]winState
	more   *[MaxWindows]winState
}

// reset gives b the initial state of p's windows.
func (b *bucket) reset(p *Policy) {
	b.policy, b.w, b.more = p, [2]winState{}, nil
	if len(p.windows) > len(b.w) {
		b.more = new([MaxWindows]winState)
	}
}

// state returns b's window states, at least one per window of its policy.
func (b *bucket) state() []winState {
	if b.more != nil {
		return b.more[:]
	}
	return b.w[:]
}

// winState is a token bucket's theoretical arrival time (GCRA: the
// instant at which the bucket is full again, in t), or a fixed window's
// count (v) and start (t).
type winState struct {
	v int64
	t int64
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
		m.shards[i].buckets = make(map[string]*bucket)
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
func (m *Memory) Allow(_ context.Context, key string, p *Policy, cost int64) (Decision, error) {
	if p == nil || cost <= 0 || cost > p.maxCost {
		return Decision{}, p.checkCost(cost)
	}
	var out [MaxWindows]binding.State
	sh := &m.shards[shardOf(key)]
	sh.mu.Lock()
	now := m.now()
	b := sh.buckets[key]
	if b == nil {
		b = &bucket{}
		sh.buckets[key] = b
		sh.peak = max(sh.peak, len(sh.buckets))
	}
	if b.policy != p {
		b.reset(p)
	}
	allowed := decide(p, b.state(), now, cost, out[:len(p.windows)])
	sh.mu.Unlock()
	return decision(p, allowed, out[:len(p.windows)], now), nil
}

// decision reports the binding window of states, decided at now (in
// nanoseconds).
func decision(p *Policy, allowed bool, states []binding.State, now int64) Decision {
	i := binding.Pick(allowed, states)
	w := &states[i]
	return Decision{
		Allowed:    allowed,
		Policy:     p,
		Tightest:   i,
		Limit:      p.windows[i].Limit,
		Remaining:  w.Remaining,
		Reset:      time.Unix(0, w.Reset).UTC(),
		ResetAfter: time.Duration(w.Reset - now),
		RetryAfter: time.Duration(w.Retry),
	}
}

// decide checks cost against every window of state at now and, when all
// admit it, takes it from each, reporting each window in out. A denied
// request changes state only into an equivalent one (a fixed window
// rolled over, a bucket's arrival time brought up to now), so it takes
// nothing.
func decide(p *Policy, state []winState, now, cost int64, out []binding.State) (allowed bool) {
	// Equal lengths, checked once, so the loops index without checks.
	windows := p.windows
	state, out = state[:len(windows)], out[:len(windows)]
	allowed = true
	for i := range windows {
		w, s := &windows[i], &state[i]
		if w.Fixed {
			// A window never goes back: a stale clock counts in the
			// current one.
			if period := int64(w.Period); now >= s.t+period {
				s.v, s.t = 0, now-now%period
			}
			allowed = allowed && s.v+cost <= w.Limit
			continue
		}
		// max(tat, now): a clock that steps back finds the bucket no fuller.
		s.t = max(s.t, now)
		allowed = allowed && s.t+cost*w.interval-now <= w.tau
	}
	for i := range windows {
		w, s := &windows[i], &state[i]
		if w.Fixed {
			if allowed {
				s.v += cost
			}
			out[i] = w.report.Fixed(s.t, s.v, now, cost, allowed)
			continue
		}
		if allowed {
			s.t += cost * w.interval
		}
		out[i] = w.report.Bucket(s.t, now, cost, allowed)
	}
	return allowed
}

// freshAt is when state will equal a new bucket's.
func freshAt(p *Policy, state []winState) int64 {
	fresh := int64(math.MinInt64)
	for i := range p.windows {
		w, s := &p.windows[i], &state[i]
		switch {
		case !w.Fixed:
			fresh = max(fresh, s.t) // a bucket is full at its arrival time
		case s.v > 0:
			fresh = max(fresh, s.t+int64(w.Period)) // the next window starts at 0
		}
	}
	return fresh
}

// Sweep evicts every key whose buckets are back to their initial state,
// and shrinks maps that have emptied, so memory returns after a burst of
// distinct keys.
func (m *Memory) Sweep() {
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		now := m.now()
		for k, b := range sh.buckets {
			if freshAt(b.policy, b.state()) <= now {
				delete(sh.buckets, k)
			}
		}
		// Go maps never shrink; rebuild one that holds under a quarter of
		// its peak.
		if n := len(sh.buckets); sh.peak > 64 && n < sh.peak/4 {
			fresh := make(map[string]*bucket, n)
			for k, b := range sh.buckets {
				fresh[k] = b
			}
			sh.buckets, sh.peak = fresh, n
		}
		sh.mu.Unlock()
	}
}

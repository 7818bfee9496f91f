// Package lease is the local-first mode of the shared limiters
// (redislimit, sqllimit): tokens leased from the shared store and spent
// in process, and refusals repeated in process, so that a busy key costs
// the store one call per lease, not one per request.
package lease

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/keygate/keygate/ratelimit"
)

// Config configures the local-first mode of a shared limiter; each
// limiter's Local documents it for its users, with the bounds it keeps.
type Config struct {
	// Share is the part of the smallest window limit one lease takes,
	// in (0, 1]. Default 0.01.
	Share float64
	// TTL is how long a lease's tokens may be spent; the rest are then
	// dropped. Default 1 second.
	TTL time.Duration
}

// Exact decides one request with the shared store: the limiter's exact
// mode, which leases go through too (a lease is a request of its size).
type Exact func(ctx context.Context, r ratelimit.Request) (ratelimit.Decision, error)

// Leaser decides requests in process when it can, and with Exact
// otherwise. It holds, per account, key, policies and credits, the tokens
// leased and the last refusal; shards keep one lock from being global.
type Leaser struct {
	// Clock times leases and refusals, in process. Default [time.Now]
	// (whose monotonic reading no wall-clock step moves); tests set
	// theirs.
	Clock  func() time.Time
	exact  Exact
	share  float64
	ttl    time.Duration
	seed   maphash.Seed
	shards [64]shard
}

type shard struct {
	mu      sync.Mutex
	entries map[entryKey]*entry
	sweepAt int // sweep stale entries when the map reaches this size
}

// entryKey names the state a request decides on: new policies or credits
// (a plan change, a top-up) start a new entry.
type entryKey struct {
	account, key string
	ap, kp       *ratelimit.Policy
	credits      *ratelimit.Credits
}

type entry struct {
	mu sync.Mutex
	// The lease: tokens left until expires, the store's remaining count when
	// it was taken, and that decision for the other fields.
	tokens, base int64
	expires      time.Time
	grant        ratelimit.Decision
	// The last refusal, decided at deniedAt and answered locally until
	// deniedUntil for requests that cost at least deniedCost.
	deniedAt, deniedUntil time.Time
	deniedCost            int64
	denial                ratelimit.Decision
	// A lease that failed (the store down): its answer is repeated until
	// failedUntil to the requests that waited for it, so that they do not
	// each wait for a lease of their own in turn.
	failedUntil time.Time
	failed      ratelimit.Decision
	failedErr   error
}

// failWait is how long a failed lease's answer is repeated.
const failWait = 100 * time.Millisecond

// New returns a Leaser deciding with exact. A nil cfg leases nothing:
// every request is decided exactly, and only refusals are repeated in
// process.
func New(cfg *Config, exact Exact) (*Leaser, error) {
	l := &Leaser{exact: exact, seed: maphash.MakeSeed()}
	if cfg != nil {
		l.share, l.ttl = cfg.Share, cfg.TTL
		if l.share == 0 {
			l.share = 0.01
		}
		if l.ttl == 0 {
			l.ttl = time.Second
		}
		if !(l.share > 0 && l.share <= 1) || l.ttl < 0 {
			return nil, fmt.Errorf("Local.Share %v must be in (0, 1] and Local.TTL %v positive", cfg.Share, cfg.TTL)
		}
	}
	for i := range l.shards {
		l.shards[i].entries = make(map[entryKey]*entry)
		l.shards[i].sweepAt = 1024
	}
	return l, nil
}

// entry returns the state of r's names, created on first use: one per
// account when only the account has windows, so that all its keys spend
// one lease.
func (l *Leaser) entry(r *ratelimit.Request, now time.Time) *entry {
	k := entryKey{r.Account, r.Key, r.AccountPolicy, r.KeyPolicy, r.Credits}
	if r.KeyPolicy == nil && r.Account != "" {
		k.key = ""
	}
	s := &l.shards[(maphash.String(l.seed, k.account)^maphash.String(l.seed, k.key))%uint64(len(l.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[k]
	if e == nil {
		if len(s.entries) >= s.sweepAt {
			s.sweep(now)
		}
		e = &entry{}
		s.entries[k] = e
	}
	return e
}

// sweep drops entries holding no live lease or refusal, so that memory
// follows the keys in use. s.mu must be held.
func (s *shard) sweep(now time.Time) {
	for k, e := range s.entries {
		if !e.mu.TryLock() {
			continue // busy with a lease: not stale
		}
		stale := !now.Before(e.expires) && !now.Before(e.deniedUntil) && !now.Before(e.failedUntil)
		e.mu.Unlock()
		if stale {
			delete(s.entries, k)
		}
	}
	s.sweepAt = max(2*len(s.entries), 1024)
}

// lease returns the tokens a lease for r takes, 0 when r is decided
// exactly; smallest is the smallest limit of r's windows.
func (l *Leaser) lease(r *ratelimit.Request, smallest int64) int64 {
	if l.share == 0 || r.Credits != nil || r.Cost == 0 {
		return 0
	}
	if n := int64(float64(smallest) * l.share); n >= 2 && n >= r.Cost {
		return n
	}
	return 0
}

// Decide decides r, a valid request, in process when it can: a refusal
// still in force, or tokens of a live lease; otherwise with Exact, for a
// lease or for r. smallest is the smallest limit of r's windows.
func (l *Leaser) Decide(ctx context.Context, r ratelimit.Request, smallest int64) (ratelimit.Decision, error) {
	now := time.Now()
	if l.Clock != nil {
		now = l.Clock()
	}
	e := l.entry(&r, now)
	e.mu.Lock()
	if r.Cost > 0 && r.Cost >= e.deniedCost && now.Before(e.deniedUntil) {
		d, at := e.denial, e.deniedAt
		e.mu.Unlock()
		if d.RetryAfter > 0 {
			d.RetryAfter = max(d.RetryAfter-now.Sub(at), time.Microsecond)
		}
		d.ResetAfter = d.Reset.Sub(now)
		return d, nil
	}
	n := l.lease(&r, smallest)
	if n == 0 {
		e.mu.Unlock()
		d, err := l.exact(ctx, r)
		e.mu.Lock()
		e.refused(r.Cost, d, err, now)
		e.mu.Unlock()
		return d, err
	}
	defer e.mu.Unlock() // one lease at a time per entry: the others wait for it
	if now.Before(e.failedUntil) {
		return e.failed, e.failedErr
	}
	if e.tokens < r.Cost || !now.Before(e.expires) {
		lr := r
		lr.Cost = n
		d, err := l.exact(ctx, lr)
		if err != nil || d.FailedOpen {
			e.failed, e.failedErr, e.failedUntil = d, err, now.Add(failWait)
			return d, err
		}
		if !d.Allowed {
			// Less than a lease is left: decide r alone.
			d, err = l.exact(ctx, r)
			e.refused(r.Cost, d, err, now)
			return d, err
		}
		e.tokens, e.base, e.expires, e.grant = n, d.Remaining, now.Add(l.ttl), d
	}
	e.tokens -= r.Cost
	d := e.grant
	d.Remaining = e.base + e.tokens
	d.ResetAfter = d.Reset.Sub(now)
	return d, nil
}

// refused keeps the store's answer d (or err) when it is a refusal, to
// answer locally: until a millisecond before the store would admit the
// request (its clock and ours differ in rounding), or a second when
// waiting will not do (a spent balance that a top-up, a new Credits,
// would end anyway). e.mu must be held.
func (e *entry) refused(cost int64, d ratelimit.Decision, err error, now time.Time) {
	if err != nil || d.Allowed || d.FailedOpen {
		return
	}
	wait := d.RetryAfter - time.Millisecond
	if d.RetryAfter < 0 {
		wait = time.Second
	}
	if wait <= 0 {
		return
	}
	e.denial, e.deniedCost, e.deniedAt, e.deniedUntil = d, cost, now, now.Add(wait)
}

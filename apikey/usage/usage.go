// Package usage counts how API keys are used and writes the counts to a
// [Store] in batches, never once per request.
//
// A [Recorder] sits on the request path (the middleware calls
// [Recorder.Record] after each request made with a valid key) and flushes
// in the background, by interval and by the number of keys waiting. A
// failed flush is kept and merged into the next one, so an outage of the
// store loses nothing but delays the counts. The stores in this module
// (store/memstore, store/redisstore) implement [Store].
package usage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keygate/keygate/apikey"
)

// Usage is what one key has been used for, as far as it has been flushed.
type Usage struct {
	// TotalRequests counts every request made with the key, whatever its
	// outcome.
	TotalRequests int64 `json:"total_requests"`
	// Errors counts the requests answered with a status of 400 or more.
	Errors int64 `json:"errors"`
	// LastUsedAt is the time of the latest request, zero if none.
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	// ByEndpoint counts requests per route pattern ("GET /items/{id}").
	ByEndpoint map[string]int64 `json:"by_endpoint"`
}

// ErrorRate returns Errors / TotalRequests, or 0 for an unused key.
func (u Usage) ErrorRate() float64 {
	if u.TotalRequests == 0 {
		return 0
	}
	return float64(u.Errors) / float64(u.TotalRequests)
}

// Delta is the usage of one key gathered since the last flush.
type Delta struct {
	KeyID      string
	Requests   int64
	Errors     int64
	LastUsedAt time.Time
	ByEndpoint map[string]int64
}

// Store keeps usage counters. Both methods must be safe for concurrent
// use; errors are for system failures only.
type Store interface {
	// AddUsage adds a batch of deltas, in few round trips for a
	// networked store (pipelined, in pieces small enough that no call
	// holds the server for long), keeping LastUsedAt the latest it has
	// seen and at most [MaxEndpoints] distinct endpoints per key besides
	// [OtherEndpoint].
	// Usage of keys the store does not know may be dropped. An error
	// means that no delta was added, unless it wraps a [*PartialError]
	// naming those that were not (a store spread over several servers,
	// one of them down).
	AddUsage(ctx context.Context, deltas []Delta) error
	// Usage returns the totals of one key: a zero Usage with an empty
	// ByEndpoint for a key never used.
	Usage(ctx context.Context, keyID string) (Usage, error)
}

// PartialError is the error of a [Store]'s AddUsage that added some of
// the deltas: Failed are the others, which a [Recorder] keeps for its
// next flush, so that none is lost and none counted twice.
type PartialError struct {
	Failed []Delta
	Err    error // why, for the first that failed
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("%d keys' usage not added: %v", len(e.Failed), e.Err)
}

func (e *PartialError) Unwrap() error { return e.Err }

// OtherEndpoint collects a key's requests past [MaxEndpoints] distinct
// endpoints, in a store or in one batch.
const OtherEndpoint = "other"

// MaxEndpoints is the most distinct endpoints a [Store] keeps per key,
// [OtherEndpoint] aside; the requests of any more count as OtherEndpoint.
// It bounds what a key's usage costs whatever its clients send.
const MaxEndpoints = 64

// Config configures a [Recorder]. The zero value of each field selects
// its default.
type Config struct {
	// FlushInterval is how often counts are written. Default 10 seconds.
	FlushInterval time.Duration
	// FlushKeys flushes early once this many distinct keys have unflushed
	// counts. Default 10,000.
	FlushKeys int
	// MaxEndpoints bounds the distinct endpoints counted per key and
	// batch; the rest count as [OtherEndpoint]. Default [MaxEndpoints].
	MaxEndpoints int
	// FlushTimeout bounds each background flush, so that a store that
	// hangs cannot hold the Recorder. Default 10 seconds.
	FlushTimeout time.Duration
	// OnError receives background flush failures; the failed batch is
	// kept and added to the next one. Default: ignore.
	OnError func(error)
}

// Recorder counts key usage in memory and writes it to a [Store] in
// batches. It is safe for concurrent use. Call [Recorder.Close] to flush
// what is left.
type Recorder struct {
	store    Store
	cfg      Config
	shards   [shardCount]shard
	kick     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	flushMu  sync.Mutex // one flush at a time
	carry    []Delta    // a batch that failed, retried with the next
	closeOne sync.Once
}

const shardCount = 32

type shard struct {
	mu   sync.Mutex
	keys map[string]*counter
	// Padding to 64 bytes (mu 8 + keys 8), so that neighbouring shards'
	// locks do not share a cache line.
	_ [48]byte
}

type counter struct {
	requests, errors int64
	last             int64 // unix nanoseconds
	endpoints        map[string]int64
}

// New starts a Recorder that flushes to store.
func New(store Store, cfg Config) (*Recorder, error) {
	if store == nil {
		return nil, fmt.Errorf("usage: %w: nil store", apikey.ErrInvalidConfig)
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 10 * time.Second
	}
	if cfg.FlushKeys <= 0 {
		cfg.FlushKeys = 10_000
	}
	if cfg.MaxEndpoints <= 0 {
		cfg.MaxEndpoints = MaxEndpoints
	}
	if cfg.FlushTimeout <= 0 {
		cfg.FlushTimeout = 10 * time.Second
	}
	if cfg.OnError == nil {
		cfg.OnError = func(error) {}
	}
	r := &Recorder{store: store, cfg: cfg, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	for i := range r.shards {
		r.shards[i].keys = make(map[string]*counter)
	}
	go r.loop()
	return r, nil
}

func (r *Recorder) loop() {
	defer close(r.done)
	t := time.NewTicker(r.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		case <-r.kick:
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.FlushTimeout)
		if err := r.Flush(ctx); err != nil {
			r.cfg.OnError(err)
		}
		cancel()
	}
}

// Record counts one request made with key id to endpoint (a route
// pattern, never a raw path, so that the number of endpoints stays
// bounded), answered with status at the given time. It never blocks on
// the store.
func (r *Recorder) Record(id, endpoint string, status int, at time.Time) {
	sh := &r.shards[shardOf(id)]
	sh.mu.Lock()
	c := sh.keys[id]
	if c == nil {
		c = &counter{endpoints: make(map[string]int64)}
		sh.keys[id] = c
		if len(sh.keys)*shardCount >= r.cfg.FlushKeys {
			select {
			case r.kick <- struct{}{}:
			default:
			}
		}
	}
	c.requests++
	if status >= 400 {
		c.errors++
	}
	if ns := at.UnixNano(); ns > c.last {
		c.last = ns
	}
	if _, ok := c.endpoints[endpoint]; ok || len(c.endpoints) < r.cfg.MaxEndpoints {
		c.endpoints[endpoint]++
	} else {
		c.endpoints[OtherEndpoint]++
	}
	sh.mu.Unlock()
}

// shardOf spreads IDs over the shards by their last bytes, which are
// random for generated IDs.
func shardOf(id string) int {
	if id == "" {
		return 0
	}
	return int(id[len(id)-1]^id[len(id)/2]) % shardCount
}

// Flush writes the counts gathered so far in one call to the store. On
// failure the batch is kept for the next flush: of a [PartialError],
// only the deltas it names.
func (r *Recorder) Flush(ctx context.Context) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	// A failed batch is merged with the new counts by key, so a long
	// outage costs memory per key, not per flush.
	batch := r.carry
	r.carry = nil
	index := make(map[string]int, len(batch))
	for i := range batch {
		index[batch[i].KeyID] = i
	}
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		keys := sh.keys
		sh.keys = make(map[string]*counter, len(keys))
		sh.mu.Unlock()
		for id, c := range keys {
			last := time.Unix(0, c.last).UTC()
			j, ok := index[id]
			if !ok {
				index[id] = len(batch)
				batch = append(batch, Delta{KeyID: id, Requests: c.requests, Errors: c.errors, LastUsedAt: last, ByEndpoint: c.endpoints})
				continue
			}
			d := &batch[j]
			d.Requests += c.requests
			d.Errors += c.errors
			if last.After(d.LastUsedAt) {
				d.LastUsedAt = last
			}
			for ep, n := range c.endpoints {
				d.ByEndpoint[ep] += n
			}
		}
	}
	if len(batch) == 0 {
		return nil
	}
	if err := r.store.AddUsage(ctx, batch); err != nil {
		r.carry = batch
		if partial, ok := errors.AsType[*PartialError](err); ok {
			r.carry = partial.Failed
		}
		return fmt.Errorf("usage: flush %d keys: %w", len(batch), err)
	}
	return nil
}

// Close stops the background flushes and flushes what is left, within
// ctx. Counts that could not be written are lost with the Recorder.
func (r *Recorder) Close(ctx context.Context) error {
	r.closeOne.Do(func() { close(r.stop) })
	<-r.done
	return r.Flush(ctx)
}

package apikey

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
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

// UsageDelta is the usage of one key accumulated since the last flush.
type UsageDelta struct {
	KeyID      string
	Requests   int64
	Errors     int64
	LastUsedAt time.Time
	ByEndpoint map[string]int64
}

// UsageStore is the optional capability of a [Store] that keeps usage.
// AddUsage adds a batch of deltas (in one round trip, for a networked
// store) and must keep LastUsedAt the latest it has seen; Usage returns
// the totals of one key, a zero Usage for a key never used.
type UsageStore interface {
	AddUsage(ctx context.Context, deltas []UsageDelta) error
	Usage(ctx context.Context, id string) (Usage, error)
}

// Usage returns the recorded usage of owner's key id. It fails with
// [errors.ErrUnsupported] when the store keeps no usage.
func (s *Service) Usage(ctx context.Context, owner, id string) (Usage, error) {
	if _, err := s.owned(ctx, owner, id); err != nil {
		return Usage{}, err
	}
	us, ok := s.store.(UsageStore)
	if !ok {
		return Usage{}, fmt.Errorf("apikey: usage: %w by this store", errors.ErrUnsupported)
	}
	u, err := us.Usage(ctx, id)
	if err != nil {
		return Usage{}, fmt.Errorf("apikey: usage: %w", err)
	}
	return u, nil
}

// withLastUse sets k.LastUsedAt from the usage the store keeps, if it
// keeps any.
func (s *Service) withLastUse(ctx context.Context, k *Key) error {
	us, ok := s.store.(UsageStore)
	if !ok {
		return nil
	}
	u, err := us.Usage(ctx, k.ID)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		return nil
	case err != nil:
		return fmt.Errorf("apikey: usage: %w", err)
	case u.LastUsedAt.After(k.LastUsedAt):
		k.LastUsedAt = u.LastUsedAt
	}
	return nil
}

// Defaults of [RecorderConfig].
const (
	DefaultFlushInterval = 10 * time.Second
	DefaultFlushKeys     = 10_000
	DefaultMaxEndpoints  = 64
)

// OtherEndpoint collects the requests of a key past
// [RecorderConfig].MaxEndpoints distinct endpoints in one batch.
const OtherEndpoint = "other"

// RecorderConfig configures a [Recorder]. The zero value selects every
// default.
type RecorderConfig struct {
	// FlushInterval is how often counts are written. Default
	// [DefaultFlushInterval].
	FlushInterval time.Duration
	// FlushKeys flushes early once this many distinct keys have unflushed
	// counts. Default [DefaultFlushKeys].
	FlushKeys int
	// MaxEndpoints bounds the distinct endpoints counted per key and batch;
	// the rest count as [OtherEndpoint]. Default [DefaultMaxEndpoints].
	MaxEndpoints int
	// OnError receives flush failures; the failed batch is kept and added
	// to the next one, so nothing is lost while the store is down. Default:
	// ignore.
	OnError func(error)
}

// Recorder counts key usage in memory and writes it to a [UsageStore] in
// batches: never a write per request. Record is safe for concurrent use
// and, once a key has been seen in the current batch, allocates nothing.
// Call [Recorder.Close] to flush what is left.
type Recorder struct {
	sink     UsageStore
	cfg      RecorderConfig
	shards   [recorderShards]recShard
	kick     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	flushMu  sync.Mutex   // one flush at a time
	carry    []UsageDelta // a batch that failed, retried with the next
	closeOne sync.Once
}

const recorderShards = 32

type recShard struct {
	mu   sync.Mutex
	keys map[string]*counter
	_    [40]byte // keep shards on separate cache lines
}

type counter struct {
	requests, errors int64
	last             int64 // unix nanoseconds
	endpoints        map[string]int64
}

// NewRecorder starts a Recorder that flushes to sink.
func NewRecorder(sink UsageStore, cfg RecorderConfig) (*Recorder, error) {
	if sink == nil {
		return nil, fmt.Errorf("%w: nil usage store", ErrInvalidConfig)
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.FlushKeys <= 0 {
		cfg.FlushKeys = DefaultFlushKeys
	}
	if cfg.MaxEndpoints <= 0 {
		cfg.MaxEndpoints = DefaultMaxEndpoints
	}
	if cfg.OnError == nil {
		cfg.OnError = func(error) {}
	}
	r := &Recorder{sink: sink, cfg: cfg, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
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
		if err := r.Flush(context.Background()); err != nil {
			r.cfg.OnError(err)
		}
	}
}

// Record counts one request made with key id to endpoint (a route
// pattern, never a raw path, so that the number of endpoints stays
// bounded), answered with status at the given time.
func (r *Recorder) Record(id, endpoint string, status int, at time.Time) {
	sh := &r.shards[shardOf(id)]
	sh.mu.Lock()
	c := sh.keys[id]
	if c == nil {
		c = &counter{endpoints: make(map[string]int64)}
		sh.keys[id] = c
		if len(sh.keys)*recorderShards >= r.cfg.FlushKeys {
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
	return int(id[len(id)-1]^id[len(id)/2]) % recorderShards
}

// Flush writes the counts gathered so far in one call to the store. On
// failure the batch is kept for the next flush.
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
				batch = append(batch, UsageDelta{KeyID: id, Requests: c.requests, Errors: c.errors, LastUsedAt: last, ByEndpoint: c.endpoints})
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
	if err := r.sink.AddUsage(ctx, batch); err != nil {
		r.carry = batch
		return fmt.Errorf("apikey: flush usage of %d keys: %w", len(batch), err)
	}
	return nil
}

// Close stops the background flushes and flushes what is left.
func (r *Recorder) Close(ctx context.Context) error {
	r.closeOne.Do(func() { close(r.stop) })
	<-r.done
	return r.Flush(ctx)
}

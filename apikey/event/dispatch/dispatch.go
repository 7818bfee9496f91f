// Package dispatch delivers the events of a store's outbox
// ([event.Outbox]) to a [Sink]: at least once, in order per key, with
// retries that back off, and without a request ever waiting for it.
//
// A [Dispatcher] leases a batch of due events from the outbox (one per
// key at a time, so a key's events arrive in order), delivers them
// concurrently and settles each: done, or due again after a backoff that
// starts at MinBackoff and doubles, with jitter, up to an hour. Several
// instances may run one on the same store: a lease keeps them from
// sending the same attempt. An instance killed mid-delivery leaves its
// lease to expire, and the event goes again (at least once: receivers
// drop duplicates by event ID). An event still undelivered Horizon after
// it happened is dropped and logged as an error: what happens at the
// bound is said, never silent.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/keygate/keygate/apikey/event"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Sink receives events.
type Sink interface {
	// Deliver delivers e, within ctx. An error means the event goes
	// again later; one wrapping [ErrGone] means the sink will never take
	// an event again, and the dispatcher stops.
	Deliver(ctx context.Context, e event.Event) error
}

// ErrGone is the error of a sink that will never take an event again,
// as a webhook receiver answering 410 Gone.
var ErrGone = errors.New("dispatch: the sink is gone")

// Config configures a [Dispatcher]. Outbox and Sink are required; the
// zero value of every other field selects the default it names.
type Config struct {
	Outbox event.Outbox
	Sink   Sink
	// Horizon is how long an event is retried, counted from when it
	// happened. Default 72 hours.
	Horizon time.Duration
	// MinBackoff is the wait before the first retry; each later one
	// waits twice as long, up to an hour, each with jitter (between half
	// and all of it). Default 5 seconds.
	MinBackoff time.Duration
	// Concurrency bounds the deliveries under way at once. Default 8.
	Concurrency int
	// Batch is how many events one lease takes. Default 100.
	Batch int
	// PollInterval is how often an empty outbox is read again. Default
	// 1 second.
	PollInterval time.Duration
	// DeliveryTimeout bounds one delivery. Default 30 seconds.
	DeliveryTimeout time.Duration
	// Clock returns the current time. Default [time.Now].
	Clock func() time.Time
	// Logger receives failed deliveries (warnings), dropped events and
	// outbox failures (errors). Default [slog.Default].
	Logger *slog.Logger
	// MeterProvider, when set, counts the attempts through the
	// OpenTelemetry metric API: keygate.event.deliveries by outcome
	// (delivered, failed, dropped, gone) and their durations
	// (keygate.event.delivery.duration). No attribute names an account,
	// a key or an event. Default: none.
	MeterProvider metric.MeterProvider
	// OnDrop, when set, hears of each event dropped past the Horizon,
	// before it leaves the outbox (webhook.Accounts.GiveUp turns off
	// the endpoints that never took it).
	OnDrop func(ctx context.Context, e event.Event)
}

// Dispatcher drains an outbox into a sink. Create one with [New].
type Dispatcher struct {
	cfg        Config
	deliveries metric.Int64Counter     // nil without a MeterProvider
	duration   metric.Float64Histogram // nil without a MeterProvider
}

// The outcomes of an attempt, as the metric's attribute.
var (
	outDelivered = metric.WithAttributes(attribute.String("outcome", "delivered"))
	outFailed    = metric.WithAttributes(attribute.String("outcome", "failed"))
	outDropped   = metric.WithAttributes(attribute.String("outcome", "dropped"))
	outGone      = metric.WithAttributes(attribute.String("outcome", "gone"))
)

// New returns a Dispatcher. It fails without an Outbox or a Sink.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Outbox == nil || cfg.Sink == nil {
		return nil, errors.New("dispatch: Config.Outbox and Config.Sink are required")
	}
	if cfg.Horizon <= 0 {
		cfg.Horizon = 72 * time.Hour
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 5 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.DeliveryTimeout <= 0 {
		cfg.DeliveryTimeout = 30 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	d := &Dispatcher{cfg: cfg}
	if cfg.MeterProvider != nil {
		meter := cfg.MeterProvider.Meter("github.com/keygate/keygate/apikey/event/dispatch")
		var err error
		if d.deliveries, err = meter.Int64Counter("keygate.event.deliveries", metric.WithUnit("{attempt}"),
			metric.WithDescription("Attempts to deliver an event, by outcome.")); err != nil {
			return nil, fmt.Errorf("dispatch: %w", err)
		}
		if d.duration, err = meter.Float64Histogram("keygate.event.delivery.duration", metric.WithUnit("s"),
			metric.WithDescription("How long a sink took to take or refuse an event.")); err != nil {
			return nil, fmt.Errorf("dispatch: %w", err)
		}
	}
	return d, nil
}

// count records one attempt's outcome, and how long it took when it was
// made (took > 0).
func (d *Dispatcher) count(ctx context.Context, outcome metric.AddOption, took time.Duration) {
	if d.deliveries == nil {
		return
	}
	d.deliveries.Add(ctx, 1, outcome)
	if took > 0 {
		d.duration.Record(ctx, took.Seconds())
	}
}

// maxBackoff caps the wait between two attempts.
const maxBackoff = time.Hour

// Run delivers events until ctx ends (it then returns nil) or the sink
// is gone (it returns that error). An outbox that fails is logged and
// read again after PollInterval.
func (d *Dispatcher) Run(ctx context.Context) error {
	for {
		n, err := d.Once(ctx)
		switch {
		case errors.Is(err, ErrGone):
			return err
		case ctx.Err() != nil:
			return nil
		case err != nil:
			d.cfg.Logger.Error("dispatch: reading the outbox", "error", err)
		}
		if n == d.cfg.Batch {
			continue // more are due
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d.cfg.PollInterval):
		}
	}
}

// Once leases one batch, delivers it and settles every delivery; it
// returns how many events it leased.
func (d *Dispatcher) Once(ctx context.Context) (int, error) {
	// The lease outlives the slowest delivery, so that no other instance
	// sends the same attempt meanwhile.
	ttl := d.cfg.DeliveryTimeout + time.Minute
	ds, err := d.cfg.Outbox.Lease(ctx, d.cfg.Clock(), d.cfg.Batch, ttl)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	var gone error
	var mu sync.Mutex
	sem := make(chan struct{}, d.cfg.Concurrency)
	for i := range ds {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := d.deliver(ctx, &ds[i]); err != nil {
				mu.Lock()
				gone = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return len(ds), gone
}

// deliver makes one attempt of dl and settles it; it returns the sink's
// error only when the sink is gone.
func (d *Dispatcher) deliver(ctx context.Context, dl *event.Delivery) error {
	e := &dl.Event
	if d.cfg.Clock().Sub(e.At) > d.cfg.Horizon {
		d.cfg.Logger.Error("dispatch: an event undelivered past the horizon is dropped",
			"event", e.ID, "type", e.Type, "account", e.Account, "key", e.KeyID, "attempts", dl.Attempts, "horizon", d.cfg.Horizon)
		if d.cfg.OnDrop != nil {
			d.cfg.OnDrop(ctx, *e)
		}
		d.count(ctx, outDropped, 0)
		d.settle(ctx, dl, true)
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, d.cfg.DeliveryTimeout)
	start := time.Now()
	err := d.cfg.Sink.Deliver(dctx, *e)
	took := time.Since(start)
	cancel()
	switch {
	case err == nil:
		d.count(ctx, outDelivered, took)
		d.settle(ctx, dl, true)
		return nil
	case errors.Is(err, ErrGone):
		d.count(ctx, outGone, took)
		d.settle(ctx, dl, false)
		d.cfg.Logger.Error("dispatch: the sink is gone; stopping", "event", e.ID, "error", err)
		return err
	}
	d.count(ctx, outFailed, took)
	d.cfg.Logger.Warn("dispatch: a delivery failed; it goes again later", "event", e.ID, "type", e.Type, "attempts", dl.Attempts+1, "error", err)
	d.settle(ctx, dl, false)
	return nil
}

// settle records dl's outcome: done, or due again after its backoff.
func (d *Dispatcher) settle(ctx context.Context, dl *event.Delivery, done bool) {
	var retry time.Time
	if !done {
		wait := d.cfg.MinBackoff << min(dl.Attempts, 20)
		wait = min(wait, maxBackoff)
		wait = wait/2 + rand.N(wait/2+1) // jitter: half to all of it
		retry = d.cfg.Clock().Add(wait)
	}
	// Settled even when the caller's context has ended: the attempt was
	// made, and a lost settlement costs a duplicate delivery.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := d.cfg.Outbox.Settle(sctx, dl, done, retry); err != nil {
		d.cfg.Logger.Error("dispatch: settling a delivery; it may go again", "event", dl.Event.ID, "error", err)
	}
}

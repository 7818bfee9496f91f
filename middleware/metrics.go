package middleware

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/keygate/keygate/ratelimit"
)

// The instruments, by name. Counts are exact; durations are measured on
// one request in sampleEvery, which keeps the metrics' cost on the
// request path to a counter increment (an SDK's measurement costs a few
// hundred nanoseconds). Attributes are bounded: an outcome from the
// lists below and, for limiter decisions, the account's plan (the
// service's plans are few); never a key, a key ID or an account.
const (
	// Keys presented, by outcome: ok, invalid (no key, a malformed,
	// unknown, revoked, disabled, expired or not yet valid one) or error
	// (the store failed).
	instVerifications        = "keygate.verifications"
	instVerificationDuration = "keygate.verification.duration"
	// Limiter decisions, by outcome (allowed, rate_limited,
	// quota_exceeded, failed_open, error) and plan.
	instDecisions        = "keygate.ratelimit.decisions"
	instDecisionDuration = "keygate.ratelimit.duration"
)

// sampleEvery is how many requests one duration stands for.
const sampleEvery = 64

// The outcomes of a verification and of a decision, in the order of the
// attribute sets built for them.
var (
	verifyOutcomes   = [...]string{"ok", "invalid", "error"}
	decisionOutcomes = [...]string{"allowed", "rate_limited", "quota_exceeded", "failed_open", "error"}
)

const (
	verifyOK = iota
	verifyInvalid
	verifyError
)

const (
	decisionAllowed = iota
	decisionRateLimited
	decisionQuotaExceeded
	decisionFailedOpen
	decisionError
)

// counts are the counters of one attribute set, striped so that
// requests on several cores rarely increment the same cache line.
type counts struct {
	stripes [8]struct {
		n atomic.Int64
		_ [56]byte
	}
}

func (c *counts) add(stripe uint64) { c.stripes[stripe%uint64(len(c.stripes))].n.Add(1) }

func (c *counts) sum() int64 {
	var n int64
	for i := range c.stripes {
		n += c.stripes[i].n.Load()
	}
	return n
}

// series is one attribute set: its counts, and its options for the
// duration histogram and the counter's observation, made once (a
// variadic argument built at each call would escape through the
// instrument's interface).
type series struct {
	counts  counts
	record  []metric.RecordOption
	observe []metric.ObserveOption
}

func newSeries(kv ...attribute.KeyValue) *series {
	opt := metric.WithAttributeSet(attribute.NewSet(kv...))
	return &series{record: []metric.RecordOption{opt}, observe: []metric.ObserveOption{opt}}
}

// metrics holds the instruments and a series per attribute set.
type metrics struct {
	verifyDuration   metric.Float64Histogram
	decisionDuration metric.Float64Histogram
	verify           [len(verifyOutcomes)]*series
	plans            []string                         // the plans' names, scanned: they are few
	decision         [][len(decisionOutcomes)]*series // by plan, as plans, then the unknown plan's
}

// newMetrics creates the instruments of provider's meter, with a series
// for each outcome of each plan.
func newMetrics(provider metric.MeterProvider, plans *ratelimit.Plans) (*metrics, error) {
	meter := provider.Meter("github.com/keygate/keygate/middleware")
	m := &metrics{plans: plans.Names()}
	for i, o := range verifyOutcomes {
		m.verify[i] = newSeries(attribute.String("outcome", o))
	}
	for _, plan := range append(m.plans, "") {
		var a [len(decisionOutcomes)]*series
		for i, o := range decisionOutcomes {
			a[i] = newSeries(attribute.String("outcome", o), attribute.String("plan", plan))
		}
		m.decision = append(m.decision, a)
	}

	verifications, err := meter.Int64ObservableCounter(instVerifications, metric.WithUnit("{verification}"),
		metric.WithDescription("Keys presented, by outcome"))
	if err != nil {
		return nil, err
	}
	decisions, err := meter.Int64ObservableCounter(instDecisions, metric.WithUnit("{decision}"),
		metric.WithDescription("Rate-limit decisions, by outcome and plan"))
	if err != nil {
		return nil, err
	}
	if m.verifyDuration, err = meter.Float64Histogram(instVerificationDuration, metric.WithUnit("s"),
		metric.WithDescription("The time a key's verification took, the store included, on a sample of requests")); err != nil {
		return nil, err
	}
	if m.decisionDuration, err = meter.Float64Histogram(instDecisionDuration, metric.WithUnit("s"),
		metric.WithDescription("The time a rate-limit decision took, on a sample of requests")); err != nil {
		return nil, err
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, s := range m.verify {
			o.ObserveInt64(verifications, s.counts.sum(), s.observe...)
		}
		for _, byOutcome := range m.decision {
			for _, s := range byOutcome {
				o.ObserveInt64(decisions, s.counts.sum(), s.observe...)
			}
		}
		return nil
	}, verifications, decisions)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// draw is one request's draw from the runtime's random source: the
// stripe its counts go to and, for one request in sampleEvery, when it
// started (zero for the others, whose durations are not measured).
type draw struct {
	stripe uint64
	start  time.Time
}

// draw draws for a request that starts now.
func (m *metrics) draw() draw {
	r := rand.Uint64()
	d := draw{stripe: r >> 32}
	if r%sampleEvery == 0 {
		d.start = time.Now()
	}
	return d
}

// verified counts a verification with outcome, made under d.
func (m *metrics) verified(ctx context.Context, outcome int, d *draw) {
	s := m.verify[outcome]
	s.counts.add(d.stripe)
	if !d.start.IsZero() {
		m.verifyDuration.Record(ctx, time.Since(d.start).Seconds(), s.record...)
	}
}

// decided counts a decision under plan with outcome, made under d, which
// started at start (zero when d is not measured).
func (m *metrics) decided(ctx context.Context, plan string, outcome int, d *draw, start time.Time) {
	i := len(m.plans) // the unknown plan's
	for j, name := range m.plans {
		if name == plan {
			i = j
			break
		}
	}
	s := m.decision[i][outcome]
	s.counts.add(d.stripe)
	if !start.IsZero() {
		m.decisionDuration.Record(ctx, time.Since(start).Seconds(), s.record...)
	}
}

// decisionOutcome names the outcome of a decision d the limiter made, or
// failed to make with err.
func decisionOutcome(d *ratelimit.Decision, err error) int {
	switch {
	case err != nil:
		return decisionError
	case d.FailedOpen:
		return decisionFailedOpen
	case d.Allowed:
		return decisionAllowed
	case d.Quota:
		return decisionQuotaExceeded
	}
	return decisionRateLimited
}

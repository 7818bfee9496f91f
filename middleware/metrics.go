package middleware

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/keygate/keygate/ratelimit"
)

// The instruments, by name: histograms of the time taken, whose counts
// are the numbers of verifications and decisions by outcome (a counter
// beside each would cost every request another measurement). Their
// attributes are bounded: an outcome from the lists below and, for
// limiter decisions, the account's plan (the service's plans are few);
// never a key, a key ID or an account.
const (
	// instVerifications is the time Verify took, by outcome: ok, invalid
	// (no key, a malformed, unknown, revoked, disabled, expired or not yet
	// valid one) or error (the store failed).
	instVerifications = "keygate.verification.duration"
	// instDecisions is the time the limiter took, by outcome (allowed,
	// rate_limited, quota_exceeded, failed_open, error) and plan.
	instDecisions = "keygate.ratelimit.duration"
)

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

// metrics holds the instruments and every attribute set they are
// recorded with, built once, so that recording allocates nothing.
type metrics struct {
	verifications metric.Float64Histogram
	decisions     metric.Float64Histogram
	verifyAttrs   [len(verifyOutcomes)]attrs
	decisionAttrs map[string]*[len(decisionOutcomes)]attrs // by plan
	unknownPlan   *[len(decisionOutcomes)]attrs
}

// attrs is one attribute set as a histogram's options: a slice made
// once, since a variadic argument built at each call would escape
// through the instrument's interface, an allocation per measurement.
type attrs []metric.RecordOption

func newAttrs(kv ...attribute.KeyValue) attrs {
	return attrs{metric.WithAttributeSet(attribute.NewSet(kv...))}
}

// newMetrics creates the instruments of provider's meter, with a set of
// attributes for each outcome of each plan.
func newMetrics(provider metric.MeterProvider, plans *ratelimit.Plans) (*metrics, error) {
	meter := provider.Meter("github.com/keygate/keygate/middleware")
	m := &metrics{decisionAttrs: map[string]*[len(decisionOutcomes)]attrs{}}
	var err error
	if m.verifications, err = meter.Float64Histogram(instVerifications, metric.WithUnit("s"),
		metric.WithDescription("Keys presented, by outcome, and the time their verification took, the store included")); err != nil {
		return nil, err
	}
	if m.decisions, err = meter.Float64Histogram(instDecisions, metric.WithUnit("s"),
		metric.WithDescription("Rate-limit decisions, by outcome and plan, and the time they took")); err != nil {
		return nil, err
	}
	for i, o := range verifyOutcomes {
		m.verifyAttrs[i] = newAttrs(attribute.String("outcome", o))
	}
	planAttrs := func(plan string) *[len(decisionOutcomes)]attrs {
		var a [len(decisionOutcomes)]attrs
		for i, o := range decisionOutcomes {
			a[i] = newAttrs(attribute.String("outcome", o), attribute.String("plan", plan))
		}
		return &a
	}
	for _, plan := range plans.Names() {
		m.decisionAttrs[plan] = planAttrs(plan)
	}
	m.unknownPlan = planAttrs("")
	return m, nil
}

// verified records a verification that started at start.
func (m *metrics) verified(ctx context.Context, outcome int, start time.Time) {
	m.verifications.Record(ctx, time.Since(start).Seconds(), m.verifyAttrs[outcome]...)
}

// decided records a decision under plan that started at start.
func (m *metrics) decided(ctx context.Context, plan string, outcome int, start time.Time) {
	byOutcome, ok := m.decisionAttrs[plan]
	if !ok {
		byOutcome = m.unknownPlan
	}
	m.decisions.Record(ctx, time.Since(start).Seconds(), byOutcome[outcome]...)
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

package breaker

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// open counts the nodes whose breaker is open: failing calls at once
// until their next probe succeeds.
func (s *Set) open() int64 {
	var n int64
	s.nodes.Range(func(_, v any) bool {
		if v.(*node).until.Load() != 0 {
			n++
		}
		return true
	})
	return n
}

// Observe reports s through provider, read at each collection:
// keygate.breaker.open, the servers whose breaker is open, with the
// attribute component (the package that keeps s: "sqlstore",
// "redislimit"...). It returns the function that ends the reports.
func (s *Set) Observe(provider metric.MeterProvider, component string) (func() error, error) {
	meter := provider.Meter("github.com/keygate/keygate/internal/breaker")
	gauge, err := meter.Int64ObservableGauge("keygate.breaker.open", metric.WithUnit("{server}"),
		metric.WithDescription("Servers whose circuit breaker is open: calls to them fail at once until a probe succeeds."))
	if err != nil {
		return nil, err
	}
	attrs := metric.WithAttributes(attribute.String("component", component))
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(gauge, s.open(), attrs)
		return nil
	}, gauge)
	if err != nil {
		return nil, err
	}
	return reg.Unregister, nil
}

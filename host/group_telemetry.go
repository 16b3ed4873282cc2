package host

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/knhk/knhk/telemetry"
)

// keyGroupAttr names a key group in the group metrics.
const keyGroupAttr attribute.Key = "knhk.key_group"

// groupInstruments are the key groups' metrics.
type groupInstruments struct {
	quarantines metric.Int64Counter
	failovers   metric.Int64Counter
}

// newGroupInstruments makes them from cfg's meter provider (nil: the
// global one); an instrument that cannot be made is a no-op.
func newGroupInstruments(cfg Config) *groupInstruments {
	mp := cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(telemetry.ScopeName)
	var t groupInstruments
	var err error
	t.quarantines, err = meter.Int64Counter("knhk.key_group.quarantines", metric.WithUnit("{replica}"),
		metric.WithDescription("Key group replicas found holding another key than the group's (or none) and quarantined."))
	if err != nil {
		otel.Handle(err)
	}
	t.failovers, err = meter.Int64Counter("knhk.key_group.failovers", metric.WithUnit("{failover}"),
		metric.WithDescription("Calls on a key group that moved on from a replica that could not serve them."))
	if err != nil {
		otel.Handle(err)
	}
	return &t
}

func groupAttrs(group, provider string) metric.AddOption {
	return metric.WithAttributes(keyGroupAttr.String(group), telemetry.KeyProvider.String(provider))
}

// countQuarantine counts a replica quarantined.
func (t *groupInstruments) countQuarantine(ctx context.Context, group, provider string) {
	t.quarantines.Add(ctx, 1, groupAttrs(group, provider))
}

// countFailover counts a call leaving a replica of provider for the next.
func (t *groupInstruments) countFailover(ctx context.Context, group, provider string) {
	if t.failovers.Enabled(ctx) {
		t.failovers.Add(ctx, 1, groupAttrs(group, provider))
	}
}

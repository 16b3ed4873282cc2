package audit

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/knhk/knhk/telemetry"
)

// The writer's metric names and the records' outcome attribute.
const (
	metricRecords     = "knhk.audit.records"
	metricFsyncs      = "knhk.audit.fsyncs"
	metricBatchSize   = "knhk.audit.batch.size"
	metricCheckpoints = "knhk.audit.checkpoints"
	attrOutcome       = attribute.Key("knhk.audit.outcome")
)

// batchSizeBuckets suit group commit under up to a few hundred callers.
var batchSizeBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}

// metrics are a Log's instruments. The attribute options are made once:
// recording is per batch, never per record, and allocates nothing.
type metrics struct {
	records     metric.Int64Counter
	fsyncs      metric.Int64Counter
	batchSize   metric.Int64Histogram
	checkpoints metric.Int64Counter

	written, failed, dropped metric.AddOption
}

// newMetrics makes the instruments from mp (nil: the global provider).
// An instrument that cannot be made is reported to OpenTelemetry's error
// handler and records nothing: telemetry never stops the log.
func newMetrics(mp metric.MeterProvider) *metrics {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(telemetry.ScopeName)
	m := &metrics{
		written: metric.WithAttributeSet(attribute.NewSet(attrOutcome.String("written"))),
		failed:  metric.WithAttributeSet(attribute.NewSet(attrOutcome.String("failed"))),
		dropped: metric.WithAttributeSet(attribute.NewSet(attrOutcome.String("dropped"))),
	}
	var err error
	handle := func() {
		if err != nil {
			otel.Handle(err)
		}
	}
	m.records, err = meter.Int64Counter(metricRecords, metric.WithUnit("{record}"),
		metric.WithDescription("Audit records, by knhk.audit.outcome: written (durable), failed (the operation failed with ErrAuditUnavailable) or dropped (fail_open: the operation went ahead unrecorded)."))
	handle()
	m.fsyncs, err = meter.Int64Counter(metricFsyncs, metric.WithUnit("{fsync}"),
		metric.WithDescription("Successful fsyncs of the audit log file (record batches and checkpoints); records per fsync is knhk.audit.records{written} over this."))
	handle()
	m.batchSize, err = meter.Int64Histogram(metricBatchSize, metric.WithUnit("{record}"),
		metric.WithDescription("Records written by each group commit (one write and one fsync)."),
		metric.WithExplicitBucketBoundaries(batchSizeBuckets...))
	handle()
	m.checkpoints, err = meter.Int64Counter(metricCheckpoints, metric.WithUnit("{checkpoint}"),
		metric.WithDescription("Signed checkpoints written to the audit log."))
	handle()
	// Some providers return nil with their error: record nothing then.
	var noopMeter noop.Meter
	if m.records == nil {
		m.records, _ = noopMeter.Int64Counter(metricRecords)
	}
	if m.fsyncs == nil {
		m.fsyncs, _ = noopMeter.Int64Counter(metricFsyncs)
	}
	if m.batchSize == nil {
		m.batchSize, _ = noopMeter.Int64Histogram(metricBatchSize)
	}
	if m.checkpoints == nil {
		m.checkpoints, _ = noopMeter.Int64Counter(metricCheckpoints)
	}
	return m
}

// batch records a committed batch of n records (n may be 0: a
// checkpoint alone) and its fsync.
func (m *metrics) batch(ctx context.Context, n int) {
	m.fsyncs.Add(ctx, 1)
	if n > 0 {
		m.records.Add(ctx, int64(n), m.written)
		m.batchSize.Record(ctx, int64(n))
	}
}

package main

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricembedded "go.opentelemetry.io/otel/metric/embedded"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	traceembedded "go.opentelemetry.io/otel/trace/embedded"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// countingTracerProvider is a no-op TracerProvider that counts what is
// done with its spans.
type countingTracerProvider struct {
	traceembedded.TracerProvider
	c *callCounter
}

func (p countingTracerProvider) Tracer(name string, _ ...trace.TracerOption) trace.Tracer {
	return countingTracer{c: p.c, scope: name}
}

type countingTracer struct {
	traceembedded.Tracer
	c     *callCounter
	scope string
}

func (t countingTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	cfg := trace.NewSpanStartConfig(opts...)
	t.c.mu.Lock()
	id := callID{t.scope, name}
	s := t.c.spans[id]
	if s == nil {
		s = &spanCalls{}
		t.c.spans[id] = s
	}
	s.starts++
	s.startAttrs += int64(len(cfg.Attributes()))
	s.startLinks += int64(len(cfg.Links()))
	if cfg.SpanKind() != trace.SpanKindUnspecified {
		s.kinds++
	}
	t.c.mu.Unlock()
	ctx, inner := tracenoop.Tracer{}.Start(ctx, name, opts...)
	sp := countingSpan{Span: inner, c: t.c, s: s}
	return trace.ContextWithSpan(ctx, sp), sp
}

// countingSpan is a no-op span (the parent's span context, not
// recording) that counts the calls made on it.
type countingSpan struct {
	trace.Span
	c *callCounter
	s *spanCalls
}

func (s countingSpan) count(f func(*spanCalls)) {
	s.c.mu.Lock()
	f(s.s)
	s.c.mu.Unlock()
}

func (s countingSpan) End(...trace.SpanEndOption) { s.count(func(c *spanCalls) { c.ends++ }) }
func (s countingSpan) AddLink(trace.Link)         { s.count(func(c *spanCalls) { c.links++ }) }
func (s countingSpan) AddEvent(string, ...trace.EventOption) {
	s.count(func(c *spanCalls) { c.events++ })
}
func (s countingSpan) RecordError(error, ...trace.EventOption) {
	s.count(func(c *spanCalls) { c.events++ })
}
func (s countingSpan) SetStatus(codes.Code, string) { s.count(func(c *spanCalls) { c.statuses++ }) }
func (s countingSpan) SetAttributes(kv ...attribute.KeyValue) {
	s.count(func(c *spanCalls) { c.setAttrCalls++; c.setAttrs += int64(len(kv)) })
}

// countingMeterProvider is a no-op MeterProvider that counts the
// measurements made on its synchronous instruments.
type countingMeterProvider struct {
	metricembedded.MeterProvider
	c *callCounter
}

func (p countingMeterProvider) Meter(name string, _ ...metric.MeterOption) metric.Meter {
	return countingMeter{c: p.c, scope: name}
}

type countingMeter struct {
	metricnoop.Meter
	c     *callCounter
	scope string
}

// inst is the counter of the instrument named name.
func (m countingMeter) inst(name string, kind instKind) *countingInst {
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	id := callID{m.scope, name}
	i := m.c.insts[id]
	if i == nil {
		i = &instCalls{kind: kind}
		m.c.insts[id] = i
	}
	return &countingInst{c: m.c, i: i}
}

type countingInst struct {
	c *callCounter
	i *instCalls
}

func (ci *countingInst) add(opts []metric.AddOption) {
	set := metric.NewAddConfig(opts).Attributes()
	n := set.Len()
	ci.c.mu.Lock()
	ci.i.calls++
	ci.i.attrs += int64(n)
	ci.c.mu.Unlock()
}

func (ci *countingInst) enabled() bool {
	ci.c.mu.Lock()
	ci.i.enabled++
	ci.c.mu.Unlock()
	return false // as a no-op instrument: the host takes its off path
}

func (ci *countingInst) record(opts []metric.RecordOption) {
	set := metric.NewRecordConfig(opts).Attributes()
	n := set.Len()
	ci.c.mu.Lock()
	ci.i.calls++
	ci.i.attrs += int64(n)
	ci.c.mu.Unlock()
}

func (m countingMeter) Int64Counter(name string, _ ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	return countingI64Counter{ci: m.inst(name, i64Counter)}, nil
}

func (m countingMeter) Int64UpDownCounter(name string, _ ...metric.Int64UpDownCounterOption) (metric.Int64UpDownCounter, error) {
	return countingI64UpDown{ci: m.inst(name, i64UpDown)}, nil
}

func (m countingMeter) Int64Histogram(name string, _ ...metric.Int64HistogramOption) (metric.Int64Histogram, error) {
	return countingI64Histogram{ci: m.inst(name, i64Histogram)}, nil
}

func (m countingMeter) Int64Gauge(name string, _ ...metric.Int64GaugeOption) (metric.Int64Gauge, error) {
	return countingI64Gauge{ci: m.inst(name, i64Gauge)}, nil
}

func (m countingMeter) Float64Counter(name string, _ ...metric.Float64CounterOption) (metric.Float64Counter, error) {
	return countingF64Counter{ci: m.inst(name, f64Counter)}, nil
}

func (m countingMeter) Float64UpDownCounter(name string, _ ...metric.Float64UpDownCounterOption) (metric.Float64UpDownCounter, error) {
	return countingF64UpDown{ci: m.inst(name, f64UpDown)}, nil
}

func (m countingMeter) Float64Histogram(name string, _ ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	return countingF64Histogram{ci: m.inst(name, f64Histogram)}, nil
}

func (m countingMeter) Float64Gauge(name string, _ ...metric.Float64GaugeOption) (metric.Float64Gauge, error) {
	return countingF64Gauge{ci: m.inst(name, f64Gauge)}, nil
}

type countingI64Counter struct {
	metricnoop.Int64Counter
	ci *countingInst
}

func (c countingI64Counter) Enabled(context.Context) bool { return c.ci.enabled() }

func (c countingI64Counter) Add(_ context.Context, _ int64, o ...metric.AddOption) { c.ci.add(o) }

type countingI64UpDown struct {
	metricnoop.Int64UpDownCounter
	ci *countingInst
}

func (c countingI64UpDown) Enabled(context.Context) bool { return c.ci.enabled() }

func (c countingI64UpDown) Add(_ context.Context, _ int64, o ...metric.AddOption) { c.ci.add(o) }

type countingI64Histogram struct {
	metricnoop.Int64Histogram
	ci *countingInst
}

func (c countingI64Histogram) Enabled(context.Context) bool { return c.ci.enabled() }

func (c countingI64Histogram) Record(_ context.Context, _ int64, o ...metric.RecordOption) {
	c.ci.record(o)
}

type countingI64Gauge struct {
	metricnoop.Int64Gauge
	ci *countingInst
}

func (c countingI64Gauge) Enabled(context.Context) bool { return c.ci.enabled() }

func (c countingI64Gauge) Record(_ context.Context, _ int64, o ...metric.RecordOption) {
	c.ci.record(o)
}

type countingF64Counter struct {
	metricnoop.Float64Counter
	ci *countingInst
}

func (c countingF64Counter) Enabled(context.Context) bool { return c.ci.enabled() }

func (c countingF64Counter) Add(_ context.Context, _ float64, o ...metric.AddOption) { c.ci.add(o) }

type countingF64UpDown struct {
	metricnoop.Float64UpDownCounter
	ci *countingInst
}

func (c countingF64UpDown) Enabled(context.Context) bool { return c.ci.enabled() }

func (c countingF64UpDown) Add(_ context.Context, _ float64, o ...metric.AddOption) { c.ci.add(o) }

type countingF64Histogram struct {
	metricnoop.Float64Histogram
	ci *countingInst
}

func (c countingF64Histogram) Enabled(context.Context) bool { return c.ci.enabled() }

func (c countingF64Histogram) Record(_ context.Context, _ float64, o ...metric.RecordOption) {
	c.ci.record(o)
}

type countingF64Gauge struct {
	metricnoop.Float64Gauge
	ci *countingInst
}

func (c countingF64Gauge) Enabled(context.Context) bool { return c.ci.enabled() }

func (c countingF64Gauge) Record(_ context.Context, _ float64, o ...metric.RecordOption) {
	c.ci.record(o)
}

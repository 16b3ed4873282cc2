package host

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/stats"

	"github.com/knhk/knhk/internal/errtype"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/telemetry"
)

// The host's sentinels, for telemetry.ErrorType (which cannot import this
// package: the host uses it). They come before the SDK's, which the same
// errors wrap. ErrLockFile is left out: it never ends an operation.
func init() {
	for _, k := range []struct {
		err  error
		name string
	}{
		{ErrClosed, "closed"},
		{ErrMalformedRef, "malformed_ref"},
		{ErrPluginNotFound, "plugin_not_found"},
		{ErrPluginRefused, "plugin_refused"},
		{ErrHandshake, "handshake"},
		{ErrPluginCrashed, "plugin_crashed"},
		{ErrCallTimeout, "call_timeout"},
		{ErrVerifyAfterSign, "verify_after_sign"},
		{ErrAuditUnavailable, "audit_unavailable"},
	} {
		errtype.Register(errtype.Specific, k.err, k.name)
	}
}

// op is a host operation, as telemetry names it.
type op uint8

const (
	opSign op = iota
	opVerify
	opPublicKey
	opMetadata
	opRotate
	opCreateKey
	opListKeys
	opPromote
	opRetire
	opApprove
	numOps
)

// opNames are the knhk.operation values, spanNames the operations' spans.
var (
	opNames   = [numOps]string{"sign", "verify", "public_key", "metadata", "rotate", "create_key", "list_keys", "promote", "retire", "approve"}
	spanNames = [numOps]string{"knhk.sign", "knhk.verify", "knhk.public_key", "knhk.metadata", "knhk.rotate", "knhk.create_key", "knhk.list_keys", "knhk.promote", "knhk.retire", "knhk.approve"}
)

// Bucket boundaries: operation durations from a local plugin's tenth of a
// millisecond to a slow cloud call, batch sizes up to maxBatch.
var (
	durationBuckets  = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	batchSizeBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}
)

// instruments are a Host's tracer and metric instruments, made once in
// New from Config's providers. With the default no-op providers telemetry
// must cost next to nothing on the sign path: no span is started while
// the tracer provider is known to make none (tracing), and attributes are
// built only for a recording span or an enabled instrument.
type instruments struct {
	tracer trace.Tracer
	grpc   stats.Handler // the plugin connections' client handler

	// traceOn: the tracer may record. idleGlobal, when not nil, is the
	// global provider the host traces to, no-op when New ran: tracing
	// starts once another is installed (telemetry.Setup after New).
	traceOn    atomic.Bool
	idleGlobal trace.TracerProvider

	duration      metric.Float64Histogram
	batchSize     metric.Int64Histogram
	launches      metric.Int64Counter
	restarts      metric.Int64Counter
	crashes       metric.Int64Counter
	up            metric.Int64UpDownCounter
	vasFailures   metric.Int64Counter
	cacheRequests metric.Int64Counter
}

// newInstruments makes the host's instruments from cfg's providers (nil:
// the global ones). An instrument that cannot be made is reported to
// OpenTelemetry's error handler and works as a no-op: telemetry never
// stops the host.
func newInstruments(cfg Config) *instruments {
	tp, mp := cfg.TracerProvider, cfg.MeterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(telemetry.ScopeName)
	t := &instruments{tracer: tp.Tracer(telemetry.ScopeName)}
	switch {
	case !telemetry.NoopTracerProvider(tp):
		t.traceOn.Store(true)
	case tp == otel.GetTracerProvider():
		t.idleGlobal = tp
	}
	// The plugin side always extracts W3C trace context (shared.Serve
	// sets it up), whatever the embedder's global propagator is.
	t.grpc = &gatedHandler{t: t, inner: telemetry.GRPCClientHandler(
		otelgrpc.WithTracerProvider(tp), otelgrpc.WithMeterProvider(mp),
		otelgrpc.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})),
	)}
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	t.duration, err = meter.Float64Histogram("knhk.operation.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of host operations (sign, verify, public_key, metadata, rotate, create_key, list_keys); its count is the number of operations."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	check(err)
	t.batchSize, err = meter.Int64Histogram("knhk.sign.batch.size", metric.WithUnit("{signature}"),
		metric.WithDescription("Signatures carried by each SignBatch call to a plugin."),
		metric.WithExplicitBucketBoundaries(batchSizeBuckets...))
	check(err)
	t.launches, err = meter.Int64Counter("knhk.plugin.launches", metric.WithUnit("{launch}"),
		metric.WithDescription("Plugin launches (and reattachments), with error.type when one failed."))
	check(err)
	t.restarts, err = meter.Int64Counter("knhk.plugin.restarts", metric.WithUnit("{restart}"),
		metric.WithDescription("Plugin launches that replaced an instance that had died or been killed as stuck."))
	check(err)
	t.crashes, err = meter.Int64Counter("knhk.plugin.crashes", metric.WithUnit("{crash}"),
		metric.WithDescription("Plugin instances that died, or were killed for answering nothing within the call timeout."))
	check(err)
	t.up, err = meter.Int64UpDownCounter("knhk.plugin.up", metric.WithUnit("{plugin}"),
		metric.WithDescription("Plugin instances running."))
	check(err)
	t.vasFailures, err = meter.Int64Counter("knhk.verify_after_sign.failures", metric.WithUnit("{signature}"),
		metric.WithDescription("Signatures from a plugin that failed verify-after-sign and were discarded."))
	check(err)
	t.cacheRequests, err = meter.Int64Counter("knhk.public_key.cache.requests", metric.WithUnit("{request}"),
		metric.WithDescription("Public-key cache lookups, by knhk.cache.result (hit or miss)."))
	check(err)
	for _, err := range errs {
		otel.Handle(err)
	}
	return t
}

// tracing reports whether the host's tracer may record spans.
func (t *instruments) tracing() bool {
	if t.traceOn.Load() {
		return true
	}
	if t.idleGlobal != nil && otel.GetTracerProvider() != t.idleGlobal {
		t.traceOn.Store(true)
		return true
	}
	return false
}

// idleSpan stands for the spans not started: it records nothing.
var idleSpan = trace.SpanFromContext(context.Background())

// start starts a span unless the tracer makes none.
func (t *instruments) start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !t.tracing() {
		return ctx, idleSpan
	}
	return t.tracer.Start(ctx, name, opts...)
}

// gatedHandler is the plugin connections' otelgrpc handler, skipped for a
// call with nothing to report to and no trace to pass on: no tracing,
// metrics disabled, no span context in the call's context. otelgrpc would
// otherwise allocate about a kilobyte per call to throw away.
type gatedHandler struct {
	t     *instruments
	inner stats.Handler
}

// gatedKey marks the contexts of the calls the inner handler tagged: only
// those may reach its HandleRPC, which would otherwise end the caller's
// span as if it were the call's.
type gatedKey struct{}

var gatedMark = new(int)

func (g *gatedHandler) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	if !g.t.tracing() && !g.t.duration.Enabled(ctx) && !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	return context.WithValue(g.inner.TagRPC(ctx, info), gatedKey{}, gatedMark)
}

func (g *gatedHandler) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if ctx.Value(gatedKey{}) != nil {
		g.inner.HandleRPC(ctx, s)
	}
}

func (g *gatedHandler) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	return g.inner.TagConn(ctx, info)
}

func (g *gatedHandler) HandleConn(ctx context.Context, s stats.ConnStats) {
	g.inner.HandleConn(ctx, s)
}

// pluginTel is one provider's precomputed attribute sets, so that a
// measurement with the usual attributes allocates nothing.
type pluginTel struct {
	provider  []metric.AddOption    // knhk.provider
	batch     []metric.RecordOption // knhk.provider
	cacheHit  []metric.AddOption    // knhk.provider, knhk.cache.result=hit
	cacheMiss []metric.AddOption    // knhk.provider, knhk.cache.result=miss
	ok        [numOps][]metric.RecordOption
	okAlg     sync.Map // opAlg -> []metric.RecordOption, successes of sign and verify
}

// opAlg keys the attribute sets of successful signs and verifies.
type opAlg struct {
	op  op
	alg shared.Algorithm
}

func newPluginTel(provider string) *pluginTel {
	p := attribute.String(string(telemetry.KeyProvider), provider)
	set := func(kvs ...attribute.KeyValue) metric.MeasurementOption {
		return metric.WithAttributeSet(attribute.NewSet(kvs...))
	}
	t := &pluginTel{
		provider:  []metric.AddOption{set(p)},
		batch:     []metric.RecordOption{set(p)},
		cacheHit:  []metric.AddOption{set(p, telemetry.KeyCacheResult.String("hit"))},
		cacheMiss: []metric.AddOption{set(p, telemetry.KeyCacheResult.String("miss"))},
	}
	for o := range numOps {
		t.ok[o] = []metric.RecordOption{set(p, telemetry.KeyOperation.String(opNames[o]))}
	}
	return t
}

// durationOpts are the attributes of an operation's duration: its name,
// the provider, the algorithm (sign and verify) and, on failure, the
// error type.
func (p *pluginTel) durationOpts(provider string, o op, alg shared.Algorithm, errType string) []metric.RecordOption {
	if errType == "" {
		if alg == "" {
			return p.ok[o]
		}
		k := opAlg{o, alg}
		if v, ok := p.okAlg.Load(k); ok {
			return v.([]metric.RecordOption)
		}
		opts := []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
			telemetry.KeyProvider.String(provider), telemetry.KeyOperation.String(opNames[o]), telemetry.KeyAlgorithm.String(string(alg))))}
		v, _ := p.okAlg.LoadOrStore(k, opts)
		return v.([]metric.RecordOption)
	}
	kvs := make([]attribute.KeyValue, 0, 4)
	kvs = append(kvs, telemetry.KeyProvider.String(provider), telemetry.KeyOperation.String(opNames[o]), telemetry.KeyErrorType.String(errType))
	if alg != "" {
		kvs = append(kvs, telemetry.KeyAlgorithm.String(string(alg)))
	}
	return []metric.RecordOption{metric.WithAttributes(kvs...)}
}

// opRun is one host operation in progress: its span, when the duration
// histogram is enabled its start, and with an audit log what its record
// needs (audit.go).
type opRun struct {
	m     *managed
	op    op
	span  trace.Span
	start time.Time // zero: no duration is recorded
	alg   shared.Algorithm
	audit *auditRun // nil: no audit log, or the operation is not recorded
}

// begin starts operation o on key r (for list_keys, the provider and
// its parameters) of m's provider: its span, a child of ctx's, the
// clock and the audit record. The returned context carries the span, so
// the plugin calls made under it are its children.
func (m *managed) begin(ctx context.Context, o op, r Ref) (context.Context, opRun) {
	t := m.h.tel
	run := opRun{m: m, op: o, audit: m.h.beginAudit(r)}
	if t.duration.Enabled(ctx) {
		run.start = time.Now()
	}
	ctx, run.span = t.start(ctx, spanNames[o])
	if run.span.IsRecording() {
		run.span.SetAttributes(telemetry.KeyOperation.String(opNames[o]), telemetry.KeyProvider.String(m.name))
		if r.KeyID != "" {
			run.span.SetAttributes(telemetry.KeyKeyID.String(r.KeyID))
		}
	}
	return ctx, run
}

// algorithm records the operation's signature algorithm.
func (r *opRun) algorithm(alg shared.Algorithm) {
	r.alg = alg
	if alg != "" && r.span.IsRecording() {
		r.span.SetAttributes(telemetry.KeyAlgorithm.String(string(alg)))
	}
}

// version records the key version the operation used, when known.
func (r *opRun) version(v string) {
	if r.audit != nil {
		r.audit.version = v
	}
	if v != "" && r.span.IsRecording() {
		r.span.SetAttributes(telemetry.KeyKeyVersion.String(v))
	}
}

// keyID records the key id, when it is only known at the end (a created
// key's).
func (r *opRun) keyID(id string) {
	if id == "" {
		return
	}
	if r.audit != nil {
		r.audit.ref.KeyID = id
	}
	if r.span.IsRecording() {
		r.span.SetAttributes(telemetry.KeyKeyID.String(id))
	}
}

// end ends the operation with its outcome: first its audit record, which
// must be durable before any result leaves (so a log that cannot be
// written turns success into ErrAuditUnavailable), then the span's status
// and error.type, and the duration. It returns the operation's error.
func (r *opRun) end(ctx context.Context, err error) error {
	if r.audit != nil {
		err = r.record(ctx, err)
	}
	errType := ""
	if err != nil {
		errType = telemetry.ErrorType(err)
		if r.span.IsRecording() {
			r.span.SetStatus(codes.Error, err.Error())
			r.span.SetAttributes(telemetry.KeyErrorType.String(errType))
		}
	}
	r.span.End()
	if !r.start.IsZero() {
		d := time.Since(r.start).Seconds()
		r.m.h.tel.duration.Record(ctx, d, r.m.tel.durationOpts(r.m.name, r.op, r.alg, errType)...)
	}
	return err
}

// startBatch starts the span of one SignBatch call, a new trace linked to
// the span of every caller it serves (each of which gets a link back), and
// records the batch's size. The call runs under the returned context, so
// its gRPC client span, and the plugin's server span, are the batch's
// children.
func (m *managed) startBatch(ctx context.Context, live []*pending) (context.Context, trace.Span) {
	t := m.h.tel
	var links []trace.Link
	if t.tracing() {
		for _, p := range live {
			if sc := trace.SpanContextFromContext(p.ctx); sc.IsValid() {
				links = append(links, trace.Link{SpanContext: sc})
			}
		}
	}
	var span trace.Span
	if links == nil {
		ctx, span = t.start(ctx, "knhk.sign_batch")
	} else {
		ctx, span = t.start(ctx, "knhk.sign_batch", trace.WithLinks(links...))
	}
	if span.IsRecording() {
		span.SetAttributes(telemetry.KeyProvider.String(m.name), telemetry.KeyBatchSize.Int(len(live)))
		back := trace.Link{SpanContext: span.SpanContext()}
		for _, p := range live {
			trace.SpanFromContext(p.ctx).AddLink(back)
		}
	}
	if t.batchSize.Enabled(ctx) {
		t.batchSize.Record(ctx, int64(len(live)), m.tel.batch...)
	}
	return ctx, span
}

// failBatch marks a failed SignBatch call's span (it ends when send
// returns).
func failBatch(span trace.Span, err error) {
	if span.IsRecording() {
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(telemetry.KeyErrorType.String(telemetry.ErrorType(err)))
	}
}

// startTraced is start inside a knhk.plugin.launch span (a child of the
// operation that needed the plugin), counted in knhk.plugin.launches.
func (m *managed) startTraced(ctx context.Context) (*instance, error) {
	t := m.h.tel
	ctx, span := t.start(ctx, "knhk.plugin.launch")
	if span.IsRecording() {
		span.SetAttributes(telemetry.KeyProvider.String(m.name))
	}
	inst, err := m.start(ctx)
	errType := ""
	if err != nil {
		errType = telemetry.ErrorType(err)
		if span.IsRecording() {
			span.SetStatus(codes.Error, err.Error())
			span.SetAttributes(telemetry.KeyErrorType.String(errType))
		}
	}
	span.End()
	if errType == "" {
		t.launches.Add(ctx, 1, m.tel.provider...)
	} else {
		t.launches.Add(ctx, 1, metric.WithAttributes(telemetry.KeyProvider.String(m.name), telemetry.KeyErrorType.String(errType)))
	}
	return inst, err
}

// countCache counts a public-key cache lookup.
func (m *managed) countCache(ctx context.Context, hit bool) {
	c := m.h.tel.cacheRequests
	if !c.Enabled(ctx) {
		return
	}
	if hit {
		c.Add(ctx, 1, m.tel.cacheHit...)
	} else {
		c.Add(ctx, 1, m.tel.cacheMiss...)
	}
}

// Plugin lifecycle counts (not on a hot path).

func (m *managed) countUp(delta int64) {
	m.h.tel.up.Add(context.Background(), delta, m.tel.provider...)
}

func (m *managed) countCrash() {
	m.h.tel.crashes.Add(context.Background(), 1, m.tel.provider...)
}

func (m *managed) countRestart() {
	m.h.tel.restarts.Add(context.Background(), 1, m.tel.provider...)
}

func (m *managed) countVerifyAfterSignFailure(ctx context.Context) {
	m.h.tel.vasFailures.Add(ctx, 1, m.tel.provider...)
}

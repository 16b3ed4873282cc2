package host

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/stats"

	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/telemetry"
)

// recorder collects a host's spans and metrics in memory.
type recorder struct {
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	r.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.spans))
	r.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	t.Cleanup(func() {
		r.tp.Shutdown(context.Background())
		r.mp.Shutdown(context.Background())
	})
	return r
}

// config is cfg reporting to the recorder.
func (r *recorder) config(cfg Config) Config {
	cfg.TracerProvider, cfg.MeterProvider = r.tp, r.mp
	return cfg
}

// named returns the ended spans called name (of kind kind, when not
// unspecified), in the order they ended.
func (r *recorder) named(name string, kind trace.SpanKind) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range r.spans.Ended() {
		if s.Name() == name && (kind == trace.SpanKindUnspecified || s.SpanKind() == kind) {
			out = append(out, s)
		}
	}
	return out
}

// metrics collects what the host measured so far, by metric name.
func (r *recorder) metrics(t *testing.T) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// kvs is the attribute set made of these key/value pairs.
func kvs(pairs ...string) attribute.Set {
	var kv []attribute.KeyValue
	for i := 0; i+1 < len(pairs); i += 2 {
		kv = append(kv, attribute.String(pairs[i], pairs[i+1]))
	}
	return attribute.NewSet(kv...)
}

// count is a counter's (or up-down counter's) value for exactly the
// attribute set want.
func count(t *testing.T, data map[string]metricdata.Aggregation, name string, want attribute.Set) int64 {
	t.Helper()
	sum, ok := data[name].(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("no counter %s (have %v)", name, keysOf(data))
	}
	for _, dp := range sum.DataPoints {
		if dp.Attributes.Equals(&want) {
			return dp.Value
		}
	}
	return 0
}

// histogram is a histogram's count and sum for exactly the attribute set
// want.
func histogram[N int64 | float64](t *testing.T, data map[string]metricdata.Aggregation, name string, want attribute.Set) (uint64, N) {
	t.Helper()
	h, ok := data[name].(metricdata.Histogram[N])
	if !ok {
		t.Fatalf("no histogram %s (have %v)", name, keysOf(data))
	}
	for _, dp := range h.DataPoints {
		if dp.Attributes.Equals(&want) {
			return dp.Count, dp.Sum
		}
	}
	return 0, 0
}

func keysOf(m map[string]metricdata.Aggregation) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// spanAttr is a span attribute's value as a string ("" when absent).
func spanAttr(s sdktrace.ReadOnlySpan, k attribute.Key) string {
	for _, kv := range s.Attributes() {
		if kv.Key == k {
			return kv.Value.Emit()
		}
	}
	return ""
}

// noParams fails if any span attribute holds s (a parameter value).
func noParams(t *testing.T, r *recorder, s string) {
	t.Helper()
	for _, span := range r.spans.Ended() {
		for _, kv := range span.Attributes() {
			if strings.Contains(kv.Value.Emit(), s) {
				t.Errorf("span %s attribute %s holds a parameter value: %s", span.Name(), kv.Key, kv.Value.Emit())
			}
		}
	}
}

// TestTelemetrySign: signing through the plugin binary makes a knhk.sign
// span per signature, child of the caller's span, with the operation's
// attributes and no parameter value; the gRPC client span of its plugin
// call is its child; the first call launches the plugin inside a
// knhk.plugin.launch span; the duration histogram counts every operation,
// failures under their error.type; the cache counts its lookups.
func TestTelemetrySign(t *testing.T) {
	rec := newRecorder(t)
	h, _ := newHost(t, rec.config(Config{}))
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	newKey(t, h, state, "ec", shared.ECP256)
	k, err := h.Key(ctx, fakeRef(t, state, "ec", ""))
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("traced"))
	cctx, caller := rec.tp.Tracer("test").Start(ctx, "caller")
	const signs = 3
	for range signs {
		if _, err := k.SignDigest(cctx, digest[:], SignOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	caller.End()
	p, err := h.Provider(ctx, "fake")
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Sign(ctx, shared.SignRequest{Key: shared.KeyRef{ID: "nope", Params: map[string]string{"state": state}}, Algorithm: shared.ES256, Digest: digest[:]})
	if !errors.Is(err, shared.ErrKeyNotFound) {
		t.Fatalf("signing with a missing key: %v", err)
	}

	launches := rec.named("knhk.plugin.launch", trace.SpanKindUnspecified)
	if len(launches) != 1 || spanAttr(launches[0], telemetry.KeyProvider) != "fake" || launches[0].Status().Code == codes.Error {
		t.Errorf("%d launch spans; want one, of provider fake, successful", len(launches))
	}
	if creates := rec.named("knhk.create_key", trace.SpanKindUnspecified); len(creates) != 1 || spanAttr(creates[0], telemetry.KeyKeyID) != "ec" {
		t.Errorf("%d create_key spans; want one for key ec", len(creates))
	}
	signSpans := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	var ok, failed int
	for _, s := range rec.named("knhk.sign", trace.SpanKindInternal) {
		signSpans[s.SpanContext().SpanID()] = s
		if s.Status().Code == codes.Error {
			failed++
			if got := spanAttr(s, telemetry.KeyErrorType); got != "key_not_found" {
				t.Errorf("failed sign's error.type %q; want key_not_found", got)
			}
			continue
		}
		ok++
		if s.Parent().SpanID() != caller.SpanContext().SpanID() {
			t.Error("a knhk.sign span is not its caller's child")
		}
		for k, want := range map[attribute.Key]string{
			telemetry.KeyOperation: "sign", telemetry.KeyProvider: "fake", telemetry.KeyKeyID: "ec",
			telemetry.KeyAlgorithm: "ES256", telemetry.KeyKeyVersion: "1",
		} {
			if got := spanAttr(s, k); got != want {
				t.Errorf("knhk.sign %s = %q; want %q", k, got, want)
			}
		}
	}
	if ok != signs || failed != 1 {
		t.Errorf("%d successful and %d failed knhk.sign spans; want %d and 1", ok, failed, signs)
	}
	clients := rec.named("knhk.kms.v1.KeyProvider/Sign", trace.SpanKindClient)
	if len(clients) != signs+1 {
		t.Errorf("%d client Sign spans; want %d", len(clients), signs+1)
	}
	for _, c := range clients {
		if _, ok := signSpans[c.Parent().SpanID()]; !ok {
			t.Error("a client Sign span is not a knhk.sign span's child")
		}
	}
	noParams(t, rec, state)

	data := rec.metrics(t)
	if n, _ := histogram[float64](t, data, "knhk.operation.duration", kvs("knhk.operation", "sign", "knhk.provider", "fake", "knhk.algorithm", "ES256")); n != signs {
		t.Errorf("knhk.operation.duration counts %d signatures; want %d", n, signs)
	}
	if n, _ := histogram[float64](t, data, "knhk.operation.duration", kvs("knhk.operation", "sign", "knhk.provider", "fake", "knhk.algorithm", "ES256", "error.type", "key_not_found")); n != 1 {
		t.Errorf("knhk.operation.duration counts %d failed signatures; want 1", n)
	}
	if n, _ := histogram[float64](t, data, "knhk.operation.duration", kvs("knhk.operation", "create_key", "knhk.provider", "fake")); n != 1 {
		t.Errorf("knhk.operation.duration counts %d key creations; want 1", n)
	}
	if n := count(t, data, "knhk.plugin.launches", kvs("knhk.provider", "fake")); n != 1 {
		t.Errorf("knhk.plugin.launches = %d; want 1", n)
	}
	if n := count(t, data, "knhk.plugin.up", kvs("knhk.provider", "fake")); n != 1 {
		t.Errorf("knhk.plugin.up = %d; want 1", n)
	}
	// Each signature looks the public key up twice (the algorithm, then
	// verify-after-sign); only the first lookup misses.
	if n := count(t, data, "knhk.public_key.cache.requests", kvs("knhk.provider", "fake", "knhk.cache.result", "miss")); n != 1 {
		t.Errorf("%d cache misses; want 1", n)
	}
	if n := count(t, data, "knhk.public_key.cache.requests", kvs("knhk.provider", "fake", "knhk.cache.result", "hit")); n != 2*signs-1 {
		t.Errorf("%d cache hits; want %d", n, 2*signs-1)
	}
	if _, ok := data["rpc.client.call.duration"]; !ok {
		t.Error("no gRPC client metrics from the host's meter provider")
	}

	h.Close()
	if n := count(t, rec.metrics(t), "knhk.plugin.up", kvs("knhk.provider", "fake")); n != 0 {
		t.Errorf("knhk.plugin.up = %d after Close; want 0", n)
	}
}

// TestTelemetryBatch: 16 signatures queued behind calls in flight leave in
// one SignBatch call, whose knhk.sign_batch span links to the 16 callers'
// knhk.sign spans, each of which links back; the gRPC call is the batch
// span's child; the batch size is recorded.
func TestTelemetryBatch(t *testing.T) {
	rec := newRecorder(t)
	h, _ := newHost(t, rec.config(Config{}))
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	newKey(t, h, state, "batched", shared.ECP256)
	p, err := h.Provider(ctx, "fake")
	if err != nil {
		t.Fatal(err)
	}
	ref := shared.KeyRef{ID: "batched", Params: map[string]string{"state": state}}
	digest := sha256.Sum256([]byte("batch"))
	done := slowSign(t, h, state, "1s")
	const n = 16
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Sign(ctx, shared.SignRequest{Key: ref, Algorithm: shared.ES256, Digest: digest[:]}); err != nil {
				t.Error(err)
			}
		}()
	}
	waitFor(t, "every signature to queue", 10*time.Second, func() bool { return h.queued() == n })
	wg.Wait()
	<-done
	// The callers have their results just before the call, and its span,
	// end.
	waitFor(t, "the batch's spans to end", 10*time.Second, func() bool {
		return len(rec.named("knhk.sign_batch", trace.SpanKindInternal)) > 0 &&
			len(rec.named("knhk.kms.v1.KeyProvider/SignBatch", trace.SpanKindClient)) > 0
	})

	batches := rec.named("knhk.sign_batch", trace.SpanKindInternal)
	if len(batches) != 1 {
		t.Fatalf("%d knhk.sign_batch spans; want 1", len(batches))
	}
	batch := batches[0]
	if spanAttr(batch, telemetry.KeyBatchSize) != "16" || spanAttr(batch, telemetry.KeyProvider) != "fake" {
		t.Errorf("batch span attributes %v", batch.Attributes())
	}
	if batch.Parent().IsValid() {
		t.Error("the batch span has a parent; it serves many traces and starts its own")
	}
	linked := map[trace.SpanID]bool{}
	for _, l := range batch.Links() {
		linked[l.SpanContext.SpanID()] = true
	}
	callers := 0
	for _, s := range rec.named("knhk.sign", trace.SpanKindInternal) {
		if spanAttr(s, telemetry.KeyKeyID) != "batched" {
			continue // the slow signatures, sent alone
		}
		callers++
		if !linked[s.SpanContext().SpanID()] {
			t.Error("the batch span does not link to a caller's span")
		}
		if l := s.Links(); len(l) != 1 || l[0].SpanContext.SpanID() != batch.SpanContext().SpanID() {
			t.Errorf("a caller's span links to %v; want the batch span", l)
		}
	}
	if callers != n || len(linked) != n {
		t.Errorf("%d callers' spans, %d links; want %d of each", callers, len(linked), n)
	}
	calls := rec.named("knhk.kms.v1.KeyProvider/SignBatch", trace.SpanKindClient)
	if len(calls) != 1 || calls[0].Parent().SpanID() != batch.SpanContext().SpanID() {
		t.Errorf("%d SignBatch client spans; want one, the batch span's child", len(calls))
	}
	data := rec.metrics(t)
	if count, sum := histogram[int64](t, data, "knhk.sign.batch.size", kvs("knhk.provider", "fake")); count != 1 || sum != n {
		t.Errorf("knhk.sign.batch.size: %d batches of %d signatures in all; want 1 of %d", count, sum, n)
	}
	if count, _ := histogram[float64](t, data, "knhk.operation.duration", kvs("knhk.operation", "sign", "knhk.provider", "fake", "knhk.algorithm", "ES256")); count != n+maxInFlight {
		t.Errorf("knhk.operation.duration counts %d signatures; want %d", count, n+maxInFlight)
	}
}

// TestTelemetryCrashAndRestart: a plugin that dies mid-call counts as a
// crash; the launch that replaces it as a launch and a restart, inside the
// retried call's span; the retry's log line names the trace.
func TestTelemetryCrashAndRestart(t *testing.T) {
	rec := newRecorder(t)
	h, logs := newHost(t, rec.config(Config{}))
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	newKey(t, h, state, "crash", shared.Ed25519)
	k, err := h.Key(ctx, fakeRef(t, state, "crash", "fault_exit_after=1&fault_ops=sign"))
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"one", "two"} { // the plugin exits during the second
		if _, err := k.SignMessage(ctx, []byte(msg), SignOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	data := rec.metrics(t)
	fake := kvs("knhk.provider", "fake")
	for name, want := range map[string]int64{
		"knhk.plugin.launches": 2, "knhk.plugin.crashes": 1, "knhk.plugin.restarts": 1, "knhk.plugin.up": 1,
	} {
		if got := count(t, data, name, fake); got != want {
			t.Errorf("%s = %d; want %d", name, got, want)
		}
	}
	signs := map[trace.SpanID]bool{}
	for _, s := range rec.named("knhk.sign", trace.SpanKindInternal) {
		signs[s.SpanContext().SpanID()] = true
	}
	launches := rec.named("knhk.plugin.launch", trace.SpanKindUnspecified)
	if len(launches) != 2 || !signs[launches[1].Parent().SpanID()] {
		t.Error("the relaunch is not inside the retried signature's span")
	}
	if !strings.Contains(logs.String(), "retrying on a fresh plugin process") || !strings.Contains(logs.String(), "trace_id=") {
		t.Errorf("the retry's log line does not name its trace:\n%s", logs.String())
	}
}

// TestTelemetryVerifyAfterSign: a signature that fails verify-after-sign
// is counted, its span says why, and the log line names the trace.
func TestTelemetryVerifyAfterSign(t *testing.T) {
	rec := newRecorder(t)
	h, logs := newHost(t, rec.config(Config{}))
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	newKey(t, h, state, "corrupt", shared.ECP256)
	k, err := h.Key(ctx, fakeRef(t, state, "corrupt", "fault_corrupt=true&fault_ops=sign"))
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("corrupt"))
	if _, err := k.SignDigest(ctx, digest[:], SignOptions{}); !errors.Is(err, ErrVerifyAfterSign) {
		t.Fatalf("corrupt signature: %v", err)
	}
	if n := count(t, rec.metrics(t), "knhk.verify_after_sign.failures", kvs("knhk.provider", "fake")); n != 1 {
		t.Errorf("knhk.verify_after_sign.failures = %d; want 1", n)
	}
	spans := rec.named("knhk.sign", trace.SpanKindInternal)
	if len(spans) != 1 || spans[0].Status().Code != codes.Error || spanAttr(spans[0], telemetry.KeyErrorType) != "verify_after_sign" {
		t.Error("the sign span does not say verify_after_sign")
	}
	if !strings.Contains(logs.String(), "does not verify") || !strings.Contains(logs.String(), "trace_id="+spans[0].SpanContext().TraceID().String()) {
		t.Errorf("the discarded signature's log line does not name its trace:\n%s", logs.String())
	}
}

// TestTelemetryFailedLaunch: a launch that fails counts under its
// error.type, and so does the operation that needed it.
func TestTelemetryFailedLaunch(t *testing.T) {
	rec := newRecorder(t)
	dir := t.TempDir()
	testBinaryAs(t, dir, wrongProtoPlugin)
	h, _ := newHost(t, rec.config(Config{PluginDirs: []string{dir}}))
	ctx := context.Background()
	k, err := h.Key(ctx, "wrongproto:key")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Metadata(ctx); !errors.Is(err, ErrHandshake) {
		t.Fatalf("metadata from a plugin of another protocol: %v", err)
	}
	launches := rec.named("knhk.plugin.launch", trace.SpanKindUnspecified)
	if len(launches) != 1 || launches[0].Status().Code != codes.Error || spanAttr(launches[0], telemetry.KeyErrorType) != "handshake" {
		t.Error("the launch span does not say handshake")
	}
	data := rec.metrics(t)
	if n := count(t, data, "knhk.plugin.launches", kvs("knhk.provider", "wrongproto", "error.type", "handshake")); n != 1 {
		t.Errorf("failed launches = %d; want 1", n)
	}
	if n, _ := histogram[float64](t, data, "knhk.operation.duration", kvs("knhk.operation", "metadata", "knhk.provider", "wrongproto", "error.type", "handshake")); n != 1 {
		t.Errorf("knhk.operation.duration counts %d failed metadata calls; want 1", n)
	}
}

// TestTelemetryAcrossTheProcessBoundary: the plugin binary, given the
// host's OTEL_* environment, exports its server spans (here to its stderr,
// which the host logs at debug level) under its own service name, each a
// child of the host's client span in the host's trace. The batch span
// processor's delay is shortened so that the span is exported while the
// plugin runs, whatever the machine's load does to the flush at stop.
func TestTelemetryAcrossTheProcessBoundary(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "console")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
	t.Setenv("OTEL_SERVICE_NAME", "")
	rec := newRecorder(t)
	logs := &logBuffer{t: t}
	h, _ := newHost(t, rec.config(Config{Logger: hclog.New(&hclog.LoggerOptions{Name: "knhk", Level: hclog.Debug, Output: logs})}))
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	newKey(t, h, state, "remote", shared.ECP256)
	k, err := h.Key(ctx, fakeRef(t, state, "remote", ""))
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("remote"))
	if _, err := k.SignDigest(ctx, digest[:], SignOptions{}); err != nil {
		t.Fatal(err)
	}
	clients := rec.named("knhk.kms.v1.KeyProvider/Sign", trace.SpanKindClient)
	if len(clients) != 1 {
		t.Fatalf("%d client Sign spans; want 1", len(clients))
	}
	client := clients[0].SpanContext()

	type spanContext struct {
		TraceID, SpanID string
		Remote          bool
	}
	type exported struct {
		Name        string
		SpanKind    int
		SpanContext spanContext
		Parent      spanContext
		Resource    []struct {
			Key   string
			Value struct{ Value any }
		}
	}
	var server *exported
	waitFor(t, "the plugin's server span in the host's log", time.Minute, func() bool {
		for _, line := range strings.Split(logs.String(), "\n") {
			i := strings.Index(line, `{"Name":"knhk.kms.v1.KeyProvider/Sign"`)
			if i < 0 {
				continue
			}
			var s exported
			if err := json.Unmarshal([]byte(line[i:]), &s); err == nil && s.SpanKind == int(trace.SpanKindServer) {
				server = &s
				return true
			}
		}
		return false
	})
	if server.Parent.SpanID != client.SpanID().String() || !server.Parent.Remote || server.SpanContext.TraceID != client.TraceID().String() {
		t.Errorf("the plugin's server span %+v is not the host client span's (%s/%s) child", server, client.TraceID(), client.SpanID())
	}
	service := ""
	for _, kv := range server.Resource {
		if kv.Key == "service.name" {
			service = fmt.Sprint(kv.Value.Value)
		}
	}
	if service != "knhk-plugin-fake" {
		t.Errorf("the plugin's service.name is %q; want knhk-plugin-fake", service)
	}
}

// TestTelemetryOffAllocatesNothing: with the default (global no-op)
// providers, an operation's telemetry and the plugin connection's gRPC
// instrumentation allocate nothing.
func TestTelemetryOffAllocatesNothing(t *testing.T) {
	if !telemetry.NoopTracerProvider(otel.GetTracerProvider()) || !telemetry.NoopMeterProvider(otel.GetMeterProvider()) {
		t.Skip("a test installed global providers")
	}
	h, _ := newHost(t, Config{})
	m, err := h.plugin("fake")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() {
		ctx, run := m.begin(ctx, opSign, Ref{Provider: "fake", KeyID: "key"})
		run.algorithm(shared.ES256)
		run.version("1")
		run.end(ctx, nil)
	}); n != 0 {
		t.Errorf("an operation's telemetry allocates %v times", n)
	}
	info := &stats.RPCTagInfo{FullMethodName: "/knhk.kms.v1.KeyProvider/Sign"}
	begin, end := &stats.Begin{Client: true}, &stats.End{Client: true}
	if n := testing.AllocsPerRun(100, func() {
		ctx := h.tel.grpc.TagRPC(ctx, info)
		h.tel.grpc.HandleRPC(ctx, begin)
		h.tel.grpc.HandleRPC(ctx, end)
	}); n != 0 {
		t.Errorf("a plugin call's gRPC instrumentation allocates %v times", n)
	}
}

// TestTelemetryInstalledAfterNew: a host made with the default providers
// starts tracing once a global provider is installed (as telemetry.Setup
// does), even after New. It changes the global provider, so it runs last.
func TestTelemetryInstalledAfterNew(t *testing.T) {
	if !telemetry.NoopTracerProvider(otel.GetTracerProvider()) {
		t.Skip("a test installed a global tracer provider")
	}
	h, _ := newHost(t, Config{})
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	newKey(t, h, state, "late", shared.ECP256)
	k, err := h.Key(ctx, fakeRef(t, state, "late", ""))
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("late"))
	if _, err := k.SignDigest(ctx, digest[:], SignOptions{}); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(t)
	otel.SetTracerProvider(rec.tp)
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
	if _, err := k.SignDigest(ctx, digest[:], SignOptions{}); err != nil {
		t.Fatal(err)
	}
	signs := rec.named("knhk.sign", trace.SpanKindInternal)
	if len(signs) != 1 {
		t.Fatalf("%d knhk.sign spans after the provider was installed; want 1", len(signs))
	}
	calls := rec.named("knhk.kms.v1.KeyProvider/Sign", trace.SpanKindClient)
	if len(calls) != 1 || calls[0].Parent().SpanID() != signs[0].SpanContext().SpanID() {
		t.Errorf("%d client Sign spans; want one, the knhk.sign span's child", len(calls))
	}
}

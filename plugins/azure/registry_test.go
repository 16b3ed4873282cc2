package azure_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/knhk/knhk/semconv"
	"github.com/knhk/knhk/semconv/semconvtest"
	"github.com/knhk/knhk/shared"
)

var (
	metricsOnce sync.Once
	metrics     *sdkmetric.ManualReader
)

// recordMetrics makes a MeterProvider reading into a ManualReader the
// process's global one, once: the clients' transports record otelhttp's
// metrics through the global provider.
func recordMetrics() *sdkmetric.ManualReader {
	metricsOnce.Do(func() {
		metrics = sdkmetric.NewManualReader()
		otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(metrics)))
	})
	return metrics
}

// notExercised are the declared attributes no request here carries.
var notExercised = map[string]string{
	"span.knhk.azure.http.client network.protocol.name":        "otelhttp sets it on a client span only for a protocol other than http",
	"span.knhk.azure.http.client http.request.method_original": "the SDK sends known methods only",
	"metric.knhk.http.client.request.duration error.type":      "only when no response arrives, which the SDK retries at length",
	"metric.knhk.http.client.request.body.size error.type":     "only when no response arrives, which the SDK retries at length",
}

// TestHTTPTelemetryMatchesRegistry: the Key Vault client spans and
// otelhttp's client metrics, of requests that succeed and of one that
// fails, are what the telemetry registry declares checked in this module,
// both ways.
func TestHTTPTelemetryMatchesRegistry(t *testing.T) {
	reg, err := semconv.Default()
	if err != nil {
		t.Fatal(err)
	}
	rec, reader := recordSpans(), recordMetrics()
	e := newEnv(t)
	ctx, parent := otel.Tracer("test").Start(context.Background(), "test parent")
	const name = "registry-key"
	if _, err := e.p.CreateKey(ctx, shared.CreateKeyRequest{Key: e.ref(name), Type: shared.ECP256}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.PublicKey(ctx, shared.PublicKeyRequest{Key: e.ref(name)}); err != nil {
		t.Fatal(err)
	}
	// A 404: error.type on the span.
	if _, err := e.p.PublicKey(ctx, shared.PublicKeyRequest{Key: e.ref("no-such-key")}); err == nil {
		t.Fatal("PublicKey of a missing key succeeded")
	}
	parent.End()

	// A client span ends when its response body is closed, which may be
	// after the call returns: check until the registry agrees or a
	// generous deadline.
	var problems []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var spans []sdktrace.ReadOnlySpan
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID() == parent.SpanContext().TraceID() && s.SpanContext().SpanID() != parent.SpanContext().SpanID() {
				spans = append(spans, s)
			}
		}
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		problems = semconvtest.Check(reg, "plugins/azure", notExercised, spans, &rm)
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, p := range problems {
		t.Error(p)
	}
}

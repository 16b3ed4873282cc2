package hosttest_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/shared"
)

// TestTraceCrossesThePluginBoundary: a signature's trace runs from the
// host's knhk.sign span through the gRPC client span into the plugin's
// server span, as the plugin continues the trace context it receives. The
// in-process plugin reports to the global providers, as a plugin binary
// does to the ones telemetry.Setup installs, so the test sets those.
func TestTraceCrossesThePluginBoundary(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	t.Cleanup(func() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		tp.Shutdown(context.Background())
	})
	ctx := context.Background()
	h := hosttest.New(t, hosttest.WithConfig(host.Config{TracerProvider: tp}))
	if _, err := h.CreateKey(ctx, "fake:traced", shared.ECP256); err != nil {
		t.Fatal(err)
	}
	signer, err := h.Signer(ctx, "fake:traced")
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("traced"))
	if _, err := signer.Sign(nil, digest[:], crypto.SHA256); err != nil {
		t.Fatal(err)
	}

	var sign, client, server sdktrace.ReadOnlySpan
	const method = "knhk.kms.v1.KeyProvider/Sign"
	// The server span ends once the answer is on its way: poll for it.
	for deadline := time.Now().Add(10 * time.Second); server == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, s := range rec.Ended() {
			switch {
			case s.Name() == "knhk.sign":
				sign = s
			case s.Name() == method && s.SpanKind() == trace.SpanKindClient:
				client = s
			case s.Name() == method && s.SpanKind() == trace.SpanKindServer:
				server = s
			}
		}
	}
	if sign == nil || client == nil || server == nil {
		t.Fatalf("spans: knhk.sign %v, client %v, server %v; want all three", sign != nil, client != nil, server != nil)
	}
	if client.Parent().SpanID() != sign.SpanContext().SpanID() {
		t.Error("the client span is not the knhk.sign span's child")
	}
	if server.Parent().SpanID() != client.SpanContext().SpanID() || !server.Parent().IsRemote() {
		t.Error("the plugin's server span does not continue the client span")
	}
	if server.SpanContext().TraceID() != sign.SpanContext().TraceID() {
		t.Error("the plugin's server span is in another trace")
	}
}

package aws_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/knhk/knhk/shared"
)

var (
	spansOnce sync.Once
	spans     *tracetest.SpanRecorder
)

// recordSpans makes a recording SDK TracerProvider and the W3C propagator
// the process's globals, once, as the plugin's telemetry setup does: the
// KMS client's middleware uses the globals. Spans are told apart by trace.
func recordSpans() *tracetest.SpanRecorder {
	spansOnce.Do(func() {
		spans = tracetest.NewSpanRecorder()
		otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
		otel.SetTextMapPropagator(propagation.TraceContext{})
	})
	return spans
}

// TestKMSCallsAreTraced: every KMS call is a client span named by service
// and operation, a child of the span in the caller's context.
func TestKMSCallsAreTraced(t *testing.T) {
	rec := recordSpans()
	e := newEnv(t)
	ctx, parent := otel.Tracer("test").Start(context.Background(), "test parent")
	r, err := e.p.CreateKey(ctx, shared.CreateKeyRequest{Key: e.ref("alias/traced"), Type: shared.ECP256})
	if err != nil {
		t.Fatal(err)
	}
	digest := digestOf(t, shared.ES256, []byte("traced"))
	if _, err := e.p.Sign(ctx, shared.SignRequest{Key: e.ref(r.KeyID), Algorithm: shared.ES256, Digest: digest}); err != nil {
		t.Fatal(err)
	}
	parent.End()

	var names []string
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() != parent.SpanContext().TraceID() || s.SpanKind() != trace.SpanKindClient {
			continue
		}
		names = append(names, s.Name())
		if s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %q has parent %s, want the caller's span %s", s.Name(), s.Parent().SpanID(), parent.SpanContext().SpanID())
		}
	}
	for _, want := range []string{"KMS.CreateKey", "KMS.Sign"} {
		if !slices.Contains(names, want) {
			t.Errorf("client spans %q, want %s", names, want)
		}
	}
}

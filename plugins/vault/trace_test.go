package vault_test

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/knhk/knhk/plugins/vault"
	"github.com/knhk/knhk/shared"
)

var (
	spansOnce sync.Once
	spans     *tracetest.SpanRecorder
)

// recordSpans makes a recording SDK TracerProvider and the W3C propagator
// the process's globals, once, as the plugin's telemetry setup does: the
// Vault client's transport uses the globals. Spans are told apart by trace.
func recordSpans() *tracetest.SpanRecorder {
	spansOnce.Do(func() {
		spans = tracetest.NewSpanRecorder()
		otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
		otel.SetTextMapPropagator(propagation.TraceContext{})
	})
	return spans
}

// TestVaultCallsAreTraced: every HTTP call to Vault is a client span, a
// child of the span in the caller's context, named by route without the
// key's name.
func TestVaultCallsAreTraced(t *testing.T) {
	rec := recordSpans()
	c, parent := otel.Tracer("test").Start(ctx(t), "test parent")
	name := keyName("traced")
	p := vault.New(vault.Config{})
	defer p.Close()
	if _, err := p.CreateKey(c, shared.CreateKeyRequest{Key: shared.KeyRef{ID: name, Params: params()}, Type: shared.ECP256}); err != nil {
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
		if strings.Contains(s.Name(), name) {
			t.Errorf("span name %q contains the key name", s.Name())
		}
	}
	if !slices.Contains(names, "PUT /v1/{mount}/keys/{name}") {
		t.Fatalf("client spans %q, want one for creating the key", names)
	}
}

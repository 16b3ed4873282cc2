package azure_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/knhk/knhk/plugins/azure"
	"github.com/knhk/knhk/plugins/azure/internal/kvtest"
	"github.com/knhk/knhk/shared"
)

var (
	spansOnce sync.Once
	spans     *tracetest.SpanRecorder
)

// recordSpans makes a recording SDK TracerProvider and the W3C propagator
// the process's globals, once, as the plugin's telemetry setup does: the
// clients' transport uses the globals. Spans are told apart by trace.
func recordSpans() *tracetest.SpanRecorder {
	spansOnce.Do(func() {
		spans = tracetest.NewSpanRecorder()
		otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
		otel.SetTextMapPropagator(propagation.TraceContext{})
	})
	return spans
}

// clientSpans returns the client spans of parent's trace, failing the test
// for any that is not parent's child or whose name holds the key name.
func clientSpans(t *testing.T, rec *tracetest.SpanRecorder, parent trace.Span, key string) []sdktrace.ReadOnlySpan {
	t.Helper()
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() != parent.SpanContext().TraceID() || s.SpanKind() != trace.SpanKindClient {
			continue
		}
		out = append(out, s)
		if s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %q has parent %s, want the caller's span %s", s.Name(), s.Parent().SpanID(), parent.SpanContext().SpanID())
		}
		if strings.Contains(s.Name(), key) {
			t.Errorf("span name %q contains the key name", s.Name())
		}
	}
	return out
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name())
	}
	return n
}

// TestKeyVaultCallsAreTraced: every HTTP call to Key Vault is a client
// span, a child of the span in the caller's context, named by route.
func TestKeyVaultCallsAreTraced(t *testing.T) {
	rec := recordSpans()
	e := newEnv(t)
	ctx, parent := otel.Tracer("test").Start(context.Background(), "test parent")
	const name = "traced-key"
	if _, err := e.p.CreateKey(ctx, shared.CreateKeyRequest{Key: e.ref(name), Type: shared.ECP256}); err != nil {
		t.Fatal(err)
	}
	parent.End()
	got := names(clientSpans(t, rec, parent, name))
	if !slices.Contains(got, "POST /keys/{name}/create") {
		t.Fatalf("client spans %q, want one for creating the key", got)
	}
}

// TestTokenRequestsAreTraced: the credential's token requests (here a
// managed identity's, through azidentity) are client spans in the
// caller's trace too.
func TestTokenRequestsAreTraced(t *testing.T) {
	rec := recordSpans()
	srv := newVault(t)
	useManagedIdentity(t, srv)
	t.Setenv("AZURE_CLIENT_ID", randomID(t)) // not cached by an earlier test
	ctx, parent := otel.Tracer("test").Start(context.Background(), "test parent")
	const name = "traced-mi"
	ref := shared.KeyRef{ID: srv.KeyID(name), Params: map[string]string{"ca_file": srv.CAFile}}
	if _, err := azure.New(azure.Config{}).CreateKey(ctx, shared.CreateKeyRequest{Key: ref, Type: shared.ECP256}); err != nil {
		t.Fatal(err)
	}
	parent.End()
	var token bool
	for _, s := range clientSpans(t, rec, parent, name) {
		for _, a := range s.Attributes() {
			if a.Key == "url.full" && strings.Contains(a.Value.AsString(), kvtest.IdentityPath) {
				token = true
			}
		}
	}
	if !token || len(srv.TokenRequests()) == 0 {
		t.Fatalf("no client span for the managed identity token request (%d token requests)", len(srv.TokenRequests()))
	}
}

package aws_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/knhk/knhk/semconv"
	"github.com/knhk/knhk/semconv/semconvtest"
	"github.com/knhk/knhk/shared"
)

// TestKMSSpansMatchRegistry: the KMS client spans, of calls that succeed
// and of one that fails, are what the telemetry registry declares checked
// in this module, both ways.
func TestKMSSpansMatchRegistry(t *testing.T) {
	reg, err := semconv.Default()
	if err != nil {
		t.Fatal(err)
	}
	rec := recordSpans()
	e := newEnv(t)
	ctx, parent := otel.Tracer("test").Start(context.Background(), "test parent")
	id, version := e.create(t, "alias/registry", shared.ECP256)
	digest := digestOf(t, shared.ES256, []byte("registry"))
	if _, err := e.p.Sign(ctx, shared.SignRequest{Key: e.ref(id), Algorithm: shared.ES256, Digest: digest}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.PublicKey(ctx, shared.PublicKeyRequest{Key: e.ref(id), Version: version}); err != nil {
		t.Fatal(err)
	}
	// A failed call: error.type.
	if _, err := e.p.PublicKey(ctx, shared.PublicKeyRequest{Key: e.ref("alias/no-such-key")}); err == nil {
		t.Fatal("PublicKey of a missing key succeeded")
	}
	parent.End()

	var spans []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() == parent.SpanContext().TraceID() && s.SpanContext().SpanID() != parent.SpanContext().SpanID() {
			spans = append(spans, s)
		}
	}
	if len(spans) == 0 {
		t.Fatal("no KMS client spans")
	}
	for _, p := range semconvtest.Check(reg, "plugins/aws", nil, spans, nil) {
		t.Error(p)
	}
}

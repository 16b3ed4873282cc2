package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/trace"
)

// LogArgs returns the hclog key/value pairs "trace_id" and "span_id" of
// the span in ctx, to append to a log line so that it can be found from
// its trace and the other way round. It returns nothing when ctx holds no
// valid span context (no tracing, or nobody traced this call).
//
//	log.Warn("retrying", append([]any{"op", op}, telemetry.LogArgs(ctx)...)...)
func LogArgs(ctx context.Context) []any {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil
	}
	return []any{"trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String()}
}

package telemetry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/telemetry"
)

// TestErrorType: the most specific sentinel names an error, whatever else
// it wraps; context errors and unknown errors have their own names.
func TestErrorType(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("something else"), "_OTHER"},
		{fmt.Errorf("wrapped: %w", shared.ErrKeyNotFound), "key_not_found"},
		{shared.ErrInvalidArgument, "invalid_argument"},
		{shared.ErrUnsupportedAlgorithm, "unsupported_algorithm"},
		{shared.ErrPermissionDenied, "permission_denied"},
		{shared.ErrUnavailable, "unavailable"},
		{shared.ErrFailedPrecondition, "failed_precondition"},
		{shared.ErrUnimplemented, "unimplemented"},
		{shared.ErrAlreadyExists, "already_exists"},
		{shared.ErrBadSignature, "bad_signature"},
		{fmt.Errorf("%w: %w", host.ErrMalformedRef, shared.ErrInvalidArgument), "malformed_ref"},
		{host.ErrPluginNotFound, "plugin_not_found"},
		{host.ErrPluginRefused, "plugin_refused"},
		{host.ErrHandshake, "handshake"},
		{fmt.Errorf("%w: %w", host.ErrPluginCrashed, shared.ErrUnavailable), "plugin_crashed"},
		// Order matters: a call timeout is also unavailable and a deadline.
		{fmt.Errorf("%w: %w (%w)", host.ErrCallTimeout, shared.ErrUnavailable, context.DeadlineExceeded), "call_timeout"},
		{fmt.Errorf("%w: %w", host.ErrVerifyAfterSign, shared.ErrBadSignature), "verify_after_sign"},
		{fmt.Errorf("%w: plugin x: gone", host.ErrClosed), "closed"},
		{context.Canceled, "canceled"},
		{fmt.Errorf("waiting: %w", context.DeadlineExceeded), "deadline_exceeded"},
	} {
		if got := telemetry.ErrorType(tc.err); got != tc.want {
			t.Errorf("ErrorType(%v) = %q; want %q", tc.err, got, tc.want)
		}
	}
}

// otelVars are the variables that decide what Setup does; each test
// starts with all of them unset.
var otelVars = []string{
	"OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER",
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
}

func cleanEnv(t *testing.T) {
	t.Helper()
	for _, v := range otelVars {
		t.Setenv(v, "")
	}
}

// TestSetupLeavesGlobalsAloneUnlessAsked: without an exporter asked for,
// with exporters set to none (even with an endpoint), or with the SDK
// disabled, Setup installs no provider; it always installs the W3C
// propagator.
func TestSetupLeavesGlobalsAloneUnlessAsked(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"no environment", nil},
		{"exporters none", map[string]string{
			"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none",
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
		}},
		{"sdk disabled", map[string]string{
			"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "console",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			otel.SetTextMapPropagator(nil) // a no-op composite
			tp, mp := otel.GetTracerProvider(), otel.GetMeterProvider()
			shutdown, err := telemetry.Setup(context.Background(), "knhk-test")
			if err != nil {
				t.Fatal(err)
			}
			if otel.GetTracerProvider() != tp || otel.GetMeterProvider() != mp {
				t.Error("Setup replaced a global provider")
			}
			fields := otel.GetTextMapPropagator().Fields()
			for _, f := range []string{"traceparent", "tracestate", "baggage"} {
				if !slices.Contains(fields, f) {
					t.Errorf("propagator fields %v lack %s", fields, f)
				}
			}
			if err := shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSetupConsoleExports: OTEL_TRACES_EXPORTER and
// OTEL_METRICS_EXPORTER=console install providers whose spans and metrics,
// flushed by shutdown to the console writer, name the default service.
func TestSetupConsoleExports(t *testing.T) {
	cleanEnv(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "console")
	t.Setenv("OTEL_METRICS_EXPORTER", "console")
	var out syncBuffer
	shutdown, err := telemetry.Setup(context.Background(), "knhk-console-test", telemetry.WithConsoleWriter(&out))
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer(telemetry.ScopeName).Start(context.Background(), "knhk.probe")
	if !span.IsRecording() {
		t.Error("the global tracer does not record")
	}
	span.End()
	c, err := otel.Meter(telemetry.ScopeName).Int64Counter("knhk.probe.count")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 1)
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := out.String()
	for _, want := range []string{`"knhk.probe"`, `"knhk.probe.count"`, `"knhk-console-test"`, telemetry.ScopeName} {
		if !strings.Contains(b, want) {
			t.Errorf("console output lacks %s:\n%s", want, b)
		}
	}
}

// syncBuffer is a bytes.Buffer for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWithMetricReader: a reader passed to Setup gets the global meter's
// measurements even with no metric exporter in the environment, under the
// default service name or OTEL_SERVICE_NAME's.
func TestWithMetricReader(t *testing.T) {
	for _, tc := range []struct {
		envName, want string
	}{
		{"", "knhk-metrics-test"},
		{"from-env", "from-env"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			cleanEnv(t)
			t.Setenv("OTEL_SERVICE_NAME", tc.envName)
			reader := sdkmetric.NewManualReader()
			tp := otel.GetTracerProvider()
			shutdown, err := telemetry.Setup(context.Background(), "knhk-metrics-test", telemetry.WithMetricReader(reader))
			if err != nil {
				t.Fatal(err)
			}
			defer shutdown(context.Background())
			if otel.GetTracerProvider() != tp {
				t.Error("a metric reader alone installed a tracer provider")
			}
			c, err := otel.Meter(telemetry.ScopeName).Int64Counter("knhk.test.count")
			if err != nil {
				t.Fatal(err)
			}
			c.Add(context.Background(), 3)
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(context.Background(), &rm); err != nil {
				t.Fatal(err)
			}
			if got, _ := rm.Resource.Set().Value("service.name"); got.AsString() != tc.want {
				t.Errorf("service.name %q; want %q", got.AsString(), tc.want)
			}
			var sum int64 = -1
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					if m.Name == "knhk.test.count" {
						sum = m.Data.(metricdata.Sum[int64]).DataPoints[0].Value
					}
				}
			}
			if sum != 3 {
				t.Errorf("knhk.test.count = %d; want 3", sum)
			}
			if err := shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSetupBadExporter: an exporter name autoexport does not know fails
// Setup and leaves the providers alone.
func TestSetupBadExporter(t *testing.T) {
	cleanEnv(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "no-such-exporter")
	tp := otel.GetTracerProvider()
	if _, err := telemetry.Setup(context.Background(), "knhk-test"); err == nil {
		t.Fatal("Setup accepted an unknown exporter")
	}
	if otel.GetTracerProvider() != tp {
		t.Error("a failed Setup replaced the tracer provider")
	}
}

// TestLogArgs: the trace and span ids of a valid span, nothing without.
func TestLogArgs(t *testing.T) {
	if args := telemetry.LogArgs(context.Background()); args != nil {
		t.Errorf("LogArgs without a span = %v", args)
	}
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("test").Start(context.Background(), "op")
	defer span.End()
	sc := span.SpanContext()
	want := []any{"trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String()}
	if got := telemetry.LogArgs(ctx); !slices.Equal(got, want) {
		t.Errorf("LogArgs = %v; want %v", got, want)
	}
	// A span of the no-op tracer carries no ids.
	ctx, _ = noop.NewTracerProvider().Tracer("test").Start(context.Background(), "op")
	if args := telemetry.LogArgs(ctx); args != nil {
		t.Errorf("LogArgs with a no-op span = %v", args)
	}
}

// The global providers before any test installs one.
var initialTP, initialMP = otel.GetTracerProvider(), otel.GetMeterProvider()

// TestNoopProviders: the no-op providers and the global ones before
// anything is installed record nothing; SDK providers do.
func TestNoopProviders(t *testing.T) {
	if !telemetry.NoopTracerProvider(noop.NewTracerProvider()) || !telemetry.NoopMeterProvider(metricnoop.NewMeterProvider()) {
		t.Error("the no-op providers are not no-op")
	}
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	mp := sdkmetric.NewMeterProvider()
	defer mp.Shutdown(context.Background())
	if telemetry.NoopTracerProvider(tp) || telemetry.NoopMeterProvider(mp) {
		t.Error("the SDK's providers are no-op")
	}
	if !telemetry.NoopTracerProvider(initialTP) || !telemetry.NoopMeterProvider(initialMP) {
		t.Error("the global providers are not no-op before anything is installed")
	}
	if telemetry.NoopTracerProvider(nil) || telemetry.NoopMeterProvider(nil) {
		t.Error("nil is no-op")
	}
}

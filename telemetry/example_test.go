package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/telemetry"
)

// A knhk program sets up telemetry first thing in main and flushes it on
// the way out. With no OTEL_* variable set this costs nothing and sends
// nothing; with OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318, say,
// traces and metrics go there under service.name my-signer.
func ExampleSetup() {
	ctx := context.Background()
	shutdown, err := telemetry.Setup(ctx, "my-signer")
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		if err := shutdown(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	// ... make a host.Host, serve, sign ...
}

// The daemon hands Setup the reader behind its own metrics endpoint; the
// meter provider it installs then feeds that reader whatever the
// environment says.
func ExampleWithMetricReader() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader() // the daemon passes its Prometheus exporter
	shutdown, err := telemetry.Setup(ctx, "knhk-example", telemetry.WithMetricReader(reader))
	if err != nil {
		log.Fatal(err)
	}
	defer shutdown(ctx)

	requests, _ := otel.Meter(telemetry.ScopeName).Int64Counter("example.requests")
	requests.Add(ctx, 1)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			fmt.Println(m.Name)
		}
	}
	// Output: example.requests
}

// A client of a knhk gRPC service (the daemon, a plugin) instruments its
// connection with GRPCClientHandler: its calls get client spans and carry
// the caller's trace context along.
func ExampleGRPCClientHandler() {
	conn, err := grpc.NewClient("unix:///run/knhk/knhk.sock",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(telemetry.GRPCClientHandler()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
}

// ErrorType names a failure for the error.type attribute.
func ExampleErrorType() {
	err := fmt.Errorf("key %q: %w", "release", shared.ErrKeyNotFound)
	fmt.Println(telemetry.ErrorType(err))
	fmt.Println(telemetry.ErrorType(errors.New("disk on fire")))
	// Output:
	// key_not_found
	// _OTHER
}

// LogArgs puts the current trace and span ids on a log line.
func ExampleLogArgs() {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	fmt.Println(telemetry.LogArgs(ctx)...)
	// Output: trace_id 4bf92f3577b34da6a3ce929d0e0e4736 span_id 00f067aa0ba902b7
}

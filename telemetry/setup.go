package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Option configures Setup.
type Option struct{ apply func(*setupConfig) }

type setupConfig struct {
	readers []sdkmetric.Reader
	console io.Writer // nil: os.Stdout
}

// WithMetricReader adds r to the MeterProvider Setup installs, and makes
// Setup install one even when the environment asks for no metric export:
// the knhk daemon passes the Prometheus exporter behind its /metrics
// endpoint this way. Shutdown shuts r down too. With OTEL_SDK_DISABLED=true,
// r is left unused.
func WithMetricReader(r sdkmetric.Reader) Option {
	return Option{func(c *setupConfig) {
		if r != nil {
			c.readers = append(c.readers, r)
		}
	}}
}

// WithConsoleWriter makes the console exporters (OTEL_TRACES_EXPORTER or
// OTEL_METRICS_EXPORTER=console) write to w instead of standard output. A
// plugin's standard output carries go-plugin's handshake, so the plugin
// SDK points them at standard error.
func WithConsoleWriter(w io.Writer) Option {
	return Option{func(c *setupConfig) { c.console = w }}
}

// Setup configures OpenTelemetry for a knhk program from the standard
// OTEL_* environment (see the package documentation for the variables):
// the global TracerProvider, MeterProvider and propagator. The propagator
// (W3C trace context and baggage) is set always. Traces are exported only
// when OTEL_TRACES_EXPORTER names an exporter or an OTLP endpoint is set
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
// metrics likewise with OTEL_METRICS_EXPORTER or
// OTEL_EXPORTER_OTLP_METRICS_ENDPOINT (or the common endpoint), or when a
// WithMetricReader option is given. Otherwise the global providers are
// left as they are, no-op unless someone else set them: no exporter is
// made and nothing is sent anywhere. OTEL_SDK_DISABLED=true turns all of
// it off. service.name is OTEL_SERVICE_NAME, else a service.name in
// OTEL_RESOURCE_ATTRIBUTES, else defaultService.
//
// shutdown flushes what is buffered and stops the exporters; call it
// before the program exits. On error the global providers are untouched.
func Setup(ctx context.Context, defaultService string, opts ...Option) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	none := func(context.Context) error { return nil }
	var cfg setupConfig
	for _, o := range opts {
		if o.apply != nil {
			o.apply(&cfg)
		}
	}
	if envTrue("OTEL_SDK_DISABLED") {
		return none, nil
	}
	traces := wanted("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	metrics := wanted("OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
	if !traces && !metrics && len(cfg.readers) == 0 {
		return none, nil
	}
	res, err := newResource(ctx, defaultService)
	if err != nil {
		return none, err
	}
	var tp *sdktrace.TracerProvider
	if traces {
		exp, err := cfg.spanExporter(ctx)
		if err != nil {
			return none, fmt.Errorf("telemetry: making the span exporter (OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_*): %w", err)
		}
		tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	}
	var mp *sdkmetric.MeterProvider
	if metrics || len(cfg.readers) > 0 {
		readers := cfg.readers
		if metrics {
			r, err := cfg.metricReader(ctx)
			if err != nil {
				if tp != nil {
					err = errors.Join(err, tp.Shutdown(ctx))
				}
				return none, fmt.Errorf("telemetry: making the metric reader (OTEL_METRICS_EXPORTER, OTEL_EXPORTER_OTLP_*): %w", err)
			}
			readers = append(readers[:len(readers):len(readers)], r)
		}
		mopts := []sdkmetric.Option{sdkmetric.WithResource(res)}
		for _, r := range readers {
			mopts = append(mopts, sdkmetric.WithReader(r))
		}
		mp = sdkmetric.NewMeterProvider(mopts...)
	}
	if tp != nil {
		otel.SetTracerProvider(tp)
	}
	if mp != nil {
		otel.SetMeterProvider(mp)
	}
	return func(ctx context.Context) error {
		var errs []error
		if tp != nil {
			errs = append(errs, tp.Shutdown(ctx))
		}
		if mp != nil {
			errs = append(errs, mp.Shutdown(ctx))
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("telemetry: shutting down: %w", err)
		}
		return nil
	}, nil
}

// spanExporter is autoexport's span exporter for the environment, but
// writing to the console writer when there is one.
func (c *setupConfig) spanExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	if c.console != nil && exporter("OTEL_TRACES_EXPORTER") == "console" {
		return stdouttrace.New(stdouttrace.WithWriter(c.console))
	}
	return autoexport.NewSpanExporter(ctx)
}

// metricReader is autoexport's metric reader for the environment, but
// writing to the console writer when there is one.
func (c *setupConfig) metricReader(ctx context.Context) (sdkmetric.Reader, error) {
	if c.console != nil && exporter("OTEL_METRICS_EXPORTER") == "console" {
		exp, err := stdoutmetric.New(stdoutmetric.WithWriter(c.console))
		if err != nil {
			return nil, err
		}
		return sdkmetric.NewPeriodicReader(exp), nil
	}
	return autoexport.NewMetricReader(ctx)
}

// newResource describes the program: service.name (defaultService unless
// the environment names one), OTEL_RESOURCE_ATTRIBUTES and the SDK's own
// attributes. Later detectors win, so the environment overrides the
// default.
func newResource(ctx context.Context, defaultService string) (*resource.Resource, error) {
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", defaultService)),
		resource.WithFromEnv(),
	)
	switch {
	case errors.Is(err, resource.ErrPartialResource):
		// A malformed OTEL_RESOURCE_ATTRIBUTES entry: keep the rest.
		otel.Handle(fmt.Errorf("telemetry: %w", err))
	case err != nil:
		return nil, fmt.Errorf("telemetry: describing the service (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES): %w", err)
	}
	return res, nil
}

// wanted reports whether the environment asks for a signal's export: its
// exporter variable names one other than "none", or, when that variable is
// unset, an OTLP endpoint is set (the signal's own or the common one).
func wanted(exporterVar, endpointVar string) bool {
	if v := exporter(exporterVar); v != "" {
		return v != "none"
	}
	return os.Getenv(endpointVar) != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
}

// exporter is the exporter an OTEL_*_EXPORTER variable names, lower case.
func exporter(name string) string {
	return strings.ToLower(strings.TrimSpace(os.Getenv(name)))
}

// envTrue reports whether a boolean variable is set to true.
func envTrue(name string) bool {
	return strings.EqualFold(strings.TrimSpace(os.Getenv(name)), "true")
}

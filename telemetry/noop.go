package telemetry

import (
	"reflect"

	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// globalPkg is where OpenTelemetry's global delegating providers live:
// what otel.GetTracerProvider and otel.GetMeterProvider return until a
// provider is installed.
const globalPkg = "go.opentelemetry.io/otel/internal/global"

// NoopTracerProvider reports whether tp is known to record nothing:
// OpenTelemetry's no-op provider, or the global one while no provider has
// been installed (otel.GetTracerProvider before Setup or
// otel.SetTracerProvider). Instrumentation on a hot path checks it to skip
// work that would be thrown away. Once a provider is installed,
// otel.GetTracerProvider returns it, so ask again with what it returns
// then; the value kept from before forwards to it too.
func NoopTracerProvider(tp trace.TracerProvider) bool {
	if _, ok := tp.(tracenoop.TracerProvider); ok {
		return true
	}
	return isGlobal(tp)
}

// NoopMeterProvider is NoopTracerProvider for meter providers.
func NoopMeterProvider(mp metric.MeterProvider) bool {
	if _, ok := mp.(metricnoop.MeterProvider); ok {
		return true
	}
	return isGlobal(mp)
}

// isGlobal reports whether p is one of OpenTelemetry's global delegating
// providers.
func isGlobal(p any) bool {
	t := reflect.TypeOf(p)
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().PkgPath() == globalPkg
}

// Package telemetry is knhk's OpenTelemetry glue: Setup configures the
// global providers of a knhk program (the daemon, the CLI, every plugin)
// from the standard environment; GRPCClientHandler and GRPCServerHandler
// instrument gRPC connections so that one trace runs from a host
// operation across the plugin boundary into the plugin's server span and
// its cloud SDK calls; the attribute keys, ErrorType and LogArgs are the
// conventions every knhk package reports with. Instrumentation scope:
// ScopeName.
//
// Without configuration nothing is exported and the instrumentation costs
// next to nothing: the global providers stay OpenTelemetry's no-op ones.
//
// # Environment
//
// Setup reads these variables; everything else in the OTEL_* namespace is
// left to the SDK and exporters, which read their own.
//
//	OTEL_SDK_DISABLED=true
//	    No providers at all (the propagator is still set).
//	OTEL_SERVICE_NAME
//	    service.name; default: Setup's defaultService (knhk-plugin-<provider>
//	    in a plugin).
//	OTEL_RESOURCE_ATTRIBUTES
//	    More resource attributes: key=value,...
//	OTEL_TRACES_EXPORTER
//	    otlp, console or none. Set, and not none: traces are exported.
//	OTEL_METRICS_EXPORTER
//	    otlp, prometheus, console or none. Likewise for metrics.
//	OTEL_EXPORTER_OTLP_ENDPOINT
//	OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
//	OTEL_EXPORTER_OTLP_METRICS_ENDPOINT
//	    With the exporter variable of a signal unset, an OTLP endpoint turns
//	    its OTLP export on: the common one for both signals, the others for
//	    one.
//
// Read by the exporters and the SDK (see their documentation):
//
//	OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
//	OTEL_EXPORTER_OTLP_METRICS_PROTOCOL
//	    http/protobuf (the default) or grpc.
//	OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _INSECURE, _CERTIFICATE,
//	_COMPRESSION, and their _TRACES_ and _METRICS_ forms
//	    The OTLP connection.
//	OTEL_EXPORTER_PROMETHEUS_HOST, OTEL_EXPORTER_PROMETHEUS_PORT
//	    Where OTEL_METRICS_EXPORTER=prometheus serves /metrics
//	    (localhost:9464).
//	OTEL_METRICS_PRODUCERS
//	    Extra metric producers (prometheus).
//	OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG
//	    Sampling (default parentbased_always_on).
//	OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_EXPORT_TIMEOUT,
//	OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE
//	    The batch span processor.
//	OTEL_METRIC_EXPORT_INTERVAL, OTEL_METRIC_EXPORT_TIMEOUT
//	    The periodic metric reader.
//	OTEL_SEMCONV_STABILITY_OPT_IN
//	    rpc/dup or rpc/old: the gRPC instrumentation's older semantic
//	    conventions.
//
// OTEL_PROPAGATORS is not read: knhk always speaks W3C trace context and
// baggage, which is what its plugins expect across their boundary.
//
// The knhk host passes every OTEL_* variable of its environment to its
// plugins, so a plugin exports where its host does, under its own
// service.name unless OTEL_SERVICE_NAME names one for all; a plugin's
// console exporters write to its standard error, and it exports no
// metrics when OTEL_METRICS_EXPORTER=prometheus (the host serves that).
//
// # Errors and logs
//
// Failed operations carry error.type (ErrorType) and, in log lines that
// have a context, the trace and span ids (LogArgs). Attributes never hold
// a key reference's parameters, a message, a digest or a signature.
package telemetry

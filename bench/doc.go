// Command knhk-bench measures what the plugin boundary costs on top of the
// cryptography itself, every row side by side in one run, and prints one
// table (absolute numbers, ratios, targets met or not) and the same
// results as JSON. `make bench` builds the CLI, the plugins and this
// command and runs it; BENCHMARKS.md describes the rows and holds the
// latest table.
//
//	knhk-bench -bin ../bin -json results.json [-dur 2s] [-cpuprofile f] [-memprofile f] [-inproc] [-soak 20s]
//
// -bin is the directory holding knhk-host, knhk-coldstart and plugins/.
// Row 7 starts `knhk-host serve` from there on a unix socket in a
// temporary directory and signs through it with the Go client
// (github.com/knhk/knhk/client).
// Row 8 signs through hosts that differ only in their TracerProvider and
// MeterProvider (none, no-op, the OpenTelemetry SDK with in-memory
// exporters) to measure what telemetry costs.
// Row 9 signs through a host with a fail-closed audit log (records
// durable before each signature returns) and one without.
// -soak drives only the host path of the selected row 2 runs (row 7: the
// daemon through the Go client's SignStream; row 8: the host with full
// tracing, or the one -telemetry names), for as long as it says, to attach perf to the processes
// meanwhile, or with -cpuprofile to profile this process: -cpuprofile
// covers rows 1-2 when they run, otherwise every row run.
// -inproc serves the fake provider inside this process (go-plugin
// reattach, no AutoMTLS) for rows 2 and 4, and skips rows 5 and 7, so one
// CPU profile covers both sides of the boundary; use it with -cpuprofile
// and -memprofile for profiling, not for the published table.
package main

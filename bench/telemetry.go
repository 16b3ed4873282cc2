package main

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// telemetryCallers is row 8's concurrency.
const telemetryCallers = 64

// telemetryRounds is how many times row 8 runs each host: as many as
// there are, so that each comes at every place in a round once.
const telemetryRounds = 5

// ratioSampled is the fraction of root spans row 8's ratio-sampler run
// samples.
const ratioSampled = 0.01

// telemetryRun is one of row 8's host configurations.
type telemetryRun struct {
	name  string
	cfg   host.Config
	tp    *sdktrace.TracerProvider // nil when off
	mp    *sdkmetric.MeterProvider
	exp   *countingExporter
	rdr   *sdkmetric.ManualReader
	sign  crypto.Signer
	calls atomic.Int64 // signatures started, warm-ups included
}

// telemetryResult is row 8.
type telemetryResult struct {
	runs   []*telemetryRun
	ms     []measure
	ratios []float64 // to runs[0] (off), median of the rounds
	spread [2]float64
	off    offCost
}

// offCost is what the host's instrumentation costs per signature with
// telemetry off, measured by replaying its calls (see measureOffCost).
type offCost struct {
	Ns       float64 // process CPU per signature, ns
	Fraction float64 // of the host's and the plugin's CPU per signature with telemetry off
	Calls    string  // what the host called per signature
}

// soakRuns names row 8's runs for -telemetry.
var soakRuns = map[string]int{"off": runOff, "noop": runNoop, "full": runFull, "default": runDefault, "ratio": runRatio}

// Row 8's runs, in the order they alternate; the first is the baseline.
const (
	runOff = iota
	runNoop
	runFull
	runDefault
	runRatio
)

// row8 measures what telemetry costs: 64 callers signing ES256 through
// hosts on the fake plugin binary (verify-after-sign on, batching on),
// identical but for their TracerProvider and MeterProvider, alternating
// round by round: (a) none set, so the otel globals, which this process
// never sets: no-op; (a') explicit no-op providers; (c) the SDK sampling
// every span into a batch span processor and an in-memory exporter,
// metrics into an SDK meter provider with a manual reader; (d) the SDK's
// default sampler, ParentBased(AlwaysSample); (e)
// ParentBased(TraceIDRatioBased(0.01)). Then the cost of the
// instrumentation with telemetry off, which no throughput ratio on this
// machine can resolve to 1%, is measured by replay (measureOffCost).
func (b *bench) row8(ctx context.Context) error {
	sdk := func(name string, sampler sdktrace.Sampler) *telemetryRun {
		r := &telemetryRun{name: name, exp: &countingExporter{InMemoryExporter: tracetest.NewInMemoryExporter()}, rdr: sdkmetric.NewManualReader()}
		opts := []sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(sdktrace.NewBatchSpanProcessor(r.exp))}
		if sampler != nil {
			opts = append(opts, sdktrace.WithSampler(sampler))
		}
		r.tp = sdktrace.NewTracerProvider(opts...)
		r.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.rdr))
		r.cfg = host.Config{TracerProvider: r.tp, MeterProvider: r.mp}
		return r
	}
	runs := []*telemetryRun{
		runOff:     {name: "telemetry off: no providers (otel globals, no-op)"},
		runNoop:    {name: "telemetry off: explicit no-op providers", cfg: host.Config{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()}},
		runFull:    sdk("full tracing: SDK, AlwaysSample, in-memory exporter", sdktrace.AlwaysSample()),
		runDefault: sdk("tracing: SDK default sampler", nil),
		runRatio:   sdk(fmt.Sprintf("tracing: SDK, %g of root spans sampled", ratioSampled), sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratioSampled))),
	}
	defer func() {
		for _, r := range runs {
			if r.tp != nil {
				_ = r.tp.Shutdown(context.Background())
				_ = r.mp.Shutdown(context.Background())
			}
		}
	}()
	for _, r := range runs {
		h, stop, err := b.newHost(r.cfg)
		if err != nil {
			return err
		}
		defer stop()
		signers, err := b.keys.signers(ctx, h)
		if err != nil {
			return err
		}
		r.sign = signers[shared.ES256]
	}
	// The SDK runs must really trace: a host that ignored its
	// TracerProvider would make this row measure nothing.
	full := runs[runFull]
	if _, err := signOnce(full.sign, shared.ES256); err != nil {
		return err
	}
	if err := full.tp.ForceFlush(ctx); err != nil {
		return err
	}
	if !slices.ContainsFunc(full.exp.GetSpans(), func(s tracetest.SpanStub) bool { return s.Name == "knhk.sign" }) {
		return errors.New("a host with Config.TracerProvider set made no knhk.sign span")
	}
	full.exp.Reset()
	full.exp.spans.Store(0)

	op := func(r *telemetryRun) func(int) error {
		return func(int) error {
			r.calls.Add(1)
			_, err := signOnce(r.sign, shared.ES256)
			return err
		}
	}
	if b.soak > 0 {
		i, ok := soakRuns[b.soakTelemetry]
		if !ok {
			return fmt.Errorf("-telemetry %q: want off, noop, full, default or ratio", b.soakTelemetry)
		}
		soaked := runs[i]
		fmt.Fprintf(os.Stderr, "driving host → fake plugin, %s, ES256, %d callers for %s (bench pid %d)\n", soaked.name, telemetryCallers, b.soak, os.Getpid())
		// Emptied as often as between the measured rounds: an exporter
		// holding every span of the soak would cost more and more.
		tick := time.NewTicker(b.dur / telemetryRounds)
		done := make(chan struct{})
		go func() {
			for {
				select {
				case <-tick.C:
					if soaked.exp != nil {
						soaked.exp.Reset()
					}
				case <-done:
					return
				}
			}
		}()
		m, err := drive(telemetryCallers, b.soak, op(soaked))
		tick.Stop()
		close(done)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%.0f signatures/s\n", m.OpsPerSec)
		return nil
	}
	ops := make([]func(int) error, len(runs))
	for i, r := range runs {
		ops[i] = op(r)
	}
	// One round at a time, so the exporters are emptied and the garbage
	// collected between rounds (outside the measured time), and each
	// round starts with the next run: every run comes first, second, …
	// once, so none always follows the SDK runs' garbage.
	all := make([][]measure, len(runs))
	for k := range telemetryRounds {
		order := make([]int, len(runs))
		rotated := make([]func(int) error, len(runs))
		for j := range runs {
			order[j] = (k + j) % len(runs)
			rotated[j] = ops[order[j]]
		}
		round, err := alternate(telemetryCallers, b.dur/telemetryRounds, 1, rotated...)
		if err != nil {
			return err
		}
		for j, i := range order {
			all[i] = append(all[i], round[j][0])
		}
		if err := flushSpans(ctx, runs); err != nil {
			return err
		}
		runtime.GC()
	}
	res := telemetryResult{runs: runs, ms: make([]measure, len(runs)), ratios: make([]float64, len(runs))}
	for i := range runs {
		res.ms[i] = mergeRounds(all[i])
		if i > 0 {
			res.ratios[i] = medianRatio(all[i], all[runOff])
		}
	}
	var per []float64
	for k := range all[runNoop] {
		per = append(per, all[runNoop][k].OpsPerSec/all[runOff][k].OpsPerSec)
	}
	res.spread = [2]float64{slices.Min(per), slices.Max(per)}

	off := res.ms[runOff].Use
	oc, err := b.measureOffCost(ctx, off.HostUs+off.PluginUs)
	if err != nil {
		return err
	}
	res.off = oc
	b.tel = res
	return b.telemetryRows(ctx)
}

// countingExporter is the in-memory exporter, counting the spans it
// was given (it holds them until Reset).
type countingExporter struct {
	*tracetest.InMemoryExporter
	spans atomic.Int64
}

func (e *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.spans.Add(int64(len(spans)))
	return e.InMemoryExporter.ExportSpans(ctx, spans)
}

// flushSpans exports what the SDK runs' span processors hold, counts
// it, and empties the exporters.
func flushSpans(ctx context.Context, runs []*telemetryRun) error {
	for _, r := range runs {
		if r.tp == nil {
			continue
		}
		if err := r.tp.ForceFlush(ctx); err != nil {
			return err
		}
		r.exp.Reset()
	}
	return nil
}

// telemetryRows adds row 8 to the table.
func (b *bench) telemetryRows(ctx context.Context) error {
	t := b.tel
	const to = "off (no providers), median of rounds"
	for i, r := range t.runs {
		m := t.ms[i]
		ops, p50, p99 := fromMeasure(m)
		row := Row{Row: 8, Name: r.name, Alg: string(shared.ES256), Callers: telemetryCallers, Verify: "on",
			OpsPerSec: ops, P50us: p50, P99us: p99, CPU: &t.ms[i].Use}
		if i > 0 {
			row.Ratio, row.RatioTo = t.ratios[i], to
		}
		note := fmt.Sprintf("CPU per signature: host process %.1f µs, plugin process %.1f µs", m.Use.HostUs, m.Use.PluginUs)
		if i > 0 {
			off := t.ms[runOff].Use
			d := m.Use.HostUs + m.Use.PluginUs - off.HostUs - off.PluginUs
			note += fmt.Sprintf(" (host %+.1f µs against off; host and plugin %+.1f core-µs, %+.1f%%)",
				m.Use.HostUs-off.HostUs, d, 100*d/(off.HostUs+off.PluginUs))
		}
		switch i {
		case runOff:
			if h := b.host[key(shared.ES256, 64, "on")]; h.Ops > 0 {
				note = join(note, fmt.Sprintf("row 2's same configuration in this run: host %.1f µs, plugin %.1f µs", h.Use.HostUs, h.Use.PluginUs))
			}
		case runNoop:
			note = join(note, fmt.Sprintf("both are off: the per-round ratios to (a) ranged %.3f to %.3f, the noise under any throughput comparison here", t.spread[0], t.spread[1]))
		case runDefault:
			note = join(note, "ParentBased(AlwaysSample): every root span is sampled, and the benchmark's callers have no parent, so this is the full tracing run again")
		}
		if r.tp != nil {
			n := r.calls.Load()
			note = join(note, fmt.Sprintf("%.2f spans exported per signature", float64(r.exp.spans.Load())/float64(n)))
			if per, err := operationsRecorded(ctx, r.rdr); err != nil {
				return err
			} else if per >= 0 {
				note = join(note, fmt.Sprintf("%.2f knhk.operation.duration measurements per signature", per/float64(n)))
			}
		}
		row.Note = note
		b.res.add(row)
	}
	oc := t.off
	b.res.add(Row{Row: 8, Name: "telemetry off: the host's instrumentation calls", Alg: string(shared.ES256), Callers: telemetryCallers, Verify: "on",
		Value: fmt.Sprintf("%.2f µs", oc.Ns/1000),
		Note: fmt.Sprintf("process CPU per signature of the span and metric calls the host made per signature with no-op providers (%s), replayed on the otel globals one goroutine at a time: %.2f%% of the CPU per signature (host + plugin) with telemetry off",
			oc.Calls, oc.Fraction*100)})
	return nil
}

// operationsRecorded is the number of sign measurements in the
// knhk.operation.duration histogram an SDK run's reader holds (-1: none
// recorded under that name).
func operationsRecorded(ctx context.Context, rdr *sdkmetric.ManualReader) (float64, error) {
	var rm metricdata.ResourceMetrics
	if err := rdr.Collect(ctx, &rm); err != nil {
		return 0, err
	}
	found, n := false, 0.0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "knhk.operation.duration" {
				continue
			}
			h, ok := m.Data.(metricdata.Histogram[float64])
			if !ok {
				continue
			}
			found = true
			for _, dp := range h.DataPoints {
				if v, ok := dp.Attributes.Value("knhk.operation"); ok && v.AsString() == "sign" {
					n += float64(dp.Count)
				}
			}
		}
	}
	if !found {
		return -1, nil
	}
	return n, nil
}

// offReplay is how long the counting run lasts at least.
const offReplay = 500 * time.Millisecond

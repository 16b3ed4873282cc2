package main

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricembedded "go.opentelemetry.io/otel/metric/embedded"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	traceembedded "go.opentelemetry.io/otel/trace/embedded"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/stats"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/telemetry"
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

// measureOffCost measures what the host's instrumentation costs per
// signature with telemetry off. A throughput ratio cannot: there is no
// host without the instrumentation to compare with in this binary, and
// run-to-run noise here is several percent. So: a host with counting
// no-op providers signs under the same load, which records every span
// and metric call it makes (span names, attributes and links per span,
// instruments, attributes per measurement, Enabled checks); then the same
// calls, per signature, are replayed on the providers an unconfigured
// host uses (the otel globals, no-op), and their process CPU is timed,
// one goroutine at a time with nothing else running, and compared with
// the CPU per signature of the host and the plugin with telemetry off
// (perSig, core-µs). The gRPC client spans are not replayed call by call
// but as the gRPC stats handler's work for a whole call, which is more:
// the handler, made as the host makes it, gets a call's events (one
// response message per signature of a SignBatch call, an upper bound:
// results ready together share one). The replay builds attributes and
// attribute sets on every call, so a host that prepares them once costs
// less than this. Left out: work in the host around the calls (reading
// the clock, an error's type).
func (b *bench) measureOffCost(ctx context.Context, perSig float64) (offCost, error) {
	c := newCallCounter()
	h, stop, err := b.newHost(host.Config{TracerProvider: countingTracerProvider{c: c}, MeterProvider: countingMeterProvider{c: c}})
	if err != nil {
		return offCost{}, err
	}
	stop = sync.OnceFunc(stop)
	defer stop()
	signers, err := b.keys.signers(ctx, h)
	if err != nil {
		return offCost{}, err
	}
	s := signers[shared.ES256]
	c.reset() // count from here: signatures only
	before := h.Stats()
	var sigs atomic.Int64
	if _, err := drive(telemetryCallers, max(b.dur/4, offReplay), func(int) error {
		sigs.Add(1)
		_, err := signOnce(s, shared.ES256)
		return err
	}); err != nil {
		return offCost{}, err
	}
	after := h.Stats()
	spans, insts := c.snapshot() // before Close counts its own
	n := float64(sigs.Load())
	perBatch := 1.0
	if nb := after.SignBatches - before.SignBatches; nb > 0 {
		perBatch = float64(after.BatchedSignatures-before.BatchedSignatures) / float64(nb)
	}

	tp, mp := otel.GetTracerProvider(), otel.GetMeterProvider()
	var total float64
	var calls []string
	for _, id := range sortedKeys(spans) {
		sc := spans[id]
		if sc.starts == 0 {
			continue
		}
		per := float64(sc.starts) / n
		if id.scope == otelgrpc.ScopeName {
			msgs := 1
			if strings.HasSuffix(id.name, "/SignBatch") {
				msgs = int(math.Ceil(perBatch))
			}
			total += per * cpuPerCall(grpcCallReplay(tp, mp, id.name, msgs))
			calls = append(calls, fmt.Sprintf("%.3f gRPC calls %s (%d response messages)", per, id.name, msgs))
			continue
		}
		total += per * cpuPerCall(sc.replay(tp.Tracer(id.scope), id.name))
		calls = append(calls, fmt.Sprintf("%.3f %s spans%s", per, id.name, sc.describe()))
	}
	for _, id := range sortedKeys(insts) {
		if id.scope == otelgrpc.ScopeName {
			continue // in the gRPC calls' replay
		}
		ic := insts[id]
		if ic.calls == 0 && ic.enabled == 0 {
			continue
		}
		rec, enabled, err := ic.replay(ctx, mp.Meter(id.scope), id.name)
		if err != nil {
			return offCost{}, err
		}
		if ic.calls > 0 {
			total += float64(ic.calls) / n * cpuPerCall(rec)
		}
		if ic.enabled > 0 {
			total += float64(ic.enabled) / n * cpuPerCall(enabled)
		}
		calls = append(calls, fmt.Sprintf("%s %s", id.name, ic.describe(n)))
	}
	if len(calls) == 0 {
		calls = []string{"none"}
	}
	return offCost{Ns: total, Fraction: total / 1000 / perSig, Calls: strings.Join(calls, "; ")}, nil
}

// grpcCallReplay is one gRPC client call of method (pkg.Service/Method)
// as the host's stats handler sees it, msgs response messages, on a
// handler made as the host makes it (the options of host's
// newInstruments), with providers tp and mp.
func grpcCallReplay(tp trace.TracerProvider, mp metric.MeterProvider, method string, msgs int) func() {
	h := telemetry.GRPCClientHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithMeterProvider(mp),
		otelgrpc.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})))
	info := &stats.RPCTagInfo{FullMethodName: "/" + method}
	addr := &net.UnixAddr{Name: filepath.Join(os.TempDir(), "plugin1234567890", "plugin"), Net: "unix"} // where go-plugin puts its socket
	return func() {
		ctx := h.TagRPC(context.Background(), info)
		t0 := time.Now()
		h.HandleRPC(ctx, &stats.Begin{Client: true, BeginTime: t0})
		h.HandleRPC(ctx, &stats.OutHeader{Client: true, RemoteAddr: addr, FullMethod: info.FullMethodName})
		h.HandleRPC(ctx, &stats.OutPayload{Client: true, Length: 64, WireLength: 69})
		h.HandleRPC(ctx, &stats.InHeader{Client: true})
		for range msgs {
			h.HandleRPC(ctx, &stats.InPayload{Client: true, Length: 96, WireLength: 101})
		}
		h.HandleRPC(ctx, &stats.InTrailer{Client: true})
		h.HandleRPC(ctx, &stats.End{Client: true, BeginTime: t0, EndTime: time.Now()})
	}
}

// cpuPerCall is the process CPU time of one call of f in ns: the least
// of three timings, each of as many calls as fill 100 ms.
func cpuPerCall(f func()) float64 {
	for range 1000 {
		f()
	}
	best := math.Inf(1)
	for range 3 {
		n := 1000
		for {
			u0 := selfUse()
			for range n {
				f()
			}
			spent := selfUse().cpu - u0.cpu
			if spent >= 100*time.Millisecond {
				best = min(best, float64(spent.Nanoseconds())/float64(n))
				break
			}
			n *= 4
		}
	}
	return best
}

// callID names a span or an instrument within its instrumentation scope.
type callID struct{ scope, name string }

// sortedKeys returns m's keys in order, for a stable report.
func sortedKeys[V any](m map[callID]V) []callID {
	ids := make([]callID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if ids[i].scope != ids[j].scope {
			return ids[i].scope < ids[j].scope
		}
		return ids[i].name < ids[j].name
	})
	return ids
}

// callCounter records the span and metric calls of a host.
type callCounter struct {
	mu    sync.Mutex
	spans map[callID]*spanCalls
	insts map[callID]*instCalls
}

func newCallCounter() *callCounter {
	return &callCounter{spans: map[callID]*spanCalls{}, insts: map[callID]*instCalls{}}
}

// snapshot copies the counts.
func (c *callCounter) snapshot() (map[callID]spanCalls, map[callID]instCalls) {
	c.mu.Lock()
	defer c.mu.Unlock()
	spans, insts := map[callID]spanCalls{}, map[callID]instCalls{}
	for id, s := range c.spans {
		spans[id] = *s
	}
	for id, i := range c.insts {
		insts[id] = *i
	}
	return spans, insts
}

func (c *callCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.spans {
		*s = spanCalls{}
	}
	for _, i := range c.insts {
		kind := i.kind
		*i = instCalls{kind: kind}
	}
}

// spanCalls counts the calls on the spans of one name, and the
// attributes and links they carried.
type spanCalls struct {
	starts, startAttrs, startLinks, kinds int64
	links, setAttrCalls, setAttrs         int64
	statuses, events, ends                int64
}

// avg is n per span started, rounded.
func (s *spanCalls) avg(n int64) int {
	if s.starts == 0 {
		return 0
	}
	return int(math.Round(float64(n) / float64(s.starts)))
}

func (s *spanCalls) describe() string {
	var parts []string
	if a := s.avg(s.startAttrs) + s.avg(s.setAttrs); a > 0 {
		parts = append(parts, fmt.Sprintf("%d attributes", a))
	}
	if l := s.avg(s.startLinks) + s.avg(s.links); l > 0 {
		parts = append(parts, fmt.Sprintf("%d links", l))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// replay makes one span the way the host made the average one of its
// name.
func (s *spanCalls) replay(tr trace.Tracer, name string) func() {
	startAttrs, startLinks, links := s.avg(s.startAttrs), s.avg(s.startLinks), s.avg(s.links)
	setCalls := s.avg(s.setAttrCalls)
	setAttrs := 0
	if s.setAttrCalls > 0 {
		setAttrs = int(math.Round(float64(s.setAttrs) / float64(s.setAttrCalls)))
	}
	status, events, kind := s.avg(s.statuses), s.avg(s.events), s.avg(s.kinds)
	ctx := context.Background()
	return func() {
		var opts []trace.SpanStartOption
		if kind > 0 {
			opts = append(opts, trace.WithSpanKind(trace.SpanKindInternal))
		}
		if startAttrs > 0 {
			opts = append(opts, trace.WithAttributes(sampleAttrs(startAttrs)...))
		}
		if startLinks > 0 {
			opts = append(opts, trace.WithLinks(make([]trace.Link, startLinks)...))
		}
		_, sp := tr.Start(ctx, name, opts...)
		for range links {
			sp.AddLink(trace.Link{})
		}
		for range setCalls {
			sp.SetAttributes(sampleAttrs(setAttrs)...)
		}
		for range events {
			sp.AddEvent("event")
		}
		for range status {
			sp.SetStatus(codes.Error, "")
		}
		sp.End()
	}
}

// sampleAttrs builds n string attributes, as a call site would.
func sampleAttrs(n int) []attribute.KeyValue {
	kv := make([]attribute.KeyValue, n)
	for i := range kv {
		kv[i] = attribute.String(attrKeys[i%len(attrKeys)], "value")
	}
	return kv
}

var attrKeys = []string{"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "a10", "a11", "a12", "a13", "a14", "a15"}

// instKind is an instrument's kind.
type instKind int

const (
	i64Counter instKind = iota
	i64UpDown
	i64Histogram
	i64Gauge
	f64Counter
	f64UpDown
	f64Histogram
	f64Gauge
)

// instCalls counts the measurements of one instrument and their
// attributes.
type instCalls struct {
	kind                  instKind
	calls, attrs, enabled int64 // measurements, their attributes, Enabled checks
}

func (i *instCalls) describe(sigs float64) string {
	kind := [...]string{"counter", "up-down counter", "histogram", "gauge", "counter", "up-down counter", "histogram", "gauge"}[i.kind]
	var parts []string
	if i.calls > 0 {
		parts = append(parts, fmt.Sprintf("%.2f measurements with %d attributes", float64(i.calls)/sigs, int(math.Round(float64(i.attrs)/float64(i.calls)))))
	}
	if i.enabled > 0 {
		parts = append(parts, fmt.Sprintf("%.2f Enabled checks", float64(i.enabled)/sigs))
	}
	return kind + " (" + strings.Join(parts, ", ") + ")"
}

// replay returns a measurement made the way the host made the average
// one, and an Enabled check, on the instrument named name of m.
func (i *instCalls) replay(ctx context.Context, m metric.Meter, name string) (measure, enabled func(), err error) {
	n := 0
	if i.calls > 0 {
		n = int(math.Round(float64(i.attrs) / float64(i.calls)))
	}
	attrs := func() metric.MeasurementOption { return metric.WithAttributes(sampleAttrs(n)...) }
	switch i.kind {
	case i64Counter:
		in, err := m.Int64Counter(name)
		return func() { in.Add(ctx, 1, attrs()) }, func() { in.Enabled(ctx) }, err
	case i64UpDown:
		in, err := m.Int64UpDownCounter(name)
		return func() { in.Add(ctx, 1, attrs()) }, func() { in.Enabled(ctx) }, err
	case i64Histogram:
		in, err := m.Int64Histogram(name)
		return func() { in.Record(ctx, 24, attrs()) }, func() { in.Enabled(ctx) }, err
	case i64Gauge:
		in, err := m.Int64Gauge(name)
		return func() { in.Record(ctx, 1, attrs()) }, func() { in.Enabled(ctx) }, err
	case f64Counter:
		in, err := m.Float64Counter(name)
		return func() { in.Add(ctx, 1, attrs()) }, func() { in.Enabled(ctx) }, err
	case f64UpDown:
		in, err := m.Float64UpDownCounter(name)
		return func() { in.Add(ctx, 1, attrs()) }, func() { in.Enabled(ctx) }, err
	case f64Histogram:
		in, err := m.Float64Histogram(name)
		return func() { in.Record(ctx, 0.001, attrs()) }, func() { in.Enabled(ctx) }, err
	default:
		in, err := m.Float64Gauge(name)
		return func() { in.Record(ctx, 1, attrs()) }, func() { in.Enabled(ctx) }, err
	}
}

// countingTracerProvider is a no-op TracerProvider that counts what is
// done with its spans.
type countingTracerProvider struct {
	traceembedded.TracerProvider
	c *callCounter
}

func (p countingTracerProvider) Tracer(name string, _ ...trace.TracerOption) trace.Tracer {
	return countingTracer{c: p.c, scope: name}
}

type countingTracer struct {
	traceembedded.Tracer
	c     *callCounter
	scope string
}

func (t countingTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	cfg := trace.NewSpanStartConfig(opts...)
	t.c.mu.Lock()
	id := callID{t.scope, name}
	s := t.c.spans[id]
	if s == nil {
		s = &spanCalls{}
		t.c.spans[id] = s
	}
	s.starts++
	s.startAttrs += int64(len(cfg.Attributes()))
	s.startLinks += int64(len(cfg.Links()))
	if cfg.SpanKind() != trace.SpanKindUnspecified {
		s.kinds++
	}
	t.c.mu.Unlock()
	ctx, inner := tracenoop.Tracer{}.Start(ctx, name, opts...)
	sp := countingSpan{Span: inner, c: t.c, s: s}
	return trace.ContextWithSpan(ctx, sp), sp
}

// countingSpan is a no-op span (the parent's span context, not
// recording) that counts the calls made on it.
type countingSpan struct {
	trace.Span
	c *callCounter
	s *spanCalls
}

func (s countingSpan) count(f func(*spanCalls)) {
	s.c.mu.Lock()
	f(s.s)
	s.c.mu.Unlock()
}

func (s countingSpan) End(...trace.SpanEndOption) { s.count(func(c *spanCalls) { c.ends++ }) }
func (s countingSpan) AddLink(trace.Link)         { s.count(func(c *spanCalls) { c.links++ }) }
func (s countingSpan) AddEvent(string, ...trace.EventOption) {
	s.count(func(c *spanCalls) { c.events++ })
}
func (s countingSpan) RecordError(error, ...trace.EventOption) {
	s.count(func(c *spanCalls) { c.events++ })
}
func (s countingSpan) SetStatus(codes.Code, string) { s.count(func(c *spanCalls) { c.statuses++ }) }
func (s countingSpan) SetAttributes(kv ...attribute.KeyValue) {
	s.count(func(c *spanCalls) { c.setAttrCalls++; c.setAttrs += int64(len(kv)) })
}

// countingMeterProvider is a no-op MeterProvider that counts the
// measurements made on its synchronous instruments.
type countingMeterProvider struct {
	metricembedded.MeterProvider
	c *callCounter
}

func (p countingMeterProvider) Meter(name string, _ ...metric.MeterOption) metric.Meter {
	return countingMeter{c: p.c, scope: name}
}

type countingMeter struct {
	metricnoop.Meter
	c     *callCounter
	scope string
}

// inst is the counter of the instrument named name.
func (m countingMeter) inst(name string, kind instKind) *countingInst {
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	id := callID{m.scope, name}
	i := m.c.insts[id]
	if i == nil {
		i = &instCalls{kind: kind}
		m.c.insts[id] = i
	}
	return &countingInst{c: m.c, i: i}
}

type countingInst struct {
	c *callCounter
	i *instCalls
}

func (ci *countingInst) add(opts []metric.AddOption) {
	set := metric.NewAddConfig(opts).Attributes()
	n := set.Len()
	ci.c.mu.Lock()
	ci.i.calls++
	ci.i.attrs += int64(n)
	ci.c.mu.Unlock()
}

func (ci *countingInst) enabled() bool {
	ci.c.mu.Lock()
	ci.i.enabled++
	ci.c.mu.Unlock()
	return false // as a no-op instrument: the host takes its off path
}

func (ci *countingInst) record(opts []metric.RecordOption) {
	set := metric.NewRecordConfig(opts).Attributes()
	n := set.Len()
	ci.c.mu.Lock()
	ci.i.calls++
	ci.i.attrs += int64(n)
	ci.c.mu.Unlock()
}

func (m countingMeter) Int64Counter(name string, _ ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	return countingI64Counter{ci: m.inst(name, i64Counter)}, nil
}

func (m countingMeter) Int64UpDownCounter(name string, _ ...metric.Int64UpDownCounterOption) (metric.Int64UpDownCounter, error) {
	return countingI64UpDown{ci: m.inst(name, i64UpDown)}, nil
}

func (m countingMeter) Int64Histogram(name string, _ ...metric.Int64HistogramOption) (metric.Int64Histogram, error) {
	return countingI64Histogram{ci: m.inst(name, i64Histogram)}, nil
}

func (m countingMeter) Int64Gauge(name string, _ ...metric.Int64GaugeOption) (metric.Int64Gauge, error) {
	return countingI64Gauge{ci: m.inst(name, i64Gauge)}, nil
}

func (m countingMeter) Float64Counter(name string, _ ...metric.Float64CounterOption) (metric.Float64Counter, error) {
	return countingF64Counter{ci: m.inst(name, f64Counter)}, nil
}

func (m countingMeter) Float64UpDownCounter(name string, _ ...metric.Float64UpDownCounterOption) (metric.Float64UpDownCounter, error) {
	return countingF64UpDown{ci: m.inst(name, f64UpDown)}, nil
}

func (m countingMeter) Float64Histogram(name string, _ ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	return countingF64Histogram{ci: m.inst(name, f64Histogram)}, nil
}

func (m countingMeter) Float64Gauge(name string, _ ...metric.Float64GaugeOption) (metric.Float64Gauge, error) {
	return countingF64Gauge{ci: m.inst(name, f64Gauge)}, nil
}

type countingI64Counter struct {
	metricnoop.Int64Counter
	ci *countingInst
}

func (c countingI64Counter) Enabled(context.Context) bool { return c.ci.enabled() }

func (c countingI64Counter) Add(_ context.Context, _ int64, o ...metric.AddOption) { c.ci.add(o) }

type countingI64UpDown struct {
	metricnoop.Int64UpDownCounter
	ci *countingInst
}

func (c countingI64UpDown) Enabled(context.Context) bool { return c.ci.enabled() }

func (c countingI64UpDown) Add(_ context.Context, _ int64, o ...metric.AddOption) { c.ci.add(o) }

type countingI64Histogram struct {
	metricnoop.Int64Histogram
	ci *countingInst
}

func (c countingI64Histogram) Enabled(context.Context) bool { return c.ci.enabled() }

func (c countingI64Histogram) Record(_ context.Context, _ int64, o ...metric.RecordOption) {
	c.ci.record(o)
}

type countingI64Gauge struct {
	metricnoop.Int64Gauge
	ci *countingInst
}

func (c countingI64Gauge) Enabled(context.Context) bool { return c.ci.enabled() }

func (c countingI64Gauge) Record(_ context.Context, _ int64, o ...metric.RecordOption) {
	c.ci.record(o)
}

type countingF64Counter struct {
	metricnoop.Float64Counter
	ci *countingInst
}

func (c countingF64Counter) Enabled(context.Context) bool { return c.ci.enabled() }

func (c countingF64Counter) Add(_ context.Context, _ float64, o ...metric.AddOption) { c.ci.add(o) }

type countingF64UpDown struct {
	metricnoop.Float64UpDownCounter
	ci *countingInst
}

func (c countingF64UpDown) Enabled(context.Context) bool { return c.ci.enabled() }

func (c countingF64UpDown) Add(_ context.Context, _ float64, o ...metric.AddOption) { c.ci.add(o) }

type countingF64Histogram struct {
	metricnoop.Float64Histogram
	ci *countingInst
}

func (c countingF64Histogram) Enabled(context.Context) bool { return c.ci.enabled() }

func (c countingF64Histogram) Record(_ context.Context, _ float64, o ...metric.RecordOption) {
	c.ci.record(o)
}

type countingF64Gauge struct {
	metricnoop.Float64Gauge
	ci *countingInst
}

func (c countingF64Gauge) Enabled(context.Context) bool { return c.ci.enabled() }

func (c countingF64Gauge) Record(_ context.Context, _ float64, o ...metric.RecordOption) {
	c.ci.record(o)
}

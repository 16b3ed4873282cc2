package main

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
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
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/stats"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/telemetry"
)

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

// Package semconvtest checks the telemetry a test recorded against knhk's
// telemetry registry (package semconv), both ways. The cloud plugins'
// modules use it for the client spans and metrics of their SDK calls,
// which the registry declares with annotation knhk.checked_in naming the
// module: the root module's conformance test cannot emit them.
package semconvtest

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/knhk/knhk/semconv"
)

// Check checks the spans and metrics a test of module recorded against
// reg and returns the problems found, sorted; none when they agree.
// module is a Go module directory relative to the repository root, as in
// the registry's checked_in annotations ("plugins/aws").
//
// Emitted to declared: every span is declared checked in module, with its
// scope, a name template it matches and its kind; every metric likewise,
// with its scope, instrument and unit; every attribute on them is declared
// on that span or metric, with its type (an enum's value one of its
// members), and the required ones are present.
//
// Declared to emitted: every span and metric declared checked in module
// was emitted, with every attribute declared on it, but for the entries of
// notExercised (key: a group id, or a group id, a space and an attribute
// key; value: why nothing emits it). An entry for what was emitted after
// all is a problem too, so the list stays short.
//
// spans are the module's code's (leave out the test's own); rm may be nil
// when the test reads no metrics.
func Check(reg *semconv.Registry, module string, notExercised map[string]string, spans []sdktrace.ReadOnlySpan, rm *metricdata.ResourceMetrics) []string {
	c := &checker{reg: reg, module: module, seen: map[string]bool{}, problems: map[string]bool{}}
	for _, s := range spans {
		c.span(s)
	}
	if rm != nil {
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				c.metric(sm.Scope.Name, m)
			}
		}
	}
	declared := func(id string, refs []semconv.AttributeRef) {
		if _, ok := notExercised[id]; !ok && !c.seen[id] {
			c.problemf("%s is declared checked in %s and was not emitted", id, module)
		}
		if !c.seen[id] {
			return
		}
		for _, r := range refs {
			k := id + " " + r.Key
			if _, ok := notExercised[k]; !ok && !c.seen[k] {
				c.problemf("attribute %s on %s is declared and was not emitted", r.Key, id)
			}
		}
	}
	for _, s := range reg.Spans {
		if s.IsCheckedIn(module) {
			declared(s.ID, s.Attributes)
		}
	}
	for _, m := range reg.Metrics {
		if m.IsCheckedIn(module) {
			declared(m.ID, m.Attributes)
		}
	}
	for k := range notExercised {
		if c.seen[k] {
			c.problemf("%q is emitted now: take it off the not-exercised list", k)
		}
	}
	out := make([]string, 0, len(c.problems))
	for p := range c.problems {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

type checker struct {
	reg    *semconv.Registry
	module string
	// seen holds the group ids emitted, and group id + " " + attribute
	// key for the attributes emitted on them.
	seen     map[string]bool
	problems map[string]bool
}

func (c *checker) problemf(format string, args ...any) {
	c.problems[fmt.Sprintf(format, args...)] = true
}

var spanKinds = map[trace.SpanKind]string{
	trace.SpanKindInternal: "internal", trace.SpanKindServer: "server", trace.SpanKindClient: "client",
	trace.SpanKindProducer: "producer", trace.SpanKindConsumer: "consumer",
}

func (c *checker) span(s sdktrace.ReadOnlySpan) {
	scope, kind := s.InstrumentationScope().Name, spanKinds[s.SpanKind()]
	what := fmt.Sprintf("span %q (%s, scope %s)", s.Name(), kind, scope)
	var d *semconv.Span
	named := false
	for i, ds := range c.reg.Spans {
		if ds.IsCheckedIn(c.module) && ds.Scope == scope && ds.MatchName(s.Name()) {
			named = true
			if ds.Kind == kind {
				d = &c.reg.Spans[i]
				break
			}
		}
	}
	switch {
	case d == nil && named:
		c.problemf("%s: declared checked in %s with another kind", what, c.module)
		return
	case d == nil:
		c.problemf("%s is not declared checked in %s", what, c.module)
		return
	}
	c.seen[d.ID] = true
	c.attributes(what, d.ID, d.Attributes, s.Attributes())
	for _, e := range s.Events() {
		c.problemf("%s has event %q, which the registry does not declare", what, e.Name)
	}
}

func (c *checker) metric(scope string, m metricdata.Metrics) {
	what := fmt.Sprintf("metric %q (scope %s)", m.Name, scope)
	i := slices.IndexFunc(c.reg.Metrics, func(d semconv.Metric) bool { return d.Name == m.Name && d.IsCheckedIn(c.module) })
	if i < 0 {
		c.problemf("%s is not declared checked in %s", what, c.module)
		return
	}
	d := c.reg.Metrics[i]
	if d.Scope != scope {
		c.problemf("%s: declared for scope %s", what, d.Scope)
	}
	instrument, sets := instrumentOf(m.Data)
	if instrument != d.Instrument {
		c.problemf("%s is a %s, declared a %s", what, instrument, d.Instrument)
	}
	if m.Unit != d.Unit {
		c.problemf("%s has unit %q, declared %q", what, m.Unit, d.Unit)
	}
	if len(sets) > 0 {
		c.seen[d.ID] = true
	}
	for _, set := range sets {
		c.attributes(what, d.ID, d.Attributes, set.ToSlice())
	}
}

// attributes checks one span's or data point's attributes against the
// declaration id.
func (c *checker) attributes(what, id string, refs []semconv.AttributeRef, kvs []attribute.KeyValue) {
	have := map[string]bool{}
	for _, kv := range kvs {
		key := string(kv.Key)
		have[key] = true
		if !slices.ContainsFunc(refs, func(r semconv.AttributeRef) bool { return r.Key == key }) {
			c.problemf("%s: attribute %s is not declared on %s", what, key, id)
			continue
		}
		c.seen[id+" "+key] = true
		a, _ := c.reg.Attribute(key)
		if got := ValueType(kv.Value); got != a.Type {
			c.problemf("%s: attribute %s is a %s, declared a %s", what, key, got, a.Type)
		}
		v := kv.Value.Emit()
		if a.Members != nil && !slices.ContainsFunc(a.Members, func(m semconv.Member) bool { return m.Value == v }) {
			c.problemf("%s: attribute %s = %q is not one of its declared values", what, key, v)
		}
	}
	for _, r := range refs {
		if r.Requirement.Level == "required" && !have[r.Key] {
			c.problemf("%s: required attribute %s is missing", what, r.Key)
		}
	}
}

// instrumentOf is the instrument kind that records data, and its data
// points' attribute sets.
func instrumentOf(data metricdata.Aggregation) (string, []attribute.Set) {
	var sets []attribute.Set
	switch data := data.(type) {
	case metricdata.Histogram[float64]:
		for _, p := range data.DataPoints {
			sets = append(sets, p.Attributes)
		}
		return "histogram", sets
	case metricdata.Histogram[int64]:
		for _, p := range data.DataPoints {
			sets = append(sets, p.Attributes)
		}
		return "histogram", sets
	case metricdata.Sum[int64]:
		for _, p := range data.DataPoints {
			sets = append(sets, p.Attributes)
		}
		return sumKind(data.IsMonotonic), sets
	case metricdata.Sum[float64]:
		for _, p := range data.DataPoints {
			sets = append(sets, p.Attributes)
		}
		return sumKind(data.IsMonotonic), sets
	case metricdata.Gauge[int64]:
		for _, p := range data.DataPoints {
			sets = append(sets, p.Attributes)
		}
		return "gauge", sets
	case metricdata.Gauge[float64]:
		for _, p := range data.DataPoints {
			sets = append(sets, p.Attributes)
		}
		return "gauge", sets
	}
	return fmt.Sprintf("%T", data), nil
}

func sumKind(monotonic bool) string {
	if monotonic {
		return "counter"
	}
	return "updowncounter"
}

// ValueType is the registry's name for the type of v: string, int,
// double, boolean, or one of them with [] for an array.
func ValueType(v attribute.Value) string {
	switch v.Type() {
	case attribute.STRING:
		return "string"
	case attribute.INT64:
		return "int"
	case attribute.FLOAT64:
		return "double"
	case attribute.BOOL:
		return "boolean"
	case attribute.STRINGSLICE:
		return "string[]"
	case attribute.INT64SLICE:
		return "int[]"
	case attribute.FLOAT64SLICE:
		return "double[]"
	case attribute.BOOLSLICE:
		return "boolean[]"
	}
	return strings.ToLower(v.Type().String())
}

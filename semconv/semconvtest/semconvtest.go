// Package semconvtest checks the telemetry a test recorded against knhk's
// telemetry registry (package semconv), both ways. The cloud plugins'
// modules use it for the client spans and metrics of their SDK calls,
// which the registry declares with annotation knhk.checked_in naming the
// module: the root module's conformance test cannot emit them. That test
// uses it too (module Root), with Inspect for its secrets.
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

// Root is the module argument for the root module (the repository's
// top directory): its declarations are the spans and metrics checked in
// no module (no knhk.checked_in annotation).
const Root = "."

// knhkScope is the instrumentation scope of knhk's own telemetry, whose
// attributes with annotation knhk.values take only those values.
const knhkScope = "github.com/knhk/knhk"

// Options are what Inspect checks beyond what Check does.
type Options struct {
	// NotExercised: see Check.
	NotExercised map[string]string
	// Secrets are strings no span name, span status, event attribute value
	// or attribute value may contain (a parameter's value, a message).
	Secrets []string
}

// Report is what Inspect found, each list sorted.
type Report struct {
	// Problems are the emitted telemetry the registry does not declare
	// so, and the not-exercised entries for what was emitted after all.
	Problems []string
	// Missing are the declarations of the module nothing emitted.
	Missing []string
}

// Check checks the spans and metrics a test of module recorded against
// reg and returns the problems found, sorted; none when they agree.
// module is a Go module directory relative to the repository root, as in
// the registry's checked_in annotations ("plugins/aws"), or Root.
//
// Emitted to declared: every span is declared checked in module, with its
// scope, a name template it matches and its kind; every metric likewise,
// with its scope, instrument and unit (a metric declared only for another
// module is a problem too, checked against that declaration); every
// attribute on them is declared on that span or metric, with its type (an
// enum's value one of its members; on knhk's own scope, one of the
// knhk.values when set), and the required ones are present; no span has
// events or link attributes, which the registry does not declare.
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
	r := Inspect(reg, module, Options{NotExercised: notExercised}, spans, rm)
	out := append(r.Problems, r.Missing...)
	sort.Strings(out)
	return out
}

// Inspect checks as Check does, and for opts.Secrets too, and reports the
// two directions apart: a test that waits for telemetry still to be
// recorded can wait until nothing is Missing.
func Inspect(reg *semconv.Registry, module string, opts Options, spans []sdktrace.ReadOnlySpan, rm *metricdata.ResourceMetrics) Report {
	c := &checker{reg: reg, module: module, secrets: opts.Secrets, seen: map[string]bool{}, problems: map[string]bool{}}
	if module != Root {
		c.where = " checked in " + module
	}
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
	missing := map[string]bool{}
	declared := func(id string, refs []semconv.AttributeRef) {
		if _, ok := opts.NotExercised[id]; !ok && !c.seen[id] {
			missing[fmt.Sprintf("%s is declared%s and was not emitted", id, c.where)] = true
		}
		if !c.seen[id] {
			return
		}
		for _, r := range refs {
			k := id + " " + r.Key
			if _, ok := opts.NotExercised[k]; !ok && !c.seen[k] {
				missing[fmt.Sprintf("attribute %s on %s is declared and was not emitted", r.Key, id)] = true
			}
		}
	}
	for _, s := range reg.Spans {
		if c.declaredHere(s.CheckedIn) {
			declared(s.ID, s.Attributes)
		}
	}
	for _, m := range reg.Metrics {
		if c.declaredHere(m.CheckedIn) {
			declared(m.ID, m.Attributes)
		}
	}
	for k := range opts.NotExercised {
		if c.seen[k] {
			c.problemf("%q is emitted now: take it off the not-exercised list", k)
		}
	}
	return Report{Problems: sorted(c.problems), Missing: sorted(missing)}
}

func sorted(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

type checker struct {
	reg    *semconv.Registry
	module string
	// where is " checked in " + module, or empty for Root.
	where   string
	secrets []string
	// seen holds the group ids emitted, and group id + " " + attribute
	// key for the attributes emitted on them.
	seen     map[string]bool
	problems map[string]bool
}

func (c *checker) problemf(format string, args ...any) {
	c.problems[fmt.Sprintf(format, args...)] = true
}

// declaredHere reports whether a declaration checked in checkedIn is one
// of c.module's: for Root, one checked in no module.
func (c *checker) declaredHere(checkedIn []string) bool {
	if c.module == Root {
		return len(checkedIn) == 0
	}
	return slices.Contains(checkedIn, c.module)
}

// noSecrets checks that value, what's, carries none of c.secrets.
func (c *checker) noSecrets(what, value string) {
	for _, s := range c.secrets {
		if strings.Contains(value, s) {
			c.problemf("%s carries a secret: %q", what, value)
		}
	}
}

var spanKinds = map[trace.SpanKind]string{
	trace.SpanKindInternal: "internal", trace.SpanKindServer: "server", trace.SpanKindClient: "client",
	trace.SpanKindProducer: "producer", trace.SpanKindConsumer: "consumer",
}

func (c *checker) span(s sdktrace.ReadOnlySpan) {
	scope, kind := s.InstrumentationScope().Name, spanKinds[s.SpanKind()]
	what := fmt.Sprintf("span %q (%s, scope %s)", s.Name(), kind, scope)
	c.noSecrets(what+" name", s.Name())
	c.noSecrets(what+" status", s.Status().Description)
	var d, named *semconv.Span
	for i, ds := range c.reg.Spans {
		if c.declaredHere(ds.CheckedIn) && ds.Scope == scope && ds.MatchName(s.Name()) {
			if named == nil {
				named = &c.reg.Spans[i]
			}
			// Kind tells apart spans of one name (a call's client and
			// server).
			if ds.Kind == kind {
				d = &c.reg.Spans[i]
				break
			}
		}
	}
	switch {
	case d == nil && named != nil:
		c.problemf("%s: declared%s with another kind, as %s (%s)", what, c.where, named.ID, named.Kind)
		return
	case d == nil:
		c.problemf("%s is not declared%s", what, c.where)
		return
	}
	c.seen[d.ID] = true
	c.attributes(what, d.ID, scope, d.Attributes, s.Attributes())
	for _, e := range s.Events() {
		c.problemf("%s has event %q, which the registry does not declare", what, e.Name)
		for _, a := range e.Attributes {
			c.noSecrets(fmt.Sprintf("%s event %q attribute %s", what, e.Name, a.Key), a.Value.Emit())
		}
	}
	for _, l := range s.Links() {
		for _, a := range l.Attributes {
			c.problemf("%s has a link with attribute %s, which the registry does not declare", what, a.Key)
		}
	}
}

func (c *checker) metric(scope string, m metricdata.Metrics) {
	what := fmt.Sprintf("metric %q (scope %s)", m.Name, scope)
	i := slices.IndexFunc(c.reg.Metrics, func(d semconv.Metric) bool { return d.Name == m.Name && c.declaredHere(d.CheckedIn) })
	if i < 0 {
		// Declared for another module only: a problem, and the rest is
		// checked against that declaration.
		i = slices.IndexFunc(c.reg.Metrics, func(d semconv.Metric) bool { return d.Name == m.Name })
		if i < 0 {
			c.problemf("%s is not declared%s", what, c.where)
			return
		}
		d := c.reg.Metrics[i]
		c.problemf("%s is not declared%s: declared as emitted by %s only, checked in %s", what, c.where,
			strings.Join(d.EmittedBy, ", "), strings.Join(d.CheckedIn, ", "))
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
		c.attributes(what, d.ID, scope, d.Attributes, set.ToSlice())
	}
}

// attributes checks one span's or data point's attributes against the
// declaration id: each declared on it, of its type, an enum's value a
// member, on knhk's own scope a value of its knhk.values when set, the
// required ones present, and no value carrying a secret.
func (c *checker) attributes(what, id, scope string, refs []semconv.AttributeRef, kvs []attribute.KeyValue) {
	have := map[string]bool{}
	for _, kv := range kvs {
		key := string(kv.Key)
		have[key] = true
		v := kv.Value.Emit()
		c.noSecrets(what+" attribute "+key, v)
		if !slices.ContainsFunc(refs, func(r semconv.AttributeRef) bool { return r.Key == key }) {
			c.problemf("%s: attribute %s (= %s) is not declared on %s", what, key, v, id)
			continue
		}
		c.seen[id+" "+key] = true
		a, _ := c.reg.Attribute(key)
		if got := ValueType(kv.Value); got != a.Type {
			c.problemf("%s: attribute %s is a %s, declared a %s", what, key, got, a.Type)
		}
		if a.Members != nil && !slices.ContainsFunc(a.Members, func(m semconv.Member) bool { return m.Value == v }) ||
			a.Values != nil && scope == knhkScope && !slices.Contains(a.Values, v) {
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

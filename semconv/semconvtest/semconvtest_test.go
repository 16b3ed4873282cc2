package semconvtest_test

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/knhk/knhk/semconv"
	"github.com/knhk/knhk/semconv/semconvtest"
)

// A registry with a span and a metric checked in plugins/x, and a span
// the root module checks.
const model = `groups:
  - id: registry.t
    type: attribute_group
    brief: b
    attributes:
      - id: knhk.a
        type: string
        stability: development
        brief: b
        examples: [x]
      - id: knhk.n
        type: int
        stability: development
        brief: b
  - id: span.x
    type: span
    span_kind: client
    stability: development
    brief: b
    annotations:
      knhk:
        span_name: "X.{op}"
        scope: s
        emitted_by: knhk-plugin-x
        checked_in: plugins/x
    attributes:
      - ref: knhk.a
        requirement_level: required
      - ref: knhk.n
  - id: span.root
    type: span
    span_kind: internal
    stability: development
    brief: b
    annotations:
      knhk:
        span_name: "R.{op}"
        scope: s
    attributes:
      - ref: knhk.a
  - id: metric.x
    type: metric
    metric_name: x.duration
    instrument: histogram
    unit: s
    stability: development
    brief: b
    annotations:
      knhk:
        scope: s
        emitted_by: knhk-plugin-x
        checked_in: [plugins/x]
    attributes:
      - ref: knhk.a
`

func registry(t *testing.T) *semconv.Registry {
	t.Helper()
	r, err := semconv.Load(fstest.MapFS{
		"manifest.yaml": {Data: []byte("name: t\nschema_url: https://example.org/t/1.0.0\n")},
		"model/t.yaml":  {Data: []byte(model)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// record emits spans named names (kind client, scope s) with attrs, and,
// when metric is set, one x.duration measurement.
func record(t *testing.T, kind trace.SpanKind, attrs []attribute.KeyValue, withMetric bool, names ...string) ([]sdktrace.ReadOnlySpan, *metricdata.ResourceMetrics) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	for _, n := range names {
		_, s := tp.Tracer("s").Start(context.Background(), n, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
		s.End()
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	if withMetric {
		h, err := mp.Meter("s").Float64Histogram("x.duration", metric.WithUnit("s"))
		if err != nil {
			t.Fatal(err)
		}
		h.Record(context.Background(), 0.5, metric.WithAttributes(attribute.String("knhk.a", "x")))
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rec.Ended(), &rm
}

func TestCheck(t *testing.T) {
	reg := registry(t)
	full := []attribute.KeyValue{attribute.String("knhk.a", "x"), attribute.Int("knhk.n", 1)}
	for _, tc := range []struct {
		name         string
		kind         trace.SpanKind
		attrs        []attribute.KeyValue
		metric       bool
		spans        []string
		notExercised map[string]string
		want         []string // substrings of the problems, one each; none: no problems
	}{
		{name: "agrees", kind: trace.SpanKindClient, attrs: full, metric: true, spans: []string{"X.Sign"}},
		{name: "undeclared span", kind: trace.SpanKindClient, attrs: full, metric: true, spans: []string{"X.Sign", "Y.Sign"},
			want: []string{`span "Y.Sign" (client, scope s) is not declared checked in plugins/x`}},
		{name: "root's span", kind: trace.SpanKindInternal, attrs: full, metric: true, spans: []string{"R.Sign"},
			want: []string{"is not declared checked in plugins/x", "span.x is declared checked in plugins/x and was not emitted"}},
		{name: "wrong kind", kind: trace.SpanKindServer, attrs: full, metric: true, spans: []string{"X.Sign"},
			want: []string{"with another kind", "span.x is declared checked in plugins/x and was not emitted"}},
		{name: "undeclared attribute", kind: trace.SpanKindClient, attrs: append(full, attribute.String("url.full", "u")), metric: true,
			spans: []string{"X.Sign"}, want: []string{"attribute url.full (= u) is not declared on span.x"}},
		{name: "wrong type", kind: trace.SpanKindClient, attrs: []attribute.KeyValue{attribute.String("knhk.a", "x"), attribute.String("knhk.n", "1")},
			metric: true, spans: []string{"X.Sign"}, want: []string{"attribute knhk.n is a string, declared a int"}},
		{name: "required missing", kind: trace.SpanKindClient, attrs: full[1:], metric: true, spans: []string{"X.Sign"},
			want: []string{"required attribute knhk.a is missing", "attribute knhk.a on span.x is declared and was not emitted"}},
		{name: "attribute not emitted", kind: trace.SpanKindClient, attrs: full[:1], metric: true, spans: []string{"X.Sign"},
			want: []string{"attribute knhk.n on span.x is declared and was not emitted"}},
		{name: "attribute not exercised", kind: trace.SpanKindClient, attrs: full[:1], metric: true, spans: []string{"X.Sign"},
			notExercised: map[string]string{"span.x knhk.n": "why"}},
		{name: "metric not emitted", kind: trace.SpanKindClient, attrs: full, spans: []string{"X.Sign"},
			want: []string{"metric.x is declared checked in plugins/x and was not emitted"}},
		{name: "stale not exercised", kind: trace.SpanKindClient, attrs: full, metric: true, spans: []string{"X.Sign"},
			notExercised: map[string]string{"metric.x": "why"}, want: []string{`"metric.x" is emitted now`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spans, rm := record(t, tc.kind, tc.attrs, tc.metric, tc.spans...)
			got := semconvtest.Check(reg, "plugins/x", tc.notExercised, spans, rm)
			if len(got) != len(tc.want) {
				t.Fatalf("problems %q, want %d: %q", got, len(tc.want), tc.want)
			}
			for _, w := range tc.want {
				found := false
				for _, g := range got {
					found = found || strings.Contains(g, w)
				}
				if !found {
					t.Errorf("problems %q, want one with %q", got, w)
				}
			}
		})
	}
}

// Another module's checks see none of plugins/x's declarations.
func TestCheckOtherModule(t *testing.T) {
	spans, rm := record(t, trace.SpanKindClient, []attribute.KeyValue{attribute.String("knhk.a", "x")}, true, "X.Sign")
	got := semconvtest.Check(registry(t), "plugins/y", nil, spans, rm)
	if len(got) != 2 || !strings.Contains(strings.Join(got, "\n"), "not declared checked in plugins/y") {
		t.Errorf("problems %q, want the span and the metric undeclared", got)
	}
}

// The root module's checks see the declarations checked in no module, and
// refuse what is declared for a plugin module only.
func TestCheckRoot(t *testing.T) {
	spans, rm := record(t, trace.SpanKindInternal, []attribute.KeyValue{attribute.String("knhk.a", "x")}, false, "R.Sign")
	if got := semconvtest.Check(registry(t), semconvtest.Root, nil, spans, rm); len(got) != 0 {
		t.Errorf("problems %q, want none", got)
	}
	spans, rm = record(t, trace.SpanKindClient, []attribute.KeyValue{attribute.String("knhk.a", "x")}, true, "X.Sign")
	r := semconvtest.Inspect(registry(t), semconvtest.Root, semconvtest.Options{Secrets: []string{"X.S"}}, spans, rm)
	problems := strings.Join(r.Problems, "\n")
	for _, w := range []string{`span "X.Sign" (client, scope s) is not declared`, "declared as emitted by knhk-plugin-x only", "carries a secret"} {
		if !strings.Contains(problems, w) {
			t.Errorf("problems %q, want one with %q", r.Problems, w)
		}
	}
	if len(r.Missing) != 1 || r.Missing[0] != "span.root is declared and was not emitted" {
		t.Errorf("missing %q, want span.root", r.Missing)
	}
}

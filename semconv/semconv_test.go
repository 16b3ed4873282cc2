package semconv

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"go.opentelemetry.io/otel/attribute"
	otelsemconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/httpconv"
	"go.opentelemetry.io/otel/semconv/v1.43.0/rpcconv"
)

func TestDefaultLoads(t *testing.T) {
	r, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if r.Manifest.Name != "knhk" {
		t.Errorf("manifest name %q, want knhk", r.Manifest.Name)
	}
	for _, key := range []string{"knhk.operation", "knhk.provider", "knhk.key.id", "knhk.key.version", "knhk.algorithm",
		"knhk.batch.size", "knhk.cache.result", "knhk.principal", "error.type"} {
		if _, ok := r.Attribute(key); !ok {
			t.Errorf("attribute %s is not declared", key)
		}
	}
	if m, ok := r.Metric("knhk.operation.duration"); !ok || m.Instrument != "histogram" || m.Unit != "s" {
		t.Errorf("knhk.operation.duration = %+v, %v; want a histogram in s", m, ok)
	}
	if a, _ := r.Attribute("knhk.operation"); len(a.Members) != 11 || a.Type != "string" {
		t.Errorf("knhk.operation is %s with %d members, want a string enum of 11", a.Type, len(a.Members))
	}
}

// The OpenTelemetry attributes the registry refers to exist in the
// semantic conventions its manifest depends on (the Go constants of that
// version), and the metrics it declares for otelgrpc and otelhttp are
// those conventions' own.
func TestUpstreamMatchesDependency(t *testing.T) {
	r, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Manifest.Dependencies) != 1 || r.Manifest.Dependencies[0].SchemaURL != otelsemconv.SchemaURL {
		t.Errorf("dependencies %+v, want one on %s", r.Manifest.Dependencies, otelsemconv.SchemaURL)
	}
	known := map[attribute.Key]bool{}
	for _, k := range []attribute.Key{
		otelsemconv.ErrorTypeKey, otelsemconv.RPCSystemNameKey, otelsemconv.RPCMethodKey, otelsemconv.RPCResponseStatusCodeKey,
		otelsemconv.ServerAddressKey, otelsemconv.ServerPortKey, otelsemconv.HTTPRequestMethodKey,
		otelsemconv.HTTPRequestMethodOriginalKey, otelsemconv.HTTPRouteKey, otelsemconv.HTTPResponseStatusCodeKey,
		otelsemconv.HTTPRequestBodySizeKey, otelsemconv.HTTPResponseBodySizeKey, otelsemconv.URLSchemeKey,
		otelsemconv.URLPathKey, otelsemconv.NetworkProtocolNameKey, otelsemconv.NetworkProtocolVersionKey,
		otelsemconv.NetworkPeerAddressKey, otelsemconv.NetworkPeerPortKey, otelsemconv.ClientAddressKey,
		otelsemconv.UserAgentOriginalKey, otelsemconv.URLFullKey, otelsemconv.AWSRequestIDKey,
	} {
		known[k] = true
	}
	for _, a := range r.Attributes {
		if a.Upstream && !known[attribute.Key(a.Key)] {
			t.Errorf("attribute %s: not one of the semantic conventions %s attributes this test knows", a.Key, otelsemconv.SchemaURL)
		}
	}
	for _, want := range []struct{ name, unit string }{
		{rpcconv.ClientCallDuration{}.Name(), rpcconv.ClientCallDuration{}.Unit()},
		{rpcconv.ServerCallDuration{}.Name(), rpcconv.ServerCallDuration{}.Unit()},
		{httpconv.ServerRequestDuration{}.Name(), httpconv.ServerRequestDuration{}.Unit()},
		{httpconv.ServerRequestBodySize{}.Name(), httpconv.ServerRequestBodySize{}.Unit()},
		{httpconv.ServerResponseBodySize{}.Name(), httpconv.ServerResponseBodySize{}.Unit()},
		{httpconv.ClientRequestDuration{}.Name(), httpconv.ClientRequestDuration{}.Unit()},
		{httpconv.ClientRequestBodySize{}.Name(), httpconv.ClientRequestBodySize{}.Unit()},
	} {
		m, ok := r.Metric(want.name)
		if !ok {
			t.Errorf("metric %s is not declared", want.name)
			continue
		}
		if m.Unit != want.unit || m.Instrument != "histogram" {
			t.Errorf("metric %s: %s in %q, want a histogram in %q", want.name, m.Instrument, m.Unit, want.unit)
		}
	}
}

// docs/telemetry.md is what the generator writes from the registry.
func TestDocIsCurrent(t *testing.T) {
	r, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	want := Markdown(r)
	got, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(DocFile)))
	if err != nil {
		t.Fatalf("%v (run `go generate ./semconv` to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what the registry gives: run `go generate ./semconv` (or `go run ./semconv/cmd/semconv-doc`) and commit the result", DocFile)
	}
}

// The embedded files are the ones in this directory (go:embed takes them
// at build time, so this holds; LoadDir is what a tool uses on a checkout).
func TestLoadDirMatchesEmbedded(t *testing.T) {
	a, err := LoadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(Markdown(a), Markdown(b)) {
		t.Error("LoadDir(.) and Default() differ")
	}
}

func TestMatchName(t *testing.T) {
	s := Span{Names: []string{"knhk.kms.v1.KeyProvider/{method}", "{http.request.method} {http.route}", "knhk.sign"}}
	for name, want := range map[string]bool{
		"knhk.kms.v1.KeyProvider/Sign":      true,
		"knhk.kms.v1.KeyProvider/":          false,
		"knhk.kmsXv1.KeyProvider/Sign":      false, // dots are literal
		"POST /v1/keys/{key}/sign":          true,
		"HTTP /":                            true,
		"knhk.sign":                         true,
		"knhk.sign_batch":                   false,
		"xknhk.sign":                        false,
		"knhk.sidecar.v1.Signer/SignStream": false,
	} {
		if got := s.MatchName(name); got != want {
			t.Errorf("MatchName(%q) = %v, want %v", name, got, want)
		}
	}
}

// A registry that breaks a rule does not load, and the error says which.
func TestLoadRefuses(t *testing.T) {
	const manifest = "name: t\nschema_url: https://example.org/t/1.0.0\n"
	const attrs = `groups:
  - id: registry.t
    type: attribute_group
    brief: b
    attributes:
      - id: knhk.a
        type: string
        stability: development
        brief: b
        examples: [x]
`
	const span = `groups:
  - id: span.t
    type: span
    span_kind: internal
    stability: development
    brief: b
    annotations:
      knhk:
        span_name: t
        scope: s
    attributes:
      - ref: knhk.a
`
	ok := fstest.MapFS{
		"manifest.yaml":    {Data: []byte(manifest)},
		"model/attrs.yaml": {Data: []byte(attrs)},
		"model/span.yaml":  {Data: []byte(span)},
	}
	if _, err := Load(ok); err != nil {
		t.Fatalf("the valid registry: %v", err)
	}
	for _, tc := range []struct {
		name, file, old, new, want string
	}{
		{"unknown field", "model/span.yaml", "span_kind:", "spankind:", "field spankind not found"},
		{"bad span kind", "model/span.yaml", "span_kind: internal", "span_kind: inside", `span_kind "inside"`},
		{"unresolved ref", "model/span.yaml", "ref: knhk.a", "ref: knhk.b", `refers to "knhk.b"`},
		{"no span name", "model/span.yaml", "span_name: t", "span_name: []", "names no span"},
		{"unknown annotation field", "model/span.yaml", "scope: s", "scope: s\n        colour: red", "field colour not found"},
		{"duplicate reference", "model/span.yaml", "ref: knhk.a", "ref: knhk.a\n      - ref: knhk.a", `refers to "knhk.a" twice`},
		{"ref in a registry group", "model/attrs.yaml", "      - id: knhk.a", "      - ref: error.type\n        brief: b\n        examples: [x]\n      - id: knhk.a", "only defines attributes"},
		{"non-knhk definition", "model/attrs.yaml", "id: knhk.a", "id: other.a", "knhk.* attributes only"},
		{"example of the wrong type", "model/attrs.yaml", "examples: [x]", "examples: [3]", "is a int, not a string"},
		{"bad type", "model/attrs.yaml", "type: string", "type: text", `unknown type "text"`},
		{"bad stability", "model/attrs.yaml", "stability: development", "stability: beta2", `stability "beta2"`},
		{"bad schema_url", "manifest.yaml", "t/1.0.0", "t", "schema_url"},
		{"checked_in alone", "model/span.yaml", "scope: s", "scope: s\n        checked_in: plugins/x", "go together"},
		{"checked_in outside", "model/span.yaml", "scope: s", "scope: s\n        emitted_by: p\n        checked_in: ../x", "not a module directory"},
		{"empty emitted_by", "model/span.yaml", "scope: s", "scope: s\n        emitted_by: []\n        checked_in: plugins/x", "emitted_by is empty"},
		{"instrumentation on knhk's own", "model/attrs.yaml", "examples: [x]", "examples: [x]\n        annotations:\n          knhk:\n            instrumentation: i", "is knhk's own"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for k, v := range ok {
				fsys[k] = &fstest.MapFile{Data: v.Data}
			}
			data := string(fsys[tc.file].Data)
			if !strings.Contains(data, tc.old) {
				t.Fatalf("%s has no %q", tc.file, tc.old)
			}
			fsys[tc.file].Data = []byte(strings.Replace(data, tc.old, tc.new, 1))
			_, err := Load(fsys)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load: %v, want an error with %q", err, tc.want)
			}
		})
	}
	t.Run("attribute on no signal", func(t *testing.T) {
		fsys := fstest.MapFS{"manifest.yaml": ok["manifest.yaml"], "model/attrs.yaml": ok["model/attrs.yaml"]}
		if _, err := Load(fsys); err == nil || !strings.Contains(err.Error(), "on no span or metric") {
			t.Errorf("Load: %v, want an unused attribute refused", err)
		}
	})
	t.Run("duplicate metric", func(t *testing.T) {
		const metric = `groups:
  - id: metric.ID
    type: metric
    metric_name: m
    instrument: counter
    unit: "{x}"
    stability: development
    brief: b
    annotations:
      knhk:
        scope: s
    attributes:
      - ref: knhk.a
`
		fsys := fstest.MapFS{
			"manifest.yaml":    ok["manifest.yaml"],
			"model/attrs.yaml": ok["model/attrs.yaml"],
			"model/m1.yaml":    {Data: []byte(strings.Replace(metric, "ID", "one", 1))},
			"model/m2.yaml":    {Data: []byte(strings.Replace(metric, "ID", "two", 1))},
		}
		if _, err := Load(fsys); err == nil || !strings.Contains(err.Error(), `metric "m" is declared by both`) {
			t.Errorf("Load: %v, want the duplicate metric refused", err)
		}
		fsys["model/m2.yaml"] = &fstest.MapFile{Data: []byte(strings.NewReplacer("ID", "two", "metric_name: m", "metric_name: m2", "counter", "sum").Replace(metric))}
		if _, err := Load(fsys); err == nil || !strings.Contains(err.Error(), `instrument "sum"`) {
			t.Errorf("Load: %v, want the unknown instrument refused", err)
		}
	})
}

func TestMarkdownEscapes(t *testing.T) {
	if got := cell("a | b `c|d`\n e"); got != "a \\| b `c|d` e" {
		t.Errorf("cell = %q", got)
	}
	r, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	md := string(Markdown(r))
	for _, s := range r.Spans {
		for _, n := range s.Names {
			if !strings.Contains(md, code(n)) {
				t.Errorf("the page lacks span %s", n)
			}
		}
	}
	for _, m := range r.Metrics {
		if !strings.Contains(md, code(m.Name)) {
			t.Errorf("the page lacks metric %s", m.Name)
		}
	}
	lines := strings.Split(md, "\n")
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "| `knhk.operation` | enum") }) {
		t.Error("the attribute table has no knhk.operation row")
	}
}

// An attribute an instrumentation defines (annotation knhk.instrumentation)
// may be outside knhk.*, and emitted_by/checked_in are read as lists.
func TestLoadInstrumentationAttributeAndOrigin(t *testing.T) {
	fsys := fstest.MapFS{
		"manifest.yaml": {Data: []byte("name: t\nschema_url: https://example.org/t/1.0.0\n")},
		"model/t.yaml": {Data: []byte(`groups:
  - id: registry.i
    type: attribute_group
    brief: b
    attributes:
      - id: aws.region
        type: string
        stability: development
        brief: b
        examples: [eu-west-1]
        annotations:
          knhk:
            instrumentation: otelaws
  - id: span.t
    type: span
    span_kind: client
    stability: development
    brief: b
    annotations:
      knhk:
        span_name: t
        scope: s
        emitted_by: knhk-plugin-aws
        checked_in: [plugins/aws]
    attributes:
      - ref: aws.region
`)},
	}
	r, err := Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := r.Attribute("aws.region"); a.Instrumentation != "otelaws" || a.Upstream {
		t.Errorf("aws.region = %+v, want defined by otelaws", a)
	}
	s := r.Spans[0]
	if !slices.Equal(s.EmittedBy, []string{"knhk-plugin-aws"}) || !s.IsCheckedIn("plugins/aws") || s.IsCheckedIn("plugins/azure") {
		t.Errorf("span origin %q, checked in %q", s.EmittedBy, s.CheckedIn)
	}
}

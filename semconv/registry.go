package semconv

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Files holds the registry: manifest.yaml and model/*.yaml.
//
//go:embed manifest.yaml model/*.yaml
var Files embed.FS

// ManifestFile is the registry manifest's name, at the registry's root;
// the semantic convention files are ModelDir/*.yaml beside it.
const (
	ManifestFile = "manifest.yaml"
	ModelDir     = "model"
)

// AnnotationKey is the annotation namespace (a key of a group's or an
// attribute's annotations) holding what Weaver's syntax has no field for.
const AnnotationKey = "knhk"

// Registry is a loaded, resolved registry.
type Registry struct {
	Manifest Manifest
	// Attributes are every attribute a span or metric refers to, by key:
	// knhk's own and the OpenTelemetry ones it refines.
	Attributes []Attribute
	// Spans are knhk's own, by name, then those of OpenTelemetry
	// instrumentations.
	Spans []Span
	// Metrics are knhk's own, by name, then those of OpenTelemetry
	// instrumentations.
	Metrics []Metric
}

// Manifest is manifest.yaml.
type Manifest struct {
	Name         string
	Description  string
	SchemaURL    string
	Stability    string
	Dependencies []Dependency
}

// Dependency is a registry this one refers to, such as OpenTelemetry's
// semantic conventions.
type Dependency struct {
	Name         string
	SchemaURL    string
	RegistryPath string
}

// Attribute is an attribute's definition, or for an OpenTelemetry
// attribute (Upstream) what this registry says about knhk's use of it.
type Attribute struct {
	Key string
	// Type is string, int, double, boolean or an array of one of them
	// (string[], ...). An enum's Type is its members' values' type. For
	// an upstream attribute it is the type of its examples here.
	Type string
	// Members are an enum's values; nil otherwise. Enums are open in
	// Weaver's model, but knhk's own are closed: knhk emits only these.
	Members []Member
	Brief   string
	Note    string
	// Examples are example values, of Type.
	Examples []any
	// Stability is empty for an upstream attribute (see the dependency).
	Stability string
	// Upstream is true for an attribute the dependency defines.
	Upstream bool
	// Values, when set (annotation knhk.values), are all the values knhk's
	// own telemetry (scope github.com/knhk/knhk) gives the attribute.
	Values []string
	// Instrumentation names the OpenTelemetry instrumentation that defines
	// an attribute neither knhk's nor in the semantic conventions
	// (otelaws's aws.region); empty otherwise.
	Instrumentation string
}

// Member is an enum value.
type Member struct {
	ID    string
	Value string
	Brief string
}

// Requirement is an attribute's requirement level on a signal.
type Requirement struct {
	// Level is required, conditionally_required, recommended or opt_in.
	Level string
	// Condition says when, for conditionally_required and recommended.
	Condition string
}

// String is the level with its condition, "conditionally_required: if the
// operation failed".
func (r Requirement) String() string {
	if r.Condition == "" {
		return r.Level
	}
	return r.Level + ": " + r.Condition
}

// AttributeRef is an attribute on a span or metric.
type AttributeRef struct {
	Key         string
	Requirement Requirement
}

// Span is a kind of span.
type Span struct {
	ID string
	// Names are templates of the span's name: "{x}" stands for any
	// non-empty text. See MatchName.
	Names []string
	// Kind is client, server, producer, consumer or internal.
	Kind string
	// Scope is the instrumentation scope (tracer name) that emits it.
	Scope string
	// Instrumentation names the OpenTelemetry instrumentation that emits
	// it (otelgrpc, ...); empty for knhk's own spans.
	Instrumentation string
	// EmittedBy and CheckedIn: see Metric.
	EmittedBy  []string
	CheckedIn  []string
	Brief      string
	Note       string
	Stability  string
	Attributes []AttributeRef
}

// Metric is a metric instrument.
type Metric struct {
	ID   string
	Name string
	// Instrument is counter, updowncounter, histogram or gauge.
	Instrument string
	Unit       string
	// Scope is the instrumentation scope (meter name) that emits it.
	Scope string
	// Instrumentation names the OpenTelemetry instrumentation that emits
	// it (otelgrpc, ...); empty for knhk's own metrics.
	Instrumentation string
	// EmittedBy (annotation knhk.emitted_by), when set, are the service
	// names of the processes that emit it (knhk-plugin-aws); empty for
	// what the host, the sidecar and every plugin emit.
	EmittedBy []string
	// CheckedIn (annotation knhk.checked_in), when set, are the Go module
	// directories, relative to the repository root, whose tests emit it
	// and check it against the registry (plugins/aws): modules of their
	// own, whose dependencies the root module's tests do not link. Empty
	// for what the root module's conformance test checks.
	CheckedIn  []string
	Brief      string
	Note       string
	Stability  string
	Attributes []AttributeRef
}

// MatchName reports whether a span named name is one of s's kind of span
// by its name: whether it matches one of s.Names.
func (s Span) MatchName(name string) bool {
	for _, t := range s.Names {
		if nameTemplate(t).MatchString(name) {
			return true
		}
	}
	return false
}

var placeholder = regexp.MustCompile(`\{[^{}]+\}`)

// nameTemplate compiles a span name template: literal text, and {x} for
// any non-empty text.
func nameTemplate(t string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	last := 0
	for _, m := range placeholder.FindAllStringIndex(t, -1) {
		b.WriteString(regexp.QuoteMeta(t[last:m[0]]))
		b.WriteString(".+")
		last = m[1]
	}
	b.WriteString(regexp.QuoteMeta(t[last:]))
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// Attribute returns the attribute with key.
func (r *Registry) Attribute(key string) (Attribute, bool) {
	i, ok := slices.BinarySearchFunc(r.Attributes, key, func(a Attribute, k string) int { return strings.Compare(a.Key, k) })
	if !ok {
		return Attribute{}, false
	}
	return r.Attributes[i], true
}

// IsCheckedIn reports whether module (plugins/aws) is one of s.CheckedIn.
func (s Span) IsCheckedIn(module string) bool { return slices.Contains(s.CheckedIn, module) }

// IsCheckedIn reports whether module (plugins/aws) is one of m.CheckedIn.
func (m Metric) IsCheckedIn(module string) bool { return slices.Contains(m.CheckedIn, module) }

// Metric returns the metric named name.
func (r *Registry) Metric(name string) (Metric, bool) {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
}

// Default is the registry embedded in this package (Files).
func Default() (*Registry, error) {
	return Load(Files)
}

// LoadDir loads the registry in directory dir (its manifest.yaml and
// model/*.yaml).
func LoadDir(dir string) (*Registry, error) {
	return Load(os.DirFS(dir))
}

// Load reads and resolves the registry at the root of fsys. Every problem
// found is reported, joined in one error.
func Load(fsys fs.FS) (*Registry, error) {
	var r Registry
	var errs []error
	m, err := loadManifest(fsys)
	if err != nil {
		return nil, err
	}
	r.Manifest = m
	files, err := fs.Glob(fsys, ModelDir+"/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", ModelDir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no %s/*.yaml files", ModelDir)
	}
	var groups []fileGroup
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
		var rf rawFile
		if err := decodeStrict(data, &rf); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
			continue
		}
		for _, g := range rf.Groups {
			groups = append(groups, fileGroup{file: f, g: g})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	b := builder{r: &r, attrs: map[string]*Attribute{}, used: map[string]bool{}}
	b.build(groups)
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	return &r, nil
}

// The YAML as written. Fields are Weaver's (version-1 syntax), the subset
// this registry uses; any other field is refused.
type (
	rawManifest struct {
		Name         string          `yaml:"name"`
		Description  string          `yaml:"description"`
		SchemaURL    string          `yaml:"schema_url"`
		Stability    string          `yaml:"stability"`
		Dependencies []rawDependency `yaml:"dependencies"`
	}
	rawDependency struct {
		Name         string `yaml:"name"`
		SchemaURL    string `yaml:"schema_url"`
		RegistryPath string `yaml:"registry_path"`
	}
	rawFile struct {
		Groups []rawGroup `yaml:"groups"`
	}
	rawGroup struct {
		ID          string               `yaml:"id"`
		Type        string               `yaml:"type"`
		Brief       string               `yaml:"brief"`
		Note        string               `yaml:"note"`
		Stability   string               `yaml:"stability"`
		DisplayName string               `yaml:"display_name"`
		Attributes  []rawAttribute       `yaml:"attributes"`
		SpanKind    string               `yaml:"span_kind"`
		MetricName  string               `yaml:"metric_name"`
		Instrument  string               `yaml:"instrument"`
		Unit        *string              `yaml:"unit"`
		Annotations map[string]yaml.Node `yaml:"annotations"`
	}
	rawAttribute struct {
		ID               string               `yaml:"id"`
		Ref              string               `yaml:"ref"`
		Type             yaml.Node            `yaml:"type"`
		Brief            string               `yaml:"brief"`
		Note             string               `yaml:"note"`
		Stability        string               `yaml:"stability"`
		Examples         yaml.Node            `yaml:"examples"`
		RequirementLevel yaml.Node            `yaml:"requirement_level"`
		SamplingRelevant *bool                `yaml:"sampling_relevant"`
		Annotations      map[string]yaml.Node `yaml:"annotations"`
	}
	rawMember struct {
		ID        string    `yaml:"id"`
		Value     yaml.Node `yaml:"value"`
		Brief     string    `yaml:"brief"`
		Note      string    `yaml:"note"`
		Stability string    `yaml:"stability"`
	}
	// rawAnnotations is the value of annotations.knhk.
	rawAnnotations struct {
		SpanName        yaml.Node `yaml:"span_name"`
		Scope           string    `yaml:"scope"`
		Instrumentation string    `yaml:"instrumentation"`
		Values          []string  `yaml:"values"`
		EmittedBy       yaml.Node `yaml:"emitted_by"`
		CheckedIn       yaml.Node `yaml:"checked_in"`
	}
)

type fileGroup struct {
	file string
	g    rawGroup
}

// decodeStrict decodes one YAML document into v, refusing unknown fields.
func decodeStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// decodeNodeStrict is decodeStrict for a node already parsed.
func decodeNodeStrict(n *yaml.Node, v any) error {
	data, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	return decodeStrict(data, v)
}

// schemaURL is the OTel schema URL form: http[s]://host/path/<version>.
var schemaURL = regexp.MustCompile(`^https?://[^/]+/.+/[0-9][0-9A-Za-z.+-]*$`)

func loadManifest(fsys fs.FS) (Manifest, error) {
	data, err := fs.ReadFile(fsys, ManifestFile)
	if err != nil {
		return Manifest{}, fmt.Errorf("reading the manifest: %w", err)
	}
	var raw rawManifest
	if err := decodeStrict(data, &raw); err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", ManifestFile, err)
	}
	var errs []error
	if raw.Name == "" {
		errs = append(errs, errors.New("no name"))
	}
	if !schemaURL.MatchString(raw.SchemaURL) {
		errs = append(errs, fmt.Errorf("schema_url %q is not http[s]://host/path/VERSION", raw.SchemaURL))
	}
	if raw.Stability != "" && !validStability(raw.Stability) {
		errs = append(errs, fmt.Errorf("unknown stability %q", raw.Stability))
	}
	m := Manifest{Name: raw.Name, Description: strings.TrimSpace(raw.Description), SchemaURL: raw.SchemaURL, Stability: raw.Stability}
	for _, d := range raw.Dependencies {
		if !schemaURL.MatchString(d.SchemaURL) {
			errs = append(errs, fmt.Errorf("dependency %q: schema_url %q is not http[s]://host/path/VERSION", d.Name, d.SchemaURL))
		}
		if d.RegistryPath == "" {
			errs = append(errs, fmt.Errorf("dependency %q: no registry_path", d.Name))
		} else if u, err := url.Parse(strings.TrimSuffix(d.RegistryPath, "[model]")); err != nil || u.Scheme != "https" {
			errs = append(errs, fmt.Errorf("dependency %q: registry_path %q is not an https URL", d.Name, d.RegistryPath))
		}
		m.Dependencies = append(m.Dependencies, Dependency(d))
	}
	if len(errs) > 0 {
		return Manifest{}, fmt.Errorf("%s: %w", ManifestFile, errors.Join(errs...))
	}
	return m, nil
}

// builder resolves groups into a Registry, collecting every error.
type builder struct {
	r     *Registry
	attrs map[string]*Attribute
	used  map[string]bool // attribute keys some signal refers to
	errs  []error
}

func (b *builder) errorf(fg fileGroup, format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf("%s: group %q: %s", fg.file, fg.g.ID, fmt.Sprintf(format, args...)))
}

func (b *builder) build(groups []fileGroup) {
	ids := map[string]string{}
	for _, fg := range groups {
		if fg.g.ID == "" {
			b.errs = append(b.errs, fmt.Errorf("%s: a group without an id", fg.file))
			continue
		}
		if prev, dup := ids[fg.g.ID]; dup {
			b.errorf(fg, "also defined in %s", prev)
		}
		ids[fg.g.ID] = fg.file
		if strings.TrimSpace(fg.g.Brief) == "" {
			b.errorf(fg, "no brief")
		}
	}
	// Attributes first: signals refer to them, in any file.
	for _, fg := range groups {
		if fg.g.Type == "attribute_group" {
			b.attributeGroup(fg)
		}
	}
	for _, fg := range groups {
		switch fg.g.Type {
		case "attribute_group":
		case "span":
			b.span(fg)
		case "metric":
			b.metric(fg)
		default:
			b.errorf(fg, "type %q is not attribute_group, span or metric", fg.g.Type)
		}
	}
	for _, a := range b.attrs {
		if !b.used[a.Key] {
			b.errs = append(b.errs, fmt.Errorf("attribute %q is on no span or metric", a.Key))
		}
		b.r.Attributes = append(b.r.Attributes, *a)
	}
	sort.Slice(b.r.Attributes, func(i, j int) bool { return b.r.Attributes[i].Key < b.r.Attributes[j].Key })
	// knhk's own first, then those of OpenTelemetry instrumentations.
	sort.Slice(b.r.Spans, func(i, j int) bool {
		si, sj := b.r.Spans[i], b.r.Spans[j]
		if oi, oj := si.Scope != knhkScope, sj.Scope != knhkScope; oi != oj {
			return oj
		}
		if si.Names[0] != sj.Names[0] {
			return si.Names[0] < sj.Names[0]
		}
		return si.ID < sj.ID
	})
	sort.Slice(b.r.Metrics, func(i, j int) bool {
		mi, mj := b.r.Metrics[i], b.r.Metrics[j]
		if oi, oj := mi.Scope != knhkScope, mj.Scope != knhkScope; oi != oj {
			return oj
		}
		return mi.Name < mj.Name
	})
	metrics := map[string]string{}
	for _, m := range b.r.Metrics {
		if prev, dup := metrics[m.Name]; dup {
			b.errs = append(b.errs, fmt.Errorf("metric %q is declared by both %q and %q", m.Name, prev, m.ID))
		}
		metrics[m.Name] = m.ID
	}
	names := map[string]string{}
	for _, s := range b.r.Spans {
		// Processes tell apart spans of one name by their service.name.
		emitters := strings.Join(s.EmittedBy, ",")
		for _, n := range s.Names {
			k := s.Scope + " " + s.Kind + " " + n + " " + emitters
			if prev, dup := names[k]; dup {
				b.errs = append(b.errs, fmt.Errorf("span name %q (%s, %s) is declared by both %q and %q", n, s.Kind, s.Scope, prev, s.ID))
			}
			names[k] = s.ID
		}
	}
}

func (b *builder) attributeGroup(fg fileGroup) {
	g := fg.g
	if g.SpanKind != "" || g.MetricName != "" || g.Instrument != "" || g.Unit != nil {
		b.errorf(fg, "an attribute_group has no span_kind, metric_name, instrument or unit")
	}
	if len(g.Annotations) > 0 {
		b.errorf(fg, "annotations on an attribute_group are not used")
	}
	if g.Stability != "" && !validStability(g.Stability) {
		b.errorf(fg, "unknown stability %q", g.Stability)
	}
	for _, ra := range g.Attributes {
		switch {
		case ra.ID != "" && ra.Ref != "":
			b.errorf(fg, "attribute %q has both id and ref", ra.ID)
		case ra.ID != "":
			b.define(fg, ra)
		case ra.Ref != "":
			// Weaver's own policy: a registry.* group defines, it
			// does not refer.
			if strings.HasPrefix(g.ID, "registry.") {
				b.errorf(fg, "refers to %q: a registry.* group only defines attributes", ra.Ref)
				continue
			}
			b.refine(fg, ra)
		default:
			b.errorf(fg, "an attribute without id or ref")
		}
	}
}

// define adds an attribute this registry defines.
func (b *builder) define(fg fileGroup, ra rawAttribute) {
	if _, dup := b.attrs[ra.ID]; dup {
		b.errorf(fg, "attribute %q is defined twice", ra.ID)
		return
	}
	a := &Attribute{Key: ra.ID, Brief: strings.TrimSpace(ra.Brief), Note: strings.TrimSpace(ra.Note), Stability: ra.Stability}
	a.Values, a.Instrumentation = b.attributeAnnotations(fg, ra)
	// An instrumentation's own attribute (otelaws's aws.region) is
	// defined here for want of a semantic convention to refer to.
	if knhk := strings.HasPrefix(ra.ID, "knhk."); !knhk && a.Instrumentation == "" {
		b.errorf(fg, "attribute %q: knhk defines knhk.* attributes only; refer to OpenTelemetry's with ref, or name the instrumentation that defines it (annotation %s.instrumentation)", ra.ID, AnnotationKey)
	} else if knhk && a.Instrumentation != "" {
		b.errorf(fg, "attribute %q is knhk's own: no annotation %s.instrumentation", ra.ID, AnnotationKey)
	}
	if a.Brief == "" {
		b.errorf(fg, "attribute %q has no brief", ra.ID)
	}
	if !validStability(ra.Stability) {
		b.errorf(fg, "attribute %q: stability %q is not one of stable, development, alpha, beta, release_candidate", ra.ID, ra.Stability)
	}
	if ra.RequirementLevel.Kind != 0 || ra.SamplingRelevant != nil {
		b.errorf(fg, "attribute %q: requirement_level and sampling_relevant belong on a span's or metric's reference", ra.ID)
	}
	switch ra.Type.Kind {
	case yaml.ScalarNode:
		if !validType(ra.Type.Value) {
			b.errorf(fg, "attribute %q: unknown type %q", ra.ID, ra.Type.Value)
		}
		a.Type = ra.Type.Value
	case yaml.MappingNode:
		var enum struct {
			Members []rawMember `yaml:"members"`
		}
		if err := decodeNodeStrict(&ra.Type, &enum); err != nil {
			b.errorf(fg, "attribute %q: enum type: %v", ra.ID, err)
			break
		}
		a.Type, a.Members = b.members(fg, ra.ID, enum.Members)
	default:
		b.errorf(fg, "attribute %q has no type", ra.ID)
	}
	a.Examples = b.examples(fg, ra.ID, &ra.Examples)
	b.checkExamples(fg, a)
	b.attrs[a.Key] = a
}

func (b *builder) members(fg fileGroup, key string, raw []rawMember) (string, []Member) {
	if len(raw) == 0 {
		b.errorf(fg, "attribute %q: an enum without members", key)
		return "", nil
	}
	typ := ""
	seen := map[string]bool{}
	var ms []Member
	for _, rm := range raw {
		t := scalarType(&rm.Value)
		if typ == "" {
			typ = t
		} else if t != typ {
			b.errorf(fg, "attribute %q: member %q has a %s value, the others %s", key, rm.ID, t, typ)
		}
		if rm.ID == "" || rm.Value.Value == "" || !validStability(rm.Stability) {
			b.errorf(fg, "attribute %q: a member needs id, value and stability", key)
		}
		if seen[rm.Value.Value] {
			b.errorf(fg, "attribute %q: value %q is listed twice", key, rm.Value.Value)
		}
		seen[rm.Value.Value] = true
		ms = append(ms, Member{ID: rm.ID, Value: rm.Value.Value, Brief: strings.TrimSpace(rm.Brief)})
	}
	if typ != "string" && typ != "int" {
		b.errorf(fg, "attribute %q: enum values must be strings or ints", key)
	}
	return typ, ms
}

// refine records an OpenTelemetry attribute this registry refers to.
func (b *builder) refine(fg fileGroup, ra rawAttribute) {
	if _, dup := b.attrs[ra.Ref]; dup {
		b.errorf(fg, "attribute %q is described twice (a refinement of an upstream attribute belongs in one attribute_group)", ra.Ref)
		return
	}
	if strings.HasPrefix(ra.Ref, "knhk.") {
		b.errorf(fg, "refers to %q, which is knhk's own: define it", ra.Ref)
	}
	if ra.Type.Kind != 0 || ra.Stability != "" {
		b.errorf(fg, "reference %q: type and stability are the referenced attribute's", ra.Ref)
	}
	if ra.RequirementLevel.Kind != 0 || ra.SamplingRelevant != nil {
		b.errorf(fg, "reference %q: requirement_level and sampling_relevant belong on a span's or metric's reference", ra.Ref)
	}
	a := &Attribute{Key: ra.Ref, Brief: strings.TrimSpace(ra.Brief), Note: strings.TrimSpace(ra.Note), Upstream: true}
	if a.Brief == "" {
		b.errorf(fg, "reference %q: say in brief what knhk puts in it", ra.Ref)
	}
	a.Examples = b.examples(fg, ra.Ref, &ra.Examples)
	if len(a.Examples) == 0 {
		b.errorf(fg, "reference %q needs examples (they give its type here)", ra.Ref)
	} else {
		a.Type = valueType(a.Examples[0])
		b.checkExamples(fg, a)
	}
	var instrumentation string
	a.Values, instrumentation = b.attributeAnnotations(fg, ra)
	if instrumentation != "" {
		b.errorf(fg, "reference %q: the semantic conventions define it, not an instrumentation", ra.Ref)
	}
	b.attrs[a.Key] = a
}

func (b *builder) examples(fg fileGroup, key string, n *yaml.Node) []any {
	var out []any
	switch n.Kind {
	case 0:
		return nil
	case yaml.SequenceNode:
		for _, c := range n.Content {
			var v any
			if err := c.Decode(&v); err != nil {
				b.errorf(fg, "attribute %q: example: %v", key, err)
				continue
			}
			out = append(out, v)
		}
	default:
		var v any
		if err := n.Decode(&v); err != nil {
			b.errorf(fg, "attribute %q: example: %v", key, err)
		}
		out = append(out, v)
	}
	return out
}

// checkExamples checks that a's examples are of its type, and an enum's
// are among its members.
func (b *builder) checkExamples(fg fileGroup, a *Attribute) {
	if len(a.Examples) == 0 && (a.Type == "string" || a.Type == "string[]") {
		b.errorf(fg, "attribute %q: a string attribute needs examples", a.Key)
	}
	for _, e := range a.Examples {
		if t := valueType(e); t != a.Type {
			b.errorf(fg, "attribute %q: example %v is a %s, not a %s", a.Key, e, t, a.Type)
		}
		if a.Members != nil && !slices.ContainsFunc(a.Members, func(m Member) bool { return m.Value == fmt.Sprint(e) }) {
			b.errorf(fg, "attribute %q: example %v is not one of its members", a.Key, e)
		}
	}
}

// attributeAnnotations are an attribute's annotations: values and
// instrumentation.
func (b *builder) attributeAnnotations(fg fileGroup, ra rawAttribute) (values []string, instrumentation string) {
	key := ra.ID + ra.Ref
	ann, ok := b.annotations(fg, ra.Annotations)
	if !ok {
		return nil, ""
	}
	if ann.SpanName.Kind != 0 || ann.Scope != "" || ann.EmittedBy.Kind != 0 || ann.CheckedIn.Kind != 0 {
		b.errorf(fg, "attribute %q: only values and instrumentation are an attribute's annotations", key)
	}
	return ann.Values, ann.Instrumentation
}

// annotations decodes the knhk annotation, refusing other namespaces.
func (b *builder) annotations(fg fileGroup, m map[string]yaml.Node) (rawAnnotations, bool) {
	var ann rawAnnotations
	for k := range m {
		if k != AnnotationKey {
			b.errorf(fg, "unknown annotation %q (only %q)", k, AnnotationKey)
		}
	}
	n, ok := m[AnnotationKey]
	if !ok {
		return ann, false
	}
	if err := decodeNodeStrict(&n, &ann); err != nil {
		b.errorf(fg, "annotation %s: %v", AnnotationKey, err)
		return ann, false
	}
	return ann, true
}

// signalAttributes resolves a span's or metric's attribute references.
func (b *builder) signalAttributes(fg fileGroup) []AttributeRef {
	var refs []AttributeRef
	seen := map[string]bool{}
	for _, ra := range fg.g.Attributes {
		if ra.ID != "" || ra.Ref == "" {
			b.errorf(fg, "attribute %q: a span or metric refers to attributes (ref) defined in an attribute_group", ra.ID)
			continue
		}
		if ra.Type.Kind != 0 || ra.Stability != "" {
			b.errorf(fg, "reference %q: type and stability are the attribute's", ra.Ref)
		}
		if len(ra.Annotations) > 0 {
			b.errorf(fg, "reference %q: annotations belong on the attribute's definition", ra.Ref)
		}
		a, ok := b.attrs[ra.Ref]
		if !ok {
			b.errorf(fg, "refers to %q, which no attribute_group defines or refines", ra.Ref)
			continue
		}
		if seen[ra.Ref] {
			b.errorf(fg, "refers to %q twice", ra.Ref)
		}
		seen[ra.Ref] = true
		b.used[ra.Ref] = true
		// Examples may be narrowed on a signal, to values of the
		// attribute's type.
		for _, e := range b.examples(fg, ra.Ref, &ra.Examples) {
			if t := valueType(e); t != a.Type {
				b.errorf(fg, "reference %q: example %v is a %s, not a %s", ra.Ref, e, t, a.Type)
			}
		}
		req, err := requirement(&ra.RequirementLevel)
		if err != nil {
			b.errorf(fg, "reference %q: %v", ra.Ref, err)
		}
		refs = append(refs, AttributeRef{Key: ra.Ref, Requirement: req})
	}
	return refs
}

func (b *builder) signalAnnotations(fg fileGroup) rawAnnotations {
	ann, ok := b.annotations(fg, fg.g.Annotations)
	if !ok {
		b.errorf(fg, "needs annotations %s.scope", AnnotationKey)
	}
	if ann.Scope == "" {
		b.errorf(fg, "annotation %s.scope is empty", AnnotationKey)
	}
	if len(ann.Values) > 0 {
		b.errorf(fg, "annotation %s.values belongs on an attribute", AnnotationKey)
	}
	return ann
}

// stringList decodes an annotation that is one string or a list of them;
// absent is nil.
func (b *builder) stringList(fg fileGroup, field string, n *yaml.Node) []string {
	var out []string
	switch n.Kind {
	case 0:
		return nil
	case yaml.ScalarNode:
		out = []string{n.Value}
	default:
		if err := n.Decode(&out); err != nil {
			b.errorf(fg, "annotation %s.%s: %v", AnnotationKey, field, err)
		}
	}
	if len(out) == 0 || slices.Contains(out, "") {
		b.errorf(fg, "annotation %s.%s is empty", AnnotationKey, field)
	}
	return out
}

// origin reads a signal's emitted_by and checked_in annotations: both or
// neither, a module directory being a relative slash path.
func (b *builder) origin(fg fileGroup, ann rawAnnotations) (emittedBy, checkedIn []string) {
	emittedBy = b.stringList(fg, "emitted_by", &ann.EmittedBy)
	checkedIn = b.stringList(fg, "checked_in", &ann.CheckedIn)
	if (emittedBy == nil) != (checkedIn == nil) {
		b.errorf(fg, "annotations %s.emitted_by and %s.checked_in go together", AnnotationKey, AnnotationKey)
	}
	for _, m := range checkedIn {
		if m != path.Clean(m) || path.IsAbs(m) || strings.HasPrefix(m, "..") || m == "." {
			b.errorf(fg, "annotation %s.checked_in: %q is not a module directory relative to the repository root", AnnotationKey, m)
		}
	}
	return emittedBy, checkedIn
}

var spanKinds = []string{"client", "server", "producer", "consumer", "internal"}

func (b *builder) span(fg fileGroup) {
	g := fg.g
	if !slices.Contains(spanKinds, g.SpanKind) {
		b.errorf(fg, "span_kind %q is not one of %s", g.SpanKind, strings.Join(spanKinds, ", "))
	}
	if !validStability(g.Stability) {
		b.errorf(fg, "stability %q is not one of stable, development, alpha, beta, release_candidate", g.Stability)
	}
	if g.MetricName != "" || g.Instrument != "" || g.Unit != nil || g.DisplayName != "" {
		b.errorf(fg, "a span has no metric_name, instrument, unit or display_name")
	}
	if !strings.HasPrefix(g.ID, "span.") {
		b.errorf(fg, "a span's id starts with span.")
	}
	ann := b.signalAnnotations(fg)
	var names []string
	switch ann.SpanName.Kind {
	case yaml.ScalarNode:
		names = []string{ann.SpanName.Value}
	case yaml.SequenceNode:
		if err := ann.SpanName.Decode(&names); err != nil {
			b.errorf(fg, "annotation %s.span_name: %v", AnnotationKey, err)
		}
	}
	if len(names) == 0 || slices.Contains(names, "") {
		b.errorf(fg, "annotation %s.span_name names no span", AnnotationKey)
	}
	emittedBy, checkedIn := b.origin(fg, ann)
	b.r.Spans = append(b.r.Spans, Span{
		ID: g.ID, Names: names, Kind: g.SpanKind, Scope: ann.Scope, Instrumentation: ann.Instrumentation,
		EmittedBy: emittedBy, CheckedIn: checkedIn,
		Brief: strings.TrimSpace(g.Brief), Note: strings.TrimSpace(g.Note), Stability: g.Stability,
		Attributes: b.signalAttributes(fg),
	})
}

var instruments = []string{"counter", "updowncounter", "histogram", "gauge"}

func (b *builder) metric(fg fileGroup) {
	g := fg.g
	if g.MetricName == "" {
		b.errorf(fg, "no metric_name")
	}
	if !strings.HasPrefix(g.ID, "metric.") {
		b.errorf(fg, "a metric's id starts with metric.")
	}
	if !slices.Contains(instruments, g.Instrument) {
		b.errorf(fg, "instrument %q is not one of %s", g.Instrument, strings.Join(instruments, ", "))
	}
	if g.Unit == nil {
		b.errorf(fg, "no unit")
	}
	if !validStability(g.Stability) {
		b.errorf(fg, "stability %q is not one of stable, development, alpha, beta, release_candidate", g.Stability)
	}
	if g.SpanKind != "" || g.DisplayName != "" {
		b.errorf(fg, "a metric has no span_kind or display_name")
	}
	ann := b.signalAnnotations(fg)
	if ann.SpanName.Kind != 0 {
		b.errorf(fg, "annotation %s.span_name is for spans", AnnotationKey)
	}
	unit := ""
	if g.Unit != nil {
		unit = *g.Unit
	}
	emittedBy, checkedIn := b.origin(fg, ann)
	b.r.Metrics = append(b.r.Metrics, Metric{
		ID: g.ID, Name: g.MetricName, Instrument: g.Instrument, Unit: unit, Scope: ann.Scope,
		EmittedBy: emittedBy, CheckedIn: checkedIn,
		Instrumentation: ann.Instrumentation, Brief: strings.TrimSpace(g.Brief), Note: strings.TrimSpace(g.Note),
		Stability: g.Stability, Attributes: b.signalAttributes(fg),
	})
}

// requirement parses a requirement_level: required, recommended, opt_in,
// or a one-entry map {conditionally_required: CONDITION} or
// {recommended: CONDITION}. Absent is recommended.
func requirement(n *yaml.Node) (Requirement, error) {
	switch n.Kind {
	case 0:
		return Requirement{Level: "recommended"}, nil
	case yaml.ScalarNode:
		switch n.Value {
		case "required", "recommended", "opt_in":
			return Requirement{Level: n.Value}, nil
		}
		return Requirement{}, fmt.Errorf("requirement_level %q is not required, recommended, opt_in or conditionally_required: CONDITION", n.Value)
	case yaml.MappingNode:
		if len(n.Content) == 2 {
			k, v := n.Content[0].Value, n.Content[1]
			if (k == "conditionally_required" || k == "recommended") && v.Kind == yaml.ScalarNode && v.Value != "" {
				return Requirement{Level: k, Condition: strings.TrimSpace(v.Value)}, nil
			}
		}
	}
	return Requirement{}, errors.New("requirement_level is not required, recommended, opt_in, {recommended: CONDITION} or {conditionally_required: CONDITION}")
}

func validStability(s string) bool {
	switch s {
	case "stable", "development", "alpha", "beta", "release_candidate":
		return true
	}
	return false
}

func validType(t string) bool {
	base := strings.TrimSuffix(t, "[]")
	switch base {
	case "string", "int", "double", "boolean":
		return true
	}
	return t == "any"
}

// scalarType is the attribute type of a YAML scalar.
func scalarType(n *yaml.Node) string {
	var v any
	if err := n.Decode(&v); err != nil {
		return "?"
	}
	return valueType(v)
}

// valueType is the attribute type of a value decoded from YAML.
func valueType(v any) string {
	switch v := v.(type) {
	case string:
		return "string"
	case int, int64, uint64:
		return "int"
	case float64:
		return "double"
	case bool:
		return "boolean"
	case []any:
		if len(v) == 0 {
			return "?[]"
		}
		return valueType(v[0]) + "[]"
	}
	return fmt.Sprintf("%T", v)
}

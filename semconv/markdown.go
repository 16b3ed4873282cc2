package semconv

import (
	"bytes"
	"fmt"
	"strings"
)

// DocFile is where the Markdown rendering of the registry lives, relative
// to the repository root.
const DocFile = "docs/telemetry.md"

// Markdown renders r as the Markdown page DocFile: a table each of spans,
// metrics and attributes.
func Markdown(r *Registry) []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("<!-- Generated from semconv/manifest.yaml and semconv/model/*.yaml by `go generate ./semconv`. DO NOT EDIT. -->\n\n")
	p("# Telemetry\n\n")
	p("Every span, metric and attribute knhk's host, plugins and sidecar emit,\n")
	p("from knhk's telemetry registry ([semconv/](../semconv/), in OpenTelemetry\n")
	p("Weaver's registry format, which `weaver registry check -r semconv` checks).\n")
	p("A test runs every operation through the host and the sidecar with in-memory\n")
	p("exporters and fails when the code emits anything the registry does not\n")
	p("declare, or declares anything the code does not emit; the tests of the\n")
	p("cloud plugins' modules do the same for the client telemetry of their SDK\n")
	p("calls (\"checked in\" below).\n\n")
	p("Spans and metrics are exported only when the standard `OTEL_*` environment\n")
	p("asks for it (see package `telemetry`); otherwise they cost nothing.\n")
	p("knhk's own telemetry has the instrumentation scope `%s`.\n", knhkScope)
	p("Attribute values name providers, keys (by key id), versions, algorithms,\n")
	p("callers and outcomes: never a key reference's parameters, a token, key\n")
	p("material or the contents of a message, digest or signature.\n\n")
	for _, d := range r.Manifest.Dependencies {
		p("Attributes marked *OTel* are OpenTelemetry semantic conventions (registry `%s`, %s).\n", d.Name, d.SchemaURL)
	}
	p("\n## Spans\n\n")
	p("| Span name | Kind | Emitted by | Attributes | Description |\n")
	p("|---|---|---|---|---|\n")
	for _, s := range r.Spans {
		names := make([]string, len(s.Names))
		for i, n := range s.Names {
			names[i] = code(n)
		}
		p("| %s | %s | %s | %s | %s |\n", strings.Join(names, "<br>"), s.Kind, emitter(s.Scope, s.Instrumentation, s.EmittedBy, s.CheckedIn),
			refs(s.Attributes), cell(join(s.Brief, s.Note)))
	}
	p("\n## Metrics\n\n")
	p("| Metric | Instrument | Unit | Emitted by | Attributes | Description |\n")
	p("|---|---|---|---|---|---|\n")
	for _, m := range r.Metrics {
		p("| %s | %s | %s | %s | %s | %s |\n", code(m.Name), m.Instrument, code(m.Unit), emitter(m.Scope, m.Instrumentation, m.EmittedBy, m.CheckedIn),
			refs(m.Attributes), cell(join(m.Brief, m.Note)))
	}
	p("\n## Attributes\n\n")
	p("| Attribute | Type | Description | Examples |\n")
	p("|---|---|---|---|\n")
	for _, a := range r.Attributes {
		typ := a.Type
		if a.Members != nil {
			vals := make([]string, len(a.Members))
			for i, m := range a.Members {
				vals[i] = code(m.Value)
			}
			typ = "enum (" + a.Type + "): " + strings.Join(vals, ", ")
		}
		if a.Upstream {
			typ += " (*OTel*)"
		}
		if a.Instrumentation != "" {
			typ += " (*" + a.Instrumentation + "*)"
		}
		desc := join(a.Brief, a.Note)
		if a.Values != nil {
			vals := make([]string, len(a.Values))
			for i, v := range a.Values {
				vals[i] = code(v)
			}
			desc = join(desc, "Values on knhk's own telemetry: "+strings.Join(vals, ", ")+".")
		}
		ex := make([]string, len(a.Examples))
		for i, e := range a.Examples {
			ex[i] = code(fmt.Sprint(e))
		}
		p("| %s | %s | %s | %s |\n", code(a.Key), typ, cell(desc), strings.Join(ex, ", "))
	}
	return b.Bytes()
}

// knhkScope is the instrumentation scope of knhk's own telemetry (the
// telemetry package's ScopeName; this package does not import it).
const knhkScope = "github.com/knhk/knhk"

// emitter says what emits a signal: knhk, an instrumentation or a scope,
// and where emitted_by and checked_in say so, in which processes and
// which module's tests check it.
func emitter(scope, instrumentation string, emittedBy, checkedIn []string) string {
	var s string
	switch {
	case instrumentation != "":
		s = instrumentation
	case scope == knhkScope:
		s = "knhk"
	default:
		s = code(scope)
	}
	if len(emittedBy) > 0 {
		s += " in " + codes(emittedBy)
	}
	if len(checkedIn) > 0 {
		s += "; checked in " + codes(checkedIn)
	}
	return s
}

// codes is ss as inline code, comma separated.
func codes(ss []string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = code(s)
	}
	return strings.Join(out, ", ")
}

// refs lists a signal's attributes with their requirement levels.
func refs(rs []AttributeRef) string {
	var out []string
	for _, r := range rs {
		s := code(r.Key)
		if r.Requirement.Level != "recommended" || r.Requirement.Condition != "" {
			s += " (" + strings.ReplaceAll(r.Requirement.String(), "_", " ") + ")"
		}
		out = append(out, cell(s))
	}
	return strings.Join(out, "<br>")
}

func join(a, b string) string {
	if b == "" {
		return a
	}
	if a == "" {
		return b
	}
	return a + " " + b
}

// code is s as inline code.
func code(s string) string {
	return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
}

// cell makes s fit in a table cell: one line, pipes escaped outside code.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	var b strings.Builder
	inCode := false
	for _, r := range s {
		switch {
		case r == '`':
			inCode = !inCode
		case r == '|' && !inCode:
			b.WriteString(`\`)
		}
		b.WriteRune(r)
	}
	return b.String()
}

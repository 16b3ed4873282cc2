// Package semconv is knhk's telemetry registry: every span, metric and
// attribute knhk's host, plugins and sidecar emit, declared in
// OpenTelemetry Weaver's registry format (manifest.yaml and the semantic
// convention files in model/, embedded in this package as Files).
//
// Load reads a registry into Go values for tools and tests: the tests of
// this package check, both ways, that what the code emits is what the
// registry declares (conformance_test.go), and cmd/semconv-doc renders it
// as the Markdown table docs/telemetry.md (Markdown). Regenerate that file
// after changing the registry:
//
//	go generate ./semconv
//
// The loader reads Weaver's version-1 group syntax (groups of type
// attribute_group, span and metric), refusing fields Weaver does not know,
// and resolves references: an attribute is either defined here (knhk.*)
// or an OpenTelemetry semantic convention attribute referenced from the
// dependency the manifest names, described for knhk's use in an
// attribute_group of refinements. What Weaver's syntax leaves to prose is
// in annotations under the key "knhk": on a span, its name (span_name, a
// template or a list of them, in which {placeholder} stands for any text);
// on a span or metric, the instrumentation scope that emits it (scope) and
// the OpenTelemetry instrumentation, if any (instrumentation), and for
// what only a plugin's module can emit (its cloud SDK calls), the
// service.name of the emitting process (emitted_by) and the module whose
// tests check it (checked_in, with package semconvtest); on an attribute,
// the closed set of values knhk's own telemetry gives it (values), or the
// instrumentation that defines it when it is neither knhk's nor
// OpenTelemetry's (instrumentation).
//
// Attribute values never carry a key reference's parameters, tokens, key
// material or message contents: key ids, provider names and outcomes only.
package semconv

//go:generate go run ./cmd/semconv-doc -o ../docs/telemetry.md

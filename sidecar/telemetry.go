package sidecar

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/knhk/knhk/internal/errtype"
	"github.com/knhk/knhk/telemetry"
)

// The daemon's telemetry: its gRPC servers carry telemetry.GRPCServerHandler
// and its HTTP/JSON handler otelhttp, so a call continues its caller's W3C
// trace context and the host's operation spans are children of the
// daemon's server span. The core counts every call it handles
// (knhk.sidecar.requests) and every policy denial (knhk.sidecar.denials) on
// the global MeterProvider, named by the caller's first principal and the
// operation, never by a key's parameters.

// The daemon's sentinels, for telemetry.ErrorType (which cannot import
// them: they wrap the SDK's, whose package uses telemetry). They come
// before the SDK's sentinels they wrap (ErrPolicyDenied is also
// shared.ErrPermissionDenied).
func init() {
	for _, k := range []struct {
		err  error
		name string
	}{
		{ErrPolicyDenied, "policy_denied"},
		{ErrTooManyCalls, "too_many_calls"},
		{ErrDraining, "draining"},
	} {
		errtype.Register(errtype.Specific, k.err, k.name)
	}
}

// coreMetrics are the core's instruments.
type coreMetrics struct {
	requests metric.Int64Counter // knhk.sidecar.requests
	denials  metric.Int64Counter // knhk.sidecar.denials
}

// newCoreMetrics makes the instruments on the global MeterProvider (a no-op
// one unless telemetry.Setup or the embedder set one).
func newCoreMetrics() coreMetrics {
	m := otel.Meter(telemetry.ScopeName)
	return coreMetrics{
		requests: counter(m, "knhk.sidecar.requests", "Calls the sidecar handled, by caller and operation; error.type names a failure."),
		denials:  counter(m, "knhk.sidecar.denials", "Calls the sidecar's policy denied, by caller and operation."),
	}
}

// counter is a "{request}" counter, or a no-op one (the error handled)
// when the meter refuses it: telemetry never stops signing.
func counter(m metric.Meter, name, desc string) metric.Int64Counter {
	c, err := m.Int64Counter(name, metric.WithUnit("{request}"), metric.WithDescription(desc))
	if err != nil {
		otel.Handle(err)
	}
	if c == nil {
		return noop.Int64Counter{}
	}
	return c
}

// opValues are the knhk.operation values of the policy's operations: the
// host's operation names, which say create_key and list_keys.
var opValues = map[Op]attribute.KeyValue{
	OpSign:      telemetry.KeyOperation.String("sign"),
	OpVerify:    telemetry.KeyOperation.String("verify"),
	OpPublicKey: telemetry.KeyOperation.String("public_key"),
	OpMetadata:  telemetry.KeyOperation.String("metadata"),
	OpRotate:    telemetry.KeyOperation.String("rotate"),
	OpCreate:    telemetry.KeyOperation.String("create_key"),
	OpList:      telemetry.KeyOperation.String("list_keys"),
	OpVersions:  telemetry.KeyOperation.String("versions"),
	OpApprove:   telemetry.KeyOperation.String("approve"),
	OpPromote:   telemetry.KeyOperation.String("promote"),
	OpRetire:    telemetry.KeyOperation.String("retire"),
}

// callAttrs are a call's knhk.principal and knhk.operation.
func callAttrs(caller Caller, op Op, extra int) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 2+extra)
	return append(attrs, telemetry.KeyPrincipal.String(caller.String()), opValues[op])
}

// count records one call of caller's that the core handled: admitted and
// run, or refused (policy, limit, drain). err is the call's error, before
// any transport turned it into a status: a verify whose signature does
// not verify counts as bad_signature, though the API answers it with
// valid false.
func (c *core) count(ctx context.Context, caller Caller, op Op, err error) {
	if !c.metrics.requests.Enabled(ctx) {
		return // no SDK: build no attributes on the signing path
	}
	attrs := callAttrs(caller, op, 1)
	if err != nil {
		attrs = append(attrs, telemetry.KeyErrorType.String(telemetry.ErrorType(err)))
	}
	c.metrics.requests.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(attrs...)))
}

// countDenial records one policy denial.
func (c *core) countDenial(ctx context.Context, caller Caller, op Op) {
	if !c.metrics.denials.Enabled(ctx) {
		return
	}
	c.metrics.denials.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(callAttrs(caller, op, 0)...)))
}

// tracedHTTP wraps the HTTP/JSON API in otelhttp: a server span per
// request, continuing the caller's trace context, named by its route
// ("POST /v1/keys/{key}/sign"), plus the http.server metrics. The path
// carries key names and references with their parameters, so otelhttp is
// given the request without its path and query (it then sets no url.path)
// and with the route pattern looked up beforehand (so the span has its
// name and http.route from the start); mux gets the request as it came.
func tracedHTTP(mux *http.ServeMux) http.Handler {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		orig := r.WithContext(r.Context())
		if came, ok := r.Context().Value(origRequestKey{}).(*http.Request); ok {
			orig.URL, orig.RequestURI = came.URL, came.RequestURI
		}
		mux.ServeHTTP(w, orig)
	})
	traced := otelhttp.NewHandler(inner, "knhk.sidecar.http",
		otelhttp.WithSpanNameFormatter(httpSpanName),
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		bare := r.WithContext(context.WithValue(r.Context(), origRequestKey{}, r))
		u := *r.URL
		u.Path, u.RawPath, u.RawQuery, u.Fragment, u.RawFragment = "", "", "", "", ""
		bare.URL, bare.RequestURI, bare.Pattern = &u, "", pattern
		traced.ServeHTTP(w, bare)
	})
}

// origRequestKey keys the request as it came, in the context of the one
// otelhttp sees.
type origRequestKey struct{}

// httpSpanName names an HTTP/JSON request's span by its route pattern:
// "POST /v1/keys/{key}/sign", "HTTP /" for what no API call matches. Never
// the path (it names keys) nor an unknown method (any string a client
// sends).
func httpSpanName(_ string, r *http.Request) string {
	p := r.Pattern
	if strings.Contains(p, " ") {
		return p // method and path pattern
	}
	if p == "" {
		p = "/"
	}
	return "HTTP " + p
}

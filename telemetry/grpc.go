package telemetry

import (
	"context"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/stats"
)

// GRPCClientHandler is the stats handler of a gRPC client connection to a
// knhk plugin or daemon (grpc.WithStatsHandler): a client span per call,
// named after the method (knhk.kms.v1.KeyProvider/Sign), the W3C trace
// context sent along, and the rpc.client.* metrics. It uses the global
// providers and propagator unless opts say otherwise (otelgrpc's
// WithTracerProvider, WithMeterProvider, WithPropagators). Calls to
// go-plugin's own services (broker, stdio, controller) and to the gRPC
// health service are left out: they belong to no operation and would
// only make orphan spans.
//
// Without opts, while no global provider is installed (see
// NoopTracerProvider) and a call's context carries no span to pass on,
// the call is not instrumented at all: it costs no allocation.
func GRPCClientHandler(opts ...otelgrpc.Option) stats.Handler {
	h := otelgrpc.NewClientHandler(withFilter(opts)...)
	if len(opts) > 0 {
		return h
	}
	return &gated{inner: h, client: true}
}

// GRPCServerHandler is GRPCClientHandler's server side (grpc.StatsHandler):
// a server span per call that continues the caller's trace, and the
// rpc.server.* metrics, leaving out the same services. Without opts,
// while no global provider is installed, calls are not instrumented.
func GRPCServerHandler(opts ...otelgrpc.Option) stats.Handler {
	h := otelgrpc.NewServerHandler(withFilter(opts)...)
	if len(opts) > 0 {
		return h
	}
	return &gated{inner: h}
}

func withFilter(opts []otelgrpc.Option) []otelgrpc.Option {
	return append([]otelgrpc.Option{otelgrpc.WithFilter(traced)}, opts...)
}

// untraced are the gRPC services whose calls make no spans or metrics:
// go-plugin's plumbing and health checks.
var untraced = map[string]bool{
	"plugin.GRPCBroker":     true,
	"plugin.GRPCStdio":      true,
	"plugin.GRPCController": true,
	"grpc.health.v1.Health": true,
}

// traced is the otelgrpc filter: true for the calls to instrument.
func traced(info *stats.RPCTagInfo) bool {
	return !untraced[service(info.FullMethodName)]
}

// service is the service part of a full method name, /pkg.Service/Method.
func service(fullMethod string) string {
	s := strings.TrimPrefix(fullMethod, "/")
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[:i]
	}
	return s
}

// gated is an otelgrpc handler on the global providers that stays out of
// the way while they are no-op: otelgrpc would allocate about a kilobyte
// per call to throw away. A client call whose context carries a span
// context is still handled, so that the trace goes on across the call.
type gated struct {
	inner  stats.Handler
	client bool
	on     atomic.Bool // a global provider has been installed
}

// gatedKey marks the contexts of the calls the inner handler tagged: only
// those may reach its HandleRPC, which would otherwise take the caller's
// span for the call's and end it.
type gatedKey struct{}

var gatedMark = new(int)

func (g *gated) live(ctx context.Context) bool {
	if g.on.Load() {
		return true
	}
	if !NoopTracerProvider(otel.GetTracerProvider()) || !NoopMeterProvider(otel.GetMeterProvider()) {
		g.on.Store(true)
		return true
	}
	return g.client && trace.SpanContextFromContext(ctx).IsValid()
}

func (g *gated) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	if !g.live(ctx) {
		return ctx
	}
	return context.WithValue(g.inner.TagRPC(ctx, info), gatedKey{}, gatedMark)
}

func (g *gated) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if ctx.Value(gatedKey{}) != nil {
		g.inner.HandleRPC(ctx, s)
	}
}

func (g *gated) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	return g.inner.TagConn(ctx, info)
}

func (g *gated) HandleConn(ctx context.Context, s stats.ConnStats) {
	g.inner.HandleConn(ctx, s)
}

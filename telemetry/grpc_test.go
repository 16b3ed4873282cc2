package telemetry_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/emptypb"

	kmsv1 "github.com/knhk/knhk/shared/proto/knhk/kms/v1"
	"github.com/knhk/knhk/telemetry"
)

// pluginServices are go-plugin's own services, which carry no operation.
var pluginServices = []string{"plugin.GRPCBroker", "plugin.GRPCStdio", "plugin.GRPCController"}

// emptyService is a gRPC service named name with one method, Call, that
// answers an empty message: a stand-in for go-plugin's services.
func emptyService(name string) *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: name,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Call",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var in emptypb.Empty
				if err := dec(&in); err != nil {
					return nil, err
				}
				return &emptypb.Empty{}, nil
			},
		}},
	}
}

type keyProvider struct {
	kmsv1.UnimplementedKeyProviderServer
}

// TestGRPCHandlers: a call through the client and server handlers makes a
// client span, child of the caller's span, and a server span, child of the
// client span across the connection; health checks and go-plugin's
// services make none.
func TestGRPCHandlers(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	w3c := propagation.TraceContext{}
	opts := []otelgrpc.Option{otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(w3c)}

	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.StatsHandler(telemetry.GRPCServerHandler(opts...)))
	kmsv1.RegisterKeyProviderServer(srv, keyProvider{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	for _, name := range pluginServices {
		srv.RegisterService(emptyService(name), struct{}{})
	}
	go srv.Serve(lis)
	defer srv.Stop()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(telemetry.GRPCClientHandler(opts...)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()

	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range pluginServices {
		if err := conn.Invoke(ctx, "/"+name+"/Call", &emptypb.Empty{}, &emptypb.Empty{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	ctx, root := tp.Tracer("test").Start(ctx, "root")
	_, err = kmsv1.NewKeyProviderClient(conn).Describe(ctx, &kmsv1.DescribeRequest{})
	root.End()
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("Describe: %v", err)
	}
	const name = "knhk.kms.v1.KeyProvider/Describe"
	var client, server sdktrace.ReadOnlySpan
	// The server span ends once the answer is on its way: poll for it.
	for deadline := time.Now().Add(10 * time.Second); server == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, s := range rec.Ended() {
			switch {
			case s.Name() == name && s.SpanKind() == trace.SpanKindClient:
				client = s
			case s.Name() == name && s.SpanKind() == trace.SpanKindServer:
				server = s
			}
		}
	}
	if client == nil || server == nil {
		t.Fatalf("client span %v, server span %v; want both", client != nil, server != nil)
	}
	if client.Parent().SpanID() != root.SpanContext().SpanID() {
		t.Error("the client span is not the caller's child")
	}
	if server.Parent().SpanID() != client.SpanContext().SpanID() || !server.Parent().IsRemote() {
		t.Error("the server span does not continue the client span")
	}
	if server.SpanContext().TraceID() != root.SpanContext().TraceID() {
		t.Error("the server span is in another trace")
	}
	for _, s := range rec.Ended() {
		if s.Name() != name && s.Name() != "root" {
			t.Errorf("span %q for a filtered service", s.Name())
		}
	}
}

// TestGRPCHandlersIdle: on the global providers, while none is installed,
// the handlers cost a call no allocation; a client call whose context
// carries a span context still passes it on.
func TestGRPCHandlersIdle(t *testing.T) {
	if !telemetry.NoopTracerProvider(otel.GetTracerProvider()) || !telemetry.NoopMeterProvider(otel.GetMeterProvider()) {
		t.Skip("a test installed global providers")
	}
	client, server := telemetry.GRPCClientHandler(), telemetry.GRPCServerHandler()
	info := &stats.RPCTagInfo{FullMethodName: "/knhk.kms.v1.KeyProvider/Sign"}
	begin, end := &stats.Begin{}, &stats.End{}
	ctx := context.Background()
	for name, h := range map[string]stats.Handler{"client": client, "server": server} {
		if n := testing.AllocsPerRun(100, func() {
			ctx := h.TagRPC(ctx, info)
			h.HandleRPC(ctx, begin)
			h.HandleRPC(ctx, end)
		}); n != 0 {
			t.Errorf("the idle %s handler allocates %v times a call", name, n)
		}
	}

	otel.SetTextMapPropagator(propagation.TraceContext{})
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled, Remote: true})
	tagged := client.TagRPC(trace.ContextWithRemoteSpanContext(ctx, sc), info)
	md, _ := metadata.FromOutgoingContext(tagged)
	if got := md.Get("traceparent"); len(got) != 1 || !strings.Contains(got[0], sc.TraceID().String()) {
		t.Errorf("traceparent %v; want the caller's trace passed on", got)
	}
	client.HandleRPC(tagged, end)
}

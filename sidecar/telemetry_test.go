package sidecar

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/shared"
	sidecarv1 "github.com/knhk/knhk/sidecar/proto/knhk/sidecar/v1"
)

// testTelemetry is an SDK TracerProvider and MeterProvider, set as the
// globals (with the W3C trace-context propagator) until the test ends.
// Tests that use it must not run in parallel.
type testTelemetry struct {
	spans   *tracetest.SpanRecorder
	metrics *sdkmetric.ManualReader
}

func newTestTelemetry(t *testing.T, readers ...sdkmetric.Reader) *testTelemetry {
	t.Helper()
	tt := &testTelemetry{spans: tracetest.NewSpanRecorder(), metrics: sdkmetric.NewManualReader()}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tt.spans))
	opts := []sdkmetric.Option{sdkmetric.WithReader(tt.metrics)}
	for _, r := range readers {
		opts = append(opts, sdkmetric.WithReader(r))
	}
	mp := sdkmetric.NewMeterProvider(opts...)
	oldTP, oldMP, oldProp := otel.GetTracerProvider(), otel.GetMeterProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		otel.SetTracerProvider(oldTP)
		otel.SetMeterProvider(oldMP)
		otel.SetTextMapPropagator(oldProp)
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	return tt
}

// span waits for an ended span that match accepts (spans end after the
// client has its answer).
func (tt *testTelemetry) span(t *testing.T, what string, match func(sdktrace.ReadOnlySpan) bool) sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, s := range tt.spans.Ended() {
			if match(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range tt.spans.Ended() {
				names = append(names, s.Name())
			}
			t.Fatalf("no %s among the ended spans %v", what, names)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// childOf matches a span named name whose parent is parent.
func childOf(name string, parent trace.SpanContext) func(sdktrace.ReadOnlySpan) bool {
	return func(s sdktrace.ReadOnlySpan) bool {
		return s.Name() == name && s.Parent().SpanID() == parent.SpanID() && s.SpanContext().TraceID() == parent.TraceID()
	}
}

// count is the value of the int64 sum name at exactly attrs (0 if none).
func (tt *testTelemetry) count(t *testing.T, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tt.metrics.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	want := attribute.NewSet(attrs...)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is %T, want an int64 sum", name, m.Data)
			}
			for _, dp := range sum.DataPoints {
				if dp.Attributes.Equals(&want) {
					return dp.Value
				}
			}
		}
	}
	return 0
}

// remoteParent is a caller's span context, as its traceparent carries it.
func remoteParent(n byte) trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0x4e, 0x48, 0x4b, n, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
		SpanID:     trace.SpanID{0x5a, n, 1, 2, 3, 4, 5, 6},
		TraceFlags: trace.FlagsSampled,
		Remote:     true,
	})
}

// withTraceparent is ctx with parent's traceparent in its outgoing gRPC
// metadata, as an instrumented caller sends it.
func withTraceparent(ctx context.Context, parent trace.SpanContext) context.Context {
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(ctx, parent), carrier)
	return metadata.AppendToOutgoingContext(ctx, "traceparent", carrier.Get("traceparent"))
}

// freeAddress is a loopback TCP address nothing listens on (just now).
func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestTelemetryGRPC: a gRPC call continues the caller's trace (the
// daemon's server span is the caller's span's child, the host's sign span
// the server span's, also for each SignStream item), the core counts calls
// and denials by principal and operation, and /metrics on the health
// address serves them in the Prometheus format.
func TestTelemetryGRPC(t *testing.T) {
	reg := prometheus.NewRegistry()
	prom, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	tt := newTestTelemetry(t, prom)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	healthAddr := freeAddress(t)
	h := hosttest.New(t)
	if _, err := h.CreateKey(ctx, "fake:release?seed=telemetry", shared.ECP256); err != nil {
		t.Fatal(err)
	}
	srv, err := New(h, Config{
		Socket:         SocketConfig{Path: filepath.Join(t.TempDir(), "s.sock")},
		Keys:           map[string]string{"release": "fake:release?seed=telemetry", "locked": "fake:locked?seed=telemetry"},
		Policies:       []Policy{{Keys: []string{"release"}, Principals: []string{grpcSelf()}, Operations: []Op{OpSign}}},
		HealthAddress:  healthAddr,
		MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-srv.Listening():
	case err := <-served:
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("unix://"+srv.SocketPath(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cl := sidecarv1.NewSignerClient(conn)
	digest := sha256.Sum256([]byte("traced"))

	// A unary call.
	caller := remoteParent(1)
	if _, err := cl.Sign(withTraceparent(ctx, caller), &sidecarv1.SignRequest{Key: "release", Digest: digest[:]}); err != nil {
		t.Fatal(err)
	}
	server := tt.span(t, "server span of Sign under the caller's", childOf("knhk.sidecar.v1.Signer/Sign", caller))
	if server.SpanKind() != trace.SpanKindServer || !server.Parent().IsRemote() {
		t.Errorf("server span: kind %v, parent remote %v", server.SpanKind(), server.Parent().IsRemote())
	}
	tt.span(t, "knhk.sign under the server span", childOf("knhk.sign", server.SpanContext()))

	// A denied call.
	_, err = cl.Sign(withTraceparent(ctx, remoteParent(2)), &sidecarv1.SignRequest{Key: "locked", Digest: digest[:]})
	grpcWantErr(t, err, codes.PermissionDenied, "POLICY_DENIED")

	principal := attribute.String("knhk.principal", grpcSelf())
	sign := attribute.String("knhk.operation", "sign")
	if n := tt.count(t, "knhk.sidecar.requests", principal, sign); n != 1 {
		t.Errorf("knhk.sidecar.requests of successful signs: %d, want 1", n)
	}
	if n := tt.count(t, "knhk.sidecar.requests", principal, sign, attribute.String("error.type", "policy_denied")); n != 1 {
		t.Errorf("knhk.sidecar.requests of denied signs: %d, want 1", n)
	}
	if n := tt.count(t, "knhk.sidecar.denials", principal, sign); n != 1 {
		t.Errorf("knhk.sidecar.denials: %d, want 1", n)
	}

	// A stream: each item's sign is a child of the stream's server span.
	caller = remoteParent(3)
	stream, err := cl.SignStream(withTraceparent(ctx, caller))
	if err != nil {
		t.Fatal(err)
	}
	items := []*sidecarv1.SignItem{
		{Id: 1, Request: &sidecarv1.SignRequest{Key: "release", Digest: digest[:]}},
		{Id: 2, Request: &sidecarv1.SignRequest{Key: "release", Message: []byte("item")}},
	}
	if err := stream.Send(&sidecarv1.SignStreamRequest{Items: items}); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	got := 0
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range msg.GetResults() {
			if r.GetError() != nil {
				t.Fatalf("item %d: %v", r.GetId(), r.GetError())
			}
			got++
		}
	}
	if got != len(items) {
		t.Fatalf("%d results, want %d", got, len(items))
	}
	server = tt.span(t, "server span of SignStream under the caller's", childOf("knhk.sidecar.v1.Signer/SignStream", caller))
	deadline := time.Now().Add(10 * time.Second)
	for n := 0; n != len(items); {
		n = 0
		for _, s := range tt.spans.Ended() {
			if childOf("knhk.sign", server.SpanContext())(s) {
				n++
			}
		}
		if n != len(items) && time.Now().After(deadline) {
			t.Fatalf("%d knhk.sign spans under the stream's server span, want %d", n, len(items))
		}
		time.Sleep(time.Millisecond)
	}
	if n := tt.count(t, "knhk.sidecar.requests", principal, sign); n != 3 {
		t.Errorf("knhk.sidecar.requests of successful signs after the stream: %d, want 3", n)
	}

	// The health address serves the metrics.
	resp, err := http.Get("http://" + healthAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	for _, want := range []string{
		fmt.Sprintf(`knhk_sidecar_requests_total{knhk_operation="sign",knhk_principal=%q`, grpcSelf()),
		"knhk_sidecar_denials_total{",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics has no %s:\n%s", want, body)
		}
	}
}

// TestTelemetryHTTP: an HTTP/JSON call continues the caller's trace in a
// server span named by its route, with the host's sign span below it, and
// no attribute carries the path (a reference's parameters).
func TestTelemetryHTTP(t *testing.T) {
	tt := newTestTelemetry(t)
	c := testCore(t, httpTestConfig())
	const secret = "paramvalue"
	if _, err := c.h.CreateKey(context.Background(), "fake:demo?seed="+secret, shared.ECP256); err != nil {
		t.Fatal(err)
	}
	srv, cl, _ := httpServe(t, c)
	caller := remoteParent(4)
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), caller), carrier)
	digest := sha256.Sum256([]byte("traced"))
	req, err := http.NewRequest("POST", httpKeyURL(srv, "fake:demo?seed="+secret, "sign"), strings.NewReader(fmt.Sprintf(`{"digest":%q}`, base64.StdEncoding.EncodeToString(digest[:]))))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("traceparent", carrier.Get("traceparent"))
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign: %d", resp.StatusCode)
	}
	server := tt.span(t, "HTTP server span under the caller's", childOf("POST /v1/keys/{key}/sign", caller))
	tt.span(t, "knhk.sign under the HTTP server span", childOf("knhk.sign", server.SpanContext()))
	route := false
	for _, a := range server.Attributes() {
		if strings.Contains(a.Value.Emit(), secret) || a.Key == "url.path" {
			t.Errorf("server span attribute %s=%s carries the path", a.Key, a.Value.Emit())
		}
		route = route || (a.Key == "http.route" && a.Value.AsString() == "/v1/keys/{key}/sign")
	}
	if !route {
		t.Errorf("server span has no http.route: %v", server.Attributes())
	}
	if n := tt.count(t, "knhk.sidecar.requests", attribute.String("knhk.principal", httpSPIFFE), attribute.String("knhk.operation", "sign")); n != 1 {
		t.Errorf("knhk.sidecar.requests: %d, want 1", n)
	}

	// What no API call matches is routed with its path, and named without.
	st, body := httpDo(t, cl, "GET", srv.URL+"/v2/"+secret, nil)
	if msg := httpWantError(t, st, body, http.StatusNotFound, "NOT_FOUND", ""); !strings.Contains(msg, "/v2/"+secret) {
		t.Errorf("unknown path: %s", msg)
	}
	tt.span(t, `"HTTP /" span`, func(s sdktrace.ReadOnlySpan) bool { return s.Name() == "HTTP /" })
}

// TestMetricsHandlerConfig: a metrics handler needs the health address it
// is served on, and Reload keeps the one the daemon started with.
func TestMetricsHandlerConfig(t *testing.T) {
	metrics := http.NotFoundHandler()
	if _, err := New(hosttest.New(t), Config{MetricsHandler: metrics}); !errors.Is(err, ErrConfig) {
		t.Fatalf("a metrics handler without a health address: %v, want ErrConfig", err)
	}
	srv, err := New(hosttest.New(t), Config{HealthAddress: "127.0.0.1:1", MetricsHandler: metrics})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Reload(Config{HealthAddress: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	if srv.c.cfg().MetricsHandler == nil {
		t.Fatal("Reload dropped the metrics handler")
	}
}

package semconv_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	jwtv1 "k8s.io/externaljwt/apis/v1"

	"github.com/knhk/knhk/audit"
	"github.com/knhk/knhk/audit/audittest"
	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/semconv"
	"github.com/knhk/knhk/semconv/semconvtest"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/shared/providertest"
	"github.com/knhk/knhk/sidecar"
)

// Values that must never reach telemetry: a reference parameter's value
// and the contents of a signed message.
const (
	secretSeed    = "SECRETSEED123"
	secretState   = "SECRETSTATE456.json" // a state file's name
	secretMessage = "knhk conformance message 5f0c2a"
)

// notExercised are the declared spans and metrics (by group id), and the
// attributes on them (group id + " " + key), that no path below emits,
// each with the reason. Keep it short: a declared item that nothing
// exercises is one whose name or attributes nobody checks.
var notExercised = map[string]string{}

// TestConformance drives every operation through the host (the in-process
// fake, and the fake plugin binary for launches, crashes and restarts) and
// through a sidecar (gRPC on its socket and on TLS, HTTP/JSON, the
// ExternalJWTSigner), records every span and metric in memory, and checks
// them against the registry both ways: every span, metric and attribute
// emitted is declared (with its kind, instrument, unit and value type),
// and every one declared is emitted. No attribute value carries a
// parameter value or a message.
func TestConformance(t *testing.T) {
	reg, err := semconv.Default()
	if err != nil {
		t.Fatal(err)
	}
	tel := newTelemetry(t)
	logger := hclog.New(&hclog.LoggerOptions{Name: "knhk", Level: hclog.Warn, Output: testLog{t}})
	cfg := host.Config{TracerProvider: tel.tp, MeterProvider: tel.mp, Logger: logger}

	h, stopHost, err := hosttest.Start(hosttest.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer stopHost()
	driveHost(t, h)

	driveSidecar(t, h)

	driveBinaryPlugin(t, cfg)

	driveAudit(t, cfg)

	driveKeyGroup(t, cfg)

	if err := stopHost(); err != nil {
		t.Errorf("stopping the host: %v", err)
	}

	// Spans end, and the last metrics are recorded, on the servers'
	// goroutines after the clients have their answers: collect until
	// everything declared has shown up, or a generous deadline.
	var r semconvtest.Report
	deadline := time.Now().Add(30 * time.Second)
	for {
		r = tel.check(t, reg)
		if len(r.Missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range r.Problems {
		t.Error(p)
	}
	for _, m := range r.Missing {
		t.Error(m)
	}
	checkBatchLinks(t, tel.spans.Ended())
}

// testLog sends the hosts' log lines (the injected faults are logged) to
// the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// telemetry is an SDK TracerProvider and MeterProvider recording in
// memory, also set as the global ones (which the sidecar, otelgrpc and
// otelhttp use) until the test ends.
type telemetry struct {
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
}

func newTelemetry(t *testing.T) *telemetry {
	t.Helper()
	// The environment must not make the plugin SDK install exporters of
	// its own (telemetry.Setup) in place of these.
	for _, v := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"} {
		t.Setenv(v, "")
	}
	tel := &telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	oldTP, oldMP, oldProp := otel.GetTracerProvider(), otel.GetMeterProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tel.tp)
	otel.SetMeterProvider(tel.mp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	t.Cleanup(func() {
		otel.SetTracerProvider(oldTP)
		otel.SetMeterProvider(oldMP)
		otel.SetTextMapPropagator(oldProp)
		ctx := context.Background()
		_ = tel.tp.Shutdown(ctx)
		_ = tel.mp.Shutdown(ctx)
	})
	return tel
}

// driveHost runs every host operation, failures included, on the
// in-process fake.
func driveHost(t *testing.T, h *host.Host) {
	t.Helper()
	ctx := context.Background()
	ref := "fake:conformance?seed=" + secretSeed
	k, err := h.CreateKey(ctx, ref, shared.ECP256)
	if err != nil {
		t.Fatalf("create_key: %v", err)
	}
	digest := sha256.Sum256([]byte(secretMessage))
	sig, err := k.SignDigest(ctx, digest[:], host.SignOptions{})
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	msgSig, err := k.SignMessage(ctx, []byte(secretMessage), host.SignOptions{Algorithm: shared.ES256})
	if err != nil {
		t.Fatalf("sign a message: %v", err)
	}
	if err := k.VerifyDigest(ctx, digest[:], sig.Signature, host.SignOptions{}); err != nil {
		t.Errorf("verify: %v", err)
	}
	if err := k.VerifyMessage(ctx, []byte(secretMessage+"!"), msgSig.Signature, host.SignOptions{}); !errors.Is(err, shared.ErrBadSignature) {
		t.Errorf("verify a tampered message: %v, want a bad signature", err)
	}
	for range 2 { // a miss, then a hit
		if _, err := k.PublicKey(ctx, ""); err != nil {
			t.Errorf("public_key: %v", err)
		}
	}
	if _, err := k.Metadata(ctx); err != nil {
		t.Errorf("metadata: %v", err)
	}
	if _, err := k.Rotate(ctx); err != nil {
		t.Errorf("rotate: %v", err)
	}
	promotion(t, k)
	if _, err := h.ListKeys(ctx, "fake", map[string]string{"seed": secretSeed}); err != nil {
		t.Errorf("list_keys: %v", err)
	}
	signBatch(t, h, ref)
	failBatch(t, h, ref)

	// Failures of every operation: an unknown key, a key that exists, a
	// plugin failing in ways knhk has no name for, a signature that does
	// not verify after signing, a provider without a plugin.
	if _, err := h.CreateKey(ctx, ref, shared.ECP256); !errors.Is(err, shared.ErrAlreadyExists) {
		t.Errorf("create_key again: %v, want already exists", err)
	}
	if _, err := h.ListKeys(ctx, "fake", map[string]string{"fault_error": "unavailable"}); !errors.Is(err, shared.ErrUnavailable) {
		t.Errorf("list_keys with an unavailable provider: %v, want unavailable", err)
	}
	if missing, err := h.Key(ctx, "fake:no-such-key?seed="+secretSeed); err != nil {
		t.Errorf("key handle: %v", err)
	} else {
		if _, err := missing.SignDigest(ctx, digest[:], host.SignOptions{Algorithm: shared.ES256}); !errors.Is(err, shared.ErrKeyNotFound) {
			t.Errorf("sign with an unknown key: %v, want key not found", err)
		}
		if err := missing.VerifyDigest(ctx, digest[:], sig.Signature, host.SignOptions{Algorithm: shared.ES256}); !errors.Is(err, shared.ErrKeyNotFound) {
			t.Errorf("verify with an unknown key: %v, want key not found", err)
		}
		if _, err := missing.PublicKey(ctx, ""); !errors.Is(err, shared.ErrKeyNotFound) {
			t.Errorf("public_key of an unknown key: %v, want key not found", err)
		}
		if _, err := missing.Rotate(ctx); !errors.Is(err, shared.ErrKeyNotFound) {
			t.Errorf("rotate an unknown key: %v, want key not found", err)
		}
	}
	// fault_error=unknown wraps no sentinel (codes.Unknown on the wire):
	// error.type _OTHER, and a server-side error for otelgrpc.
	if odd, err := h.Key(ctx, ref+"&fault_error=unknown&fault_ops=key_metadata"); err != nil {
		t.Errorf("key handle: %v", err)
	} else if _, err := odd.Metadata(ctx); err == nil {
		t.Error("metadata from a failing plugin succeeded")
	}
	if corrupt, err := h.Key(ctx, ref+"&fault_corrupt=true&fault_ops=sign"); err != nil {
		t.Errorf("key handle: %v", err)
	} else if _, err := corrupt.SignDigest(ctx, digest[:], host.SignOptions{}); !errors.Is(err, host.ErrVerifyAfterSign) {
		t.Errorf("sign with a corrupting plugin: %v, want a verify-after-sign failure", err)
	}
	if nowhere, err := h.Key(ctx, "nowhere:key?seed="+secretSeed); err == nil {
		if _, err := nowhere.PublicKey(ctx, ""); !errors.Is(err, host.ErrPluginNotFound) {
			t.Errorf("a provider without a plugin: %v, want plugin not found", err)
		}
	} else if !errors.Is(err, host.ErrPluginNotFound) {
		t.Errorf("a provider without a plugin: %v, want plugin not found", err)
	}
}

// signBatch signs concurrently until the host has sent a SignBatch (it
// batches the signatures that arrive while others are in flight, which a
// slowed fake makes sure of).
func signBatch(t *testing.T, h *host.Host, ref string) {
	t.Helper()
	ctx := context.Background()
	k, err := h.Key(ctx, ref+"&fault_latency=20ms&fault_ops=sign")
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte(secretMessage))
	before := h.Stats()
	for round := 0; round < 20; round++ {
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 16 {
			wg.Go(func() {
				if _, err := k.SignDigest(ctx, digest[:], host.SignOptions{}); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent sign: %v", err)
		}
		if h.Stats().SignBatches > before.SignBatches {
			return
		}
	}
	t.Fatal("20 rounds of 16 concurrent signatures made no SignBatch call")
}

// failBatch makes a SignBatch call fail as a whole: signatures that ask
// for a plugin slower than every caller's deadline, so the call, which
// lasts until the latest caller's deadline, ends with it.
func failBatch(t *testing.T, h *host.Host, ref string) {
	t.Helper()
	k, err := h.Key(context.Background(), ref+"&fault_latency=2s&fault_ops=sign")
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte(secretMessage))
	before := h.Stats()
	for round := 0; round < 5; round++ {
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancel()
				if _, err := k.SignDigest(ctx, digest[:], host.SignOptions{}); !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("sign with a slow plugin: %v, want the deadline exceeded", err)
				}
			})
		}
		wg.Wait()
		if h.Stats().SignBatches > before.SignBatches {
			return
		}
	}
	t.Fatal("5 rounds of 16 concurrent signatures made no SignBatch call")
}

// driveBinaryPlugin runs the fake plugin binary, so that a launch, a
// crash (the fault_exit_after fault exits the plugin process) and the
// restart that replaces it happen.
// driveAudit signs through a host with an audit log whose metrics go to
// cfg's meter provider: records written, fsyncs, batch sizes and the
// checkpoint its Close writes.
func driveAudit(t *testing.T, cfg host.Config) {
	t.Helper()
	l := audittest.Open(t, audit.Options{MeterProvider: cfg.MeterProvider})
	cfg.Audit = l.Log
	h, stop, err := hosttest.Start(hosttest.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	k, err := h.CreateKey(context.Background(), "fake:audited?seed="+secretSeed, shared.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte(secretMessage))
	if _, err := k.SignDigest(context.Background(), digest[:], host.SignOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// driveKeyGroup signs through a key group whose first replica fails (a
// failover) and whose second holds another key (a quarantine).
func driveKeyGroup(t *testing.T, cfg host.Config) {
	t.Helper()
	same := "fake:grouped?seed=" + secretSeed
	cfg.KeyGroups = map[string]host.KeyGroup{"release": {ProbeInterval: -1, Replicas: []string{
		same + "&fault_error=unavailable&fault_ops=sign", "fake:other?seed=" + secretSeed, same,
	}}}
	h, stop, err := hosttest.Start(hosttest.WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx := context.Background()
	for _, ref := range []string{same, "fake:other?seed=" + secretSeed} {
		if _, err := h.CreateKey(ctx, ref, shared.ECP256); err != nil {
			t.Fatal(err)
		}
	}
	k, err := h.Key(ctx, "release")
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte(secretMessage))
	if _, err := k.SignDigest(ctx, digest[:], host.SignOptions{}); err != nil {
		t.Fatal(err)
	}
}

func driveBinaryPlugin(t *testing.T, cfg host.Config) {
	t.Helper()
	dir, err := os.MkdirTemp("", "knhk-semconv-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	pluginDir := filepath.Join(dir, "plugins")
	if err := os.Mkdir(pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := providertest.Build("github.com/knhk/knhk/plugins/fake/cmd/knhk-plugin-fake", filepath.Join(pluginDir, "knhk-plugin-fake")); err != nil {
		t.Fatalf("building the fake plugin: %v", err)
	}
	// A plugin that exits before its handshake: a failed launch.
	if err := os.WriteFile(filepath.Join(pluginDir, "knhk-plugin-broken"), []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.PluginDirs, cfg.OnlyPluginDirs = []string{pluginDir}, true
	ctx := context.Background()
	h, err := host.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := h.Close(); err != nil {
			t.Errorf("closing the plugin host: %v", err)
		}
	}()
	if broken, err := h.Key(ctx, "broken:key?seed="+secretSeed); err != nil {
		t.Errorf("key handle: %v", err)
	} else if _, err := broken.PublicKey(ctx, ""); !errors.Is(err, host.ErrPluginCrashed) && !errors.Is(err, host.ErrHandshake) {
		t.Errorf("a plugin that exits at once: %v, want a crash or a failed handshake", err)
	}
	// A state file: the relaunched process must find the key.
	ref := "fake:crashy?seed=" + secretSeed + "&state=" + url.QueryEscape(filepath.Join(dir, secretState))
	if _, err := h.CreateKey(ctx, ref, shared.ECP256); err != nil {
		t.Fatalf("create_key on the plugin binary: %v", err)
	}
	k, err := h.Key(ctx, ref+"&fault_exit_after=1&fault_ops=sign")
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte(secretMessage))
	// The first is served; the second makes the process exit, and the
	// host retries it on a new process, which serves it.
	for i := range 2 {
		if _, err := k.SignDigest(ctx, digest[:], host.SignOptions{}); err != nil {
			t.Errorf("sign %d on the plugin binary: %v", i+1, err)
		}
	}
}

// driveSidecar serves h as a sidecar on a unix socket, a TLS gRPC
// listener and an HTTP/JSON listener, and calls each.
func driveSidecar(t *testing.T, h *host.Host) {
	t.Helper()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "knhk-semconv-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	pki := newPKI(t, dir)
	self := fmt.Sprintf("unix:uid=%d", os.Getuid())
	const remote = "x509:CN=web,O=Example"
	ref := "fake:sidecar?seed=" + secretSeed
	if _, err := h.CreateKey(ctx, ref, shared.ECP256); err != nil {
		t.Fatal(err)
	}
	cfg := sidecar.Config{
		Keys:   map[string]string{"release": ref, "sa": ref},
		Socket: sidecar.SocketConfig{Path: filepath.Join(dir, "s.sock")},
		Policies: []sidecar.Policy{
			{Keys: []string{"release"}, Principals: []string{self, remote}, Operations: []sidecar.Op{sidecar.OpSign, sidecar.OpPublicKey}},
			{Keys: []string{"sa"}, Principals: []string{self}, Operations: []sidecar.Op{sidecar.OpSign, sidecar.OpPublicKey}},
		},
		JWT: &sidecar.JWTConfig{Key: "sa"},
	}
	grpcAddr, httpAddr := freePort(t), freePort(t)
	cfg.TLS = &sidecar.TLSConfig{Address: grpcAddr, CertFile: pki.certFile, KeyFile: pki.keyFile, ClientCAFile: pki.caFile}
	cfg.HTTP = &sidecar.TLSConfig{Address: httpAddr, CertFile: pki.certFile, KeyFile: pki.keyFile, ClientCAFile: pki.caFile}
	srv, err := sidecar.New(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	select {
	case <-srv.Listening():
	case err := <-served:
		served <- err
		t.Fatalf("serve: %v", err)
	}

	digest := sha256.Sum256([]byte(secretMessage))
	// The unix socket: a streamed and a unary signature, a message, a
	// policy denial.
	for _, opts := range [][]client.Option{nil, {client.WithoutStream()}} {
		c, err := client.Dial(ctx, "unix://"+srv.SocketPath(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		k, err := c.Key(ctx, "release")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.SignDigest(ctx, digest[:], host.SignOptions{}); err != nil {
			t.Errorf("sign through the sidecar: %v", err)
		}
		if _, err := k.SignMessage(ctx, []byte(secretMessage), host.SignOptions{}); err != nil {
			t.Errorf("sign a message through the sidecar: %v", err)
		}
		if _, err := k.Rotate(ctx); !errors.Is(err, sidecar.ErrPolicyDenied) {
			t.Errorf("rotate through the sidecar: %v, want a policy denial", err)
		}
		c.Close()
	}

	// gRPC on TLS, as the certificate's subject.
	c, err := client.Dial(ctx, grpcAddr, client.WithTLS(pki.clientTLS()))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := c.Key(ctx, "release"); err != nil {
		t.Error(err)
	} else if _, err := k.PublicKey(ctx, ""); err != nil {
		t.Errorf("public key over TLS: %v", err)
	}
	c.Close()

	// Kubernetes' ExternalJWTSigner on the socket.
	conn, err := grpc.NewClient("unix://"+srv.SocketPath(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwtv1.NewExternalJWTSignerClient(conn).Metadata(ctx, &jwtv1.MetadataRequest{}); err != nil {
		t.Errorf("ExternalJWTSigner metadata: %v", err)
	}
	conn.Close()

	// HTTP/JSON: a signature, a denial, a path no API call has, a method
	// no one knows.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: pki.clientTLS(), ForceAttemptHTTP2: true}}
	defer hc.CloseIdleConnections()
	base := "https://" + httpAddr
	body := `{"digest":"` + base64.StdEncoding.EncodeToString(digest[:]) + `"}`
	for _, req := range []struct {
		method, path, body string
		status             int
	}{
		{http.MethodPost, "/v1/keys/release/sign", body, http.StatusOK},
		{http.MethodPost, "/v1/keys/release/rotate", "", http.StatusForbidden},
		{http.MethodGet, "/v1/nothing/here", "", http.StatusNotFound},
		{"PATCHX", "/v1/keys/release/sign", "", http.StatusNotFound},
	} {
		r, err := http.NewRequestWithContext(ctx, req.method, base+req.path, strings.NewReader(req.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(r)
		if err != nil {
			t.Errorf("%s %s: %v", req.method, req.path, err)
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != req.status {
			t.Errorf("%s %s: status %d, want %d", req.method, req.path, resp.StatusCode, req.status)
		}
	}
}

// freePort is a TCP address on the loopback that nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// pki is a CA, a server certificate for 127.0.0.1 and a client
// certificate, the first two as PEM files.
type pki struct {
	caFile, certFile, keyFile string
	roots                     *x509.CertPool
	client                    tls.Certificate
}

func newPKI(t *testing.T, dir string) *pki {
	t.Helper()
	ca, caKey := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "knhk semconv CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, nil, nil)
	srv, srvKey := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "sidecar"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, caKey)
	cli, cliKey := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "web", Organization: []string{"Example"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, caKey)
	p := &pki{caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "server.pem"), keyFile: filepath.Join(dir, "server.key"),
		roots: x509.NewCertPool(), client: tls.Certificate{Certificate: [][]byte{cli.Raw}, PrivateKey: cliKey}}
	p.roots.AddCert(ca)
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	for file, block := range map[string]*pem.Block{
		p.caFile:   {Type: "CERTIFICATE", Bytes: ca.Raw},
		p.certFile: {Type: "CERTIFICATE", Bytes: srv.Raw},
		p.keyFile:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func (p *pki) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: p.roots, Certificates: []tls.Certificate{p.client}, MinVersion: tls.VersionTLS13}
}

// issue makes a certificate from tmpl, signed by parent (nil: itself).
func issue(t *testing.T, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// check reads every ended span and the metrics so far, and checks them
// against the registry as the root module's (semconvtest.Root).
func (tel *telemetry) check(t *testing.T, reg *semconv.Registry) semconvtest.Report {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return semconvtest.Inspect(reg, semconvtest.Root, semconvtest.Options{NotExercised: notExercised, Secrets: secrets}, tel.spans.Ended(), &rm)
}

// secrets are the strings no telemetry may carry: the seed and state
// parameters' values, the message, and the message in base64.
var secrets = []string{secretSeed, secretState, secretMessage, base64.StdEncoding.EncodeToString([]byte(secretMessage))}

// checkBatchLinks checks the links between knhk.sign_batch and the
// knhk.sign spans it carried, both ways.
func checkBatchLinks(t *testing.T, spans []sdktrace.ReadOnlySpan) {
	t.Helper()
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = s
	}
	batches := 0
	for _, b := range spans {
		if b.Name() != "knhk.sign_batch" {
			continue
		}
		batches++
		if len(b.Links()) == 0 {
			t.Errorf("knhk.sign_batch %s has no links to the signatures it carried", b.SpanContext().SpanID())
		}
		for _, l := range b.Links() {
			s, ok := byID[l.SpanContext.SpanID()]
			if !ok {
				continue // its caller's span may not have ended when this ran
			}
			if s.Name() != "knhk.sign" {
				t.Errorf("knhk.sign_batch links to a %s span, want knhk.sign", s.Name())
				continue
			}
			if !slices.ContainsFunc(s.Links(), func(back sdktrace.Link) bool {
				return back.SpanContext.SpanID() == b.SpanContext().SpanID()
			}) {
				t.Errorf("a knhk.sign span carried by a knhk.sign_batch has no link back to it")
			}
		}
	}
	if batches == 0 {
		t.Error("no knhk.sign_batch span")
	}
}

// The checks catch what they look for: an undeclared attribute, a value
// of the wrong type or outside its enum, a missing required attribute, a
// secret in a value.
func TestConformanceChecks(t *testing.T) {
	reg, err := semconv.Default()
	if err != nil {
		t.Fatal(err)
	}
	m, ok := reg.Metric("knhk.public_key.cache.requests")
	if !ok {
		t.Fatal("knhk.public_key.cache.requests is not declared")
	}
	if m.Instrument != "counter" {
		t.Fatalf("knhk.public_key.cache.requests is a %s: record it as one here", m.Instrument)
	}
	for _, tc := range []struct {
		name string
		kvs  []attribute.KeyValue
		want string
	}{
		{"fine", []attribute.KeyValue{attribute.String("knhk.provider", "fake"), attribute.String("knhk.cache.result", "hit")}, ""},
		{"undeclared", []attribute.KeyValue{attribute.String("knhk.provider", "fake"), attribute.String("knhk.cache.result", "hit"),
			attribute.String("knhk.key.id", "demo")}, "knhk.key.id (= demo) is not declared"},
		{"wrong type", []attribute.KeyValue{attribute.Int("knhk.provider", 3), attribute.String("knhk.cache.result", "hit")}, "is a int, declared a string"},
		{"not a member", []attribute.KeyValue{attribute.String("knhk.provider", "fake"), attribute.String("knhk.cache.result", "maybe")}, "is not one of its declared values"},
		{"required missing", []attribute.KeyValue{attribute.String("knhk.provider", "fake")}, "required attribute knhk.cache.result is missing"},
		{"secret", []attribute.KeyValue{attribute.String("knhk.provider", "fake?seed="+secretSeed), attribute.String("knhk.cache.result", "hit")}, "carries a secret"},
	} {
		rm := &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{{
			Scope: instrumentation.Scope{Name: m.Scope},
			Metrics: []metricdata.Metrics{{Name: m.Name, Unit: m.Unit, Data: metricdata.Sum[int64]{
				IsMonotonic: true, DataPoints: []metricdata.DataPoint[int64]{{Attributes: attribute.NewSet(tc.kvs...), Value: 1}},
			}}},
		}}}
		r := semconvtest.Inspect(reg, semconvtest.Root, semconvtest.Options{Secrets: secrets}, nil, rm)
		got := strings.Join(r.Problems, "\n")
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("%s: problems %q, want one with %q", tc.name, got, tc.want)
		}
	}
}

// promotion makes the version state operations' spans: a pending
// version approved, promoted, and the version it replaced retired.
func promotion(t *testing.T, k *host.Key) {
	t.Helper()
	ctx := context.Background()
	active, err := k.PublicKey(ctx, "")
	if err != nil {
		t.Fatalf("public_key: %v", err)
	}
	v, err := k.RotatePending(ctx)
	if err != nil {
		t.Fatalf("rotate with pending: %v", err)
	}
	if _, err := k.Approve(ctx, v, audittest.NewKey(t, "alice").Signer, time.Minute); err != nil {
		t.Errorf("approve: %v", err)
	}
	if err := k.Promote(ctx, v); err != nil {
		t.Errorf("promote: %v", err)
	}
	if err := k.Retire(ctx, active.Version); err != nil {
		t.Errorf("retire: %v", err)
	}
	// And each failing (error.type): the active version is neither
	// approved, retired nor promoted again from retired.
	if _, err := k.Approve(ctx, v, audittest.NewKey(t, "bob").Signer, time.Minute); !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Errorf("approve the active version: %v, want a failed precondition", err)
	}
	if err := k.Retire(ctx, v); !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Errorf("retire the active version: %v, want a failed precondition", err)
	}
	if err := k.Promote(ctx, active.Version); !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Errorf("promote a retired version: %v, want a failed precondition", err)
	}
}

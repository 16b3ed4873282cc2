package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/shared"
)

// noTelemetryEnv unsets every variable that asks for telemetry export, for
// the test, and restores the global providers Setup may replace.
func noTelemetryEnv(t *testing.T) {
	t.Helper()
	for _, v := range []string{
		"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
	} {
		t.Setenv(v, "") // restored when the test ends
		os.Unsetenv(v)
	}
	tp, mp, prop := otel.GetTracerProvider(), otel.GetMeterProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() {
		// The providers only if they changed: setting the untouched default
		// logs a complaint. Run always sets the propagator.
		if otel.GetTracerProvider() != tp {
			otel.SetTracerProvider(tp)
		}
		if otel.GetMeterProvider() != mp {
			otel.SetMeterProvider(mp)
		}
		otel.SetTextMapPropagator(prop)
	})
}

// TestTelemetryWarning: an OTEL_* setting that does not work is one
// warning on stderr (JSON with -o json), and the command runs.
func TestTelemetryWarning(t *testing.T) {
	noTelemetryEnv(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "nosuch")
	var out, errb bytes.Buffer
	code := Run(context.Background(), []string{"--plugin-dir", t.TempDir(), "plugins", "-o", "json"}, nil, &out, &errb)
	if code != ExitOK || strings.TrimSpace(out.String()) != "[]" {
		t.Fatalf("plugins with a bad OTEL_TRACES_EXPORTER: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	var line map[string]any
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &line) != nil || line["@level"] != "warn" || !strings.Contains(fmt.Sprint(line["@message"]), "without telemetry") {
		t.Fatalf("stderr %q, want one JSON warning that telemetry is off", errb.String())
	}
}

// TestServeMetrics: serve with a health address serves its metrics at
// /metrics in the Prometheus format with no OTEL_* setting; without one,
// telemetry stays off.
func TestServeMetrics(t *testing.T) {
	noTelemetryEnv(t)
	a := &app{stderr: io.Discard, cfg: &config{Serve: &serveBlock{}}}
	a.rootCmd()
	a.daemon.SetContext(context.Background())
	a.startTelemetry(a.daemon)
	if a.metrics != nil {
		t.Fatal("a /metrics handler without a health address")
	}
	a.flushTelemetry(context.Background())

	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	health := l.Addr().String()
	l.Close()
	sock := filepath.Join(dir, "knhk.sock")
	cfg := filepath.Join(dir, "knhk.hcl")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "serve {\n  socket = %q\n  health_address = %q\n}\n", sock, health), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- Run(ctx, []string{"serve", "--config", cfg, "--plugin-dir", dir}, nil, &out, &errb) }()

	get := func() (int, string) {
		resp, err := http.Get("http://" + health + "/metrics")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if code, _ := get(); code == http.StatusOK {
			break
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s", code, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no /metrics on %s: %s", health, errb.String())
		}
	}
	c, err := client.Dial(ctx, "unix://"+sock, client.WithoutStream())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k, err := c.Key(ctx, "nosuch")
	if err == nil {
		_, err = k.PublicKey(ctx, "")
	}
	if !errors.Is(err, shared.ErrKeyNotFound) {
		t.Fatalf("public key of a key the daemon does not name: %v", err)
	}
	code, body := get()
	want := fmt.Sprintf(`knhk_sidecar_requests_total{error_type="key_not_found",knhk_operation="public_key",knhk_principal="unix:uid=%d"`, os.Getuid())
	if code != http.StatusOK || !strings.Contains(body, want) {
		t.Errorf("/metrics: %d, want %s in\n%s", code, want, body)
	}
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("serve exited %d: %s", code, errb.String())
	}
	if strings.Contains(errb.String(), "telemetry") {
		t.Errorf("telemetry warnings: %s", errb.String())
	}
}

// syncBuffer is a bytes.Buffer that a running command may write while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

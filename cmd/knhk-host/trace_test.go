package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// jaegerBinary builds (once per machine, minutes the first time) or finds
// the Jaeger test server with testdeps/jaeger.sh and returns its path. It
// skips the test when the build is impossible here (no Go module proxy);
// CI builds it first with `make testdeps`.
func jaegerBinary(t *testing.T) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command("bash", filepath.Join("..", "..", "testdeps", "jaeger.sh"))
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Skipf("no Jaeger test server: testdeps/jaeger.sh failed (%v); run `make testdeps` where the Go module proxy is reachable:\n%s", err, errb.String())
	}
	bin := strings.TrimSpace(out.String())
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("testdeps/jaeger.sh printed %q, not an executable (%v)", bin, err)
	}
	return bin
}

// jaeger is a running Jaeger with in-memory storage.
type jaeger struct {
	otlp  string // OTLP/HTTP receiver, http://127.0.0.1:port
	query string // query API, http://127.0.0.1:port
}

// jaegerConfig is the collector configuration of a test Jaeger: OTLP/HTTP
// in (traces stored in memory, metrics accepted and dropped, so exporters
// that send both see no errors), the query API, and nothing listening
// beyond 127.0.0.1 (the defaults put the query API on all interfaces and
// the collector's own metrics on a fixed port).
const jaegerConfig = `
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
    metrics:
      receivers: [otlp]
      exporters: [nop]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: memstore
    enable_tracing: false
    http:
      endpoint: %[2]s
    grpc:
      endpoint: %[3]s
receivers:
  otlp:
    protocols:
      http:
        endpoint: %[1]s
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
  nop:
`

// startJaeger starts Jaeger on free 127.0.0.1 ports and waits until its
// query API answers and its OTLP receiver accepts connections. It is
// stopped when the test ends.
func startJaeger(t *testing.T) *jaeger {
	t.Helper()
	bin := jaegerBinary(t)
	otlpAddr, queryAddr, grpcAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	cfg := writeFile(t, t.TempDir(), "jaeger.yaml", fmt.Appendf(nil, jaegerConfig, otlpAddr, queryAddr, grpcAddr))
	cmd := exec.Command(bin, "--config", cfg)
	// Jaeger must not trace itself into the knhk processes' settings.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("jaeger log:\n%s", logs.String())
		}
	})
	j := &jaeger{otlp: "http://" + otlpAddr, query: "http://" + queryAddr}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(j.query + "/api/services")
		if err == nil {
			resp.Body.Close()
		}
		c, derr := net.Dial("tcp", otlpAddr)
		if derr == nil {
			c.Close()
		}
		if err == nil && resp.StatusCode == http.StatusOK && derr == nil {
			return j
		}
		select {
		case <-exited:
			t.Fatalf("jaeger exited:\n%s", logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("jaeger not ready after 2 minutes (query: %v, otlp: %v):\n%s", err, derr, logs.String())
		}
	}
}

// otelEnv sets, for the rest of the test, the environment that makes
// knhk-host (and the plugins it starts, which inherit OTEL_*) export to j
// over OTLP/HTTP, with their default service names and small batching
// delays.
func (j *jaeger) otelEnv(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", j.otlp)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "1000")
	for _, v := range []string{"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER",
		"OTEL_METRICS_EXPORTER", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_PROPAGATORS",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
}

// The JSON of Jaeger's query API (GET /api/traces).
type (
	jTrace struct {
		TraceID   string              `json:"traceID"`
		Spans     []jSpan             `json:"spans"`
		Processes map[string]jProcess `json:"processes"`
	}
	jSpan struct {
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		References    []struct {
			RefType string `json:"refType"`
			SpanID  string `json:"spanID"`
		} `json:"references"`
		Tags []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"tags"`
		ProcessID string `json:"processID"`
	}
	jProcess struct {
		ServiceName string `json:"serviceName"`
	}
)

// traces returns the traces Jaeger holds with spans of service.
func (j *jaeger) traces(service string) ([]jTrace, error) {
	resp, err := http.Get(j.query + "/api/traces?limit=1000&service=" + url.QueryEscape(service))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil // nothing from service yet
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/traces: %s", resp.Status)
	}
	var body struct {
		Data []jTrace `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("GET /api/traces: %w", err)
	}
	return body.Data, nil
}

// waitTrace polls Jaeger until one of service's traces passes check (the
// processes export on their own, so a trace may arrive in parts) and
// returns it; after a generous deadline it fails with why the traces seen
// did not pass.
func (j *jaeger) waitTrace(t *testing.T, service string, check func(jTrace) error) jTrace {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var why []string
	for {
		trs, err := j.traces(service)
		why = why[:0]
		if err != nil {
			why = append(why, err.Error())
		}
		for _, tr := range trs {
			err := check(tr)
			if err == nil {
				return tr
			}
			why = append(why, fmt.Sprintf("trace %s (%d spans: %s): %v", tr.TraceID, len(tr.Spans), tr.summary(), err))
		}
		if time.Now().After(deadline) {
			if len(why) == 0 {
				why = append(why, "no trace of "+service)
			}
			t.Fatalf("no complete trace in Jaeger after 2 minutes:\n%s", strings.Join(why, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s jSpan) tag(k string) (any, bool) {
	for _, kv := range s.Tags {
		if kv.Key == k {
			return kv.Value, true
		}
	}
	return nil, false
}

func (s jSpan) kind() string {
	v, _ := s.tag("span.kind")
	k, _ := v.(string)
	return k
}

// parent is the span's CHILD_OF reference, or "" for a root span.
func (s jSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

func (tr jTrace) service(s jSpan) string { return tr.Processes[s.ProcessID].ServiceName }

func (tr jTrace) span(id string) (jSpan, bool) {
	for _, s := range tr.Spans {
		if s.SpanID == id {
			return s, true
		}
	}
	return jSpan{}, false
}

// find returns the spans of service (any service when "") of kind (any
// kind when "") whose name passes name.
func (tr jTrace) find(service, kind string, name func(string) bool) []jSpan {
	var out []jSpan
	for _, s := range tr.Spans {
		if (service == "" || tr.service(s) == service) && (kind == "" || s.kind() == kind) && name(s.OperationName) {
			out = append(out, s)
		}
	}
	return out
}

// descends reports whether span id descends from ancestor (CHILD_OF links
// only).
func (tr jTrace) descends(id, ancestor string) bool {
	for range len(tr.Spans) {
		s, ok := tr.span(id)
		if !ok {
			return false
		}
		id = s.parent()
		if id == ancestor {
			return true
		}
	}
	return false
}

// summary lists the trace's spans as service/kind/name<-parent, for
// failure messages.
func (tr jTrace) summary() string {
	var b []string
	for _, s := range tr.Spans {
		b = append(b, fmt.Sprintf("%s %s/%s/%s<-%s", s.SpanID, tr.service(s), s.kind(), s.OperationName, s.parent()))
	}
	return strings.Join(b, ", ")
}

func is(name string) func(string) bool { return func(n string) bool { return n == name } }

func isPluginSign(n string) bool {
	return n == "knhk.kms.v1.KeyProvider/Sign" || n == "knhk.kms.v1.KeyProvider/SignBatch"
}

// checkSign checks the part of a trace a host sign makes: the knhk.sign
// span of service knhk-host, under `under` when it is not "", with the
// registry's attributes; a KeyProvider Sign (or SignBatch) client span
// below it; the fake plugin's server span of the same method, the client
// span's child across the process boundary. It returns the knhk.sign span.
func checkSign(tr jTrace, under, keyID string) (jSpan, error) {
	var sign jSpan
	var found bool
	for _, s := range tr.find("knhk-host", "", is("knhk.sign")) {
		if id, _ := s.tag("knhk.key.id"); id == keyID && (under == "" || tr.descends(s.SpanID, under)) {
			sign, found = s, true
		}
	}
	if !found {
		return jSpan{}, fmt.Errorf("no knhk.sign span of knhk-host for key %s", keyID)
	}
	for k, want := range map[string]string{"knhk.operation": "sign", "knhk.provider": "fake", "knhk.key.id": keyID, "knhk.algorithm": "ES256"} {
		if v, _ := sign.tag(k); v != want {
			return jSpan{}, fmt.Errorf("knhk.sign has %s = %v, want %q", k, v, want)
		}
	}
	for _, c := range tr.find("knhk-host", "client", isPluginSign) {
		if !tr.descends(c.SpanID, sign.SpanID) {
			continue
		}
		for _, s := range tr.find("knhk-plugin-fake", "server", is(c.OperationName)) {
			if s.parent() == c.SpanID {
				return sign, nil
			}
		}
		return jSpan{}, fmt.Errorf("no server span %s of knhk-plugin-fake that is the child of client span %s", c.OperationName, c.SpanID)
	}
	return jSpan{}, errors.New("no client span knhk.kms.v1.KeyProvider/Sign (or SignBatch) under knhk.sign")
}

// TestTraceToJaeger exports to a real Jaeger and reads the traces back
// through its query API: a sign by the CLI is one trace across the host
// and the plugin process (W3C trace context over go-plugin's gRPC), each
// with its own service name, and so is a sign through the daemon, from the
// CLI's client span through the daemon to the plugin.
func TestTraceToJaeger(t *testing.T) {
	j := startJaeger(t)
	dir := sharedDir(t)
	state := filepath.Join(dir, "keys.json")
	ok(t, nil, withPlugins("keys", "create", "--key", "fake:trace-local?state="+state, "--type", "ec-p256")...)
	createRelease(t, state)
	j.otelEnv(t)

	t.Run("local", func(t *testing.T) {
		ok(t, []byte("traced locally"), withPlugins("sign", "--key", "fake:trace-local?state="+state)...)
		j.waitTrace(t, "knhk-host", func(tr jTrace) error {
			_, err := checkSign(tr, "", "trace-local")
			return err
		})
		// Every plugin span is in a trace the host started: go-plugin's own
		// services and health checks make no orphan traces.
		trs, err := j.traces("knhk-plugin-fake")
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range trs {
			if len(tr.find("knhk-host", "", func(string) bool { return true })) == 0 {
				t.Errorf("trace %s has spans of the plugin only: %s", tr.TraceID, tr.summary())
			}
		}
	})

	t.Run("daemon", func(t *testing.T) {
		d := startDaemon(t, dir, serveConfig(state, "", allowRoot()))
		ok(t, []byte("traced through the daemon"), "--server", "unix://"+d.socket, "sign", "--key", "release")
		j.waitTrace(t, "knhk-host", func(tr jTrace) error {
			clients := tr.find("knhk-host", "client", func(n string) bool { return strings.HasPrefix(n, "knhk.sidecar.v1.Signer/Sign") })
			if len(clients) == 0 {
				return errors.New("no client span knhk.sidecar.v1.Signer/Sign of the CLI")
			}
			var errs []error
			for _, c := range clients {
				for _, s := range tr.find("knhk-host", "server", is(c.OperationName)) {
					if s.parent() != c.SpanID {
						continue
					}
					_, err := checkSign(tr, s.SpanID, "release")
					if err == nil {
						return nil
					}
					errs = append(errs, fmt.Errorf("under the daemon's %s: %w", s.OperationName, err))
				}
			}
			if len(errs) == 0 {
				return errors.New("no daemon server span that is the child of the CLI's client span")
			}
			return errors.Join(errs...)
		})
	})
}

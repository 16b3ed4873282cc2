package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.hcl", `
plugin_dirs    = ["plugins", "/abs/plugins"]
lock_file      = "knhk.lock"
log_level      = "debug"
start_timeout  = "5s"
call_timeout   = "1m"
public_key_ttl = "0s"
plugin_env     = { aws = ["AWS_CONFIG_FILE"], "*" = ["MYCORP_*"] }
key "release" {
  ref    = "aws:alias/release"
  params = { region = "eu-west-1" }
}
key "dev" { ref = "fake:dev" }
`)
	cfg, err := loadConfig(good)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.PluginDirs; len(got) != 2 || got[0] != filepath.Join(dir, "plugins") || got[1] != "/abs/plugins" {
		t.Errorf("plugin_dirs %v", got)
	}
	if cfg.LockFile != filepath.Join(dir, "knhk.lock") || cfg.LogLevel != "debug" {
		t.Errorf("lock_file %q, log_level %q", cfg.LockFile, cfg.LogLevel)
	}
	if cfg.StartTimeout != 5*time.Second || cfg.CallTimeout != time.Minute || cfg.PublicKeyTTL != 0 {
		t.Errorf("timeouts %v %v %v", cfg.StartTimeout, cfg.CallTimeout, cfg.PublicKeyTTL)
	}
	if e := cfg.PluginEnv; len(e) != 2 || e["aws"][0] != "AWS_CONFIG_FILE" || e["*"][0] != "MYCORP_*" {
		t.Errorf("plugin_env %v", e)
	}
	if k := cfg.Keys["release"]; k.Ref != "aws:alias/release" || k.Params["region"] != "eu-west-1" || cfg.Keys["dev"].Ref != "fake:dev" {
		t.Errorf("keys %+v", cfg.Keys)
	}

	empty, err := loadConfig("")
	if err != nil || len(empty.Keys) != 0 || empty.PluginDirs != nil {
		t.Errorf("empty path: %+v, %v", empty, err)
	}

	for _, tc := range []struct{ name, src, want string }{
		{"syntax", "key \"x\" {\n ref = \n}\n", "bad.hcl:2"},
		{"unknown attribute", "plugin_dir = \"x\"\n", `"plugin_dir" is not expected`},
		{"bad duration", "call_timeout = \"soon\"\n", "call_timeout"},
		{"negative duration", "start_timeout = \"-1s\"\n", "start_timeout"},
		{"duplicate key", "key \"a\" { ref = \"fake:a\" }\nkey \"a\" { ref = \"fake:b\" }\n", "defined twice"},
		{"empty ref", "key \"a\" { ref = \"\" }\n", "empty ref"},
		{"missing ref", "key \"a\" {}\n", "ref"},
		{"empty plugin dir", "plugin_dirs = [\"\"]\n", "empty entry"},
		{"wrong type", "plugin_dirs = \"x\"\n", "list of string required"},
		{"bad plugin_env name", "plugin_env = { aws = [\"AWS_*_X\"] }\n", "not a variable name"},
	} {
		p := write("bad.hcl", tc.src)
		_, err := loadConfig(p)
		if !errors.Is(err, errConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want errConfig mentioning %q", tc.name, err, tc.want)
		}
	}
	if _, err := loadConfig(filepath.Join(dir, "absent.hcl")); !errors.Is(err, errConfig) || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("absent file: %v", err)
	}
}

func TestDecodeSignature(t *testing.T) {
	raw := []byte{0x30, 0x45, 0x02, 0x21, 0x00, 0xff, 0x10, 0x80}
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte
	}{
		{"raw DER", raw, raw},
		{"std base64 with newline", []byte(base64.StdEncoding.EncodeToString(raw) + "\n"), raw},
		{"unpadded", []byte(base64.RawStdEncoding.EncodeToString([]byte{1, 2, 3, 4})), []byte{1, 2, 3, 4}},
		{"url alphabet", []byte(base64.RawURLEncoding.EncodeToString([]byte{0xfb, 0xff, 0xfe})), []byte{0xfb, 0xff, 0xfe}},
		{"empty", []byte{}, []byte{}},
	} {
		if got := decodeSignature(tc.in); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: %x, want %x", tc.name, got, tc.want)
		}
	}
}

func TestScanOutputFlag(t *testing.T) {
	for args, want := range map[string]string{
		"-o json bogus":          "json",
		"--output=json bogus":    "json",
		"--output json x":        "json",
		"-ojson x":               "json",
		"-o=json x":              "json",
		"bogus":                  "",
		"sign -- -o json":        "",
		"-o text --output=json":  "json",
		"--output=json -o text":  "text",
		"sign --key fake:x -o":   "",
		"sign --key fake:x --in": "",
	} {
		if got := scanOutputFlag(strings.Fields(args)); got != want {
			t.Errorf("%q: %q, want %q", args, got, want)
		}
	}
}

// TestClassify pins the exit status of each kind of error.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{errInvalidSignature, ExitInvalid},
		{usagef("", "x"), ExitUsage},
		{fmt.Errorf("load: %w", errConfig), ExitUsage},
		{fmt.Errorf("x: %w", host.ErrMalformedRef), ExitUsage},
		{fmt.Errorf("x: %w", host.ErrPluginNotFound), ExitUsage},
		{fmt.Errorf("x: %w", host.ErrLockFile), ExitUsage},
		{fmt.Errorf("x: %w", shared.ErrUnsupportedAlgorithm), ExitUsage},
		{fmt.Errorf("x: %w", shared.ErrInvalidArgument), ExitUsage},
		{fmt.Errorf("x: %w", host.ErrPluginRefused), ExitRuntime},
		{fmt.Errorf("x: %w", host.ErrHandshake), ExitRuntime},
		{fmt.Errorf("x: %w", shared.ErrKeyNotFound), ExitRuntime},
		{fmt.Errorf("x: %w", shared.ErrPermissionDenied), ExitRuntime},
		{fmt.Errorf("x: %w", shared.ErrUnavailable), ExitRuntime},
		{fmt.Errorf("x: %w", host.ErrCallTimeout), ExitRuntime},
		{fmt.Errorf("x: %w", host.ErrVerifyAfterSign), ExitRuntime},
		{fmt.Errorf("x: %w", context.Canceled), ExitRuntime},
		{fmt.Errorf("x: %w", client.ErrPolicyDenied), ExitRuntime},
		{&client.UnreachableError{Target: "unix:///run/knhk.sock", Err: shared.ErrUnavailable}, ExitRuntime},
		{errors.New("anything else"), ExitRuntime},
	} {
		code, hint := classify(tc.err, "knhk-host sign")
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d", tc.err, code, tc.code)
		}
		if code != ExitInvalid && hint == "" {
			t.Errorf("%v: no hint", tc.err)
		}
	}
}

func TestRenderErrorIsOneLine(t *testing.T) {
	var b bytes.Buffer
	code := renderError(&b, errors.New("first\nsecond\n\tthird"), "knhk-host sign", false)
	if code != ExitRuntime || b.String() != "knhk-host sign: first second third (rerun with --log-level debug for details)\n" {
		t.Fatalf("exit %d, %q", code, b.String())
	}
}

// TestRunWithoutPlugins runs commands that need no plugin in process.
func TestRunWithoutPlugins(t *testing.T) {
	var out, errb bytes.Buffer
	dir := t.TempDir()
	code := Run(context.Background(), []string{"--plugin-dir", dir, "plugins", "-o", "json"}, nil, &out, &errb)
	if code != ExitOK || strings.TrimSpace(out.String()) != "[]" || errb.Len() != 0 {
		t.Fatalf("plugins in an empty directory: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	out.Reset()
	code = Run(context.Background(), []string{"--plugin-dir", dir, "sign", "--key", "fake:k"}, strings.NewReader("m"), &out, &errb)
	if code != ExitUsage || out.Len() != 0 || !strings.Contains(errb.String(), "plugin not found") {
		t.Fatalf("sign without the plugin: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

// TestClassifySidecar pins the hints of the sidecar's own failures: they
// say what to do about the daemon, not about a provider.
func TestClassifySidecar(t *testing.T) {
	_, hint := classify(fmt.Errorf("sign: %w", client.ErrPolicyDenied), "knhk-host sign")
	if !strings.Contains(hint, "sidecar's policy") {
		t.Errorf("policy denied: hint %q", hint)
	}
	_, hint = classify(fmt.Errorf("sign: %w", &client.UnreachableError{Target: "unix:///run/knhk.sock", Err: shared.ErrUnavailable}), "knhk-host sign")
	if !strings.Contains(hint, "is knhk-host serve running at unix:///run/knhk.sock?") {
		t.Errorf("unreachable: hint %q", hint)
	}
}

func TestServerTarget(t *testing.T) {
	for in, want := range map[string]string{
		"unix:///run/knhk/knhk.sock": "unix:///run/knhk/knhk.sock",
		"unix:knhk.sock":             "unix:knhk.sock",
		"/run/knhk/knhk.sock":        "unix:///run/knhk/knhk.sock",
		" /run/knhk/knhk.sock\n":     "unix:///run/knhk/knhk.sock",
	} {
		if got, unix, err := serverTarget(in); err != nil || got != want || !unix {
			t.Errorf("%q: %q, unix %v, %v; want unix %q", in, got, unix, err, want)
		}
	}
	// TCP: the CLI authenticates with its SPIFFE X.509-SVID.
	for _, in := range []string{"localhost:8443", "127.0.0.1:8443", "dns:///knhk.example:8443"} {
		if got, unix, err := serverTarget(in); err != nil || got != in || unix {
			t.Errorf("%q: %q, unix %v, %v; want TCP %q", in, got, unix, err, in)
		}
	}
	for _, in := range []string{"https://knhk.example", "knhk.sock", "knhk.example", ":8443"} {
		var ue *usageError
		if _, _, err := serverTarget(in); !errors.As(err, &ue) || !strings.Contains(ue.hint, "unix:///PATH") {
			t.Errorf("%q: %v, want a usage error naming the forms --server takes", in, err)
		}
	}
}

// TestResolveWithServer: with --server a key name is the daemon's and goes
// as given, even when --config names a key alike; a reference gets the
// --param values.
func TestResolveWithServer(t *testing.T) {
	c, err := client.Dial(context.Background(), "unix:///nonexistent/knhk.sock") // no connection is made
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := &app{cfg: &config{Keys: map[string]keyBlock{"release": {Name: "release", Ref: "fake:local"}}}, client: c}
	spec, err := a.resolve(keyFlags{key: "release"})
	if err != nil || spec.String() != "release" || spec.show() != "release" {
		t.Errorf("name: %+v, %v", spec, err)
	}
	spec, err = a.resolve(keyFlags{key: "fake:demo?seed=a", params: []string{"state=/var/k.json", "seed=b"}})
	if err != nil || spec.String() != "fake:demo?seed=b&state=%2Fvar%2Fk.json" || spec.show() != "fake:demo" {
		t.Errorf("reference: %q (%q), %v", spec.String(), spec.show(), err)
	}
	var ue *usageError
	if _, err := a.resolve(keyFlags{key: "release", params: []string{"seed=b"}}); !errors.As(err, &ue) {
		t.Errorf("--param with a name: %v, want a usage error", err)
	}
	if _, err := a.resolve(keyFlags{key: "fake:"}); !errors.Is(err, host.ErrMalformedRef) {
		t.Errorf("malformed reference: %v", err)
	}
}

// TestServerFlag runs what needs no daemon: plugins refuse --server but
// run with $KNHK_SERVER set, and a daemon that is not there is exit
// status 3 with a hint naming the socket.
func TestServerFlag(t *testing.T) {
	dir := t.TempDir()
	sock := "unix://" + filepath.Join(dir, "absent.sock")
	var out, errb bytes.Buffer
	code := Run(context.Background(), []string{"--server", sock, "--plugin-dir", dir, "plugins"}, nil, &out, &errb)
	if code != ExitUsage || out.Len() != 0 || !strings.Contains(errb.String(), "runs locally") {
		t.Errorf("plugins --server: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	t.Setenv(serverEnv, sock)
	out.Reset()
	errb.Reset()
	code = Run(context.Background(), []string{"--plugin-dir", dir, "plugins", "-o", "json"}, nil, &out, &errb)
	if code != ExitOK || strings.TrimSpace(out.String()) != "[]" {
		t.Errorf("plugins with $%s: exit %d, stdout %q, stderr %q", serverEnv, code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	code = Run(context.Background(), []string{"pubkey", "--key", "release"}, nil, &out, &errb)
	if code != ExitRuntime || out.Len() != 0 || !strings.Contains(errb.String(), "is knhk-host serve running at "+sock+"?") {
		t.Errorf("pubkey with no daemon: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	// A TCP daemon takes SPIFFE callers: without a Workload API to get
	// the caller's SVID from, a usage error says what to pass.
	t.Setenv("SPIFFE_ENDPOINT_SOCKET", "")
	code = Run(context.Background(), []string{"--server", "localhost:8443", "pubkey", "--key", "release"}, nil, &out, &errb)
	if code != ExitUsage || !strings.Contains(errb.String(), "--spiffe-socket") || !strings.Contains(errb.String(), "TCP address") {
		t.Errorf("TCP --server without a Workload API: exit %d, stderr %q", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	code = Run(context.Background(), []string{"--server", "localhost:8443", "--spiffe-socket", "unix:///x", "--server-spiffe-id", "spiffe://Example.org/knhk", "pubkey", "--key", "release"}, nil, &out, &errb)
	if code != ExitUsage || !strings.Contains(errb.String(), "--server-spiffe-id") {
		t.Errorf("TCP --server with a bad --server-spiffe-id: exit %d, stderr %q", code, errb.String())
	}
}

package main

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Binaries built once by TestMain. The CLI lives in its own directory with
// no plugins/ next to it, so every test must point at the plugin directory
// (flag or config): nothing is found by accident.
var (
	binDir     string // holds knhk-host
	pluginDir  string // holds knhk-plugin-fake
	knhkHost   string
	fakePlugin string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "knhk-host-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	binDir = filepath.Join(tmp, "bin")
	pluginDir = filepath.Join(tmp, "plugins")
	knhkHost = filepath.Join(binDir, "knhk-host")
	fakePlugin = filepath.Join(pluginDir, "knhk-plugin-fake")
	for out, pkg := range map[string]string{knhkHost: ".", fakePlugin: "../../plugins/fake/cmd/knhk-plugin-fake"} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", pkg, err)
			return 1
		}
		// The host refuses group- or world-writable plugins; do not depend
		// on the umask.
		if err := os.Chmod(out, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	code := m.Run()
	if left := pluginsRunning(tmp); len(left) > 0 && code == 0 {
		fmt.Fprintf(os.Stderr, "plugin processes left behind after knhk-host exited: %v\n", left)
		return 1
	}
	return code
}

// pluginsRunning lists processes running a binary under dir, waiting a
// little for any that are still exiting. Linux only (it reads /proc);
// elsewhere it finds nothing.
func pluginsRunning(dir string) []string {
	var left []string
	for range 50 {
		left = left[:0]
		procs, _ := filepath.Glob("/proc/[0-9]*/exe")
		for _, p := range procs {
			if exe, err := os.Readlink(p); err == nil && strings.HasPrefix(exe, dir) {
				left = append(left, filepath.Dir(p)+" "+exe)
			}
		}
		if len(left) == 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return left
}

// result is one run of the built CLI.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// knhk runs the built knhk-host with args and stdin. KNHK_PLUGIN_PATH is
// cleared so the machine's environment cannot change what is found.
func knhk(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	return run(t, knhkHost, "", stdin, args...)
}

// run runs the knhk-host binary bin with KNHK_PLUGIN_PATH set to
// pluginPath, and args and stdin.
func run(t *testing.T, bin, pluginPath string, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "KNHK_PLUGIN_PATH="+pluginPath)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := exitCode(t, args, err)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// ok runs the CLI and fails the test unless it exits 0 with a clean stderr.
func ok(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	r := knhk(t, stdin, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("knhk-host %s: %v", strings.Join(args, " "), r)
	}
	return r.stdout
}

// withPlugins prepends the plugin directory flag.
func withPlugins(args ...string) []string {
	return append([]string{"--plugin-dir", pluginDir}, args...)
}

// writeFile writes a file in dir and returns its path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// parsePEM checks that out is exactly one PUBLIC KEY block and nothing else.
func parsePEM(t *testing.T, out string) crypto.PublicKey {
	t.Helper()
	block, rest := pem.Decode([]byte(out))
	if block == nil || block.Type != "PUBLIC KEY" || len(rest) != 0 {
		t.Fatalf("stdout is not exactly one PUBLIC KEY PEM block: %q", out)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatalf("PEM does not hold a SubjectPublicKeyInfo: %v", err)
	}
	return pub
}

// decodeB64 decodes the one line of base64 sign prints.
func decodeB64(t *testing.T, out string) []byte {
	t.Helper()
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("signature output is not one line: %q", out)
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("signature output is not base64: %v", err)
	}
	return b
}

// decodeJSON decodes one JSON value and fails on trailing data.
func decodeJSON(t *testing.T, s string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("not JSON of the expected shape: %v: %q", err, s)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("trailing data after JSON: %q", s)
	}
}

// oneLine checks that an error message is exactly one line.
func oneLine(t *testing.T, s string) {
	t.Helper()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") || strings.TrimSpace(s) == "" {
		t.Fatalf("stderr is not one line: %q", s)
	}
}

// decodeJSONAny decodes one JSON value, allowing unknown fields.
func decodeJSONAny(t *testing.T, s string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("not JSON of the expected shape: %v: %q", err, s)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("trailing data after JSON: %q", s)
	}
}

// sameKey reports whether two public keys are equal.
func sameKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// exitCode is the exit status of a finished knhk-host run; a run that
// could not start or was killed fails the test.
func exitCode(t *testing.T, args []string, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	ee, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatalf("run knhk-host %v: %v", args, err)
	}
	return ee.ExitCode()
}

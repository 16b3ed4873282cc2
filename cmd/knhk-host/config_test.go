package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestConfigFile names keys in an HCL config file and uses them end to
// end; the file's plugin directory, lock file and timeouts take effect and
// flags override them.
func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "keys.json")
	cfg := writeFile(t, dir, "knhk.hcl", []byte(fmt.Sprintf(`
# knhk-host configuration
plugin_dirs    = [%q]
lock_file      = "knhk.lock" # relative to this file
start_timeout  = "10s"
call_timeout   = "20s"
public_key_ttl = "1m"
log_level      = "off"

key "release" {
  ref    = "fake:release"
  params = { state = %q }
}

key "rsa" {
  ref = "fake:rsa-release?state=%s"
}
`, pluginDir, state, state)))
	c := func(args ...string) []string { return append([]string{"--config", cfg}, args...) }

	if out := ok(t, nil, c("plugins", "lock")...); !strings.Contains(out, "fake") {
		t.Fatalf("plugins lock: %q", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "knhk.lock")); err != nil {
		t.Fatalf("lock_file was not resolved next to the config file: %v", err)
	}
	if out := ok(t, nil, c("keys", "create", "--key", "release", "--type", "ec-p384")...); out != "key:     fake:release\nversion: 1\n" {
		t.Fatalf("keys create: %q", out)
	}
	ok(t, nil, c("keys", "create", "--key", "rsa", "--type", "rsa-2048")...)

	for _, name := range []string{"release", "rsa"} {
		msgFile := writeFile(t, dir, "msg-"+name, []byte("release 1.2.3\n"))
		sigFile := filepath.Join(dir, name+".sig")
		ok(t, nil, c("sign", "--key", name, "--in", msgFile, "--out", sigFile)...)
		if out := ok(t, nil, c("verify", "--key", name, "--in", msgFile, "--sig", sigFile)...); out != "valid\n" {
			t.Fatalf("verify --key %s: %q", name, out)
		}
	}
	// The name resolves to the same key as the full reference.
	byName := parsePEM(t, ok(t, nil, c("pubkey", "--key", "release")...))
	byRef := parsePEM(t, ok(t, nil, withPlugins("pubkey", "--key", "fake:release?state="+state)...))
	if !sameKey(byName, byRef) {
		t.Fatal("--key release is not fake:release with the configured parameters")
	}
	if v := ok(t, nil, c("rotate", "--key", "release")...); v != "2\n" {
		t.Fatalf("rotate --key release: %q", v)
	}
	if out := ok(t, nil, c("metadata", "--key", "release")...); !regexp.MustCompile(`(?m)^current version:\s+2$`).MatchString(out) {
		t.Fatalf("metadata --key release:\n%s", out)
	}

	// --param wins over the config's params: another state file has no such key.
	r := knhk(t, nil, c("pubkey", "--key", "release", "--param", "state="+filepath.Join(dir, "other.json"))...)
	if r.code != 3 || !strings.Contains(r.stderr, "key not found") {
		t.Fatalf("--param over config params: %v, want key not found", r)
	}
	// --plugin-dir wins over plugin_dirs.
	r = knhk(t, nil, c("--plugin-dir", filepath.Join(dir, "empty"), "pubkey", "--key", "release")...)
	if r.code != 2 || !strings.Contains(r.stderr, "plugin not found") {
		t.Fatalf("--plugin-dir over plugin_dirs: %v, want plugin not found", r)
	}
	// The configured lock file is enforced.
	if err := os.WriteFile(filepath.Join(dir, "knhk.lock"), []byte("knhk-plugin-fake sha256:"+strings.Repeat("0", 64)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = knhk(t, nil, c("pubkey", "--key", "release")...)
	if r.code != 3 || !strings.Contains(r.stderr, "knhk-plugin-fake") {
		t.Fatalf("configured lock file with another hash: %v, want the plugin refused", r)
	}
}

// TestHelp checks that every command has --help with an example, and that
// the exit statuses are documented.
func TestHelp(t *testing.T) {
	for _, cmd := range []string{"", "plugins", "plugins lock", "keys", "keys create", "keys list", "sign", "verify", "pubkey", "rotate", "metadata"} {
		t.Run("knhk-host "+cmd, func(t *testing.T) {
			out := ok(t, nil, append(strings.Fields(cmd), "--help")...)
			for _, want := range []string{"Usage:", "Examples:", "  knhk-host " + cmd, "--plugin-dir", "-o, --output"} {
				if !strings.Contains(out, want) {
					t.Fatalf("--help lacks %q:\n%s", want, out)
				}
			}
		})
	}
	out := ok(t, nil, "--help")
	for _, want := range []string{"Exit status:", "0  success", "1  verify: the signature is invalid", "2  usage error", "3  runtime error"} {
		if !strings.Contains(out, want) {
			t.Fatalf("root --help lacks %q", want)
		}
	}
}

// TestDemoScript runs demo.sh (what `make demo` runs) against a bin
// directory laid out as `make build` lays it out.
func TestDemoScript(t *testing.T) {
	bin := t.TempDir()
	if err := os.Mkdir(filepath.Join(bin, "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{knhkHost: "knhk-host", fakePlugin: "plugins/knhk-plugin-fake"} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bin, dst), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", "demo.sh", bin)
	cmd.Env = append(os.Environ(), "KNHK_PLUGIN_PATH=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo.sh: %v\n%s", err, out)
	}
	for _, want := range []string{"key:     fake:demo", "\nvalid\n", "\ninvalid\n", "-----BEGIN PUBLIC KEY-----"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("demo.sh output lacks %q:\n%s", want, out)
		}
	}
	if r := exec.Command("bash", "demo.sh", t.TempDir()); r.Run() == nil {
		t.Fatal("demo.sh succeeded without binaries")
	}
}

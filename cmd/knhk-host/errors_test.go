package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInvocations runs invocations that must fail, each with its
// documented exit status (2 usage, 3 runtime) and a one-line message on
// stderr, nothing on stdout; and the same as one JSON object with -o json.
func TestBadInvocations(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "keys.json")
	ec := "fake:ec?state=" + state
	ed := "fake:ed?state=" + state
	ok(t, nil, withPlugins("keys", "create", "--key", ec, "--type", "ec-p256")...)
	ok(t, nil, withPlugins("keys", "create", "--key", ed, "--type", "ed25519")...)
	badHCL := writeFile(t, dir, "bad.hcl", []byte("key \"release\" {\n  ref = \n}\n"))
	badDuration := writeFile(t, dir, "dur.hcl", []byte("call_timeout = \"soon\"\n"))
	unknownAttr := writeFile(t, dir, "attr.hcl", []byte("plugin_directory = \"/x\"\n"))
	named := writeFile(t, dir, "named.hcl", []byte("key \"release\" {\n  ref = \"fake:ec\"\n}\n"))
	badSig := writeFile(t, dir, "sig", []byte("AAAA\n"))
	shortDigest := []byte("too short")

	for _, tc := range []struct {
		name  string
		args  []string
		stdin []byte
		code  int
		want  string // in the message
	}{
		{"unknown command", []string{"frobnicate"}, nil, 2, `unknown command "frobnicate"`},
		{"mistyped command", []string{"sgin"}, nil, 2, "did you mean sign?"},
		{"mistyped subcommand", []string{"keys", "craete"}, nil, 2, "did you mean create?"},
		{"unknown subcommand", []string{"keys", "frobnicate"}, nil, 2, `unknown command "frobnicate"`},
		{"missing subcommand", []string{"keys"}, nil, 2, "missing subcommand"},
		{"extra argument", []string{"rotate", "--key", ec, "now"}, nil, 2, `unknown command "now"`},
		{"unknown flag", []string{"sign", "--frob"}, nil, 2, "unknown flag: --frob"},
		{"unknown global flag", []string{"--frob", "plugins"}, nil, 2, "unknown flag: --frob"},
		{"flag without value", []string{"sign", "--key"}, nil, 2, "flag needs an argument"},
		{"missing --key", withPlugins("sign"), []byte("m"), 2, "missing --key"},
		{"missing --key on pubkey", withPlugins("pubkey"), nil, 2, "missing --key"},
		{"malformed reference", withPlugins("sign", "--key", "no-colon-here"), []byte("m"), 2, "malformed key reference"},
		{"malformed reference params", withPlugins("pubkey", "--key", "fake:k?state"), nil, 2, "malformed key reference"},
		{"malformed --param", withPlugins("pubkey", "--key", ec, "--param", "novalue"), nil, 2, "--param"},
		{"unknown provider", withPlugins("sign", "--key", "nosuch:k"), []byte("m"), 2, "knhk-plugin-nosuch"},
		{"unknown provider in list", withPlugins("keys", "list", "--provider", "nosuch"), nil, 2, "knhk-plugin-nosuch"},
		{"missing --provider", withPlugins("keys", "list"), nil, 2, "missing --provider"},
		{"unknown algorithm", withPlugins("sign", "--key", ec, "--alg", "XS256"), []byte("m"), 2, `unknown algorithm "XS256"`},
		{"algorithm the key lacks", withPlugins("sign", "--key", ec, "--alg", "RS256"), []byte("m"), 2, "RS256"},
		{"unknown key type", withPlugins("keys", "create", "--key", "fake:new?state="+state, "--type", "ec-p999"), nil, 2, `unknown key type "ec-p999"`},
		{"missing --type", withPlugins("keys", "create", "--key", "fake:new?state="+state), nil, 2, "missing --type"},
		{"unknown key parameter", withPlugins("pubkey", "--key", "fake:ec?colour=blue"), nil, 2, `unknown parameter "colour"`},
		{"unreadable input", withPlugins("sign", "--key", ec, "--in", filepath.Join(dir, "nope")), nil, 2, "no such file"},
		{"unreadable signature", withPlugins("verify", "--key", ec, "--sig", filepath.Join(dir, "nope")), []byte("m"), 2, "no such file"},
		{"input is a directory", withPlugins("sign", "--key", ec, "--in", dir), nil, 2, "is a directory"},
		{"missing --sig", withPlugins("verify", "--key", ec), []byte("m"), 2, "missing --sig"},
		{"signature and message both on stdin", withPlugins("verify", "--key", ec, "--sig", "-"), []byte("m"), 2, "stdin"},
		{"wrong digest length", withPlugins("sign", "--key", ec, "--prehashed"), shortDigest, 2, "invalid argument"},
		{"digest far too long", withPlugins("sign", "--key", ec, "--prehashed"), make([]byte, 1<<20), 2, "digest is over 1024 bytes"},
		{"signature far too long", withPlugins("verify", "--key", ec, "--sig", "-", "--in", badSig), make([]byte, 1<<20), 2, "signature is over 65536 bytes"},
		{"EdDSA prehashed", withPlugins("sign", "--key", ed, "--prehashed"), shortDigest, 2, "Ed25519"},
		{"EdDSA prehashed by --alg", withPlugins("sign", "--key", ed, "--alg", "EdDSA", "--prehashed"), shortDigest, 2, "EdDSA"},
		{"malformed config", withPlugins("--config", badHCL, "sign", "--key", "release"), []byte("m"), 2, badHCL},
		{"config with a bad duration", withPlugins("--config", badDuration, "plugins"), nil, 2, "call_timeout"},
		{"config with an unknown attribute", withPlugins("--config", unknownAttr, "plugins"), nil, 2, "plugin_directory"},
		{"missing config", withPlugins("--config", filepath.Join(dir, "nope.hcl"), "plugins"), nil, 2, "no such file"},
		{"key name not in config", withPlugins("--config", named, "pubkey", "--key", "relase"), nil, 2, `no key named "relase"`},
		{"unknown output format", withPlugins("-o", "yaml", "plugins"), nil, 2, `"yaml"`},
		{"unknown pubkey format", withPlugins("pubkey", "--key", ec, "--format", "der"), nil, 2, `"der"`},
		{"unknown log level", withPlugins("--log-level", "loud", "plugins"), nil, 2, `"loud"`},
		{"lock without a lock file", withPlugins("plugins", "lock"), nil, 2, "no lock file"},
		{"key not found", withPlugins("sign", "--key", "fake:absent?state="+state), []byte("m"), 3, "key not found"},
		{"key exists", withPlugins("keys", "create", "--key", ec, "--type", "ec-p256"), nil, 3, "exists"},
		{"unknown version", withPlugins("pubkey", "--key", ec, "--version", "99"), nil, 3, "99"},
		{"provider error", withPlugins("sign", "--key", ec+"&fault_error=unavailable"), []byte("m"), 3, "unavailable"},
		{"plugin returns a bad signature", withPlugins("sign", "--key", ec+"&fault_corrupt=true"), []byte("m"), 3, "does not verify"},
		{"plugin crashes", withPlugins("sign", "--key", ec+"&fault_exit_after=0&fault_ops=sign"), []byte("m"), 3, "sign"},
		{"secret parameter", withPlugins("sign", "--key", "fake:absent?seed=s3cr3t-seed&state="+state), []byte("m"), 3, "key not found"},
		{"secret parameter, malformed", withPlugins("sign", "--key", "fake:absent?seed=s3cr3t-seed&seed=s3cr3t-seed"), []byte("m"), 2, "malformed key reference"},
		{"verify with a missing key", withPlugins("verify", "--key", "fake:absent?state="+state, "--sig", badSig), []byte("m"), 3, "key not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := knhk(t, tc.stdin, tc.args...)
			if r.code != tc.code || r.stdout != "" {
				t.Fatalf("%v, want exit %d and no stdout", r, tc.code)
			}
			oneLine(t, r.stderr)
			if !strings.Contains(r.stderr, tc.want) || !strings.HasPrefix(r.stderr, "knhk-host") {
				t.Fatalf("stderr %q does not start with knhk-host or lacks %q", r.stderr, tc.want)
			}
			if strings.Contains(r.stderr, "s3cr3t") {
				t.Fatalf("stderr shows a parameter value: %q", r.stderr)
			}
			if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
				t.Fatalf("stderr has a stack trace: %q", r.stderr)
			}

			// -o json: the same failure as one JSON object on stderr.
			j := knhk(t, tc.stdin, append([]string{"-o", "json"}, tc.args...)...)
			if tc.name == "unknown output format" {
				return // -o is what is wrong here
			}
			var e struct {
				Error    string `json:"error"`
				Hint     string `json:"hint"`
				Command  string `json:"command"`
				ExitCode int    `json:"exit_code"`
			}
			if j.code != tc.code || j.stdout != "" {
				t.Fatalf("-o json: %v, want exit %d and no stdout", j, tc.code)
			}
			oneLine(t, j.stderr)
			if strings.Contains(j.stderr, "s3cr3t") {
				t.Fatalf("-o json stderr shows a parameter value: %q", j.stderr)
			}
			decodeJSON(t, j.stderr, &e)
			if e.ExitCode != tc.code || !strings.Contains(e.Error, tc.want) || e.Hint == "" || !strings.HasPrefix(e.Command, "knhk-host") {
				t.Fatalf("-o json error: %+v", e)
			}
		})
	}
}

// TestLockAndTamper locks the plugins, then changes the plugin binary: the
// host refuses to run it, naming the plugin, with exit status 3.
func TestLockAndTamper(t *testing.T) {
	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	if err := os.Mkdir(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(fakePlugin)
	if err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(plugins, "knhk-plugin-fake")
	if err := os.WriteFile(plugin, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bin)
	lock := filepath.Join(dir, "knhk.lock")
	ref := "fake:locked?state=" + filepath.Join(dir, "keys.json")
	args := func(a ...string) []string {
		return append([]string{"--plugin-dir", plugins, "--lock-file", lock}, a...)
	}

	// Without a lock file, the host cannot start with --lock-file set.
	if r := knhk(t, nil, args("pubkey", "--key", ref)...); r.code != 2 || !strings.Contains(r.stderr, "lock file") {
		t.Fatalf("missing lock file: %v, want exit 2", r)
	}
	out := ok(t, nil, args("plugins", "lock")...)
	if !strings.Contains(out, "fake") || !strings.Contains(out, hex.EncodeToString(sum[:])) || !strings.Contains(out, "added") {
		t.Fatalf("plugins lock: %q", out)
	}
	data, err := os.ReadFile(lock)
	if err != nil || !strings.Contains(string(data), "knhk-plugin-fake sha256:"+hex.EncodeToString(sum[:])) {
		t.Fatalf("lock file %q (%v)", data, err)
	}
	if out := ok(t, nil, args("plugins", "lock")...); !strings.Contains(out, "unchanged") {
		t.Fatalf("plugins lock again: %q", out)
	}
	ok(t, nil, args("keys", "create", "--key", ref, "--type", "ec-p256")...)
	decodeB64(t, ok(t, []byte("m"), args("sign", "--key", ref)...))

	// Tamper with the plugin: one byte more.
	if err := os.WriteFile(plugin, append(bin, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	r := knhk(t, []byte("m"), args("sign", "--key", ref)...)
	if r.code < 2 || r.stdout != "" || !strings.Contains(r.stderr, "knhk-plugin-fake") || strings.Count(r.stderr, "plugins lock") != 1 {
		t.Fatalf("sign with a tampered plugin: %v, want exit >= 2 naming knhk-plugin-fake and the fix once", r)
	}
	oneLine(t, r.stderr)
	if r.code != 3 {
		t.Fatalf("sign with a tampered plugin: exit %d, want 3 (runtime)", r.code)
	}
	// `plugins` lists it as unusable and still succeeds.
	if out := ok(t, nil, args("plugins")...); !strings.Contains(out, "unusable") || !strings.Contains(out, "refused") {
		t.Fatalf("plugins with a tampered plugin: %q", out)
	}
	// Locking again accepts the new binary.
	if out := ok(t, nil, args("plugins", "lock")...); !strings.Contains(out, "updated") {
		t.Fatalf("plugins lock after the change: %q", out)
	}
	ok(t, []byte("m"), args("sign", "--key", ref)...)
}

// TestPlugins checks the plugin listing against the file on disk.
func TestPlugins(t *testing.T) {
	bin, err := os.ReadFile(fakePlugin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bin)
	var list []struct {
		Name            string   `json:"name"`
		Path            string   `json:"path"`
		SHA256          string   `json:"sha256"`
		Version         string   `json:"version"`
		ProtocolVersion uint32   `json:"protocol_version"`
		Capabilities    []string `json:"capabilities"`
		KeyTypes        []string `json:"key_types"`
		Algorithms      []string `json:"algorithms"`
		Error           string   `json:"error"`
	}
	decodeJSON(t, ok(t, nil, withPlugins("plugins", "-o", "json")...), &list)
	if len(list) != 1 {
		t.Fatalf("plugins: %+v, want the fake alone", list)
	}
	p := list[0]
	if p.Name != "fake" || p.Path != fakePlugin || p.SHA256 != hex.EncodeToString(sum[:]) || p.Version == "" ||
		p.ProtocolVersion != 1 || len(p.Capabilities) == 0 || len(p.KeyTypes) != 7 || len(p.Algorithms) != 10 || p.Error != "" {
		t.Fatalf("plugins: %+v", p)
	}
	text := ok(t, nil, withPlugins("plugins")...)
	for _, want := range []string{"NAME", "fake", p.Version, p.SHA256, fakePlugin, "create_key"} {
		if !strings.Contains(text, want) {
			t.Fatalf("plugins text lacks %q:\n%s", want, text)
		}
	}
}

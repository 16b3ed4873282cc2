package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// rawControl reports whether s holds a control character other than the
// newline that ends a line: ESC, NUL, DEL or a C1 control.
func rawControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return r != '\n' && (r < ' ' || r == 0x7f || r >= 0x80 && r < 0xa0)
	})
}

// TestErrorsAreSafeLines: what an error echoes of the caller's input (key
// ids, parameter values, key names) reaches stderr escaped, cut short and
// without URL passwords, as text and as JSON.
func TestErrorsAreSafeLines(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "keys.json")
	huge := strings.Repeat("a", 1<<20)
	// HCL strings take \u escapes, so the config file can hold what a
	// command line cannot: NUL, and a 1 MB key id.
	config := writeFile(t, dir, "knhk.hcl", []byte(`
key "esc" {
  ref = "fake:a\u001b[2J\u0000b"
}
key "param" {
  ref    = "fake:k"
  params = { state = "`+dir+`/\u001b[2J\u0000x" }
}
key "huge" {
  ref = "fake:`+huge+`"
}
`))
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		want  []string // in the line
		never []string // nowhere on stdout or stderr
	}{
		{"ESC in a key id", withPlugins("pubkey", "--key", "fake:a\x1b[2Jb"), 2, []string{`\x1b[2J`}, nil},
		{"ESC and NUL in a key id", withPlugins("--config", config, "pubkey", "--key", "esc"), 2, []string{`\x1b[2J\x00b`}, nil},
		{"ESC and NUL in a parameter value", withPlugins("--config", config, "pubkey", "--key", "param"), 3, []string{`\x1b[2J\x00x`}, nil},
		{"ESC in a --param value", withPlugins("pubkey", "--key", "fake:k?state="+state, "--param", "seed=\x1b[2J"), 3, []string{"key not found"}, nil},
		{"ESC in a key name", withPlugins("--config", config, "pubkey", "--key", "no\x1b[2Jsuch"), 2, []string{`no key named "no\x1b[2Jsuch"`}, nil},
		{"ESC in a provider name", withPlugins("keys", "list", "--provider", "no\x1b[2Jsuch"), 2, nil, nil},
		{"1 MB key id", withPlugins("--config", config, "pubkey", "--key", "huge"), 2, []string{"the limit is 2048", "…"}, nil},
		{"100 KB key name", withPlugins("--config", config, "pubkey", "--key", huge[:100<<10]), 2, []string{"no key named", "…"}, nil},
		{"100 KB key id", withPlugins("pubkey", "--key", "fake:"+huge[:100<<10]), 2, []string{"the limit is 2048", "…"}, nil},
		{"2000-byte key id", withPlugins("pubkey", "--key", "fake:"+huge[:2000]+"?state="+state), 2, []string{"…"}, nil},
		{"password in a URL parameter", withPlugins("pubkey", "--key", "fake:k?addr=http://admin:pw@127.0.0.1:1"), 2, []string{`unknown parameter "addr"`}, []string{"admin:pw", "pw@"}},
		{"password in a URL --param", withPlugins("pubkey", "--key", "fake:k", "--param", "addr=http://admin:pw@127.0.0.1:1"), 2, []string{`unknown parameter "addr"`}, []string{"admin:pw", "pw@"}},
		{"password in a malformed reference", withPlugins("pubkey", "--key", "vault:transit/k?addr=http://admin:pw@127.0.0.1:1&addr=x"), 2, []string{"appears twice"}, []string{"admin:pw", "pw@"}},
		{"password in a key id", withPlugins("pubkey", "--key", "fake:http://admin:pw@127.0.0.1:1/k?state="+state), 2, []string{"REDACTED"}, []string{"admin:pw", "pw@"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := knhk(t, nil, tc.args...)
			if r.code != tc.code || r.stdout != "" {
				t.Fatalf("%v, want exit %d and no stdout", r, tc.code)
			}
			oneLine(t, r.stderr)
			if rawControl(r.stderr) {
				t.Fatalf("stderr has a raw control character: %q", r.stderr)
			}
			if len(r.stderr) > 1024 {
				t.Fatalf("stderr is %d bytes, want under 1 KB: %.300q", len(r.stderr), r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q lacks %q", r.stderr, w)
				}
			}
			for _, n := range tc.never {
				if strings.Contains(r.stderr, n) {
					t.Errorf("stderr %q shows %q", r.stderr, n)
				}
			}

			j := knhk(t, nil, append([]string{"-o", "json"}, tc.args...)...)
			if j.code != tc.code || j.stdout != "" {
				t.Fatalf("-o json: %v, want exit %d and no stdout", j, tc.code)
			}
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal([]byte(j.stderr), &e); err != nil {
				t.Fatalf("-o json stderr is not JSON: %v: %q", err, j.stderr)
			}
			if rawControl(e.Error) || len(j.stderr) > 1024 {
				t.Fatalf("-o json error is not one safe short line: %q", e.Error)
			}
			for _, w := range tc.want {
				if !strings.Contains(e.Error, w) {
					t.Errorf("-o json error %q lacks %q", e.Error, w)
				}
			}
			for _, n := range tc.never {
				if strings.Contains(j.stderr, n) {
					t.Errorf("-o json stderr %q shows %q", j.stderr, n)
				}
			}
		})
	}
}

// TestCreateRotateNeverSayRetry: create and rotate are not idempotent, so
// when the answer is lost (the provider unavailable, the plugin crashed)
// the hint says to check with metadata, never to retry.
func TestCreateRotateNeverSayRetry(t *testing.T) {
	state := filepath.Join(t.TempDir(), "keys.json")
	ok(t, nil, withPlugins("keys", "create", "--key", "fake:k?state="+state, "--type", "ec-p256")...)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"create, provider unavailable", withPlugins("keys", "create", "--key", "fake:new?fault_error=unavailable&fault_ops=create_key&state="+state, "--type", "ec-p256")},
		{"create, plugin crashed", withPlugins("keys", "create", "--key", "fake:new?fault_exit_after=0&fault_ops=create_key&state="+state, "--type", "ec-p256")},
		{"rotate, provider unavailable", withPlugins("rotate", "--key", "fake:k?fault_error=unavailable&fault_ops=rotate_key&state="+state)},
		{"rotate, plugin crashed", withPlugins("rotate", "--key", "fake:k?fault_exit_after=0&fault_ops=rotate_key&state="+state)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := knhk(t, nil, tc.args...)
			if r.code != 3 || r.stdout != "" {
				t.Fatalf("%v, want exit 3 and no stdout", r)
			}
			oneLine(t, r.stderr)
			if strings.Contains(strings.ToLower(r.stderr), "retry") || !strings.Contains(r.stderr, "knhk-host metadata --key") {
				t.Fatalf("stderr %q should point to 'knhk-host metadata --key' and not suggest a retry", r.stderr)
			}
			j := knhk(t, nil, append([]string{"-o", "json"}, tc.args...)...)
			var e struct {
				Hint string `json:"hint"`
			}
			if err := json.Unmarshal([]byte(j.stderr), &e); err != nil || strings.Contains(strings.ToLower(e.Hint), "retry") || !strings.Contains(e.Hint, "metadata") {
				t.Fatalf("-o json: %v (%v)", j, err)
			}
		})
	}
	// Sign is idempotent: there, trying again is the advice.
	r := knhk(t, []byte("m"), withPlugins("sign", "--key", "fake:k?fault_error=unavailable&fault_ops=sign&state="+state)...)
	if r.code != 3 || !strings.Contains(r.stderr, "retry later") {
		t.Fatalf("sign with the provider unavailable: %v, want exit 3 and a retry hint", r)
	}
}

package main

import (
	"strings"
	"testing"
)

// TestServerVersions runs the version state commands through --server:
// rotate --pending, sign refused for the pending version, versions,
// approve by a key the daemon holds (a local key file is a usage error),
// promote, then the promoted version signs.
func TestServerVersions(t *testing.T) {
	sock := serveDaemon(t)
	srv := func(args ...string) []string { return append([]string{"--server", "unix://" + sock}, args...) }
	cli := func(stdin []byte, args ...string) result { return runCLI(stdin, srv(args...)...) }
	must := func(stdin []byte, args ...string) string {
		t.Helper()
		r := cli(stdin, args...)
		if r.code != 0 {
			t.Fatalf("knhk-host %s: %v", strings.Join(args, " "), r)
		}
		return r.stdout
	}
	must(nil, "keys", "create", "--key", "fake:pv", "--type", "ec-p256")
	must(nil, "keys", "create", "--key", "fake:appr", "--type", "ed25519")
	if v := strings.TrimSpace(must(nil, "rotate", "--key", "fake:pv", "--pending")); v != "2" {
		t.Fatalf("rotate --pending printed %q", v)
	}
	if r := cli([]byte("x"), "sign", "--key", "fake:pv", "--version", "2"); r.code != 3 || !strings.Contains(r.stderr, "pending") {
		t.Fatalf("sign with the pending version through the daemon: %v", r)
	}
	if out := must(nil, "versions", "--key", "fake:pv"); !strings.Contains(out, "pending") {
		t.Fatalf("versions: %s", out)
	}
	note := must(nil, "approve", "--key", "fake:pv", "--version", "2", "--approver-key", "fake:appr")
	if !strings.HasPrefix(note, "knhk-approval/v1\nkey fake:pv\nversion 2\n") || !strings.Contains(note, "— fake:appr ") {
		t.Fatalf("approve through the daemon printed %q", note)
	}
	file := writeFile(t, t.TempDir(), "alice.key", []byte("not used"))
	if r := cli(nil, "approve", "--key", "fake:pv", "--version", "2", "--approver-key", file); r.code != 2 || !strings.Contains(r.stderr, "local file") {
		t.Fatalf("approve with a local key file through the daemon: %v; want exit 2", r)
	}
	approval := writeFile(t, t.TempDir(), "appr.note", []byte(note))
	must(nil, "promote", "--key", "fake:pv", "--version", "2", "--approval", approval)
	var s struct{ Signature, Version string }
	decodeJSONAny(t, must([]byte("release"), "sign", "--key", "fake:pv", "-o", "json"), &s)
	if s.Version != "2" {
		t.Fatalf("sign after promote through the daemon: version %q", s.Version)
	}
}

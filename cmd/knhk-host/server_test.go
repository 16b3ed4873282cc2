package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/knhk/knhk/cmd/knhk-host/internal/cli"
	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/sidecar"
)

// serveDaemon runs a real sidecar in this process over the in-process
// fake provider: key "release" (fake:release?seed=cli) and key "locked",
// references allowed; this user may do anything to "release" and to
// fake references, and only read "locked"'s public key. It returns the
// socket's path; the daemon stops when the test ends.
func serveDaemon(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "knhk-serve-") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	self := fmt.Sprintf("unix:uid=%d", os.Getuid())
	srv, err := sidecar.New(hosttest.New(t), sidecar.Config{
		Socket:          sidecar.SocketConfig{Path: filepath.Join(dir, "knhk.sock")},
		Keys:            map[string]string{"release": "fake:release?seed=cli", "locked": "fake:locked?seed=cli"},
		AllowReferences: true,
		Policies: []sidecar.Policy{
			{Keys: []string{"release", "fake:*"}, Principals: []string{self}, Operations: []sidecar.Op{"*"}},
			{Keys: []string{"locked"}, Principals: []string{self}, Operations: []sidecar.Op{sidecar.OpPublicKey}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case <-srv.Listening():
		return srv.SocketPath()
	case err := <-served:
		served <- err
		t.Fatalf("the daemon did not start: %v", err)
		return ""
	}
}

// runCLI runs the command line in this process.
func runCLI(stdin []byte, args ...string) result {
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, bytes.NewReader(stdin), &out, &errb)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// TestServer runs the CLI with --server against a daemon: the same
// commands, output and exit statuses as locally.
func TestServer(t *testing.T) {
	sock := serveDaemon(t)
	server := "unix://" + sock
	srv := func(args ...string) []string { return append([]string{"--server", server}, args...) }
	okCLI := func(stdin []byte, args ...string) string {
		t.Helper()
		r := runCLI(stdin, args...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("knhk-host %s: %v", strings.Join(args, " "), r)
		}
		return r.stdout
	}
	dir := t.TempDir()

	// keys create: the daemon's key name names the key.
	if out := okCLI(nil, srv("keys", "create", "--key", "release", "--type", "ec-p256")...); out != "key:     release\nversion: 1\n" {
		t.Errorf("keys create: %q", out)
	}

	// pubkey: the same bytes as the local path prints for the same key
	// (the fake derives it from the seed, the key id and the version).
	pemOut := okCLI(nil, srv("pubkey", "--key", "release")...)
	pub, isEC := parsePEM(t, pemOut).(*ecdsa.PublicKey)
	if !isEC {
		t.Fatalf("not an ECDSA key: %q", pemOut)
	}
	localRef := "fake:release?seed=cli&state=" + filepath.Join(dir, "local.json")
	ok(t, nil, withPlugins("keys", "create", "--key", localRef, "--type", "ec-p256")...)
	for _, format := range []string{"pem", "jwk"} {
		local := ok(t, nil, withPlugins("pubkey", "--key", localRef, "--format", format)...)
		if remote := okCLI(nil, srv("pubkey", "--key", "release", "--format", format)...); remote != local {
			t.Errorf("pubkey --format %s: through the daemon %q, locally %q", format, remote, local)
		}
	}
	// A reference gets --param values before it is sent.
	if out := okCLI(nil, srv("pubkey", "--key", "fake:release", "--param", "seed=cli")...); out != pemOut {
		t.Errorf("pubkey by reference: %q", out)
	}

	// sign, then verify: valid, and a corrupted signature is invalid.
	msg := []byte("hello through the sidecar")
	sig := decodeB64(t, okCLI(msg, srv("sign", "--key", "release")...))
	digest := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		t.Fatal("the signature does not verify with the public key")
	}
	sigFile := writeFile(t, dir, "msg.sig", sig)
	if out := okCLI(msg, srv("verify", "--key", "release", "--sig", sigFile)...); out != "valid\n" {
		t.Errorf("verify: %q", out)
	}
	bad := bytes.Clone(sig)
	bad[len(bad)-1] ^= 1
	badFile := writeFile(t, dir, "bad.sig", bad)
	if r := runCLI(msg, srv("verify", "--key", "release", "--sig", badFile)...); r.code != cli.ExitInvalid || r.stdout != "invalid\n" || r.stderr != "" {
		t.Errorf("verify of a corrupted signature: %v", r)
	}

	// metadata and rotate.
	fields := func(out string) map[string]any {
		var m map[string]any
		decodeJSONAny(t, out, &m)
		return m
	}
	md := fields(okCLI(nil, srv("metadata", "--key", "release", "-o", "json")...))
	if md["key"] != "release" || md["key_id"] != "release" || md["type"] != "ec-p256" || md["current_version"] != "1" {
		t.Errorf("metadata: %v", md)
	}
	if out := okCLI(nil, srv("rotate", "--key", "release")...); out != "2\n" {
		t.Errorf("rotate: %q", out)
	}
	if md = fields(okCLI(nil, srv("metadata", "--key", "release", "-o", "json")...)); md["current_version"] != "2" {
		t.Errorf("metadata after rotate: %v", md)
	}

	// keys create by reference, and keys list.
	created := fields(okCLI(nil, srv("keys", "create", "--key", "fake:other?seed=cli", "--type", "ed25519", "-o", "json")...))
	if created["key"] != "fake:other" || created["key_id"] != "other" || created["type"] != "ed25519" || created["version"] != "1" {
		t.Errorf("keys create by reference: %v", created)
	}
	var listed []listedKey
	decodeJSON(t, okCLI(nil, srv("keys", "list", "--provider", "fake", "-o", "json")...), &listed)
	found := map[string]listedKey{}
	for _, k := range listed {
		found[k.Key] = k
	}
	if k := found["fake:release"]; k.Type != "ec-p256" || k.CurrentVersion != "2" {
		t.Errorf("keys list: release %+v (all %+v)", k, listed)
	}
	if k := found["fake:other"]; k.Type != "ed25519" || k.CurrentVersion != "1" {
		t.Errorf("keys list: other %+v (all %+v)", k, listed)
	}

	// Failures: an unknown key, a denied operation, plugins.
	r := runCLI(nil, srv("pubkey", "--key", "no-such-key")...)
	if r.code != cli.ExitRuntime || r.stdout != "" || !strings.Contains(r.stderr, "no key named") {
		t.Errorf("unknown key: %v", r)
	}
	oneLine(t, r.stderr)
	r = runCLI(msg, srv("sign", "--key", "locked", "--alg", "ES256")...)
	if r.code != cli.ExitRuntime || r.stdout != "" || !strings.Contains(r.stderr, "sidecar's policy does not allow") {
		t.Errorf("denied sign: %v", r)
	}
	r = runCLI(nil, srv("plugins")...)
	if r.code != cli.ExitUsage || r.stdout != "" || !strings.Contains(r.stderr, "runs locally") {
		t.Errorf("plugins --server: %v", r)
	}

	// $KNHK_SERVER stands for --server, for this process and the built
	// binary alike, and a plain path is a socket.
	t.Setenv("KNHK_SERVER", sock)
	if out := okCLI(nil, "pubkey", "--key", "release"); out != okCLI(nil, srv("pubkey", "--key", "release")...) {
		t.Errorf("pubkey with $KNHK_SERVER: %q", out)
	}
	if out := ok(t, nil, "pubkey", "--key", "release"); out != okCLI(nil, srv("pubkey", "--key", "release")...) {
		t.Errorf("the binary's pubkey with $KNHK_SERVER: %q", out)
	}
}

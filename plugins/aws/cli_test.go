package aws_test

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/knhk/knhk/plugins/aws/internal/localkms"
	"github.com/knhk/knhk/shared"
)

// TestCLI drives the knhk-host command (built from the root module) with
// the aws plugin against the emulator: create, sign, verify, rotate,
// metadata, and a missing key's exit status.
func TestCLI(t *testing.T) {
	srv := localkms.Start(t)
	dir := t.TempDir()
	cliBin := filepath.Join(dir, "knhk-host")
	build := exec.Command("go", "build", "-o", cliBin, "./cmd/knhk-host")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building knhk-host: %v\n%s", err, out)
	}
	run := func(args ...string) (string, string, int) {
		t.Helper()
		args = append([]string{"--plugin-dir", filepath.Dir(pluginBin)}, args...)
		cmd := exec.Command(cliBin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), code
	}
	key := []string{"--key", "aws:alias/cli", "--param", "endpoint=" + srv.URL}
	with := func(extra ...string) []string { return append(append([]string(nil), extra...), key...) }

	out, errOut, code := run(with("keys", "create", "--type", "rsa-2048", "-o", "json")...)
	if code != 0 {
		t.Fatalf("keys create: exit %d: %s", code, errOut)
	}
	var created struct{ KeyID, Version string }
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Version == "" {
		t.Fatalf("keys create output %q: %v", out, err)
	}

	msg := filepath.Join(dir, "artifact")
	if err := os.WriteFile(msg, []byte("release artifact"), 0o600); err != nil {
		t.Fatal(err)
	}
	sig := filepath.Join(dir, "artifact.sig")
	if _, errOut, code := run(with("sign", "--alg", "PS256", "--in", msg, "--out", sig)...); code != 0 {
		t.Fatalf("sign: exit %d: %s", code, errOut)
	}
	out, errOut, code = run(with("pubkey", "--format", "pem")...)
	if code != 0 {
		t.Fatalf("pubkey: exit %d: %s", code, errOut)
	}
	block, _ := pem.Decode([]byte(out))
	if block == nil {
		t.Fatalf("pubkey output is not PEM: %q", out)
	}
	pub, _, err := shared.ParsePublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sigBytes, err := os.ReadFile(sig)
	if err != nil {
		t.Fatal(err)
	}
	if err := shared.VerifyMessage(pub, shared.PS256, []byte("release artifact"), sigBytes); err != nil {
		t.Fatalf("the CLI's signature: %v", err)
	}
	if _, errOut, code := run(with("verify", "--alg", "PS256", "--sig", sig, "--in", msg)...); code != 0 {
		t.Fatalf("verify: exit %d: %s", code, errOut)
	}

	out, errOut, code = run(with("rotate")...)
	v2 := strings.TrimSpace(out)
	if code != 0 || v2 == "" || v2 == created.Version {
		t.Fatalf("rotate: exit %d, %q: %s", code, out, errOut)
	}
	if _, _, code := run(with("verify", "--alg", "PS256", "--sig", sig, "--in", msg)...); code != 1 {
		t.Fatalf("verify of v1's signature against v2: exit %d, want 1 (invalid)", code)
	}
	if _, errOut, code := run(with("verify", "--alg", "PS256", "--version", created.Version, "--sig", sig, "--in", msg)...); code != 0 {
		t.Fatalf("verify against v1: exit %d: %s", code, errOut)
	}
	out, errOut, code = run(with("metadata", "-o", "json")...)
	var md struct {
		CurrentVersion string `json:"current_version"`
		Versions       []struct{ Version, State string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &md) != nil {
		t.Fatalf("metadata: exit %d, %q: %s", code, out, errOut)
	}
	if md.CurrentVersion != v2 || len(md.Versions) != 2 || md.Versions[0].Version != created.Version || md.Versions[1].Version != v2 {
		t.Fatalf("metadata %+v", md)
	}

	// A multi-Region key: the replicas' references, printed whole, are the
	// new key's id in each replica Region (ReplicateKey is the double's).
	d := newReplicaDouble(t, srv)
	out, errOut, code = run("keys", "create", "--key", "aws:alias/cli-multi", "--param", "endpoint="+d.URL, "--param", "region=us-east-1",
		"--type", "ec-p256", "--replicate-to", "eu-west-1", "--replicate-to", "ap-south-1", "-o", "json")
	var multi struct {
		KeyID    string `json:"key_id"`
		Replicas []string
	}
	if code != 0 || json.Unmarshal([]byte(out), &multi) != nil {
		t.Fatalf("keys create --replicate-to: exit %d, %q: %s", code, out, errOut)
	}
	if want := []string{"aws:" + multi.KeyID + "?region=eu-west-1", "aws:" + multi.KeyID + "?region=ap-south-1"}; multi.KeyID == "" || !slices.Equal(multi.Replicas, want) {
		t.Fatalf("keys create --replicate-to printed %+v; want replicas %v", multi, want)
	}

	_, errOut, code = run("sign", "--key", "aws:alias/cli-missing", "--param", "endpoint="+srv.URL, "--in", msg)
	if code != 3 || !strings.Contains(errOut, "NotFoundException") {
		t.Fatalf("sign with a missing key: exit %d: %s", code, errOut)
	}
}

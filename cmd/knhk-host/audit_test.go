package main

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/knhk/knhk/audit"
	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// auditKeyFile makes a checkpoint key file in dir with `audit keygen`
// and returns its path and verifier key.
func auditKeyFile(t *testing.T, dir string) (string, string) {
	t.Helper()
	path := filepath.Join(dir, "audit.key")
	vkey := strings.TrimSpace(ok(t, nil, "audit", "keygen", "--name", "test.example/knhk-audit", "--out", path))
	if !strings.HasPrefix(vkey, "test.example/knhk-audit+") {
		t.Fatalf("audit keygen printed %q, want a verifier key", vkey)
	}
	return path, vkey
}

// auditConfig is serveConfig with an audit block for log and key.
func auditConfig(state, log, key, serve string) string {
	return serveConfig(state, serve, allowRoot()) + fmt.Sprintf(`
audit {
  path                = %s
  checkpoint_key      = %s
  checkpoint_interval = "200ms"
}
`, hcl(log), hcl(key))
}

// signatureHashes reads the log's records and returns the SHA-256 of
// every signature a sign record names.
func signatureHashes(t *testing.T, log string) map[string]bool {
	t.Helper()
	out := ok(t, nil, "audit", "show", "--log", log, "--op", "sign", "-o", "json")
	got := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r audit.Record
		decodeJSON(t, line, &r)
		if r.Outcome == "ok" {
			got[r.SignatureSHA256] = true
		}
	}
	return got
}

// TestAuditSurvivesSIGKILL: 64 callers sign through the daemon with the
// audit log on; the daemon is killed with SIGKILL mid-load. Restarted,
// it seals what the crash left, and once stopped its log verifies, and
// every signature a caller received has its record.
func TestAuditSurvivesSIGKILL(t *testing.T) {
	dir := sharedDir(t)
	state := filepath.Join(dir, "keys.json")
	createRelease(t, state)
	keyFile, vkey := auditKeyFile(t, dir)
	log := filepath.Join(dir, "audit", "audit.log")
	cfg := auditConfig(state, log, keyFile, "")
	d := startDaemon(t, dir, cfg)
	ctx := ctxT(t)
	c, err := client.Dial(ctx, "unix://"+d.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k, _ := c.Key(ctx, "release")
	pk, err := k.PublicKey(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		received []string // hex SHA-256 of each signature a caller got
		signed   atomic.Int64
		bad      sync.Map
		wg       sync.WaitGroup
	)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				digest := sha256.Sum256(fmt.Appendf(nil, "%d/%d", i, n))
				sig, err := k.SignDigest(ctx, digest[:], host.SignOptions{})
				if err != nil {
					if !errors.Is(err, shared.ErrUnavailable) {
						bad.Store(fmt.Sprintf("%d/%d", i, n), err.Error())
					}
					return // the daemon is gone
				}
				if !ecdsa.VerifyASN1(pk.Key.(*ecdsa.PublicKey), digest[:], sig.Signature) {
					bad.Store(fmt.Sprintf("%d/%d", i, n), "signature does not verify")
				}
				h := sha256.Sum256(sig.Signature)
				mu.Lock()
				received = append(received, hex.EncodeToString(h[:]))
				mu.Unlock()
				signed.Add(1)
			}
		}()
	}
	for signed.Load() < 3000 {
		time.Sleep(10 * time.Millisecond)
	}
	d.stop(t, syscall.SIGKILL)
	wg.Wait()
	bad.Range(func(k, v any) bool { t.Errorf("call %v: %v", k, v); return true })

	// A log the writer died in may end in a torn line and unsealed
	// records: it verifies only as a live log's tail.
	r := knhk(t, nil, "audit", "verify", "--log", log, "--key", vkey, "--allow-unsealed")
	if r.code != 0 {
		t.Fatalf("the log after SIGKILL does not verify as a live log: %v", r)
	}
	d = startDaemon(t, dir, cfg)
	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("daemon exited %d after SIGTERM\n%s", code, d.stderr.String())
	}
	if r := knhk(t, nil, "audit", "verify", "--log", log, "--key", vkey); r.code != 0 {
		t.Fatalf("the log after a restart does not verify: %v", r)
	}
	recorded := signatureHashes(t, log)
	missing := 0
	for _, h := range received {
		if !recorded[h] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d signatures callers received have no record", missing, len(received))
	}
	t.Logf("%d signatures received before SIGKILL, all recorded (%d sign records)", len(received), len(recorded))
}

// TestAuditFullDisk: the audit log on a tiny tmpfs that fills up: the
// daemon's signatures fail with host.ErrAuditUnavailable and none
// escapes, /readyz says not ready; once there is room again, signing
// goes on and the log verifies.
func TestAuditFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs to fill needs root (CI runs the tests as root)")
	}
	dir := sharedDir(t)
	mnt := filepath.Join(dir, "tmpfs")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })
	state := filepath.Join(dir, "keys.json")
	createRelease(t, state)
	keyFile, vkey := auditKeyFile(t, dir)
	log := filepath.Join(mnt, "audit.log")
	health := freeAddr(t)
	d := startDaemon(t, dir, auditConfig(state, log, keyFile, fmt.Sprintf("health_address = %s", hcl(health))))
	ctx := ctxT(t)
	c, err := client.Dial(ctx, "unix://"+d.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k, _ := c.Key(ctx, "release")
	digest := sha256.Sum256([]byte("room"))
	if _, err := k.SignDigest(ctx, digest[:], host.SignOptions{}); err != nil {
		t.Fatal(err)
	}
	readyz := func() int {
		resp, err := http.Get("http://" + health + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	for readyz() != http.StatusOK {
		time.Sleep(20 * time.Millisecond)
	}

	// Fill the file system: dd stops at ENOSPC.
	filler := filepath.Join(mnt, "filler")
	_ = exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=4k").Run()
	failed := 0
	for i := range 200 {
		digest := sha256.Sum256(fmt.Appendf(nil, "full %d", i))
		sig, err := k.SignDigest(ctx, digest[:], host.SignOptions{})
		if err == nil {
			continue // a record that still fit in a partly filled page
		}
		if !errors.Is(err, host.ErrAuditUnavailable) || !errors.Is(err, shared.ErrUnavailable) || sig.Signature != nil {
			t.Fatalf("signing on a full disk: %v (signature %x)", err, sig.Signature)
		}
		failed++
	}
	if failed == 0 {
		t.Fatal("no signature failed with the audit log's file system full")
	}
	deadline := time.Now().Add(30 * time.Second)
	for readyz() != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still ready with the audit log's file system full")
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		if _, err := k.SignDigest(ctx, digest[:], host.SignOptions{}); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("signing after freeing space: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("daemon exited %d\n%s", code, d.stderr.String())
	}
	if r := knhk(t, nil, "audit", "verify", "--log", log, "--key", vkey); r.code != 0 {
		t.Fatalf("the log does not verify after the disk filled and emptied: %v", r)
	}
	t.Logf("%d of 200 signatures refused while the disk was full", failed)
}

// TestAuditOneShot: one-shot commands with --audit-log append to one
// log, its checkpoints signed by a key held in a provider (Ed25519 and
// ECDSA P-256 fake keys, through their plugin); `audit vkey` gives the
// verifier key, the log verifies, and an edited record is named.
func TestAuditOneShot(t *testing.T) {
	for _, kt := range []string{"ed25519", "ec-p256"} {
		t.Run(kt, func(t *testing.T) {
			dir := t.TempDir()
			state := filepath.Join(dir, "keys.json")
			auditKey := "fake:audit-key?state=" + state
			ok(t, nil, withPlugins("keys", "create", "--key", auditKey, "--type", kt)...)
			vkey := strings.TrimSpace(ok(t, nil, withPlugins("audit", "vkey", "--key", auditKey, "--name", "test.example/audit")...))
			log := filepath.Join(dir, "audit.log")
			audited := func(args ...string) []string {
				return withPlugins(append([]string{"--audit-log", log, "--audit-key", auditKey}, args...)...)
			}
			key := "fake:release?state=" + state
			ok(t, nil, audited("keys", "create", "--key", key, "--type", "ec-p256")...)
			sig := ok(t, []byte("hello"), audited("sign", "--key", key)...)
			sigFile := writeFile(t, dir, "hello.sig", []byte(sig))
			ok(t, []byte("hello"), audited("verify", "--key", key, "--sig", sigFile)...)
			r := knhk(t, []byte("hello"), audited("sign", "--key", "fake:missing?state="+state)...)
			if r.code == 0 {
				t.Fatalf("signing with a missing key: %v", r)
			}
			// The checkpoint key's name must be given as the config's
			// checkpoint_key_name; --audit-key uses the default name.
			if r := knhk(t, nil, "audit", "verify", "--log", log, "--key", vkey); r.code != 1 {
				t.Fatalf("verify with a verifier key of another name: %v, want exit 1 (no checkpoint from a known key)", r)
			}
			vkey = strings.TrimSpace(ok(t, nil, withPlugins("audit", "vkey", "--key", auditKey)...))
			out := ok(t, nil, "audit", "verify", "--log", log, "--key", vkey)
			if !strings.HasPrefix(out, "intact: ") {
				t.Fatalf("audit verify: %q, want intact", out)
			}
			var verified audit.Record
			decodeJSON(t, ok(t, nil, "audit", "show", "--log", log, "--op", "verify", "-o", "json"), &verified)
			if show := ok(t, nil, "audit", "show", "--log", log, "--op", "sign", "-o", "json"); strings.Count(show, "\n") != 1 || !strings.Contains(show, `"signature_sha256"`) {
				t.Fatalf("audit show --op sign:\n%s", show)
			}
			// The sign with a missing key failed looking its key up.
			failed := ok(t, nil, "audit", "show", "--log", log, "--outcome", "error", "-o", "json")
			if strings.Count(failed, "\n") != 1 || !strings.Contains(failed, `"key":"fake:missing"`) || !strings.Contains(failed, `"error_type":"key_not_found"`) {
				t.Fatalf("audit show --outcome error:\n%s", failed)
			}
			if raw, _ := os.ReadFile(log); strings.Contains(string(raw), state) {
				t.Fatal("the log holds a parameter value (the state path)")
			}

			raw, err := os.ReadFile(log)
			if err != nil {
				t.Fatal(err)
			}
			edited := strings.Replace(string(raw), `"op":"verify"`, `"op":"verifY"`, 1)
			if edited == string(raw) {
				t.Fatal("no verify record to edit")
			}
			if err := os.WriteFile(log, []byte(edited), 0o600); err != nil {
				t.Fatal(err)
			}
			r = knhk(t, nil, "audit", "verify", "--log", log, "--key", vkey)
			if want := fmt.Sprintf("(record %d)", verified.Seq); r.code != 1 || !strings.Contains(r.stdout, "changed") || !strings.Contains(r.stdout, want) {
				t.Fatalf("verify of an edited log: %v, want exit 1 naming record %d as changed", r, verified.Seq)
			}
		})
	}
}

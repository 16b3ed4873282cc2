package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/internal/procinfo"
)

// stream is n bytes of a deterministic pseudo-random stream named by seed:
// generated while it is read, never stored.
func stream(seed byte, n int64) io.Reader {
	var s [32]byte
	s[0] = seed
	return io.LimitReader(rand.NewChaCha8(s), n)
}

// runStream runs the built CLI with stdin copied from r and returns the
// result and the CLI's peak resident memory in KiB (0: unknown, off
// Linux). The peak is VmHWM from /proc/PID/status, sampled while the CLI
// runs and once more when all the input is written, before stdin closes:
// a CLI that kept its input would have it resident then. (The rusage of
// an exited child is no use here: Go starts children in the parent's
// address space, and Linux counts the parent's peak in the child's.)
func runStream(t *testing.T, r io.Reader, args ...string) (result, int64) {
	t.Helper()
	cmd := exec.Command(knhkHost, args...)
	cmd.Env = append(os.Environ(), "KNHK_PLUGIN_PATH=")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatalf("start knhk-host %v: %v", args, err)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	var mu sync.Mutex
	var peak int64
	sample := func() {
		v := procinfo.VMHWM(pid)
		mu.Lock()
		peak = max(peak, v)
		mu.Unlock()
	}
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				sample()
			}
		}
	}()
	_, _ = io.Copy(stdin, r) // the CLI may stop reading early, as for a refused message
	sample()
	stdin.Close()
	err = cmd.Wait()
	close(done)
	<-sampled
	code := exitCode(t, args, err)
	if peak == 0 && runtime.GOOS == "linux" {
		t.Fatalf("no VmHWM for knhk-host (pid %s) in /proc", pid)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}, peak
}

// TestLargeMessages signs and verifies 100 MB read from stdin with ES256:
// the CLI hashes while it reads, so its memory stays flat, and the
// signature checks with the standard library. An EdDSA message over the
// limit is refused as invalid input, naming the limit, never "retry".
func TestLargeMessages(t *testing.T) {
	const size = 100 << 20
	const maxRSSKiB = 64 << 10
	dir := t.TempDir()
	state := filepath.Join(dir, "keys.json")
	ec := "fake:ec?state=" + state
	ed := "fake:ed?state=" + state
	ok(t, nil, withPlugins("keys", "create", "--key", ec, "--type", "ec-p256")...)
	ok(t, nil, withPlugins("keys", "create", "--key", ed, "--type", "ed25519")...)

	r, rss := runStream(t, stream(1, size), withPlugins("sign", "--key", ec)...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("sign 100 MB: %v", r)
	}
	t.Logf("sign of %d MB from stdin: peak RSS %d KiB", size>>20, rss)
	if rss > maxRSSKiB {
		t.Errorf("sign of %d MB: peak RSS %d KiB, want under %d KiB", size>>20, rss, maxRSSKiB)
	}
	sig := decodeB64(t, r.stdout)
	h := sha256.New()
	if _, err := io.Copy(h, stream(1, size)); err != nil {
		t.Fatal(err)
	}
	pub := parsePEM(t, ok(t, nil, withPlugins("pubkey", "--key", ec)...)).(*ecdsa.PublicKey)
	if !ecdsa.VerifyASN1(pub, h.Sum(nil), sig) {
		t.Fatal("the signature of 100 MB does not verify with the standard library")
	}

	sigFile := writeFile(t, dir, "big.sig", []byte(r.stdout))
	r, rss = runStream(t, stream(1, size), withPlugins("verify", "--key", ec, "--sig", sigFile)...)
	if r.code != 0 || r.stdout != "valid\n" || r.stderr != "" {
		t.Fatalf("verify 100 MB: %v", r)
	}
	t.Logf("verify of %d MB from stdin: peak RSS %d KiB", size>>20, rss)
	if rss > maxRSSKiB {
		t.Errorf("verify of %d MB: peak RSS %d KiB, want under %d KiB", size>>20, rss, maxRSSKiB)
	}
	if r, _ := runStream(t, stream(2, size), withPlugins("verify", "--key", ec, "--sig", sigFile)...); r.code != 1 || r.stdout != "invalid\n" {
		t.Fatalf("verify 100 MB of other bytes: %v, want exit 1 and invalid", r)
	}

	// EdDSA signs whole messages: past the 1 MiB streaming threshold they
	// still go through whole, up to the limit.
	const edSize = 3 << 20
	r, _ = runStream(t, stream(3, edSize), withPlugins("sign", "--key", ed)...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("EdDSA sign of %d bytes: %v", edSize, r)
	}
	msg, err := io.ReadAll(stream(3, edSize))
	if err != nil {
		t.Fatal(err)
	}
	edPub := parsePEM(t, ok(t, nil, withPlugins("pubkey", "--key", ed)...)).(ed25519.PublicKey)
	if !ed25519.Verify(edPub, msg, decodeB64(t, r.stdout)) {
		t.Fatal("the EdDSA signature does not verify with the standard library")
	}

	limit := strconv.Itoa(host.MaxWholeMessage)
	for _, args := range [][]string{
		withPlugins("sign", "--key", ed),
		withPlugins("sign", "--key", ed, "--alg", "EdDSA"),
		withPlugins("-o", "json", "sign", "--key", ed),
	} {
		r, _ := runStream(t, stream(4, host.MaxWholeMessage+1), args...)
		if r.code != 2 || r.stdout != "" {
			t.Fatalf("%v over the limit: %v, want exit 2 (invalid input)", args, r)
		}
		oneLine(t, r.stderr)
		if !strings.Contains(r.stderr, limit) || strings.Contains(strings.ToLower(r.stderr), "retry") {
			t.Fatalf("%v over the limit: stderr %q should name the limit %s and not suggest a retry", args, r.stderr, limit)
		}
	}
}

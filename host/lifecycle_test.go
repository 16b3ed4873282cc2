package host

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/knhk/knhk/internal/procinfo"
	"github.com/knhk/knhk/shared"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCrashWhileSigning kills the plugin with SIGKILL three times while 32
// goroutines sign: every call gives a verifying signature or a typed
// retryable error, and signing recovers each time on the same Host.
func TestCrashWhileSigning(t *testing.T) {
	h, _ := newHost(t, Config{CallTimeout: 5 * time.Second})
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	signer, err := h.Signer(ctx, newKey(t, h, state, "crash", shared.ECP256))
	if err != nil {
		t.Fatal(err)
	}
	var (
		ok, retryable atomic.Int64
		stop          = make(chan struct{})
		wg            sync.WaitGroup
		badMu         sync.Mutex
		bad           []string
	)
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				digest := sha256.Sum256(fmt.Appendf(nil, "goroutine %d call %d", g, i))
				sig, err := signer.Sign(nil, digest[:], crypto.SHA256)
				switch {
				case err == nil && shared.VerifyDigest(signer.Public(), shared.ES256, digest[:], sig) == nil:
					ok.Add(1)
				case err != nil && IsRetryable(err) && errors.Is(err, shared.ErrUnavailable) && sig == nil:
					retryable.Add(1)
				default:
					badMu.Lock()
					bad = append(bad, fmt.Sprintf("sig %x err %v", sig, err))
					badMu.Unlock()
				}
			}
		}()
	}
	for kill := 1; kill <= 3; kill++ {
		before := ok.Load()
		waitFor(t, "signatures before the kill", 30*time.Second, func() bool { return ok.Load() >= before+100 })
		pid := h.pid("fake")
		if pid == 0 {
			t.Fatal("no plugin process")
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		atKill := ok.Load()
		waitFor(t, "a new plugin process", 30*time.Second, func() bool { p := h.pid("fake"); return p != 0 && p != pid })
		waitFor(t, "signing to recover", 30*time.Second, func() bool { return ok.Load() >= atKill+100 })
	}
	close(stop)
	wg.Wait()
	t.Logf("%d verified signatures, %d typed retryable errors, %+v", ok.Load(), retryable.Load(), h.Stats())
	if h.Stats().SignBatches == 0 {
		t.Fatal("no SignBatch call: the crash test did not exercise batching")
	}
	if len(bad) > 0 {
		t.Fatalf("%d calls returned neither a good signature nor a retryable error; first: %s", len(bad), bad[0])
	}
}

// TestHangFailsAtCallTimeout: a plugin that stops answering fails the call
// at the call timeout and is replaced.
func TestHangFailsAtCallTimeout(t *testing.T) {
	const timeout = 500 * time.Millisecond
	h, logs := newHost(t, Config{CallTimeout: timeout})
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	newKey(t, h, state, "hang", shared.ECP256)
	k, err := h.Key(ctx, fakeRef(t, state, "hang", "fault_hang_after=1&fault_ops=sign"))
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	if _, err := k.SignDigest(ctx, digest[:], SignOptions{}); err != nil {
		t.Fatalf("first sign (before the hang): %v", err)
	}
	pid := h.pid("fake")
	start := time.Now()
	sig, err := k.SignDigest(ctx, digest[:], SignOptions{})
	took := time.Since(start)
	if !errors.Is(err, ErrCallTimeout) || !errors.Is(err, shared.ErrUnavailable) || sig.Signature != nil {
		t.Fatalf("hung sign = %x, %v; want ErrCallTimeout", sig.Signature, err)
	}
	// Correctness bound, not performance: the call must end at the
	// timeout, not at some later point (the plugin would hang forever).
	if took < timeout || took > timeout+3*time.Second {
		t.Fatalf("hung call took %s; want about the call timeout %s", took, timeout)
	}
	// The next call runs on a fresh process (fault counts restart there).
	if _, err := k.SignDigest(ctx, digest[:], SignOptions{}); err != nil {
		t.Fatalf("sign after the hang: %v", err)
	}
	if p := h.pid("fake"); p == pid || p == 0 {
		t.Fatalf("plugin pid %d after the hang, was %d: not replaced", p, pid)
	}
	waitFor(t, "the hung process to be gone", 10*time.Second, func() bool { return syscall.Kill(pid, 0) != nil })
	// The plugin's own log line reached the host logger under its name.
	if l := logs.String(); !strings.Contains(l, "injected fault: hanging forever") || !strings.Contains(l, "knhk.fake") {
		t.Fatalf("plugin log line missing from host logs:\n%s", l)
	}
}

// TestRetryOnceAfterCrash: an idempotent call whose plugin exits mid-call
// succeeds on a fresh process; rotate is not retried.
func TestRetryOnceAfterCrash(t *testing.T) {
	h, _ := newHost(t, Config{})
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	newKey(t, h, state, "retry", shared.Ed25519)

	k, err := h.Key(ctx, fakeRef(t, state, "retry", "fault_exit_after=1&fault_ops=sign"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.SignMessage(ctx, []byte("one"), SignOptions{}); err != nil {
		t.Fatal(err)
	}
	pid := h.pid("fake")
	sig, err := k.SignMessage(ctx, []byte("two"), SignOptions{})
	if err != nil {
		t.Fatalf("sign whose plugin exited was not retried: %v", err)
	}
	if err := k.VerifyMessage(ctx, []byte("two"), sig.Signature, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	if p := h.pid("fake"); p == pid {
		t.Fatal("the retry ran on the same process")
	}

	rk, err := h.Key(ctx, fakeRef(t, state, "retry", "fault_exit_after=0&fault_ops=rotate_key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rk.Rotate(ctx); !errors.Is(err, ErrPluginCrashed) || !IsRetryable(err) {
		t.Fatalf("Rotate on a dying plugin = %v; want ErrPluginCrashed", err)
	}
	md, err := k.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if md.CurrentVersion != "1" || len(md.Versions) != 1 {
		t.Fatalf("after a failed rotate the key has versions %+v: the rotate was retried", md.Versions)
	}
}

// TestCorruptSignaturesNeverPass: a plugin flipping bits in signatures gets
// none past verify-after-sign, and the event is logged.
func TestCorruptSignaturesNeverPass(t *testing.T) {
	h, logs := newHost(t, Config{})
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	for _, kt := range []shared.KeyType{shared.ECP256, shared.RSA2048, shared.Ed25519} {
		newKey(t, h, state, "corrupt-"+string(kt), kt)
		always, err := h.Signer(ctx, fakeRef(t, state, "corrupt-"+string(kt), "fault_corrupt=true"))
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("payload")
		sig, err := always.SignMessage(nil, msg, hashFor(kt))
		if !errors.Is(err, ErrVerifyAfterSign) || !errors.Is(err, shared.ErrBadSignature) || sig != nil {
			t.Fatalf("%s: corrupted signature came back: %x, %v", kt, sig, err)
		}
		// Half the signatures corrupted: each one returned must verify.
		some, err := h.Signer(ctx, fakeRef(t, state, "corrupt-"+string(kt), "fault_corrupt=true&fault_every=2&fault_ops=sign"))
		if err != nil {
			t.Fatal(err)
		}
		good, rejected := 0, 0
		for i := 0; i < 20; i++ {
			m := fmt.Appendf(nil, "message %d", i)
			sig, err := some.SignMessage(nil, m, hashFor(kt))
			switch {
			case err == nil:
				if verr := shared.VerifyMessage(some.Public(), kt.DefaultAlgorithm(), m, sig); verr != nil {
					t.Fatalf("%s: a bad signature got past the host: %v", kt, verr)
				}
				good++
			case errors.Is(err, ErrVerifyAfterSign):
				rejected++
			default:
				t.Fatalf("%s: %v", kt, err)
			}
		}
		if good == 0 || rejected == 0 {
			t.Fatalf("%s: %d good, %d rejected; want both", kt, good, rejected)
		}
	}
	if !strings.Contains(logs.String(), "does not verify") {
		t.Fatalf("no log line for the discarded signature:\n%s", logs.String())
	}
}

func hashFor(kt shared.KeyType) crypto.Hash { return kt.DefaultAlgorithm().Hash() }

// TestVerifyAfterSignCanBeDisabled shows the switch works: with it off, the
// corrupted signature is returned (and does not verify).
func TestVerifyAfterSignCanBeDisabled(t *testing.T) {
	h, _ := newHost(t, Config{DisableVerifyAfterSign: true})
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	newKey(t, h, state, "unchecked", shared.ECP256)
	s, err := h.Signer(ctx, fakeRef(t, state, "unchecked", "fault_corrupt=true"))
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("m"))
	sig, err := s.Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if shared.VerifyDigest(s.Public(), shared.ES256, d[:], sig) == nil {
		t.Fatal("the fake did not corrupt the signature; the test proves nothing")
	}
}

// TestRotationInvalidatesCache: after Rotate through the host the current
// public key is the new version's, and signers made before keep signing
// with the version they were made for.
func TestRotationInvalidatesCache(t *testing.T) {
	h, _ := newHost(t, Config{PublicKeyTTL: time.Hour})
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	ref := newKey(t, h, state, "rot", shared.ECP256)
	k, err := h.Key(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	old, err := h.Signer(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := k.PublicKey(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	v2name, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := k.PublicKey(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version != v2name || v2.Version == v1.Version || string(v2.DER) == string(v1.DER) {
		t.Fatalf("current public key after rotation: version %q (rotated to %q, was %q)", v2.Version, v2name, v1.Version)
	}
	d := sha256.Sum256([]byte("m"))
	sig, err := old.Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err := shared.VerifyDigest(v1.Key, shared.ES256, d[:], sig); err != nil {
		t.Fatalf("old signer does not sign with its version: %v", err)
	}
	sig2, err := k.SignDigest(ctx, d[:], SignOptions{})
	if err != nil || sig2.Version != v2name {
		t.Fatalf("SignDigest after rotation: version %q, %v", sig2.Version, err)
	}
	if err := k.VerifyDigest(ctx, d[:], sig2.Signature, SignOptions{Version: v2name}); err != nil {
		t.Fatal(err)
	}
	if err := k.VerifyDigest(ctx, d[:], sig2.Signature, SignOptions{Version: v1.Version}); !errors.Is(err, shared.ErrBadSignature) {
		t.Fatalf("v2 signature checked against v1: %v", err)
	}
}

// TestCloseLeavesNothing: after Close no plugin process and no goroutine
// of the host remains, and the host refuses further work.
func TestCloseLeavesNothing(t *testing.T) {
	if kids := procinfo.Children(""); len(kids) != 0 {
		t.Fatalf("child processes before the test: %v", kids)
	}
	before := procinfo.Goroutines()
	h, err := New(context.Background(), Config{PluginDirs: []string{fakeDir}, CallTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	if _, err := h.CreateKey(ctx, fakeRef(t, state, "leak", ""), shared.ECP256); err != nil {
		t.Fatal(err)
	}
	s, err := h.Signer(ctx, fakeRef(t, state, "leak", ""))
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("m"))
	if _, err := s.Sign(nil, d[:], crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	// A hung call in flight too: Close must still end everything.
	hung, _ := h.Key(ctx, fakeRef(t, state, "leak", "fault_hang_after=0&fault_ops=key_metadata"))
	hungDone := make(chan error, 1)
	go func() { _, err := hung.Metadata(ctx); hungDone <- err }()
	time.Sleep(100 * time.Millisecond)
	if kids := procinfo.Children(""); len(kids) != 1 {
		t.Fatalf("child processes while running: %v; want one plugin", kids)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if kids := procinfo.Children(""); len(kids) != 0 {
		t.Fatalf("child processes after Close: %v", kids)
	}
	if err := <-hungDone; err == nil {
		t.Fatal("the hung call succeeded")
	}
	if _, err := s.Sign(nil, d[:], crypto.SHA256); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sign after Close = %v; want ErrClosed", err)
	}
	var leaked []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		leaked = leaked[:0]
		for id, g := range procinfo.Goroutines() {
			if _, ok := before[id]; !ok {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(leaked) > 0 {
		t.Fatalf("%d goroutines left after Close:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
	}
}

// TestProviderUnavailableIsNotACrash: a plugin that itself answers
// "unavailable" keeps running and the call is not retried.
func TestProviderUnavailableIsNotACrash(t *testing.T) {
	h, _ := newHost(t, Config{})
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	newKey(t, h, state, "flaky", shared.ECP256)
	pid := h.pid("fake")
	k, _ := h.Key(ctx, fakeRef(t, state, "flaky", "fault_error=unavailable&fault_ops=key_metadata"))
	_, err := k.Metadata(ctx)
	if !errors.Is(err, shared.ErrUnavailable) || errors.Is(err, ErrPluginCrashed) {
		t.Fatalf("Metadata = %v; want the provider's own ErrUnavailable", err)
	}
	if p := h.pid("fake"); p != pid {
		t.Fatalf("plugin replaced (pid %d -> %d) after the provider's own error", pid, p)
	}
}

// TestCrashLoopBacksOff: a plugin that dies on every call gives
// ErrPluginCrashed, the failure count grows with a growing relaunch delay,
// and one good call resets it.
func TestCrashLoopBacksOff(t *testing.T) {
	h, _ := newHost(t, Config{Retry: RetryPolicy{InitialBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond}})
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	newKey(t, h, state, "loop", shared.ECP256)
	k, _ := h.Key(ctx, fakeRef(t, state, "loop", "fault_exit_after=0&fault_ops=key_metadata"))
	m := k.m
	for i := 1; i <= 4; i++ {
		if _, err := k.Metadata(ctx); !errors.Is(err, ErrPluginCrashed) || !IsRetryable(err) {
			t.Fatalf("call %d on a crashing plugin: %v; want ErrPluginCrashed", i, err)
		}
		m.mu.Lock()
		failures, wait := m.failures, time.Until(m.nextStart)
		m.mu.Unlock()
		// Each call crashes two processes (the call and its one retry).
		if failures != 2*i {
			t.Fatalf("after call %d: %d consecutive failures, want %d", i, failures, 2*i)
		}
		if wait <= 0 || wait > 80*time.Millisecond {
			t.Fatalf("after call %d: next relaunch in %s; want a backoff within the cap", i, wait)
		}
	}
	good, _ := h.Key(ctx, fakeRef(t, state, "loop", ""))
	if _, err := good.Metadata(ctx); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failures != 0 {
		t.Fatalf("failure count %d after a good call; want 0", m.failures)
	}
}

// TestRotationByAnotherHost: host B rotates a key that host A has cached.
// A's own fresh signature (made with the new version) must verify through
// A's Key.VerifyDigest without a version, although A's cached current key
// is the old one; a bad signature still fails, and right after a refetch
// it costs no further plugin call.
func TestRotationByAnotherHost(t *testing.T) {
	a, _ := newHost(t, Config{PublicKeyTTL: time.Hour})
	b, _ := newHost(t, Config{PublicKeyTTL: time.Hour})
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	ref := newKey(t, a, state, "shared-key", shared.ECP256)
	ka, err := a.Key(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := b.Key(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("m"))
	if _, err := ka.PublicKey(ctx, ""); err != nil { // A caches version 1 as current
		t.Fatal(err)
	}
	v2, err := kb.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := ka.SignDigest(ctx, d[:], SignOptions{})
	if err != nil || sig.Version != v2 {
		t.Fatalf("A signs after B's rotation: version %q (want %q), %v", sig.Version, v2, err)
	}
	if err := ka.VerifyDigest(ctx, d[:], sig.Signature, SignOptions{}); err != nil {
		t.Fatalf("A rejects its own new-version signature: %v", err)
	}
	bad := append([]byte(nil), sig.Signature...)
	bad[len(bad)-1] ^= 1
	calls := a.Stats().Calls
	if err := ka.VerifyDigest(ctx, d[:], bad, SignOptions{}); !errors.Is(err, shared.ErrBadSignature) {
		t.Fatalf("tampered signature: %v, want ErrBadSignature", err)
	}
	if n := a.Stats().Calls - calls; n != 0 {
		t.Fatalf("a bad signature right after a refetch cost %d plugin calls, want 0", n)
	}
}

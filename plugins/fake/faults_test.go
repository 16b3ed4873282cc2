package fake_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/knhk/knhk/shared"
)

// The fault tests run the plugin binary, as a test author would, and look
// only at what the client sees.

// faultKey creates an Ed25519 key without faults and returns a reference
// to it that carries the given fault parameters.
func faultKey(t *testing.T, p shared.Provider, id string, faults ...string) shared.KeyRef {
	t.Helper()
	mustCreate(t, p, ref(id), shared.Ed25519)
	return ref(id, faults...)
}

func signMsg(ctx context.Context, p shared.Provider, r shared.KeyRef) (shared.SignResponse, error) {
	return p.Sign(ctx, shared.SignRequest{Key: r, Algorithm: shared.EdDSA, Message: []byte("m")})
}

func TestFaultLatency(t *testing.T) {
	t.Parallel()
	p := launch(t).prov
	r := faultKey(t, p, "slow", "fault_latency", "300ms")
	start := time.Now()
	if _, err := signMsg(ctxT(t), p, r); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("call took %v, want at least the injected 300ms", d)
	}
	// A caller's deadline shorter than the latency ends the call.
	ctx, cancel := context.WithTimeout(ctxT(t), 50*time.Millisecond)
	defer cancel()
	if _, err := signMsg(ctx, p, r); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestFaultErrorCodes(t *testing.T) {
	t.Parallel()
	p := launch(t).prov
	mustCreate(t, p, ref("err"), shared.Ed25519)
	for code, want := range map[string]error{
		"invalid_argument":      shared.ErrInvalidArgument,
		"not_found":             shared.ErrKeyNotFound,
		"unsupported_algorithm": shared.ErrUnsupportedAlgorithm,
		"permission_denied":     shared.ErrPermissionDenied,
		"unavailable":           shared.ErrUnavailable,
		"throttled":             shared.ErrThrottled,
		"failed_precondition":   shared.ErrFailedPrecondition,
		"unimplemented":         shared.ErrUnimplemented,
		"already_exists":        shared.ErrAlreadyExists,
		"deadline_exceeded":     context.DeadlineExceeded,
	} {
		t.Run(code, func(t *testing.T) {
			_, err := signMsg(ctxT(t), p, ref("err", "fault_error", code))
			if !errors.Is(err, want) {
				t.Fatalf("err = %v, want %v", err, want)
			}
			if !strings.Contains(err.Error(), "injected fault") {
				t.Errorf("error %q does not say it was injected", err)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		_, err := signMsg(ctxT(t), p, ref("err", "fault_error", "unknown"))
		if err == nil || errors.Is(err, shared.ErrUnavailable) || errors.Is(err, shared.ErrInvalidArgument) {
			t.Fatalf("err = %v, want an error with no sentinel", err)
		}
	})
}

func TestFaultEvery(t *testing.T) {
	t.Parallel()
	p := launch(t).prov
	r := faultKey(t, p, "every", "fault_error", "unavailable", "fault_every", "3")
	var failed []int
	for i := 1; i <= 9; i++ {
		_, err := signMsg(ctxT(t), p, r)
		if err != nil {
			if !errors.Is(err, shared.ErrUnavailable) {
				t.Fatalf("call %d: %v", i, err)
			}
			failed = append(failed, i)
		}
	}
	if len(failed) != 3 || failed[0] != 3 || failed[1] != 6 || failed[2] != 9 {
		t.Errorf("failed calls = %v, want [3 6 9]", failed)
	}
}

// TestFaultQuota: beyond fault_quota's rate (here one call per 10s, so
// one at once) calls fail with ErrThrottled, which crosses the wire as
// such; another spec has its own quota.
func TestFaultQuota(t *testing.T) {
	t.Parallel()
	p := launch(t).prov
	r := faultKey(t, p, "quota", "fault_quota", "0.1")
	if _, err := signMsg(ctxT(t), p, r); err != nil {
		t.Fatalf("first call: %v", err)
	}
	_, err := signMsg(ctxT(t), p, r)
	if !errors.Is(err, shared.ErrThrottled) || !strings.Contains(err.Error(), "fault_quota=0.1") {
		t.Fatalf("second call: err = %v, want ErrThrottled naming fault_quota", err)
	}
	if _, err := signMsg(ctxT(t), p, ref("quota", "fault_quota", "0.1", "fault_ops", "sign")); err != nil {
		t.Errorf("another spec's first call: %v", err)
	}
	if _, err := signMsg(ctxT(t), p, ref("quota", "fault_quota", "0")); !errors.Is(err, shared.ErrInvalidArgument) {
		t.Errorf("fault_quota=0: err = %v, want ErrInvalidArgument", err)
	}
}

// TestFaultCountersPerSpec: two fault specs count separately.
func TestFaultCountersPerSpec(t *testing.T) {
	t.Parallel()
	p := launch(t).prov
	mustCreate(t, p, ref("spec"), shared.Ed25519)
	a := ref("spec", "fault_error", "unavailable", "fault_every", "2")
	b := ref("spec", "fault_error", "permission_denied", "fault_every", "2")
	steps := []struct {
		r    shared.KeyRef
		want error
	}{{a, nil}, {b, nil}, {a, shared.ErrUnavailable}, {b, shared.ErrPermissionDenied}, {a, nil}}
	for i, s := range steps {
		_, err := signMsg(ctxT(t), p, s.r)
		if (s.want == nil) != (err == nil) || (s.want != nil && !errors.Is(err, s.want)) {
			t.Errorf("step %d: err = %v, want %v", i, err, s.want)
		}
	}
}

func TestFaultRate(t *testing.T) {
	t.Parallel()
	p := launch(t).prov
	mustCreate(t, p, ref("rate"), shared.Ed25519)
	count := func(rate string, n int) (failed int) {
		r := ref("rate", "fault_error", "unavailable", "fault_rate", rate)
		for range n {
			if _, err := signMsg(ctxT(t), p, r); err != nil {
				if !errors.Is(err, shared.ErrUnavailable) {
					t.Fatal(err)
				}
				failed++
			}
		}
		return failed
	}
	if f := count("0", 20); f != 0 {
		t.Errorf("rate 0: %d of 20 failed", f)
	}
	if f := count("1", 20); f != 20 {
		t.Errorf("rate 1: %d of 20 failed", f)
	}
	// At 0.5, all-pass or all-fail over 100 calls has probability 2^-99.
	if f := count("0.5", 100); f == 0 || f == 100 {
		t.Errorf("rate 0.5: %d of 100 failed", f)
	}
}

func TestFaultCorrupt(t *testing.T) {
	t.Parallel()
	p := launch(t).prov
	ctx := ctxT(t)
	for _, kt := range []shared.KeyType{shared.Ed25519, shared.ECP256, shared.RSA2048} {
		id := "corrupt-" + string(kt)
		mustCreate(t, p, ref(id), kt)
		pub := mustPublic(t, p, ref(id), "")
		alg := kt.DefaultAlgorithm()
		msg := []byte("m")
		s, err := p.Sign(ctx, shared.SignRequest{Key: ref(id, "fault_corrupt", "true"), Algorithm: alg, Message: msg})
		if err != nil {
			t.Fatal(err)
		}
		if err := shared.VerifyMessage(pub, alg, msg, s.Signature); !errors.Is(err, shared.ErrBadSignature) {
			t.Errorf("%s: corrupted signature: %v, want ErrBadSignature", kt, err)
		}
		v, err := p.Verify(ctx, shared.VerifyRequest{Key: ref(id), Algorithm: alg, Message: msg, Signature: s.Signature})
		if err != nil || v.Valid {
			t.Errorf("%s: provider Verify of a corrupted signature = %+v, %v", kt, v, err)
		}
		good, err := p.Sign(ctx, shared.SignRequest{Key: ref(id), Algorithm: alg, Message: msg})
		if err != nil || shared.VerifyMessage(pub, alg, msg, good.Signature) != nil {
			t.Errorf("%s: signature without the fault does not verify: %v", kt, err)
		}
	}
	// With fault_every, only every Nth signature is corrupted.
	r := ref("corrupt-ed25519", "fault_corrupt", "true", "fault_every", "2")
	pub := mustPublic(t, p, ref("corrupt-ed25519"), "")
	for i := 1; i <= 4; i++ {
		s, err := signMsg(ctx, p, r)
		if err != nil {
			t.Fatal(err)
		}
		bad := shared.VerifyMessage(pub, shared.EdDSA, []byte("m"), s.Signature) != nil
		if bad != (i%2 == 0) {
			t.Errorf("call %d: corrupted = %v", i, bad)
		}
	}
}

// TestFaultOps: only the listed operations count and fail.
func TestFaultOps(t *testing.T) {
	t.Parallel()
	p := launch(t).prov
	r := faultKey(t, p, "ops", "fault_error", "unavailable", "fault_ops", "sign,rotate_key")
	ctx := ctxT(t)
	if _, err := p.PublicKey(ctx, shared.PublicKeyRequest{Key: r}); err != nil {
		t.Errorf("PublicKey: %v, want no fault", err)
	}
	if _, err := p.KeyMetadata(ctx, shared.KeyMetadataRequest{Key: r}); err != nil {
		t.Errorf("KeyMetadata: %v, want no fault", err)
	}
	if _, err := signMsg(ctx, p, r); !errors.Is(err, shared.ErrUnavailable) {
		t.Errorf("Sign: %v, want ErrUnavailable", err)
	}
	if _, err := p.RotateKey(ctx, shared.RotateKeyRequest{Key: r}); !errors.Is(err, shared.ErrUnavailable) {
		t.Errorf("RotateKey: %v, want ErrUnavailable", err)
	}
}

// TestFaultExitAfter: the process serves N calls, then dies on the next.
func TestFaultExitAfter(t *testing.T) {
	t.Parallel()
	l := launch(t)
	r := faultKey(t, l.prov, "exit", "fault_exit_after", "2", "fault_ops", "sign")
	ctx := ctxT(t)
	for i := 1; i <= 2; i++ {
		if _, err := signMsg(ctx, l.prov, r); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if l.proc.Exited() {
		t.Fatal("plugin exited early")
	}
	if _, err := signMsg(ctx, l.prov, r); err == nil {
		t.Fatal("call 3 succeeded; want the plugin to exit without answering")
	}
	deadline := time.Now().Add(30 * time.Second)
	for !l.proc.Exited() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !l.proc.Exited() {
		t.Fatal("plugin process still running")
	}
	if _, err := l.prov.Describe(ctx); err == nil {
		t.Error("Describe answered after the exit")
	}
}

// TestFaultHangAfter: after N calls the plugin stops answering that spec,
// whatever the caller's context says; only the caller's timeout ends the
// call. The process itself stays up.
func TestFaultHangAfter(t *testing.T) {
	t.Parallel()
	l := launch(t)
	r := faultKey(t, l.prov, "hang", "fault_hang_after", "1")
	if _, err := signMsg(ctxT(t), l.prov, r); err != nil {
		t.Fatalf("call 1: %v", err)
	}
	for i := 2; i <= 3; i++ {
		ctx, cancel := context.WithTimeout(ctxT(t), 300*time.Millisecond)
		_, err := signMsg(ctx, l.prov, r)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call %d: err = %v, want context.DeadlineExceeded", i, err)
		}
	}
	if l.proc.Exited() {
		t.Fatal("plugin exited; want it hung, not dead")
	}
	if _, err := signMsg(ctxT(t), l.prov, ref("hang")); err != nil {
		t.Errorf("call without the fault: %v", err)
	}
}

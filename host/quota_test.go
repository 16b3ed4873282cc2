package host

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/shared"
)

// fakeQuota is a host quota for the fake that matches its fault_quota
// emulation: the rate N of the references' fault_quota=N, one bucket per
// value.
func fakeQuota(perSecond float64, ops ...shared.Operation) Quotas {
	return Quotas{Classes: map[string][]shared.QuotaClass{"fake": {{
		Name: "fault_quota", Rate: perSecond, Operations: ops, Scope: []string{"fault_quota"},
	}}}}
}

// TestQuotaKeepsCallersUnderServiceQuota: 64 callers against a fake
// whose service quota is 100 requests/s see no throttling error when the
// host's quota is the service's, batched or not; without the host's
// quota the same load is throttled (so the emulation binds). The rate
// achieved is measured in the benchmark (row 11), not here.
func TestQuotaKeepsCallersUnderServiceQuota(t *testing.T) {
	const perSecond, total = 100, 250
	for _, tc := range []struct {
		name     string
		batching bool
	}{{"batched", true}, {"unbatched", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, _ := newHost(t, Config{Quotas: fakeQuota(perSecond), DisableBatching: !tc.batching})
			state := filepath.Join(t.TempDir(), "keys.json")
			newKey(t, h, state, "q", shared.ECP256)
			if n := signAllCount(t, h, fakeRef(t, state, "q", "fault_quota="+strconv.Itoa(perSecond)), total); n != 0 {
				t.Errorf("%d of %d signatures throttled by the service, want 0", n, total)
			}
		})
	}
	t.Run("without the host's quota", func(t *testing.T) {
		t.Parallel()
		h, _ := newHost(t, Config{Quotas: Quotas{Disable: true}})
		state := filepath.Join(t.TempDir(), "keys.json")
		newKey(t, h, state, "q", shared.ECP256)
		if n := signAllCount(t, h, fakeRef(t, state, "q", "fault_quota="+strconv.Itoa(perSecond)), 2*total); n == 0 {
			t.Errorf("no throttling without the host's quota: the emulation does not bind")
		}
	})
}

// signAllCount has 64 callers sign total digests with ref's key and
// returns how many were throttled; any other error fails the test, and
// every signature is checked against the key's public key.
func signAllCount(t *testing.T, h *Host, ref string, total int) int64 {
	t.Helper()
	ctx := context.Background()
	k, err := h.Key(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	var left, throttled atomic.Int64
	left.Store(int64(total))
	var wg sync.WaitGroup
	for c := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; left.Add(-1) >= 0; i++ {
				digest := sha256.Sum256([]byte(strconv.Itoa(c) + "/" + strconv.Itoa(i)))
				sig, err := k.SignDigest(ctx, digest[:], SignOptions{})
				if errors.Is(err, shared.ErrThrottled) {
					throttled.Add(1)
					continue
				}
				if err != nil {
					t.Errorf("caller %d: %v", c, err)
					return
				}
				pk, err := k.PublicKey(ctx, sig.Version)
				if errors.Is(err, shared.ErrThrottled) {
					throttled.Add(1)
					continue
				}
				if err != nil {
					t.Errorf("caller %d: %v", c, err)
					return
				}
				if !ecdsa.VerifyASN1(pk.Key.(*ecdsa.PublicKey), digest[:], sig.Signature) {
					t.Errorf("caller %d: a signature does not verify", c)
				}
			}
		}()
	}
	wg.Wait()
	return throttled.Load()
}

// TestQuotaWaitRespectsDeadline: a request whose token would come after
// its deadline fails at once with ErrThrottled, without waiting for the
// deadline, and takes no token; one without a deadline waits.
func TestQuotaWaitRespectsDeadline(t *testing.T) {
	h, _ := newHost(t, Config{Quotas: Quotas{Classes: map[string][]shared.QuotaClass{"fake": {{
		Name: "slow", Rate: 0.1, Burst: 1, Operations: []shared.Operation{shared.OpSign},
	}}}}})
	state := filepath.Join(t.TempDir(), "keys.json")
	ref := newKey(t, h, state, "d", shared.ECP256)
	ctx := context.Background()
	k, err := h.Key(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("d"))
	if _, err := k.SignDigest(ctx, digest[:], SignOptions{}); err != nil {
		t.Fatalf("first signature (the burst): %v", err)
	}
	// The next token is 10s away: a 5s deadline cannot wait for it.
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = k.SignDigest(dctx, digest[:], SignOptions{})
	if !errors.Is(err, shared.ErrThrottled) || !strings.Contains(err.Error(), "deadline") || !strings.Contains(err.Error(), "fake slow") {
		t.Fatalf("err = %v, want ErrThrottled naming the quota and the deadline", err)
	}
	if dctx.Err() != nil {
		t.Error("the call waited for the deadline instead of failing at once")
	}
	// Verification is local and not counted: it still works.
	if _, err := k.PublicKey(dctx, ""); err != nil {
		t.Errorf("public key, which the class does not count: %v", err)
	}
	// A caller that gives up while waiting gets its context's error.
	cctx, ccancel := context.WithCancel(ctx)
	go func() { time.Sleep(50 * time.Millisecond); ccancel() }()
	if _, err := k.SignDigest(cctx, digest[:], SignOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled while waiting: err = %v, want context.Canceled", err)
	}
}

// TestQuotaThrottledAnswerCutsRate: when the service throttles a request
// that had its token, the bucket's rate is cut; the error reaches the
// caller as ErrThrottled (and ErrUnavailable), and the plugin keeps
// running.
func TestQuotaThrottledAnswerCutsRate(t *testing.T) {
	h, _ := newHost(t, Config{Quotas: Quotas{Classes: map[string][]shared.QuotaClass{"fake": {{Name: "all", Rate: 50}}}}})
	state := filepath.Join(t.TempDir(), "keys.json")
	newKey(t, h, state, "t", shared.ECP256)
	ctx := context.Background()
	k, err := h.Key(ctx, fakeRef(t, state, "t", "fault_error=throttled&fault_ops=sign"))
	if err != nil {
		t.Fatal(err)
	}
	pid := h.pid("fake")
	digest := sha256.Sum256([]byte("t"))
	_, err = k.SignDigest(ctx, digest[:], SignOptions{})
	if !errors.Is(err, shared.ErrThrottled) || !errors.Is(err, shared.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrThrottled (also ErrUnavailable)", err)
	}
	m, err := h.plugin("fake")
	if err != nil {
		t.Fatal(err)
	}
	m.quota.mu.Lock()
	b := m.quota.buckets[bucketKey{class: "all"}]
	m.quota.mu.Unlock()
	if b == nil {
		t.Fatal("no bucket for the class")
	}
	if got := float64(b.rateNow()); math.Abs(got-50*quotaCut) > 1e-9 {
		t.Errorf("rate after a throttled answer = %v, want %v", got, 50*quotaCut)
	}
	if h.pid("fake") != pid {
		t.Error("a throttled answer replaced the plugin")
	}
}

// TestBucketAdapts: with a clock of our own, a throttled answer cuts the
// rate by quotaCut at most once per quotaCutEvery, never below
// quotaFloor, and a quiet second gives back quotaRecoverStep.
func TestBucketAdapts(t *testing.T) {
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	b := newBucket("test", 100, 10, t0)
	want := func(step string, r float64) {
		t.Helper()
		if got := float64(b.rateNow()); math.Abs(got-r) > 1e-9 {
			t.Errorf("%s: rate %v, want %v", step, got, r)
		}
		if got := float64(b.lim.Limit()); math.Abs(got-r) > 1e-9 {
			t.Errorf("%s: limiter's rate %v, want %v", step, got, r)
		}
	}
	want("start", 100)
	b.recover(at(5 * time.Second))
	want("recovering at the configured rate", 100)
	b.throttled(at(0))
	want("first throttled answer", 70)
	b.throttled(at(500 * time.Millisecond))
	want("second answer within a second", 70)
	b.throttled(at(time.Second))
	want("a second later", 49)
	b.recover(at(1500 * time.Millisecond))
	want("half a second quiet", 49)
	b.recover(at(2 * time.Second))
	want("a second quiet", 59)
	b.recover(at(4500 * time.Millisecond))
	want("two more seconds", 79)
	b.recover(at(5 * time.Second))
	want("the third second counts from the last step", 89)
	b.recover(at(time.Minute))
	want("a minute quiet", 100)
	for i := range 20 {
		b.throttled(at(time.Minute + time.Duration(i+1)*time.Second))
	}
	want("throttled for 20s", 10)
}

// TestMergeClasses: the configuration overrides a declared class's
// fields by name and adds new classes before the declared ones; invalid
// classes are left out.
func TestMergeClasses(t *testing.T) {
	m := &managed{name: "aws", log: hclog.NewNullLogger(), h: &Host{cfg: Config{Quotas: Quotas{Classes: map[string][]shared.QuotaClass{"aws": {
		{Name: "sign-rsa", Rate: 5000},
		{Name: "extra", Rate: 1, Operations: []shared.Operation{shared.OpRotate}},
		{Name: "public-key", Rate: -1},
		{Name: "bad", Operations: []shared.Operation{"sing"}},
	}}}}}}
	desc := &shared.Description{Quotas: []shared.QuotaClass{
		{Name: "sign-rsa", Rate: 1000, Burst: 100, KeyTypes: []shared.KeyType{shared.RSA2048}, Scope: []string{"region"}},
		{Name: "public-key", Rate: 2000, Operations: []shared.Operation{shared.OpPublicKey}},
	}}
	got := mergeClasses(m, desc)
	var names []string
	for _, c := range got {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "extra,sign-rsa,public-key" {
		t.Fatalf("classes %v, want extra, sign-rsa, public-key", names)
	}
	if c := got[1]; c.Rate != 5000 || c.Burst != 100 || len(c.KeyTypes) != 1 || c.Scope[0] != "region" {
		t.Errorf("overridden class %+v: want rate 5000 and the declared burst, key types and scope", c)
	}
	if got[2].Rate >= 0 {
		t.Errorf("public-key rate %v, want negative (unlimited)", got[2].Rate)
	}
	if desc.Quotas[0].Rate != 1000 {
		t.Error("merging changed the plugin's description")
	}
	if s := scopeOf([]string{"region", "profile"}, Ref{Params: map[string]string{"region": "eu-west-1"}}); s != "region=eu-west-1,profile=" {
		t.Errorf("scope %q", s)
	}
	if s := scopeOf([]string{shared.ScopeKeyOrigin}, Ref{KeyID: "https://v1.vault.azure.net/keys/k/0123"}); s != "@key_origin=https://v1.vault.azure.net" {
		t.Errorf("scope %q", s)
	}
	if s := scopeOf([]string{shared.ScopeKeyOrigin}, Ref{KeyID: "alias/x"}); s != "@key_origin=" {
		t.Errorf("scope %q", s)
	}
}

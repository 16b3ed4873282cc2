package host

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/knhk/knhk/shared"
)

// queued is how many sign requests wait in the fake's batcher.
func (h *Host) queued() int {
	h.mu.Lock()
	m := h.plugins["fake"]
	h.mu.Unlock()
	m.batch.mu.Lock()
	defer m.batch.mu.Unlock()
	return len(m.batch.queue)
}

// idle reports whether no sign call is in flight for the fake.
func (h *Host) idle() bool {
	h.mu.Lock()
	m := h.plugins["fake"]
	h.mu.Unlock()
	m.batch.mu.Lock()
	defer m.batch.mu.Unlock()
	return m.batch.inFlight == 0 && len(m.batch.queue) == 0
}

// slowSign starts maxInFlight signatures that hold the plugin calls for
// latency, so the next requests queue behind them (the calls keep their
// places in flight however long they stall). done is closed when they
// have all returned.
func slowSign(t *testing.T, h *Host, state, latency string) (done chan struct{}) {
	t.Helper()
	ctx := context.Background()
	newKey(t, h, state, "slow", shared.ECP256)
	p, err := h.Provider(ctx, "fake")
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	m := h.plugins["fake"]
	h.mu.Unlock()
	m.batch.mu.Lock()
	m.batch.stall = time.Hour
	m.batch.mu.Unlock()
	// Cache its public key, so verify-after-sign makes no call.
	k, err := h.Key(ctx, fakeRef(t, state, "slow", "fault_latency="+latency+"&fault_ops=sign"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.PublicKey(ctx, ""); err != nil {
		t.Fatal(err)
	}
	// And settle the version state check of its unnamed signatures
	// (checkUnnamed), which would reread the states after it.
	h.states.noteStateless(k.Ref(), "1")
	done = make(chan struct{})
	var wg sync.WaitGroup
	for range maxInFlight {
		calls := h.Stats().Calls
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := sha256.Sum256([]byte("slow"))
			_, err := p.Sign(ctx, shared.SignRequest{
				Key:       shared.KeyRef{ID: "slow", Params: map[string]string{"state": state, "fault_latency": latency, "fault_ops": "sign"}},
				Algorithm: shared.ES256, Digest: d[:],
			})
			if err != nil {
				t.Errorf("slow sign: %v", err)
			}
		}()
		waitFor(t, "a slow sign to be in flight", 10*time.Second, func() bool { return h.Stats().Calls > calls })
	}
	go func() { wg.Wait(); close(done) }()
	return done
}

// TestBatchMixedResults: requests queued behind a call in flight leave in
// one SignBatch call, and each gets its own result: good signatures that
// verify, and typed errors for the items that fail (missing key, provider
// error, corrupted signature caught by verify-after-sign).
func TestBatchMixedResults(t *testing.T) {
	h, _ := newHost(t, Config{})
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	newKey(t, h, state, "ec", shared.ECP256)
	newKey(t, h, state, "ed", shared.Ed25519)
	p, err := h.Provider(ctx, "fake")
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("batch"))
	at := func(id string, extra ...string) shared.KeyRef {
		params := map[string]string{"state": state}
		for i := 0; i+1 < len(extra); i += 2 {
			params[extra[i]] = extra[i+1]
		}
		return shared.KeyRef{ID: id, Params: params}
	}
	items := []struct {
		name    string
		req     shared.SignRequest
		timeout time.Duration
		want    error // nil: a signature that verifies
	}{
		{"es256", shared.SignRequest{Key: at("ec"), Algorithm: shared.ES256, Digest: digest[:]}, 0, nil},
		{"es256 with deadline", shared.SignRequest{Key: at("ec"), Algorithm: shared.ES256, Digest: digest[:]}, time.Minute, nil},
		{"eddsa", shared.SignRequest{Key: at("ed"), Algorithm: shared.EdDSA, Message: []byte("batch")}, 0, nil},
		{"missing key", shared.SignRequest{Key: at("nope"), Algorithm: shared.ES256, Digest: digest[:]}, 0, shared.ErrKeyNotFound},
		{"provider error", shared.SignRequest{Key: at("ec", "fault_error", "permission_denied", "fault_ops", "sign"), Algorithm: shared.ES256, Digest: digest[:]}, 0, shared.ErrPermissionDenied},
		{"corrupted", shared.SignRequest{Key: at("ec", "fault_corrupt", "true", "fault_ops", "sign"), Algorithm: shared.ES256, Digest: digest[:]}, 0, ErrVerifyAfterSign},
		{"wrong algorithm", shared.SignRequest{Key: at("ed"), Algorithm: shared.ES256, Digest: digest[:]}, 0, shared.ErrUnsupportedAlgorithm},
	}
	done := slowSign(t, h, state, "1s")
	before := h.Stats()
	type result struct {
		resp shared.SignResponse
		err  error
	}
	results := make([]result, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			if it.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, it.timeout)
				defer cancel()
			}
			resp, err := p.Sign(ctx, it.req)
			results[i] = result{resp, err}
		}()
	}
	waitFor(t, "every item to queue", 10*time.Second, func() bool { return h.queued() == len(items) })
	wg.Wait()
	<-done
	after := h.Stats()
	if n := after.SignBatches - before.SignBatches; n != 1 {
		t.Errorf("%d SignBatch calls; want the queued items in one", n)
	}
	if n := after.BatchedSignatures - before.BatchedSignatures; n != uint64(len(items)) {
		t.Errorf("SignBatch carried %d items; want %d", n, len(items))
	}
	for i, it := range items {
		r := results[i]
		if it.want != nil {
			if !errors.Is(r.err, it.want) || r.resp.Signature != nil {
				t.Errorf("%s: got %x, %v; want %v", it.name, r.resp.Signature, r.err, it.want)
			}
			continue
		}
		if r.err != nil {
			t.Errorf("%s: %v", it.name, r.err)
			continue
		}
		k, err := h.Key(ctx, "fake:"+it.req.Key.ID+"?state="+state)
		if err != nil {
			t.Fatal(err)
		}
		pk, err := k.PublicKey(ctx, r.resp.Version)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkSignature(pk, it.req.Algorithm, it.req.Digest, it.req.Message, r.resp.Signature); err != nil {
			t.Errorf("%s: the signature does not verify: %v", it.name, err)
		}
	}
}

// TestBatchCallerLeavesWhileQueued: a queued caller whose context is
// cancelled, or whose deadline passes, gets its error while the call ahead
// of it is still in flight, and its request is never sent; the others
// queued with it still get their signatures.
func TestBatchCallerLeavesWhileQueued(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ctx    func() (context.Context, context.CancelFunc)
		cancel bool // cancel once queued; else wait for the deadline
		want   error
	}{
		{"cancelled", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, true, context.Canceled},
		{"deadline passes", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, false, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// States cached for the whole test: their rereads would count.
			h, _ := newHost(t, Config{VersionStatesTTL: time.Hour})
			state := filepath.Join(t.TempDir(), "keys.json")
			ctx := context.Background()
			newKey(t, h, state, "ec", shared.ECP256)
			k, err := h.Key(ctx, fakeRef(t, state, "ec", ""))
			if err != nil {
				t.Fatal(err)
			}
			// A first signature caches the public key and settles the
			// version state checks: SignDigest makes no other call.
			first := sha256.Sum256([]byte("first"))
			if _, err := k.SignDigest(ctx, first[:], SignOptions{}); err != nil {
				t.Fatal(err)
			}
			done := slowSign(t, h, state, "3s")
			before := h.Stats()

			var stays atomic.Value // the error of the caller that waits
			stayed := make(chan struct{})
			go func() {
				defer close(stayed)
				d := sha256.Sum256([]byte("stays"))
				sig, err := k.SignDigest(ctx, d[:], SignOptions{})
				if err == nil {
					err = k.VerifyDigest(ctx, d[:], sig.Signature, SignOptions{})
				}
				stays.Store(fmt.Sprint(err))
			}()
			lctx, cancel := tc.ctx()
			defer cancel()
			left := make(chan error, 1)
			go func() {
				d := sha256.Sum256([]byte("leaves"))
				sig, err := k.SignDigest(lctx, d[:], SignOptions{})
				if sig.Signature != nil {
					err = fmt.Errorf("got a signature: %w", err)
				}
				left <- err
			}()
			waitFor(t, "both requests to queue", 10*time.Second, func() bool { return h.queued() == 2 })
			if tc.cancel {
				cancel()
			}
			err = <-left
			select {
			case <-done:
				t.Fatal("the call in flight ended first; the test proves nothing")
			default:
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("the caller that left got %v; want %v", err, tc.want)
			}
			<-done
			<-stayed
			if s := stays.Load(); s != "<nil>" {
				t.Fatalf("the caller that stayed: %v", s)
			}
			waitFor(t, "the batcher to go idle", 10*time.Second, h.idle)
			after := h.Stats()
			// One call for the request that stayed; none for the other.
			if n := after.Calls - before.Calls; n != 1 || after.BatchedSignatures != before.BatchedSignatures {
				t.Fatalf("%d plugin calls, %d batched items after the slow one; want 1 plain Sign", n, after.BatchedSignatures-before.BatchedSignatures)
			}
		})
	}
}

// TestBatchingOff: with DisableBatching every signature is its own Sign
// call, however many callers there are.
func TestBatchingOff(t *testing.T) {
	h, _ := newHost(t, Config{DisableBatching: true})
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	signer, err := h.Signer(ctx, newKey(t, h, state, "ed", shared.Ed25519))
	if err != nil {
		t.Fatal(err)
	}
	before := h.Stats()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := fmt.Appendf(nil, "m%d", g)
			sig, err := signer.Sign(nil, msg, crypto.Hash(0))
			if err == nil {
				err = shared.VerifyMessage(signer.Public(), shared.EdDSA, msg, sig)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	after := h.Stats()
	if after.SignBatches != before.SignBatches || after.Calls-before.Calls != 16 {
		t.Fatalf("%d calls, %d batches for 16 signatures; want 16 plain calls", after.Calls-before.Calls, after.SignBatches-before.SignBatches)
	}
}

// TestBatchSizeBounds: a batch stops at maxBatch requests or
// maxBatchBytes, whichever comes first, and a request too big for any
// batch leaves alone.
func TestBatchSizeBounds(t *testing.T) {
	req := func(n int) *pending {
		r := shared.SignRequest{Key: shared.KeyRef{ID: "k"}, Algorithm: shared.EdDSA, Message: make([]byte, n)}
		return &pending{req: r, size: wireSize(r)}
	}
	many := func(n, size int) []*pending {
		out := make([]*pending, n)
		for i := range out {
			out[i] = req(size)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		queue []*pending
		want  []int // batch sizes, in order
	}{
		{"small requests", many(maxBatch+10, 100), []int{maxBatch, 10}},
		{"large requests", many(5, maxBatchBytes/3), []int{2, 2, 1}},
		{"one too large", append([]*pending{req(maxBatchBytes + 1)}, many(3, 100)...), []int{1, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &batcher{queue: tc.queue}
			var got []int
			for len(b.queue) > 0 {
				got = append(got, len(b.takeLocked()))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("batches of %v; want %v", got, tc.want)
			}
		})
	}
}

// TestBatchSlowKeyIsolated: with batching on, 64 callers sign
// continuously on a healthy key beside callers of a key behind 10 s of
// latency. The healthy callers get every signature within their
// deadline, the slow key's callers get their own deadline errors at their
// deadlines, and the plugin process is never replaced: results stream
// back per item, so a slow item holds up only its own caller, and an
// item's deadline never counts as the plugin hanging.
func TestBatchSlowKeyIsolated(t *testing.T) {
	const (
		run             = 4 * time.Second
		healthyCallers  = 64
		healthyDeadline = 1500 * time.Millisecond
		slowCallers     = 3
		slowDeadline    = 3 * time.Second // below the call timeout, above the healthy deadline
	)
	h, _ := newHost(t, Config{CallTimeout: 10 * time.Second})
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	newKey(t, h, state, "healthy", shared.ECP256)
	newKey(t, h, state, "slow", shared.ECP256)
	healthy, err := h.Key(ctx, fakeRef(t, state, "healthy", ""))
	if err != nil {
		t.Fatal(err)
	}
	slow, err := h.Key(ctx, fakeRef(t, state, "slow", "fault_latency=10s&fault_ops=sign"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*Key{healthy, slow} { // cached: verify-after-sign makes no call
		if _, err := k.PublicKey(ctx, ""); err != nil {
			t.Fatal(err)
		}
	}
	pid := h.pid("fake")
	before := h.Stats()

	var (
		signed, failed atomic.Int64
		firstErr       atomic.Value
		wg             sync.WaitGroup
		stop           = time.Now().Add(run)
	)
	for g := range healthyCallers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := sha256.Sum256(fmt.Appendf(nil, "healthy %d", g))
			for time.Now().Before(stop) {
				ctx, cancel := context.WithTimeout(context.Background(), healthyDeadline)
				_, err := healthy.SignDigest(ctx, d[:], SignOptions{})
				cancel()
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				signed.Add(1)
			}
		}()
	}
	slowErrs := make(chan error, 64)
	for g := range slowCallers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Staggered, so that a slow item is in flight all along.
			time.Sleep(time.Duration(g) * slowDeadline / slowCallers)
			d := sha256.Sum256(fmt.Appendf(nil, "slow %d", g))
			for time.Now().Before(stop) {
				ctx, cancel := context.WithTimeout(context.Background(), slowDeadline)
				start := time.Now()
				_, err := slow.SignDigest(ctx, d[:], SignOptions{})
				took := time.Since(start)
				cancel()
				if !errors.Is(err, context.DeadlineExceeded) || took > slowDeadline+time.Second {
					slowErrs <- fmt.Errorf("after %s: %v", took.Round(time.Millisecond), err)
				}
			}
		}()
	}
	wg.Wait()
	close(slowErrs)

	for err := range slowErrs {
		t.Errorf("slow key: want its own deadline error at its deadline (%s); got one %v", slowDeadline, err)
	}
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d healthy-key signatures failed; the first: %v", n, n+signed.Load(), firstErr.Load())
	}
	if signed.Load() == 0 {
		t.Fatal("no healthy-key signature")
	}
	if p := h.pid("fake"); p != pid {
		t.Errorf("plugin process %d replaced by %d", pid, p)
	}
	after := h.Stats()
	if after.SignBatches == before.SignBatches {
		t.Error("no SignBatch call: batching was not exercised")
	}
	t.Logf("%d healthy signatures in %s, %d SignBatch calls carrying %d", signed.Load(), run,
		after.SignBatches-before.SignBatches, after.BatchedSignatures-before.BatchedSignatures)
}

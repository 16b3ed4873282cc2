package providertest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/knhk/knhk/shared"
)

// checkConcurrent signs from Config.Concurrency goroutines at once, across
// the key's algorithms, and verifies every signature. Run it with -race.
func (k *kit) checkConcurrent(r reporter, ky *key) {
	n := k.cfg.Concurrency
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := ky.algs[i%len(ky.algs)]
			req := k.signRequest(ky, a, newInput(a, fmt.Sprintf("concurrent signer %d", i)), false, "")
			<-start
			resp, err := k.sign(req)
			switch {
			case err != nil:
				errs[i] = fmt.Errorf("Sign(%q, %s): %w", ky.id, a, err)
			case resp.Version != ky.version:
				errs[i] = fmt.Errorf("Sign(%q, %s) reports version %q, want %q", ky.id, a, resp.Version, ky.version)
			default:
				if err := verifyLocal(ky.pub, req, resp.Signature); err != nil {
					errs[i] = fmt.Errorf("Sign(%q, %s): %w", ky.id, a, err)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	failed := 0
	for i, err := range errs {
		if err == nil {
			continue
		}
		if failed++; failed <= 3 {
			r.Errorf("signer %d of %d: %v", i, n, err)
		}
	}
	if failed > 3 {
		r.Errorf("%d of %d concurrent signers failed in all", failed, n)
	}
}

// checkCancelled checks that Sign with a cancelled context fails promptly
// with context.Canceled.
func (k *kit) checkCancelled(r reporter, ky *key) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	k.checkDeadContext(r, ky, ctx, context.Canceled)
}

// checkDeadline checks that Sign with a deadline in the past fails promptly
// with context.DeadlineExceeded.
func (k *kit) checkDeadline(r reporter, ky *key) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	k.checkDeadContext(r, ky, ctx, context.DeadlineExceeded)
}

// checkDeadContext signs with a context that is already done. The call runs
// in its own goroutine so a provider that ignores the context fails the
// check after Config.Timeout instead of hanging the test.
func (k *kit) checkDeadContext(r reporter, ky *key, ctx context.Context, want error) {
	a := ky.algs[0]
	req := k.signRequest(ky, a, newInput(a, "dead context"), false, "")
	done := make(chan error, 1)
	go func() {
		_, err := k.p.Sign(ctx, req)
		done <- err
	}()
	select {
	case err := <-done:
		if err := wantError(err, want); err != nil {
			r.Errorf("Sign(%q, %s) with a context that is already done: %v", ky.id, a, err)
		}
	case <-time.After(k.cfg.Timeout):
		r.Errorf("Sign(%q, %s) with a context that is already done has not returned after %s", ky.id, a, k.cfg.Timeout)
	}
}

// checkSignBatch sends a batch mixing good and bad items and checks each
// result on its own: good items verify, bad ones carry the right error.
func (k *kit) checkSignBatch(r reporter, ky *key) {
	bs := k.p.(shared.BatchSigner)
	a := ky.algs[0]
	wrongDigest := shared.SignRequest{Key: k.ref(ky.id), Algorithm: a, Digest: make([]byte, 7)}
	unknown := k.signRequest(ky, a, newInput(a, "batch unknown key"), false, "")
	unknown.Key = k.ref(k.cfg.MissingKeyID)
	other := shared.ES256
	if ky.kt.Supports(other) {
		other = shared.RS256
	}
	mismatched := k.signRequest(ky, other, newInput(other, "batch mismatched"), false, "")

	type item struct {
		req  shared.SignRequest
		want []error // nil: must succeed
	}
	items := []item{
		{k.signRequest(ky, a, newInput(a, "batch first"), false, ""), nil},
		{unknown, []error{shared.ErrKeyNotFound}},
		{wrongDigest, []error{shared.ErrInvalidArgument}},
		{mismatched, []error{shared.ErrUnsupportedAlgorithm, shared.ErrInvalidArgument}},
	}
	for i, a := range ky.algs {
		items = append(items, item{k.signRequest(ky, a, newInput(a, fmt.Sprintf("batch item %d", i)), false, ""), nil})
	}
	reqs := make([]shared.SignRequest, len(items))
	for i, it := range items {
		reqs[i] = it.req
	}
	results, err := call(k, func(ctx context.Context) ([]shared.SignResult, error) {
		out := make([]shared.SignResult, len(reqs))
		got := make([]atomic.Int32, len(reqs))
		bs.SignBatch(ctx, reqs, func(i int, res shared.SignResult) {
			if i >= 0 && i < len(reqs) && got[i].Add(1) == 1 {
				out[i] = res
			}
		})
		for i := range got {
			if n := got[i].Load(); n != 1 {
				return nil, fmt.Errorf("item %d got %d results", i, n)
			}
		}
		return out, nil
	})
	if err != nil {
		r.Fatalf("SignBatch: %v", err)
	}
	for i, it := range items {
		res := results[i]
		if it.want != nil {
			if err := wantError(res.Err, it.want...); err != nil {
				r.Errorf("SignBatch item %d (%s with key %q): %v", i, it.req.Algorithm, it.req.Key.ID, err)
			}
			continue
		}
		if res.Err != nil {
			r.Errorf("SignBatch item %d (%s): %v", i, it.req.Algorithm, res.Err)
			continue
		}
		if res.Response.Version != ky.version {
			r.Errorf("SignBatch item %d (%s) reports version %q, want %q", i, it.req.Algorithm, res.Response.Version, ky.version)
		}
		if err := verifyLocal(ky.pub, it.req, res.Response.Signature); err != nil {
			r.Errorf("SignBatch item %d (%s): %v", i, it.req.Algorithm, err)
		}
	}
}

package fake_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/knhk/knhk/plugins/fake"
	"github.com/knhk/knhk/shared"
)

// TestSignBatch: the native batch gives each item its own result, once:
// signatures that verify, typed errors for bad items, an item whose
// deadline has passed, and an injected fault on one item only. Injected
// latency holds up only its own item: two slow items take one latency,
// not two, and the other items' results come before it is over.
func TestSignBatch(t *testing.T) {
	both(t, func(t *testing.T, p shared.Provider) {
		bs, ok := p.(shared.BatchSigner)
		if !ok {
			t.Fatalf("%T is not a shared.BatchSigner", p)
		}
		ec, ed := ref("batch-ec"), ref("batch-ed")
		mustCreate(t, p, ec, shared.ECP256)
		mustCreate(t, p, ed, shared.Ed25519)
		msg := []byte("batch")
		d := digestOf(t, shared.ES256, msg)
		const latency = time.Second
		slow := ref("batch-ec", fake.ParamFaultLatency, latency.String())
		items := []struct {
			req  shared.SignRequest
			want error // nil: verifies
		}{
			{shared.SignRequest{Key: ec, Algorithm: shared.ES256, Digest: d}, nil},
			{shared.SignRequest{Key: ed, Algorithm: shared.EdDSA, Message: msg}, nil},
			{shared.SignRequest{Key: ref("missing"), Algorithm: shared.ES256, Digest: d}, shared.ErrKeyNotFound},
			{shared.SignRequest{Key: ed, Algorithm: shared.ES256, Digest: d}, shared.ErrUnsupportedAlgorithm},
			{shared.SignRequest{Key: ref("batch-ec", fake.ParamFaultError, "permission_denied"), Algorithm: shared.ES256, Digest: d}, shared.ErrPermissionDenied},
			{shared.SignRequest{Key: ec, Algorithm: shared.ES256, Digest: d, Deadline: time.Now().Add(-time.Second)}, context.DeadlineExceeded},
			{shared.SignRequest{Key: slow, Algorithm: shared.ES256, Digest: d}, nil},
			{shared.SignRequest{Key: slow, Algorithm: shared.ES256, Digest: d}, nil},
		}
		reqs := make([]shared.SignRequest, len(items))
		for i, it := range items {
			reqs[i] = it.req
		}
		res := make([]shared.SignResult, len(items))
		at := make([]time.Duration, len(items)) // when each result came
		var mu sync.Mutex
		n := 0
		start := time.Now()
		bs.SignBatch(ctxT(t), reqs, func(i int, r shared.SignResult) {
			mu.Lock()
			defer mu.Unlock()
			if at[i] != 0 {
				t.Errorf("item %d: a second result", i)
			}
			res[i], at[i] = r, time.Since(start)
			n++
		})
		took := time.Since(start)
		if n != len(items) {
			t.Fatalf("%d results for %d items", n, len(items))
		}
		for i, it := range items {
			if it.req.Key.Params[fake.ParamFaultLatency] == "" && at[i] >= latency/2 {
				t.Errorf("item %d: its result came after %s, held up by the slow items", i, at[i])
			}
		}
		pubs := map[string]any{"batch-ec": mustPublic(t, p, ec, ""), "batch-ed": mustPublic(t, p, ed, "")}
		for i, it := range items {
			r := res[i]
			if it.want != nil {
				if !errors.Is(r.Err, it.want) {
					t.Errorf("item %d: %v; want %v", i, r.Err, it.want)
				}
				continue
			}
			if r.Err != nil {
				t.Errorf("item %d: %v", i, r.Err)
				continue
			}
			var err error
			if it.req.Algorithm == shared.EdDSA {
				err = shared.VerifyMessage(pubs[it.req.Key.ID], shared.EdDSA, msg, r.Response.Signature)
			} else {
				err = shared.VerifyDigest(pubs[it.req.Key.ID], shared.ES256, d, r.Response.Signature)
			}
			if err != nil || r.Response.Version != "1" {
				t.Errorf("item %d: version %q, %v", i, r.Response.Version, err)
			}
		}
		// Not a performance bound: two slow items run side by side, so the
		// batch ends well before twice the injected latency.
		if took >= 2*latency {
			t.Errorf("the batch took %s: the slow items ran one after the other", took)
		}
	})
}

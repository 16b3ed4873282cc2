package fake

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/knhk/knhk/shared"
)

var _ shared.BatchSigner = (*Provider)(nil)

// SignBatch signs a batch natively. The fake's signing is pure CPU, so the
// items run on one goroutine per core, each taking the next item, rather
// than on one goroutine per item as the SDK's fallback does for providers
// that wait on a network: that saves a wake-up and a stack growth per
// item. Items carrying fault parameters get a goroutine each, so an
// injected latency or hang holds up only its own item, as it would in
// separate calls. Every item goes through Sign (same checks, faults and
// counts) within its own deadline.
func (p *Provider) SignBatch(ctx context.Context, reqs []shared.SignRequest) []shared.SignResult {
	out := make([]shared.SignResult, len(reqs))
	var (
		wg    sync.WaitGroup
		plain = make([]int, 0, len(reqs))
	)
	for i, r := range reqs {
		if !hasFaults(r.Key.Params) {
			plain = append(plain, i)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = p.signItem(ctx, r)
		}()
	}
	var next atomic.Int64
	work := func() {
		for {
			j := int(next.Add(1)) - 1
			if j >= len(plain) {
				return
			}
			i := plain[j]
			out[i] = p.signItem(ctx, reqs[i])
		}
	}
	for range min(runtime.GOMAXPROCS(0), len(plain)) - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
	return out
}

// signItem signs one batch item within its deadline. A panic fails the
// item, not the plugin.
func (p *Provider) signItem(ctx context.Context, req shared.SignRequest) (res shared.SignResult) {
	defer func() {
		if r := recover(); r != nil {
			res = shared.SignResult{Err: fmt.Errorf("fake: panic while signing a batch item: %v", r)}
		}
	}()
	if !req.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, req.Deadline)
		defer cancel()
	}
	resp, err := p.Sign(ctx, req)
	return shared.SignResult{Response: resp, Err: err}
}

// hasFaults reports whether a request's parameters inject faults.
func hasFaults(params map[string]string) bool {
	for k := range params {
		if strings.HasPrefix(k, "fault_") {
			return true
		}
	}
	return false
}

package host

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/knhk/knhk/internal/pluginrpc"
	"github.com/knhk/knhk/shared"
)

// maxBatch bounds the sign requests carried by one SignBatch call, and
// maxBatchBytes their size, well under shared.MaxMessageSize: requests
// that each fit a call of their own must fit a batch too. A request
// larger than that leaves alone.
const (
	maxBatch      = 256
	maxBatchBytes = shared.MaxMessageSize / 2
)

// batcher coalesces one plugin's concurrent sign requests into SignBatch
// calls. A request that finds fewer than maxInFlight calls in flight is
// sent at once (no added latency when idle); requests that arrive while
// the calls are in flight queue and leave together, up to maxBatch, as
// soon as one returns. The plugin signs a batch's items in parallel on
// all its cores, and the callers verify the previous batch's signatures
// on the host's cores meanwhile.
type batcher struct {
	m *managed

	mu       sync.Mutex // guards the fields below
	queue    []*pending
	inFlight int
}

// maxInFlight bounds the sign calls in flight per plugin. With one, the
// plugin idles for every round trip between batches; with two, it has the
// next batch while the host reads and verifies the last one.
const maxInFlight = 2

// pending is one queued sign request and, once done is closed, its result.
type pending struct {
	ctx       context.Context
	req       shared.SignRequest
	size      int // about what req weighs on the wire
	res       shared.SignResult
	done      chan struct{}
	abandoned atomic.Bool // the caller stopped waiting
}

// sign queues req and waits for its result or for ctx to end, whichever
// comes first: a caller that gives up gets its error at once, and its
// request is dropped if it has not been sent yet.
func (b *batcher) sign(ctx context.Context, req shared.SignRequest) (shared.SignResponse, error) {
	if err := ctx.Err(); err != nil {
		return shared.SignResponse{}, err
	}
	p := &pending{ctx: ctx, req: req, size: wireSize(req), done: make(chan struct{})}
	if d, ok := ctx.Deadline(); ok {
		p.req.Deadline = d
	}
	b.mu.Lock()
	b.queue = append(b.queue, p)
	var batch []*pending
	if b.inFlight < maxInFlight {
		b.inFlight++
		batch = b.takeLocked()
	}
	b.mu.Unlock()
	if batch != nil {
		if ctx.Done() == nil {
			// Nobody can cancel this caller: send from its goroutine
			// and save a hand-off.
			b.run(batch, true)
		} else {
			go b.run(batch, false)
		}
	}
	select {
	case <-p.done:
		return p.res.Response, p.res.Err
	case <-ctx.Done():
		p.abandoned.Store(true)
		return shared.SignResponse{}, ctx.Err()
	}
}

// takeLocked removes the next batch from the queue: up to maxBatch
// requests and maxBatchBytes, and at least one request.
func (b *batcher) takeLocked() []*pending {
	n, size := 0, 0
	for n < len(b.queue) && n < maxBatch {
		if s := b.queue[n].size; n == 0 || size+s <= maxBatchBytes {
			size += s
			n++
			continue
		}
		break
	}
	batch := b.queue[:n:n]
	if n == len(b.queue) {
		b.queue = nil
	} else {
		b.queue = b.queue[n:]
	}
	return batch
}

// run sends batch, then keeps sending what queued meanwhile until the
// queue is empty. Inline (in a caller's goroutine) it sends one batch
// and hands the rest to a new goroutine, so the caller is not held up.
func (b *batcher) run(batch []*pending, inline bool) {
	for {
		b.send(batch)
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.inFlight--
			b.mu.Unlock()
			return
		}
		batch = b.takeLocked()
		b.mu.Unlock()
		if inline {
			go b.run(batch, false)
			return
		}
	}
}

// send makes one plugin call for the requests still wanted: Sign for a
// lone request (under its caller's context, as without batching),
// SignBatch for several. Each request gets its own result; a failed call
// fails every request it carried.
func (b *batcher) send(batch []*pending) {
	live := batch[:0:0]
	for _, p := range batch {
		switch {
		case p.abandoned.Load():
		case p.ctx.Err() != nil:
			p.finish(shared.SignResult{Err: p.ctx.Err()})
		default:
			live = append(live, p)
		}
	}
	m := b.m
	switch len(live) {
	case 0:
		return
	case 1:
		p := live[0]
		req := p.req
		req.Deadline = time.Time{} // the context carries it
		resp, err := call(p.ctx, m, "sign", true, func(ctx context.Context, c *pluginrpc.Client) (shared.SignResponse, error) {
			return c.Sign(ctx, req)
		})
		p.finish(shared.SignResult{Response: resp, Err: err})
		return
	}
	reqs := make([]shared.SignRequest, len(live))
	var latest time.Time
	forever := false
	for i, p := range live {
		reqs[i] = p.req
		if d := p.req.Deadline; d.IsZero() {
			forever = true
		} else if d.After(latest) {
			latest = d
		}
	}
	// The call serves many callers: no single caller's cancellation ends
	// it. It ends at the call timeout, or once every item has expired.
	ctx := context.Background()
	if !forever {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, latest)
		defer cancel()
	}
	m.h.batches.Add(1)
	m.h.batched.Add(uint64(len(reqs)))
	results, err := call(ctx, m, "sign", true, func(ctx context.Context, c *pluginrpc.Client) ([]shared.SignResult, error) {
		return c.SignItems(ctx, reqs)
	})
	for i, p := range live {
		if err != nil {
			p.finish(shared.SignResult{Err: err})
			continue
		}
		p.finish(results[i])
	}
}

// wireSize estimates a sign request's size in a SignBatch call.
func wireSize(r shared.SignRequest) int {
	n := 64 + len(r.Key.ID) + len(r.Algorithm) + len(r.Version) + len(r.Digest) + len(r.Message)
	for k, v := range r.Key.Params {
		n += 8 + len(k) + len(v)
	}
	return n
}

// finish hands a result to the waiting caller. A response without a
// signature is the plugin's fault, never a success.
func (p *pending) finish(r shared.SignResult) {
	if r.Err == nil && r.Response.Signature == nil {
		r.Err = fmt.Errorf("%w: plugin returned an empty signature", shared.ErrUnavailable)
	}
	p.res = r
	close(p.done)
}

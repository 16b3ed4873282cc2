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
// soon as one returns or stalls. The plugin signs a batch's items in
// parallel on all its cores and streams each result back as soon as it
// has it, so a caller whose item is done verifies its signature on the
// host's cores while the plugin still signs the rest, and a slow item
// holds up only its own caller.
type batcher struct {
	m *managed

	mu       sync.Mutex // guards the fields below
	queue    []*pending
	inFlight int
	stall    time.Duration // 0: stallAfter (tests hold calls in flight longer)
}

// maxInFlight bounds the sign calls in flight per plugin. With one, the
// plugin idles for every round trip between batches; with two, it has the
// next batch while the host reads and verifies the last one.
const maxInFlight = 2

// stallAfter is how long a sign call may go without delivering a result
// before it stops counting as in flight. A call that has delivered what
// the plugin could sign and waits for a slow item (a key behind a slow
// service, an item that will meet its deadline) gives its place to the
// requests queued behind it. Under load a call delivers a result every
// few tens of microseconds; one that pauses anyway only lets one more
// batch leave early.
const stallAfter = 5 * time.Millisecond

// flight is one sign call in flight. It holds one of the maxInFlight
// places until it ends or stalls.
type flight struct {
	results  atomic.Int64 // results delivered so far
	timer    *time.Timer  // checks for a stall
	seen     int64        // results at the last check; guarded by batcher.mu
	released bool         // gave its place up; guarded by batcher.mu
	ended    bool         // guarded by batcher.mu
}

// pending is one queued sign request and, once done is closed, its result.
type pending struct {
	ctx       context.Context
	req       shared.SignRequest
	size      int // about what req weighs on the wire
	res       shared.SignResult
	done      chan struct{}
	finished  bool        // res is set; only the goroutine sending the request uses it
	abandoned atomic.Bool // the caller stopped waiting
	bucket    *bucket     // where its quota tokens came from; nil: none
}

// signQuota is what the quotas need to know about a sign request.
func signQuota(m *managed, req shared.SignRequest) quotaReq {
	return quotaReq{op: shared.OpSign, ref: Ref{Provider: m.name, KeyID: req.Key.ID, Params: req.Key.Params}, version: req.Version, alg: req.Algorithm}
}

// sign queues req and waits for its result or for ctx to end, whichever
// comes first: a caller that gives up gets its error at once, and its
// request is dropped if it has not been sent yet. The request takes its
// quota tokens (see Quotas) before it is queued, so a batch carries only
// requests the quota allows and waits for tokens here, not at the
// service.
func (b *batcher) sign(ctx context.Context, req shared.SignRequest) (shared.SignResponse, error) {
	if err := ctx.Err(); err != nil {
		return shared.SignResponse{}, err
	}
	bk, err := b.m.quota.take(ctx, b.m, signQuota(b.m, req))
	if err != nil {
		return shared.SignResponse{}, err
	}
	p := &pending{ctx: ctx, req: req, size: wireSize(req), done: make(chan struct{}), bucket: bk}
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
	if ctx.Done() == nil { // nobody can cancel: a plain receive is cheaper than a select
		<-p.done
		return p.res.Response, p.res.Err
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
// queue is empty or the call stalled (its place then went to the queue).
// Inline (in a caller's goroutine) it sends one batch and hands the rest
// to a new goroutine, so the caller is not held up.
func (b *batcher) run(batch []*pending, inline bool) {
	for {
		if !b.send(batch) {
			return
		}
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

// takeOff starts watching a call for a stall, once it is sent to the
// plugin (not while the plugin is being launched); later attempts (a retry
// on a fresh plugin) keep the first one's flight.
func (b *batcher) takeOff(f *flight) *flight {
	if f != nil {
		return f
	}
	f = &flight{}
	b.mu.Lock()
	defer b.mu.Unlock()
	stall := b.stall
	if stall == 0 {
		stall = stallAfter
	}
	f.timer = time.AfterFunc(stall, func() { b.check(f, stall) })
	return f
}

// check runs stall after a call took off or was last checked: a call that
// delivered nothing meanwhile gives its place to the next batch.
func (b *batcher) check(f *flight, stall time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if f.ended {
		return
	}
	if n := f.results.Load(); n != f.seen {
		f.seen = n
		f.timer.Reset(stall)
		return
	}
	f.released = true
	if len(b.queue) > 0 {
		go b.run(b.takeLocked(), false)
		return
	}
	b.inFlight--
}

// land ends a call and reports whether it still held its place (always,
// if it never took off).
func (b *batcher) land(f *flight) bool {
	if f == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	f.ended = true
	f.timer.Stop()
	return !f.released
}

// send makes one plugin call for the requests still wanted: Sign for a
// lone request (under its caller's context, as without batching),
// SignBatch for several, whose results stream back one by one. Each
// request gets its own result; a failed call fails the requests it had
// not answered. send reports whether the call still held its place in
// flight when it ended (see stallAfter).
func (b *batcher) send(batch []*pending) bool {
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
	if len(live) == 0 {
		return true
	}
	var f *flight
	m := b.m
	if len(live) == 1 {
		p := live[0]
		req := p.req
		req.Deadline = time.Time{} // the context carries it
		resp, err := call(p.ctx, m, "sign", true, func(ctx context.Context, c *pluginrpc.Client) (shared.SignResponse, error) {
			f = b.takeOff(f)
			return c.Sign(ctx, req)
		})
		p.finish(shared.SignResult{Response: resp, Err: err})
		return b.land(f)
	}
	var latest time.Time
	forever := false
	for _, p := range live {
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
	ctx, span := m.startBatch(ctx, live)
	defer span.End()
	m.h.batches.Add(1)
	m.h.batched.Add(uint64(len(live)))
	reqs := make([]shared.SignRequest, 0, len(live))
	rest := make([]*pending, 0, len(live))
	_, err := call(ctx, m, "sign", true, func(ctx context.Context, c *pluginrpc.Client) (struct{}, error) {
		f = b.takeOff(f)
		// The requests still without a result: after a crash, the retry
		// on a fresh plugin sends only those.
		reqs, rest = reqs[:0], rest[:0]
		for _, p := range live {
			if !p.finished {
				reqs = append(reqs, p.req)
				rest = append(rest, p)
			}
		}
		return struct{}{}, c.SignStream(ctx, reqs, func(i int, r shared.SignResult) {
			f.results.Add(1)
			rest[i].finish(r)
		})
	})
	if err != nil {
		failBatch(span, err)
		for _, p := range live {
			if !p.finished {
				p.finish(shared.SignResult{Err: err})
			}
		}
	}
	return b.land(f)
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
	p.res, p.finished = r, true
	p.bucket.observe(r.Err)
	close(p.done)
}

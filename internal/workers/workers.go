// Package workers runs functions on goroutines that outlive one call: a
// goroutine's stack, grown by its first signature (ECDSA and RSA
// verification need deep stacks), is reused instead of grown (copied)
// again for every item. The plugin SDK's batches and the sidecar's
// streams use it.
package workers

import "time"

// Idle is how long a worker waits for more work before it exits.
const Idle = 10 * time.Second

// Pool runs any number of functions at once (work that waits on the
// network needs as many goroutines as there are items); a worker left
// idle for Idle exits. Make it with New.
type Pool struct {
	idle chan func() // unbuffered: a send succeeds only if a worker waits
}

// New returns an empty pool.
func New() *Pool { return &Pool{idle: make(chan func())} }

// Go runs f on an idle worker, or on a new one when none is idle.
func (p *Pool) Go(f func()) {
	select {
	case p.idle <- f:
	default:
		go p.loop(f)
	}
}

func (p *Pool) loop(f func()) {
	t := time.NewTimer(Idle)
	defer t.Stop()
	for {
		f()
		t.Reset(Idle)
		select {
		case f = <-p.idle:
		case <-t.C:
			return
		}
	}
}

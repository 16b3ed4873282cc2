package workers

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestPoolRunsEverything: every function runs, many at once (none waits
// for another to finish), and idle workers are reused.
func TestPoolRunsEverything(t *testing.T) {
	p := New()
	const n = 100
	var ran atomic.Int64
	var started sync.WaitGroup
	release := make(chan struct{})
	started.Add(n)
	var done sync.WaitGroup
	done.Add(n)
	for range n {
		p.Go(func() {
			started.Done()
			<-release // all n must be running at once for this to end
			ran.Add(1)
			done.Done()
		})
	}
	started.Wait()
	close(release)
	done.Wait()
	if ran.Load() != n {
		t.Fatalf("ran %d of %d", ran.Load(), n)
	}
	// Workers are now idle: one more runs on one of them.
	reused := make(chan struct{})
	p.Go(func() { close(reused) })
	<-reused
}

package host

import (
	"context"
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

// TestStuckPluginReplacedWhateverTheDeadlines (item 6): callers with
// 500ms deadlines never see the host's 2s call timeout, yet a plugin that
// stopped answering is replaced within the call timeout, and calls work
// again afterwards.
func TestStuckPluginReplacedWhateverTheDeadlines(t *testing.T) {
	const timeout = 2 * time.Second
	h, _ := newHost(t, Config{CallTimeout: timeout})
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	ref := newKey(t, h, state, "stuck", shared.ECP256)
	k, err := h.Key(ctx, fakeRef(t, state, "stuck", "fault_hang_after=0&fault_ops=sign"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.PublicKey(ctx, ""); err != nil { // launched, key cached
		t.Fatal(err)
	}
	pid := h.pid("fake")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad atomic.Value
	start := time.Now()
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := sha256.Sum256([]byte("m"))
			for {
				select {
				case <-stop:
					return
				default:
				}
				cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				_, err := k.SignDigest(cctx, d[:], SignOptions{})
				cancel()
				if err == nil || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrCallTimeout)) {
					bad.Store(fmt.Sprint(err))
				}
			}
		}()
	}
	waitFor(t, "the stuck plugin to be killed", timeout+time.Second, func() bool { return gone(pid) })
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if b := bad.Load(); b != nil {
		t.Fatalf("a call on the stuck plugin returned %s", b)
	}
	t.Logf("stuck plugin killed %s after the first stuck call (call timeout %s)", took, timeout)
	// Later calls succeed, on a fresh process.
	waitFor(t, "the watchdog to settle", 2*timeout, func() bool {
		h.mu.Lock()
		m := h.plugins["fake"]
		h.mu.Unlock()
		c := m.live()
		return c == nil || c.watch.stalled(time.Now()) == 0
	})
	good, err := h.Key(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("after"))
	if _, err := good.SignDigest(ctx, d[:], SignOptions{}); err != nil {
		t.Fatalf("sign after the replacement: %v", err)
	}
	if p := h.pid("fake"); p == pid || p == 0 {
		t.Fatalf("plugin pid %d, was %d: not replaced", p, pid)
	}
}

// TestConcurrentCallsToAHungPluginAllTimeOut (item 6): every concurrent
// call to a plugin that stopped answering gets ErrCallTimeout, none later
// than the call timeout.
func TestConcurrentCallsToAHungPluginAllTimeOut(t *testing.T) {
	const timeout = time.Second
	h, _ := newHost(t, Config{CallTimeout: timeout})
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	newKey(t, h, state, "hung", shared.ECP256)
	k, err := h.Key(ctx, fakeRef(t, state, "hung", "fault_hang_after=0&fault_ops=sign"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.PublicKey(ctx, ""); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	took := make([]time.Duration, len(errs))
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second) // later than the call timeout
			defer cancel()
			d := sha256.Sum256(fmt.Appendf(nil, "m%d", i))
			start := time.Now()
			_, errs[i] = k.SignDigest(cctx, d[:], SignOptions{})
			took[i] = time.Since(start)
		}()
		time.Sleep(20 * time.Millisecond) // staggered: some join a stuck call late
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrCallTimeout) || !IsRetryable(err) {
			t.Errorf("call %d: %v; want ErrCallTimeout", i, err)
		}
		// Correctness bound: the call timeout, plus scheduling slack.
		if took[i] > timeout+500*time.Millisecond {
			t.Errorf("call %d took %s; the call timeout is %s", i, took[i], timeout)
		}
	}
}

// TestWatchEvidence: the watchdog's evidence. Calls given up keep it; an
// answer clears what was sent before it; calls still in flight after an
// answer have waited since that answer.
func TestWatchEvidence(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	w := watch{born: t0}
	if d := w.stalled(at(100)); d != 0 {
		t.Fatalf("idle: stalled %s", d)
	}
	w.sent(at(10))
	w.abandoned() // its caller gave up
	if d := w.stalled(at(110)); d != 100*time.Millisecond {
		t.Fatalf("after a given-up call: stalled %s, want 100ms", d)
	}
	w.sent(at(120))
	w.sent(at(130))
	w.answered(at(140)) // the plugin answers: older evidence goes
	if d := w.stalled(at(150)); d != 10*time.Millisecond {
		t.Fatalf("one call still in flight: stalled %s, want 10ms (since the answer)", d)
	}
	w.answered(at(160))
	if d := w.stalled(at(500)); d != 0 {
		t.Fatalf("all answered: stalled %s", d)
	}
	w.sent(at(600))
	w.cleared(w.since.Load(), at(700)) // a health check answered, the call still waits
	if d := w.stalled(at(800)); d != 100*time.Millisecond {
		t.Fatalf("after a health check with a call in flight: stalled %s, want 100ms", d)
	}
}

// TestIdleAfterAGivenUpCallIsNotStuck: a plugin whose last call was given
// up by its caller, then has nothing to do, answers the watchdog's health
// check and keeps running.
func TestIdleAfterAGivenUpCallIsNotStuck(t *testing.T) {
	const timeout = 500 * time.Millisecond
	h, _ := newHost(t, Config{CallTimeout: timeout})
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	newKey(t, h, state, "slow", shared.ECP256)
	k, err := h.Key(ctx, fakeRef(t, state, "slow", "fault_latency=300ms&fault_ops=key_metadata"))
	if err != nil {
		t.Fatal(err)
	}
	pid := h.pid("fake")
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = k.Metadata(cctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Metadata with a short deadline: %v", err)
	}
	time.Sleep(3 * timeout)
	if p := h.pid("fake"); p != pid {
		t.Fatalf("plugin replaced (pid %d -> %d) while idle after a given-up call", pid, p)
	}
}

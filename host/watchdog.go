package host

import (
	"fmt"
	"sync/atomic"
	"time"
)

// watch is what the host knows of an instance's responsiveness, kept on
// every call with a few atomic operations: how many calls are in flight,
// and since when the plugin has answered nothing while calls waited. A
// call whose caller gave up leaves no answer behind, so it keeps that
// evidence: only an answer from the plugin clears it.
type watch struct {
	born     time.Time
	inflight atomic.Int64
	// since is when the oldest call still without an answer was sent, or
	// the plugin's last answer if later; 0: no call waits. In nanoseconds
	// after born, plus one.
	since atomic.Int64
}

func (w *watch) stamp(t time.Time) int64 { return int64(t.Sub(w.born)) + 1 }

// sent records a call sent at t.
func (w *watch) sent(t time.Time) {
	w.inflight.Add(1)
	if w.since.Load() == 0 {
		w.since.CompareAndSwap(0, w.stamp(t))
	}
}

// answered records that the plugin answered a call at t: it was
// answering then, so calls still in flight have waited since t at most.
func (w *watch) answered(t time.Time) {
	if w.inflight.Add(-1) > 0 {
		s := w.stamp(t)
		for old := w.since.Load(); old != 0 && old < s; old = w.since.Load() {
			if w.since.CompareAndSwap(old, s) {
				break
			}
		}
		return
	}
	w.since.Store(0)
	if w.inflight.Load() > 0 { // a call was sent meanwhile
		w.since.CompareAndSwap(0, w.stamp(t))
	}
}

// abandoned records a call that ended without an answer (its caller gave
// up, or it timed out): the evidence that the plugin owes one stays.
func (w *watch) abandoned() { w.inflight.Add(-1) }

// cleared drops the evidence s after a health check answered at t,
// keeping what calls sent meanwhile need.
func (w *watch) cleared(s int64, t time.Time) {
	if w.since.CompareAndSwap(s, 0) && w.inflight.Load() > 0 {
		w.since.CompareAndSwap(0, w.stamp(t))
	}
}

// stalled is how long calls have waited at now with no answer from the
// plugin; 0 when none waits.
func (w *watch) stalled(now time.Time) time.Duration {
	s := w.since.Load()
	if s == 0 {
		return 0
	}
	return time.Duration(w.stamp(now) - s)
}

// watchdog replaces the instance once it has answered nothing for the call
// timeout while calls waited, whoever waits and whatever their deadlines:
// callers that give up early never see the host's timeout, so supervision
// cannot be left to them. When every waiting call has been given up, the
// plugin may simply have nothing to do (the answer to a given-up call is
// never seen), so it is asked for a health check first, and an answer
// clears the evidence. The watchdog ends with the instance.
func (m *managed) watchdog(inst *instance) {
	timeout := m.h.cfg.CallTimeout
	t := time.NewTimer(timeout)
	defer t.Stop()
	var exited <-chan struct{}
	if inst.proc != nil {
		exited = inst.proc.done
	}
	for {
		select {
		case <-inst.gone:
			return
		case <-exited:
			return // the next call finds it gone and replaces it
		case <-t.C:
		}
		d := inst.watch.stalled(time.Now())
		if d >= timeout {
			s := inst.watch.since.Load()
			if inst.watch.inflight.Load() > 0 || !m.alive(inst) {
				m.replaceStuck(inst, d)
				return
			}
			inst.watch.cleared(s, time.Now())
			d = inst.watch.stalled(time.Now())
		}
		// Evidence that starts now is due in a full timeout.
		t.Reset(max(timeout-d, 10*time.Millisecond))
	}
}

// replaceStuck kills an instance that answered nothing for waited; every
// call in flight on it fails with ErrCallTimeout.
func (m *managed) replaceStuck(inst *instance, waited time.Duration) {
	if inst.stuck.CompareAndSwap(false, true) {
		m.fail(inst, true, fmt.Sprintf("it answered nothing for %s while calls waited", waited.Round(time.Millisecond)))
	}
}

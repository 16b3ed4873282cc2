package host

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/knhk/knhk/shared"
)

// verdict is what one attempt on one replica says about the call.
type verdict uint8

const (
	answered verdict = iota // done: a result, or an error every replica would give
	next                    // this replica cannot serve it: try the next
	skipped                 // the replica was not tried (breaker open, quarantined)
)

// attempt runs fn on one replica: its breaker, its first check against the
// group's key, a deadline that leaves time for the replicas after it
// (left counts them), and the classification of the outcome.
func attempt[T any](ctx context.Context, g *group, r *replica, want *groupKey, left int, fn func(context.Context, *replica) (T, error)) (T, error, verdict) {
	var zero T
	if _, q := r.usable(); q {
		return zero, nil, skipped
	}
	done, err := r.cb.Allow()
	if err != nil {
		return zero, nil, skipped
	}
	budget := g.cfg.AttemptTimeout
	if d, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(d)/time.Duration(left))
	}
	actx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	start := time.Now()
	var res T
	if checked, _ := r.usable(); !checked {
		err = g.check(actx, r, want)
	}
	if _, q := r.usable(); q && err == nil {
		err = fmt.Errorf("%w: key group %s, replica %d (%s) holds another key than the group's", shared.ErrKeyNotFound, shared.Quote(g.name), r.idx+1, r.name())
	}
	if err == nil {
		res, err = fn(actx, r)
	}
	cause := err
	switch {
	case err == nil:
	case ctx.Err() != nil:
		err = fmt.Errorf("%w: %w", errAbandoned, err)
	case actx.Err() != nil:
		err = fmt.Errorf("%w: key group %s, replica %d (%s) did not answer within %s: %w (%w)",
			shared.ErrUnavailable, shared.Quote(g.name), r.idx+1, r.name(), budget.Round(time.Millisecond), err, context.DeadlineExceeded)
	}
	r.observe(time.Since(start), err)
	done(err)
	switch {
	case err == nil:
		return res, nil, answered
	case errors.Is(err, errAbandoned):
		return zero, cause, answered
	case errors.Is(err, shared.ErrKeyNotFound):
		// This replica does not hold the key (any more): out of the group
		// until a sync round finds it again.
		if _, q := r.usable(); !q {
			g.compare(ctx, r, want, PublicKey{}, "")
		}
		return zero, err, next
	case replicaDown(err), errors.Is(err, shared.ErrThrottled):
		return zero, err, next
	}
	return zero, err, answered
}

// do runs fn on the group's replicas with failover, ordered or hedged as
// configured, within ctx.
func do[T any](ctx context.Context, g *group, fn func(context.Context, *replica) (T, error)) (T, error) {
	var zero T
	want, err := g.ensure(ctx)
	if err != nil {
		return zero, err
	}
	if g.cfg.Failover == FailoverHedged && len(g.reps) > 1 {
		return hedged(ctx, g, want, fn)
	}
	var errs []error
	for i, r := range g.reps {
		res, err, v := attempt(ctx, g, r, want, len(g.reps)-i, fn)
		switch v {
		case answered:
			return res, err
		case next:
			errs = append(errs, err)
			g.h.gtel.countFailover(ctx, g.name, r.key.ref.Provider)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return zero, g.exhausted(ctx, errs)
}

// exhausted is the error when no replica could serve a call.
func (g *group) exhausted(ctx context.Context, errs []error) error {
	if len(errs) == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fmt.Errorf("%w: key group %s: no replica can take calls (every one is quarantined or its breaker is open); see knhk-host keys health", shared.ErrUnavailable, shared.Quote(g.name))
	}
	notFound := true
	for _, err := range errs {
		notFound = notFound && errors.Is(err, shared.ErrKeyNotFound)
	}
	wrapped := errors.Join(errs...)
	if notFound && len(errs) == len(g.reps) {
		return fmt.Errorf("key group %s: no replica holds the key: %w", shared.Quote(g.name), wrapped)
	}
	return fmt.Errorf("%w: key group %s: every replica tried failed: %w", shared.ErrUnavailable, shared.Quote(g.name), wrapped)
}

// outcome is one hedged attempt's end.
type outcome[T any] struct {
	res T
	err error
	v   verdict
	r   *replica
}

// hedged starts on the first usable replica and also on the next one each
// time HedgeDelay passes without an answer, or at once when an attempt
// fails over; the first answer wins and the others are cancelled.
func hedged[T any](ctx context.Context, g *group, want *groupKey, fn func(context.Context, *replica) (T, error)) (T, error) {
	var zero T
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make(chan outcome[T], len(g.reps))
	nextRep, running := 0, 0
	launch := func() {
		for nextRep < len(g.reps) {
			r := g.reps[nextRep]
			nextRep++
			if _, q := r.usable(); q || r.cb.State() == gobreaker.StateOpen {
				continue
			}
			left := len(g.reps) - nextRep + 1
			running++
			go func() {
				res, err, v := attempt(ctx, g, r, want, left, fn)
				out <- outcome[T]{res, err, v, r}
			}()
			return
		}
	}
	launch()
	timer := time.NewTimer(g.cfg.HedgeDelay)
	defer timer.Stop()
	var errs []error
	for running > 0 {
		select {
		case o := <-out:
			running--
			switch o.v {
			case answered:
				return o.res, o.err
			case next:
				errs = append(errs, o.err)
				g.h.gtel.countFailover(ctx, g.name, o.r.key.ref.Provider)
			}
			if ctx.Err() == nil {
				launch()
			}
		case <-timer.C:
			launch()
			timer.Reset(g.cfg.HedgeDelay)
		}
	}
	return zero, g.exhausted(ctx, errs)
}

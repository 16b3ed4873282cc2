package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/knhk/knhk/internal/pluginrpc"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/telemetry"
)

// call runs one plugin call through the host's machinery: lazy launch,
// the call timeout, the watchdog's evidence, and crash detection. An
// idempotent call whose plugin died is retried once on a fresh process.
func call[T any](ctx context.Context, m *managed, op string, idempotent bool, f func(context.Context, *pluginrpc.Client) (T, error)) (T, error) {
	var zero T
	timeout := m.h.cfg.CallTimeout
	for attempt := 0; ; attempt++ {
		inst, err := m.acquire(ctx)
		if err != nil {
			return zero, err
		}
		m.h.calls.Add(1)
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, timeout)
		inst.watch.sent(start)
		res, err := f(cctx, inst.rpc)
		end := time.Now()
		answered := err == nil || !unanswered(err, cctx, start, end)
		cancel()
		if answered {
			inst.watch.answered(end)
		} else {
			inst.watch.abandoned()
		}
		switch {
		case err == nil:
			m.succeeded(inst)
			return res, nil
		case inst.stuck.Load():
			return zero, stuckError(m, op, timeout)
		case ctx.Err() != nil:
			return zero, err // the caller gave up; not the plugin's fault
		case !answered && !callerBound(ctx, start, timeout):
			// The host's own timeout: replace the plugin if it has
			// answered nothing else since this call was sent.
			if d := inst.watch.stalled(end); d >= timeout-margin(timeout) {
				m.replaceStuck(inst, d)
			}
			if inst.stuck.Load() {
				return zero, stuckError(m, op, timeout)
			}
			return zero, fmt.Errorf("%w: plugin %s, %s, after %s; the plugin answers other calls, so it keeps running: %w (%w)",
				ErrCallTimeout, m.name, op, timeout, shared.ErrUnavailable, context.DeadlineExceeded)
		case transportError(err) && !m.alive(inst):
			if m.h.closed.Load() {
				return zero, fmt.Errorf("%w: plugin %s, %s: %v", ErrClosed, m.name, op, err)
			}
			if inst.stuck.Load() { // the watchdog killed it meanwhile
				return zero, stuckError(m, op, timeout)
			}
			m.fail(inst, true, "the plugin process died during "+op)
			if !idempotent || attempt > 0 || m.h.cfg.Retry.DisableRetry {
				return zero, fmt.Errorf("%w: plugin %s, %s: %v: %w", ErrPluginCrashed, m.name, op, err, shared.ErrUnavailable)
			}
			m.log.Warn("retrying on a fresh plugin process", append([]any{"op", op}, telemetry.LogArgs(ctx)...)...)
		default:
			return zero, err
		}
	}
}

// limited is call for a request a provider's quota may count (see
// Quotas): it first takes the request's tokens, in the caller's
// goroutine and within its deadline, and tells the bucket when the
// service throttled the request anyway. A retry on a fresh plugin
// process takes no more tokens.
func limited[T any](ctx context.Context, m *managed, q quotaReq, op string, idempotent bool, f func(context.Context, *pluginrpc.Client) (T, error)) (T, error) {
	b, err := m.quota.take(ctx, m, q)
	if err != nil {
		var zero T
		return zero, err
	}
	res, err := call(ctx, m, op, idempotent, f)
	b.observe(err)
	return res, err
}

// stuckError is what every call on an instance the host replaced for
// answering nothing gets.
func stuckError(m *managed, op string, timeout time.Duration) error {
	return fmt.Errorf("%w: plugin %s, %s: the plugin answered nothing for %s; it was killed and will be relaunched: %w (%w)",
		ErrCallTimeout, m.name, op, timeout, shared.ErrUnavailable, context.DeadlineExceeded)
}

// unanswered reports whether a failed call ended without an answer from
// the plugin: at its deadline, or cancelled. The plugin's gRPC server
// enforces the same deadline and may reset the stream a moment before the
// host's timer fires, so a cancellation near the deadline counts too.
func unanswered(err error, cctx context.Context, start, end time.Time) bool {
	if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if cctx.Err() != nil {
		return true
	}
	d, _ := cctx.Deadline()
	return d.Sub(end) < margin(d.Sub(start))
}

// margin is how close to its deadline a call ending in a cancellation
// counts as having reached it.
func margin(budget time.Duration) time.Duration { return max(budget/10, 50*time.Millisecond) }

// callerBound reports whether the caller's deadline, not the host's call
// timeout, bounded a call started at start.
func callerBound(ctx context.Context, start time.Time, timeout time.Duration) bool {
	d, ok := ctx.Deadline()
	return ok && d.Before(start.Add(timeout))
}

// transportError reports whether err may come from a broken connection
// rather than from the provider: gRPC says Unavailable when the process is
// gone and Canceled when the host closed the connection under the call.
// Either may also be the provider's own answer, so call asks alive too.
func transportError(err error) bool {
	return errors.Is(err, shared.ErrUnavailable) || errors.Is(err, context.Canceled)
}

// firstLine keeps go-plugin's diagnosis and drops its multi-line advice.
func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(line)
}

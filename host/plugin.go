package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/knhk/knhk/internal/contract"
	"github.com/knhk/knhk/internal/pluginrpc"
	"github.com/knhk/knhk/shared"
)

// managed supervises one provider's plugin: at most one running instance,
// shared by every key of that provider, launched on first use and replaced
// when it dies or hangs.
type managed struct {
	h    *Host
	name string
	log  hclog.Logger

	launch chan struct{} // one-slot lock held while launching
	batch  batcher       // coalesces concurrent signatures

	mu        sync.Mutex // guards the fields below
	cur       *instance
	failures  int       // consecutive deaths or failed launches
	nextStart time.Time // no relaunch before this
	lastErr   error     // last launch failure, returned until nextStart
	desc      *shared.Description
	path, sum string // file and SHA-256 of the last launch
}

// instance is one running plugin process (or one reattachment).
type instance struct {
	client *goplugin.Client
	proto  goplugin.ClientProtocol
	rpc    *pluginrpc.Client
	conn   *grpc.ClientConn
	cmd    *exec.Cmd     // nil when reattached
	done   chan struct{} // closed when a reattached instance is dropped

	dead     atomic.Bool // the host gave up on this instance
	ok       atomic.Bool // a call has succeeded on it
	killOnce sync.Once
}

func newManaged(h *Host, name string) *managed {
	m := &managed{h: h, name: name, log: h.log.Named(name), launch: make(chan struct{}, 1)}
	m.batch.m = m
	return m
}

// description is what the plugin said about itself at its last launch.
func (m *managed) description() *shared.Description {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.desc
}

// live returns the running instance, if any and not exited.
func (m *managed) live() *instance {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.cur; c != nil && !c.client.Exited() && !c.dead.Load() {
		return c
	}
	return nil
}

// acquire returns a running instance, launching one if needed (after the
// backoff that follows repeated failures).
func (m *managed) acquire(ctx context.Context) (*instance, error) {
	if c := m.live(); c != nil {
		return c, nil
	}
	select {
	case m.launch <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-m.launch }()

	m.mu.Lock()
	if c := m.cur; c != nil && !c.client.Exited() && !c.dead.Load() {
		m.mu.Unlock()
		return c, nil
	}
	if c := m.cur; c != nil {
		m.mu.Unlock()
		m.fail(c, false, "the plugin process exited")
		m.mu.Lock()
	}
	if m.lastErr != nil && time.Now().Before(m.nextStart) {
		err := m.lastErr
		m.mu.Unlock()
		return nil, err
	}
	wait := time.Until(m.nextStart)
	m.mu.Unlock()

	if wait > 0 {
		m.log.Debug("waiting before relaunching the plugin", "backoff", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	if !m.h.track() {
		return nil, ErrClosed
	}
	defer m.h.wg.Done()
	inst, err := m.start()

	m.mu.Lock()
	if err != nil {
		m.failures++
		m.nextStart = time.Now().Add(m.h.cfg.Retry.backoff(m.failures + 1))
		m.lastErr = err
		m.mu.Unlock()
		return nil, err
	}
	if m.h.closed.Load() { // Close ran during the launch and did not see it
		m.mu.Unlock()
		inst.kill(false)
		return nil, ErrClosed
	}
	m.cur, m.lastErr = inst, nil
	m.mu.Unlock()
	return inst, nil
}

// fail drops an instance the host gave up on and kills it in the
// background; the next call launches a fresh one.
func (m *managed) fail(inst *instance, hard bool, why string) {
	m.mu.Lock()
	if m.cur == inst {
		m.cur = nil
		m.failures++
		m.nextStart = time.Now().Add(m.h.cfg.Retry.backoff(m.failures))
		m.log.Warn("replacing plugin", "reason", why, "consecutive_failures", m.failures)
	}
	m.mu.Unlock()
	inst.dead.Store(true)
	m.h.goKill(inst, hard)
}

// succeeded resets the failure count after the first good call on an
// instance.
func (m *managed) succeeded(inst *instance) {
	if inst.ok.CompareAndSwap(false, true) {
		m.mu.Lock()
		if m.cur == inst {
			m.failures = 0
		}
		m.mu.Unlock()
	}
}

// alive tells a plugin that answered "unavailable" itself from one whose
// process or connection is gone: a health check on the connection.
func (m *managed) alive(inst *instance) bool {
	if inst.dead.Load() || inst.client.Exited() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(m.h.cfg.CallTimeout, 2*time.Second))
	defer cancel()
	_, err := healthpb.NewHealthClient(inst.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: goplugin.GRPCServiceName})
	return err == nil
}

// start launches (or reattaches) the plugin and checks what it says it is.
func (m *managed) start() (*instance, error) {
	var (
		inst *instance
		err  error
		what string
	)
	if rc, ok := m.h.cfg.Reattach[m.name]; ok {
		what = "reattached plugin " + m.name
		inst, err = m.attach(rc)
	} else {
		inst, what, err = m.exec()
	}
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.h.cfg.CallTimeout)
	defer cancel()
	desc, err := inst.rpc.Describe(ctx)
	switch {
	case err != nil:
		err = fmt.Errorf("%w: %s: Describe failed: %v", ErrHandshake, what, err)
	case desc.ProtocolVersion != shared.ProtocolVersion:
		err = fmt.Errorf("%w: %s: Describe failed: it speaks knhk protocol %d, the host speaks %d", ErrHandshake, what, desc.ProtocolVersion, shared.ProtocolVersion)
	case inst.cmd != nil && desc.Name != m.name:
		// The file name picks the plugin for a provider; one that calls
		// itself something else is a misnamed or swapped file.
		err = fmt.Errorf("%w: %s: the file name says provider %q, but the plugin's Describe says %s; a plugin must be named %s<the name it reports>",
			ErrHandshake, what, m.name, shared.Quote(desc.Name), PluginPrefix)
	}
	if err != nil {
		inst.kill(true)
		return nil, err
	}
	m.mu.Lock()
	m.desc = &desc
	m.mu.Unlock()
	m.log.Debug("plugin started", "plugin_version", desc.Version)
	return inst, nil
}

// exec checks the plugin file and launches it.
func (m *managed) exec() (*instance, string, error) {
	h := m.h
	path, err := findPlugin(h.dirs, m.name)
	if err != nil {
		return nil, "", err
	}
	if err := checkFile(path); err != nil {
		return nil, path, err
	}
	cmd := exec.Command(path)
	// The plugin logs at the host's level (shared.Logger reads it).
	cmd.Env = append(os.Environ(), contract.LogLevelEnv+"="+m.log.GetLevel().String())
	cfg := pluginrpc.ClientConfig(cmd)
	var sum string
	if h.lock != nil {
		// Pinned: the file must hash to the lock file's sum, and
		// go-plugin hashes it again right before exec, so a file swapped
		// in between is refused too. Unpinned, there is nothing to
		// compare a hash with: hashing (20ms per 20 MB binary, twice)
		// would only slow every launch.
		var err error
		if sum, err = fileSHA256(path); err != nil {
			return nil, path, err
		}
		if err := h.lock.check(filepath.Base(path), sum); err != nil {
			return nil, path, err
		}
		checksum, _ := hex.DecodeString(sum)
		cfg.SecureConfig = &goplugin.SecureConfig{Checksum: checksum, Hash: sha256.New()}
	}
	cfg.StartTimeout = h.cfg.StartTimeout
	cfg.Logger = m.log
	tail := &stderrTail{}
	cfg.Stderr = tail
	client := goplugin.NewClient(cfg)
	proto, err := client.Client()
	if err != nil {
		client.Kill()
		if errors.Is(err, goplugin.ErrChecksumsDoNotMatch) {
			return nil, path, fmt.Errorf("%w: %s changed after it was checked (expected sha256:%s)", ErrPluginRefused, path, sum)
		}
		if out, ok := strayStdout(err); ok {
			return nil, path, fmt.Errorf("%w: %s: plugin wrote to stdout before the handshake: %s (stdout carries go-plugin's handshake line; a plugin logs with shared.Logger, which writes to stderr)%s",
				ErrHandshake, path, out, tail.hint())
		}
		return nil, path, fmt.Errorf("%w: %s: %v (is it a knhk provider plugin for protocol %d?)%s",
			ErrHandshake, path, firstLine(err.Error()), shared.ProtocolVersion, tail.hint())
	}
	inst, err := newInstance(client, proto, cmd, nil)
	if err != nil {
		client.Kill()
		return nil, path, fmt.Errorf("%w: %s: %v", ErrHandshake, path, err)
	}
	m.mu.Lock()
	m.path, m.sum = path, sum
	m.mu.Unlock()
	return inst, path, nil
}

// attach connects to a plugin served elsewhere (go-plugin reattach/test
// mode). The host never kills that process; dropping the instance closes
// the connection only.
func (m *managed) attach(rc *goplugin.ReattachConfig) (*instance, error) {
	done := make(chan struct{})
	r := *rc
	r.Test = true
	r.ReattachFunc = func() (runner.AttachedRunner, error) { return &attached{addr: rc.Addr, done: done}, nil }
	cfg := pluginrpc.ClientConfig(nil)
	cfg.Cmd, cfg.Reattach, cfg.AutoMTLS = nil, &r, false
	cfg.Logger = m.log
	client := goplugin.NewClient(cfg)
	proto, err := client.Client()
	if err == nil {
		var inst *instance
		if inst, err = newInstance(client, proto, nil, done); err == nil {
			return inst, nil
		}
	}
	close(done)
	client.Kill()
	return nil, fmt.Errorf("%w: reattaching plugin %s at %v: %v", ErrHandshake, m.name, rc.Addr, err)
}

func newInstance(client *goplugin.Client, proto goplugin.ClientProtocol, cmd *exec.Cmd, done chan struct{}) (*instance, error) {
	rpc, err := pluginrpc.Dispense(proto)
	if err != nil {
		return nil, err
	}
	gc, ok := proto.(*goplugin.GRPCClient)
	if !ok {
		return nil, fmt.Errorf("plugin speaks %T, not gRPC", proto)
	}
	return &instance{client: client, proto: proto, rpc: rpc, conn: gc.Conn, cmd: cmd, done: done}, nil
}

// killWatchdog bounds a graceful kill: go-plugin's shutdown RPC has no
// deadline of its own.
const killWatchdog = 3 * time.Second

// kill ends the instance. hard sends SIGKILL first (a hung plugin will not
// answer a shutdown request); otherwise the plugin gets a graceful
// shutdown and SIGKILL only if it does not exit in time.
func (i *instance) kill(hard bool) {
	i.killOnce.Do(func() {
		i.dead.Store(true)
		if i.cmd == nil { // reattached: close our side only
			_ = i.conn.Close()
			close(i.done)
			i.client.Kill()
			return
		}
		if hard {
			_ = i.cmd.Process.Kill()
		} else {
			t := time.AfterFunc(killWatchdog, func() { _ = i.cmd.Process.Kill() })
			defer t.Stop()
		}
		i.client.Kill()
	})
}

// attached is the go-plugin runner for a reattached plugin: it never
// signals the process (which may be the test process itself) and its Wait
// ends when the host drops the instance.
type attached struct {
	addr net.Addr
	done chan struct{}
}

func (a *attached) Wait(context.Context) error { <-a.done; return nil }
func (a *attached) Kill(context.Context) error { return nil }
func (a *attached) ID() string                 { return "reattach:" + a.addr.String() }
func (a *attached) PluginToHost(n, addr string) (string, string, error) {
	return n, addr, nil
}
func (a *attached) HostToPlugin(n, addr string) (string, string, error) {
	return n, addr, nil
}

// call runs one plugin call through the host's machinery: lazy launch,
// the call timeout, and crash detection. An idempotent call whose plugin
// died is retried once on a fresh process.
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
		res, err := f(cctx, inst.rpc)
		timedOut := pluginTimedOut(ctx, cctx, err, start, timeout)
		cancel()
		switch {
		case err == nil:
			m.succeeded(inst)
			return res, nil
		case ctx.Err() != nil:
			return zero, err // the caller gave up; not the plugin's fault
		case timedOut && !inst.dead.Load():
			m.fail(inst, true, op+" timed out")
			return zero, fmt.Errorf("%w: plugin %s, %s, after %s; the plugin was killed and will be relaunched: %w (%w)",
				ErrCallTimeout, m.name, op, timeout, shared.ErrUnavailable, context.DeadlineExceeded)
		case transportError(err) && !m.alive(inst):
			if m.h.closed.Load() {
				return zero, fmt.Errorf("%w: plugin %s, %s: %v", ErrClosed, m.name, op, err)
			}
			m.fail(inst, true, "the plugin process died during "+op)
			if !idempotent || attempt > 0 || m.h.cfg.Retry.DisableRetry {
				return zero, fmt.Errorf("%w: plugin %s, %s: %v: %w", ErrPluginCrashed, m.name, op, err, shared.ErrUnavailable)
			}
			m.log.Warn("retrying on a fresh plugin process", "op", op)
		default:
			return zero, err
		}
	}
}

// pluginTimedOut reports whether a call failed because the host's call
// timeout (not the caller's deadline) ran out. The plugin's gRPC server
// enforces the same deadline and may reset the stream a moment before the
// host's timer fires, so a cancellation error near the deadline counts too.
func pluginTimedOut(ctx, cctx context.Context, err error, start time.Time, timeout time.Duration) bool {
	if d, ok := ctx.Deadline(); ok && d.Before(start.Add(timeout)) {
		return false // the caller's deadline was the binding one
	}
	if errors.Is(cctx.Err(), context.DeadlineExceeded) {
		return true
	}
	nearDeadline := time.Since(start) >= timeout-timeout/10
	return nearDeadline && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

// unrecognized starts go-plugin's error for a first stdout line that is not
// its handshake line; the line follows.
const unrecognized = "Unrecognized remote plugin message: "

// strayStdout recognises go-plugin's error for a plugin that printed
// something else before its handshake line and returns that line, quoted
// and cut short. ok is false for other errors, and for a plugin that
// printed nothing at all.
func strayStdout(err error) (line string, ok bool) {
	rest, found := strings.CutPrefix(firstLine(err.Error()), unrecognized)
	if !found || rest == "" {
		return "", false
	}
	const show = 64 // bytes: enough to recognise the output
	if len(rest) > show {
		return shared.Quote(rest[:show]) + "…", true
	}
	return shared.Quote(rest), true
}

// firstLine keeps go-plugin's diagnosis and drops its multi-line advice.
func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(line)
}

// transportError reports whether err may come from a broken connection
// rather than from the provider: gRPC says Unavailable when the process is
// gone and Canceled when the host closed the connection under the call.
// Either may also be the provider's own answer, so call asks alive too.
func transportError(err error) bool {
	return errors.Is(err, shared.ErrUnavailable) || errors.Is(err, context.Canceled)
}

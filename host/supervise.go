package host

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/knhk/knhk/internal/pluginrpc"
	"github.com/knhk/knhk/shared"
)

// managed supervises one provider's plugin: at most one running instance,
// shared by every key of that provider, launched on first use and replaced
// when it dies or stops answering.
type managed struct {
	h    *Host
	name string
	log  hclog.Logger

	launch chan struct{} // one-slot lock held while launching
	batch  batcher       // coalesces concurrent signatures
	quota  quotaSet      // the provider's request quotas
	tel    *pluginTel    // the provider's metric attributes

	mu        sync.Mutex // guards the fields below
	cur       *instance
	failures  int       // consecutive deaths or failed launches
	nextStart time.Time // no relaunch before this
	lastErr   error     // last launch failure, returned until nextStart
	lost      bool      // an instance died or was killed since the last launch
	desc      *shared.Description
	path, sum string // file and SHA-256 of the last launch
}

// instance is one running plugin process (or one reattachment).
type instance struct {
	client *goplugin.Client
	rpc    *pluginrpc.Client
	conn   *grpc.ClientConn
	proc   *process      // nil when reattached
	done   chan struct{} // closed when a reattached instance is dropped
	gone   chan struct{} // closed when the host gives up on the instance
	log    hclog.Logger

	watch    watch       // what the watchdog reads
	dead     atomic.Bool // the host gave up on this instance
	stuck    atomic.Bool // ... because it answered nothing for the call timeout
	ok       atomic.Bool // a call has succeeded on it
	killOnce sync.Once
}

func newManaged(h *Host, name string) *managed {
	m := &managed{h: h, name: name, log: h.log.Named(name), launch: make(chan struct{}, 1), tel: newPluginTel(name)}
	m.batch.m = m
	return m
}

func newInstance(client *goplugin.Client, proto goplugin.ClientProtocol, proc *process, done chan struct{}, log hclog.Logger) (*instance, error) {
	rpc, err := pluginrpc.Dispense(proto)
	if err != nil {
		return nil, err
	}
	gc, ok := proto.(*goplugin.GRPCClient)
	if !ok {
		return nil, fmt.Errorf("plugin speaks %T, not gRPC", proto)
	}
	inst := &instance{client: client, rpc: rpc, conn: gc.Conn, proc: proc, done: done, gone: make(chan struct{}), log: log}
	inst.watch.born = time.Now()
	return inst, nil
}

// exited reports whether the instance's process has exited (for a
// reattached one: whether go-plugin saw it go).
func (i *instance) exited() bool {
	if i.proc != nil {
		return i.proc.exited()
	}
	return i.client.Exited()
}

// usable reports whether calls may go to the instance.
func (i *instance) usable() bool { return !i.dead.Load() && !i.exited() }

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
	if c := m.cur; c != nil && c.usable() {
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
	if c := m.cur; c != nil && c.usable() {
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
	inst, err := m.startTraced(ctx)

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
	m.countUp(1)
	if m.lost {
		m.lost = false
		m.countRestart()
	}
	m.mu.Unlock()
	m.h.wg.Add(1) // Close waits for the watchdog too
	go func() {
		defer m.h.wg.Done()
		m.watchdog(inst)
	}()
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
		m.lost = true
		m.countCrash()
		m.countUp(-1)
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
	if !inst.usable() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(m.h.cfg.CallTimeout, 2*time.Second))
	defer cancel()
	_, err := healthpb.NewHealthClient(inst.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: goplugin.GRPCServiceName})
	return err == nil
}

// start launches (or reattaches) the plugin and checks what it says it is.
// ctx carries the launch's span, not its lifetime: a launch is bounded by
// the start and call timeouts, whoever asked for it.
func (m *managed) start(ctx context.Context) (*instance, error) {
	var (
		inst *instance
		err  error
		what string
	)
	if rc, ok := m.h.reattach[m.name]; ok {
		what = "reattached plugin " + m.name
		inst, err = m.attach(rc)
	} else {
		inst, what, err = m.exec()
	}
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.h.cfg.CallTimeout)
	defer cancel()
	desc, err := inst.rpc.Describe(ctx)
	switch {
	case err != nil:
		err = fmt.Errorf("%w: %s: Describe failed: %v", ErrHandshake, what, err)
	case desc.ProtocolVersion != shared.ProtocolVersion:
		err = fmt.Errorf("%w: %s: Describe failed: it speaks knhk protocol %d, the host speaks %d", ErrHandshake, what, desc.ProtocolVersion, shared.ProtocolVersion)
	case inst.proc != nil && desc.Name != m.name:
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

package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-plugin/runner"
)

// Bounds on stopping a plugin. After the shutdown request it has
// shutdownGrace to exit; then its process group gets SIGTERM, and SIGKILL
// termGrace later; killWait is what the kernel may take after SIGKILL. Its
// output pipes are closed pipeGrace after it exits even if something
// outside its group still holds them, so go-plugin's readers end.
const (
	shutdownGrace = 2 * time.Second
	termGrace     = time.Second
	killWait      = time.Second
	pipeGrace     = time.Second
)

// process is one plugin process the host started, and go-plugin's runner
// for it. The host, not go-plugin, starts, signals and reaps it: it runs
// the file the host checked (see fdExecPath), in a process group of its
// own that the host kills as a whole, and nothing waits for it without a
// bound.
type process struct {
	path  string   // the plugin file, for names and messages
	file  *os.File // the checked open file, executed as such
	env   []string // the plugin's environment (pluginEnv, then go-plugin's)
	spawn *spawner

	cmd            *exec.Cmd
	stdout, stderr *os.File // read ends of the plugin's output
	pid            int
	socketDir      string        // go-plugin's socket directory for this plugin
	done           chan struct{} // closed once the process is reaped
	err            error         // the exit status, once done is closed

	mu        sync.Mutex // orders signals to the group before the reaping
	reaped    bool
	termOnce  sync.Once
	closeOnce sync.Once
}

var _ runner.Runner = (*process)(nil)

func newProcess(path string, file *os.File, env []string, spawn *spawner) *process {
	return &process{path: path, file: file, env: env, spawn: spawn, done: make(chan struct{})}
}

// Start starts the plugin: stdin from /dev/null, stdout and stderr to
// pipes the host can close, in its own process group.
func (p *process) Start(context.Context) error {
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return err
	}
	// Args[0] stays the plugin's path: it names itself by it.
	cmd := &exec.Cmd{Path: p.path, Args: []string{p.path}, Env: p.env, Stdout: outW, Stderr: errW, SysProcAttr: procAttr()}
	if fd := fdExecPath(); fd != "" {
		cmd.Path, cmd.ExtraFiles = fd, []*os.File{p.file}
	}
	err = p.spawn.do(cmd.Start)
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // its path may be /proc/self/fd/3
		}
		return fmt.Errorf("starting %s: %w", p.path, err)
	}
	p.mu.Lock()
	p.cmd, p.stdout, p.stderr, p.pid = cmd, outR, errR, cmd.Process.Pid
	p.mu.Unlock()
	go p.reap()
	return nil
}

// reap waits for the plugin to exit, kills what it left in its process
// group (children holding its pipes, say), and reaps it.
func (p *process) reap() {
	if awaitExit(p.pid) {
		p.mu.Lock()
		_ = signalGroup(p.pid, syscall.SIGKILL)
		p.reaped = true
		p.mu.Unlock()
	}
	err := p.cmd.Wait()
	p.mu.Lock()
	p.reaped = true
	p.mu.Unlock()
	p.err = err
	close(p.done)
	time.AfterFunc(pipeGrace, p.closePipes)
}

// signal sends sig to the plugin's process group, unless the plugin has
// been reaped (its group id may then be reused) or never started.
func (p *process) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !p.reaped {
		_ = signalGroup(p.pid, sig)
	}
}

// stop sends SIGTERM to the group, and SIGKILL after grace.
func (p *process) stop(grace time.Duration) {
	p.termOnce.Do(func() {
		p.signal(syscall.SIGTERM)
		time.AfterFunc(grace, func() { p.signal(syscall.SIGKILL) })
	})
}

// exited reports whether the plugin has exited (and been reaped).
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// started reports whether the process was started.
func (p *process) started() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// waitFor waits up to d for the plugin to exit and reports whether it did
// (or never started).
func (p *process) waitFor(d time.Duration) bool {
	if !p.started() {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// status says how the plugin exited ("exit status 3", "signal: killed").
func (p *process) status() string {
	if p.err != nil {
		return p.err.Error()
	}
	return "exit status 0"
}

// closePipes closes the host's ends of the plugin's output, which ends
// go-plugin's readers whoever else holds the other ends.
func (p *process) closePipes() {
	p.closeOnce.Do(func() {
		p.stdout.Close()
		p.stderr.Close()
	})
}

// Wait waits for the plugin to exit.
func (p *process) Wait(context.Context) error {
	<-p.done
	return p.err
}

// Kill is go-plugin's way to stop the plugin (after a failed handshake,
// or when it did not exit after the shutdown request): SIGTERM, then
// SIGKILL.
func (p *process) Kill(context.Context) error {
	p.stop(termGrace)
	return nil
}

func (p *process) Stdout() io.ReadCloser { return p.stdout }
func (p *process) Stderr() io.ReadCloser { return p.stderr }
func (p *process) Name() string          { return p.path }

// ID is the process id; empty until started (go-plugin then has nothing
// to kill).
func (p *process) ID() string {
	if !p.started() {
		return ""
	}
	return strconv.Itoa(p.pid)
}

func (p *process) Diagnose(context.Context) string { return "" }
func (p *process) PluginToHost(n, addr string) (string, string, error) {
	return n, addr, nil
}
func (p *process) HostToPlugin(n, addr string) (string, string, error) {
	return n, addr, nil
}

// spawner starts plugin processes from one goroutine locked to its OS
// thread for as long as the host may start plugins. Linux sends a child
// its parent-death signal when the thread that started it ends, not the
// process; Go ends a thread only when a goroutine locked to it exits, so
// with every start on this thread no other goroutine's end (a caller's
// that had locked its thread, say) can kill a plugin. The thread ends with
// the host (stop), after its plugins.
type spawner struct {
	mu      sync.Mutex
	reqs    chan func() // nil until the first start
	quit    chan struct{}
	stopped bool
}

// do runs start on the spawner's thread.
func (s *spawner) do(start func() error) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.reqs == nil {
		s.reqs, s.quit = make(chan func()), make(chan struct{})
		go s.loop(s.reqs, s.quit)
	}
	reqs, quit := s.reqs, s.quit
	s.mu.Unlock()
	errc := make(chan error, 1)
	select {
	case reqs <- func() { errc <- start() }:
		return <-errc
	case <-quit:
		return ErrClosed
	}
}

func (s *spawner) loop(reqs chan func(), quit chan struct{}) {
	runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
	for {
		select {
		case f := <-reqs:
			f()
		case <-quit:
			return
		}
	}
}

// stop ends the spawner's goroutine and thread; later starts fail.
func (s *spawner) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped && s.quit != nil {
		close(s.quit)
	}
	s.stopped = true
}

// kill ends the instance within fixed bounds. hard sends SIGKILL at once
// (a hung plugin will not answer a shutdown request); otherwise the plugin
// gets go-plugin's shutdown request, then SIGTERM, then SIGKILL, each to
// its whole process group. go-plugin's own cleanup (its Kill) runs beside
// and is waited for only up to a bound: a child that escaped the group and
// holds the plugin's output would otherwise hold it up forever.
func (i *instance) kill(hard bool) {
	i.killOnce.Do(func() {
		i.dead.Store(true)
		close(i.gone)
		if i.proc == nil { // reattached: close our side only
			_ = i.conn.Close()
			close(i.done)
			i.client.Kill()
			return
		}
		p := i.proc
		if hard {
			p.signal(syscall.SIGKILL)
		}
		cleaned := make(chan struct{})
		go func() {
			defer close(cleaned)
			i.client.Kill()
		}()
		if !p.waitFor(shutdownGrace) {
			p.stop(termGrace)
			if !p.waitFor(termGrace + killWait) {
				i.log.Error("plugin process did not exit after SIGKILL", "pid", p.pid)
			}
		}
		t := time.NewTimer(pipeGrace + killWait)
		defer t.Stop()
		select {
		case <-cleaned:
		case <-t.C:
			i.log.Warn("go-plugin's cleanup of the plugin did not finish; going on without it", "pid", p.pid)
		}
	})
}

// stopStarting ends a plugin whose launch failed: SIGKILL to its group,
// then go-plugin's cleanup, waited for within a bound.
func stopStarting(client interface{ Kill() }, p *process) {
	p.signal(syscall.SIGKILL)
	cleaned := make(chan struct{})
	go func() {
		defer close(cleaned)
		client.Kill()
	}()
	t := time.NewTimer(killWait + pipeGrace + killWait)
	defer t.Stop()
	select {
	case <-cleaned:
	case <-t.C:
	}
	if p.socketDir != "" {
		_ = os.RemoveAll(p.socketDir) // go-plugin removes it only for a plugin that started
	}
}

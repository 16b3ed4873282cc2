package host

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/knhk/knhk/internal/pluginrpc"
	"github.com/knhk/knhk/shared"
)

// exec checks the plugin file and launches it: the file is opened once,
// checked (openPlugin) and, with a lock file, hashed; that open file is
// what runs. The plugin gets its own environment (pluginEnv) and process
// (process).
func (m *managed) exec() (*instance, string, error) {
	h := m.h
	path, err := findPlugin(h.dirs, m.name)
	if err != nil {
		return nil, "", err
	}
	if path, err = filepath.Abs(path); err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrPluginRefused, err)
	}
	f, err := openPlugin(path)
	if err != nil {
		return nil, path, err
	}
	defer f.Close() // once started, the plugin has its own descriptor
	var sum string
	if h.lock != nil {
		// Unpinned, there is nothing to compare a hash with: hashing
		// (about 20ms per 20 MB binary) would only slow every launch.
		if sum, err = hashOpen(f, path); err != nil {
			return nil, path, err
		}
		if err := h.lock.check(filepath.Base(path), sum); err != nil {
			return nil, path, err
		}
	}
	p := newProcess(path, f, pluginEnv(os.Environ(), m.name, h.cfg.PluginEnv, m.log.GetLevel().String()), &h.spawn)
	cfg := pluginrpc.ClientConfigWith(nil, m.h.tel.grpc)
	cfg.SkipHostEnv = true // pluginEnv is all it gets of the host's
	cfg.RunnerFunc = func(_ hclog.Logger, cmd *exec.Cmd, socketDir string) (runner.Runner, error) {
		p.env = append(p.env, cmd.Env...) // go-plugin's handshake variables
		p.socketDir = socketDir
		return p, nil
	}
	cfg.StartTimeout = h.cfg.StartTimeout
	cfg.Logger = m.log
	tail := &stderrTail{}
	cfg.Stderr = tail
	client := goplugin.NewClient(cfg)
	proto, err := client.Client()
	if err != nil {
		crashed := exitedEarly(err) && p.waitFor(killWait)
		if crashed {
			// go-plugin is done with the plugin's stderr once it has
			// seen it exit: the tail then holds its last lines.
			waitUntil(client.Exited, pipeGrace+killWait)
		}
		stopStarting(client, p)
		return nil, path, startError(path, err, crashed, p, tail)
	}
	inst, err := newInstance(client, proto, p, nil, m.log)
	if err != nil {
		stopStarting(client, p)
		return nil, path, fmt.Errorf("%w: %s: %v", ErrHandshake, path, err)
	}
	m.mu.Lock()
	m.path, m.sum = path, sum
	m.mu.Unlock()
	return inst, path, nil
}

// go-plugin's errors for a plugin whose stdout closed, or that exited,
// before its handshake line.
const (
	noLines     = "Failed to read any lines from plugin's stdout"
	exitedFirst = "plugin exited before we could connect"
)

// exitedEarly reports whether go-plugin's error says the plugin's stdout
// closed or the plugin exited before the handshake.
func exitedEarly(err error) bool {
	s := err.Error()
	return strings.Contains(s, noLines) || strings.Contains(s, exitedFirst)
}

// notExecutedDirectly is what a go-plugin plugin prints before exiting
// when the magic cookie is not its own: a plugin of another program.
const notExecutedDirectly = "These are not meant to be executed directly"

// startError explains a failed launch. A plugin that exited before its
// handshake crashed (ErrPluginCrashed, retryable: the next call launches
// it again), unless it said it expects another magic cookie; everything
// else is ErrHandshake.
func startError(path string, err error, crashed bool, p *process, tail *stderrTail) error {
	if out, ok := strayStdout(err); ok {
		return fmt.Errorf("%w: %s: plugin wrote to stdout before the handshake: %s (stdout carries go-plugin's handshake line; a plugin logs with shared.Logger, which writes to stderr)%s",
			ErrHandshake, path, out, tail.hint())
	}
	if crashed && !tail.contains(notExecutedDirectly) {
		return fmt.Errorf("%w: %s exited during start-up, before the handshake (%s)%s: %w",
			ErrPluginCrashed, path, p.status(), tail.hint(), shared.ErrUnavailable)
	}
	return fmt.Errorf("%w: %s: %v (is it a knhk provider plugin for protocol %d?)%s",
		ErrHandshake, path, firstLine(err.Error()), shared.ProtocolVersion, tail.hint())
}

// waitUntil polls cond until it holds or d has passed.
func waitUntil(cond func() bool, d time.Duration) {
	for deadline := time.Now().Add(d); !cond() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
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

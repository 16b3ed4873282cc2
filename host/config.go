package host

import (
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// Defaults used for zero Config fields.
const (
	DefaultStartTimeout   = 10 * time.Second
	DefaultCallTimeout    = 30 * time.Second
	DefaultPublicKeyTTL   = 5 * time.Minute
	DefaultInitialBackoff = 100 * time.Millisecond
	DefaultMaxBackoff     = 10 * time.Second
)

// PluginPathEnv lists extra plugin directories, colon-separated.
const PluginPathEnv = "KNHK_PLUGIN_PATH"

// PluginPrefix starts every plugin's file name: knhk-plugin-<provider>.
const PluginPrefix = "knhk-plugin-"

// Config configures a Host. The zero value works: plugins are looked up in
// KNHK_PLUGIN_PATH and plugins/ next to the running executable, no lock
// file, default timeouts, verify-after-sign on.
type Config struct {
	// PluginDirs are searched first, in order, for knhk-plugin-<provider>
	// executables; then the directories in KNHK_PLUGIN_PATH
	// (colon-separated); then plugins/ next to the running executable,
	// unless OnlyPluginDirs. The first directory holding a plugin's file
	// wins.
	PluginDirs []string

	// OnlyPluginDirs makes PluginDirs the only directories searched:
	// KNHK_PLUGIN_PATH and plugins/ next to the executable are left out
	// (with an empty PluginDirs, no plugin is found). Set it when the
	// directories were named on purpose, as knhk-host does for
	// --plugin-dir: the user then expects exactly those.
	OnlyPluginDirs bool

	// LockFile, when set, pins every plugin's SHA-256 (see WriteLockFile).
	// A plugin missing from it or whose hash differs is never executed.
	// Empty: no pinning (files are still refused when they are symlinks or
	// group/world-writable).
	LockFile string

	// Logger receives the host's log lines and, under the plugin's name,
	// every plugin's. Nil: warnings and errors to stderr.
	Logger hclog.Logger

	// StartTimeout bounds a plugin's launch and handshake. Zero: 10s.
	StartTimeout time.Duration

	// CallTimeout bounds every call to a plugin. A plugin that does not
	// answer in time is killed and replaced. Zero: 30s.
	CallTimeout time.Duration

	// PublicKeyTTL is how long a fetched public key is cached, per
	// (provider, key, parameters, version). Rotation through the host
	// drops the key's entries. Zero: 5 minutes; negative: no caching.
	PublicKeyTTL time.Duration

	// Retry configures relaunch backoff and the retry of idempotent calls.
	Retry RetryPolicy

	// DisableVerifyAfterSign turns off the local check of every signature
	// against the key's public key. Off by default (verification on); turn
	// it off only when the provider is trusted and the cost matters.
	DisableVerifyAfterSign bool

	// DisableBatching sends every signature as its own Sign call. By
	// default the host coalesces concurrent signatures for one plugin
	// into SignBatch calls: a signature that finds no call in flight is
	// sent at once (no added latency when idle), and those that arrive
	// while one is in flight leave together when it returns. The plugin
	// signs a batch's items in parallel, each within its caller's
	// deadline, and every item has its own result, error and
	// verify-after-sign. Under load this removes most of the per-call
	// cost of the plugin boundary. A batch answers when its slowest item
	// does (a caller with a deadline still leaves at it): with keys of
	// very different latency behind one plugin, say one far region, turn
	// batching off.
	DisableBatching bool

	// Reattach attaches to already-running plugins instead of launching
	// binaries, keyed by provider name: go-plugin's reattach mode, used by
	// host/hosttest to serve a provider inside the test process. Reattached
	// plugins get no file checks, no lock-file check and no AutoMTLS; the
	// host never signals their process (dropping one closes the
	// connection, and the next call reattaches). Leave nil in production.
	Reattach map[string]*plugin.ReattachConfig
}

// RetryPolicy says how the host recovers from a plugin that died or hung.
// The zero value: retry idempotent calls once, relaunch backoff from 100ms
// doubling up to 10s.
type RetryPolicy struct {
	// DisableRetry stops the host from retrying sign, verify, public-key
	// and metadata calls once on a fresh process after the plugin died.
	// Create and rotate are never retried.
	DisableRetry bool
	// InitialBackoff is the wait before the second consecutive relaunch;
	// the first relaunch after a healthy run is immediate. Zero: 100ms.
	InitialBackoff time.Duration
	// MaxBackoff caps the doubling wait between relaunches. Zero: 10s.
	MaxBackoff time.Duration
}

// withDefaults fills in zero fields.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = hclog.New(&hclog.LoggerOptions{Name: "knhk", Level: hclog.Warn, Output: os.Stderr})
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.PublicKeyTTL == 0 {
		c.PublicKeyTTL = DefaultPublicKeyTTL
	}
	if c.Retry.InitialBackoff <= 0 {
		c.Retry.InitialBackoff = DefaultInitialBackoff
	}
	if c.Retry.MaxBackoff <= 0 {
		c.Retry.MaxBackoff = DefaultMaxBackoff
	}
	if c.Retry.MaxBackoff < c.Retry.InitialBackoff {
		c.Retry.MaxBackoff = c.Retry.InitialBackoff
	}
	return c
}

// SearchDirs lists the plugin directories in search order: dirs, then
// KNHK_PLUGIN_PATH, then plugins/ next to the running executable.
// Empty entries are skipped.
func SearchDirs(dirs []string) []string {
	var out []string
	out = append(out, dirs...)
	out = append(out, filepath.SplitList(os.Getenv(PluginPathEnv))...)
	if exe, err := os.Executable(); err == nil {
		out = append(out, filepath.Join(filepath.Dir(exe), "plugins"))
	}
	return uniqueDirs(out)
}

// searchDirs lists the directories a Host made from c searches, in order.
func (c Config) searchDirs() []string {
	if c.OnlyPluginDirs {
		return uniqueDirs(append([]string(nil), c.PluginDirs...))
	}
	return SearchDirs(c.PluginDirs)
}

// uniqueDirs drops empty and repeated entries from dirs, in place.
func uniqueDirs(dirs []string) []string {
	seen := map[string]bool{}
	kept := dirs[:0]
	for _, d := range dirs {
		if d == "" || seen[d] {
			continue
		}
		seen[d] = true
		kept = append(kept, d)
	}
	return kept
}

// backoff is the wait before relaunch number n of a run of consecutive
// failures (n >= 1): none for the first, then doubling from InitialBackoff,
// capped at MaxBackoff.
func (p RetryPolicy) backoff(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	d := p.InitialBackoff
	for i := 2; i < n && d < p.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, p.MaxBackoff)
}

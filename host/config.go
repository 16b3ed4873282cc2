package host

import (
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/knhk/knhk/audit"
)

// Defaults used for zero Config fields.
const (
	DefaultStartTimeout = 10 * time.Second
	DefaultCallTimeout  = 30 * time.Second
	DefaultPublicKeyTTL = 5 * time.Minute
	// DefaultVersionStatesTTL is Config.VersionStatesTTL's default: short,
	// since another host may promote a version at any time.
	DefaultVersionStatesTTL = 5 * time.Second
	DefaultInitialBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff       = 10 * time.Second
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

	// PluginEnv adds variables of the host's environment to what a
	// plugin gets, keyed by provider name ("aws", or AllPlugins for
	// every plugin). Each entry is a variable name (AWS_CONFIG_FILE) or a
	// prefix ending in '*' (MYCORP_*). Without it a plugin gets only the
	// base set (PATH, HOME, TMPDIR, USER, LANG, LC_*, TZ, GOGC,
	// GOMEMLIMIT, GOMAXPROCS, GODEBUG, the proxy
	// variables HTTP_PROXY, HTTPS_PROXY and NO_PROXY in either case,
	// SSL_CERT_FILE, SSL_CERT_DIR, OTEL_* but OTEL_SERVICE_NAME, which names
	// the host: a plugin names itself knhk-plugin-<name>) and its own provider's:
	// AWS_* for aws; AZURE_*, IDENTITY_ENDPOINT, IDENTITY_HEADER,
	// MSI_ENDPOINT, MSI_SECRET and IMDS_ENDPOINT for azure; VAULT_* for
	// vault; <NAME>_* for any other provider (its name upper-cased, '-'
	// as '_'). So one provider's credentials never reach another's
	// plugin. KNHK_LOG_LEVEL is set by the host. Nil: nothing added.
	PluginEnv map[string][]string

	// Logger receives the host's log lines and, under the plugin's name,
	// every plugin's. Nil: warnings and errors to stderr.
	Logger hclog.Logger

	// StartTimeout bounds a plugin's launch and handshake. Zero: 10s.
	StartTimeout time.Duration

	// CallTimeout bounds every call to a plugin: a call without an answer
	// by then fails with ErrCallTimeout. A plugin that has answered
	// nothing for CallTimeout while calls waited is killed and replaced,
	// whatever deadlines the callers had (a watchdog checks, so callers
	// that gave up earlier count too); one that keeps answering other
	// calls keeps running. Zero: 30s.
	CallTimeout time.Duration

	// PublicKeyTTL is how long a fetched public key is cached, per
	// (provider, key, parameters, version). Rotation through the host
	// drops the key's entries. Zero: 5 minutes; negative: no caching.
	PublicKeyTTL time.Duration

	// VersionStatesTTL is how long a key's version states (see
	// Key.Versions) are cached, per key; a version missing from them, or
	// not in a state that allows what is asked, refetches them once
	// before the answer. Version changes through the host drop the key's
	// entry. Zero: DefaultVersionStatesTTL; negative: no caching.
	VersionStatesTTL time.Duration

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

	// TracerProvider receives the host's spans: one per operation
	// (knhk.sign, knhk.verify, knhk.public_key, knhk.metadata,
	// knhk.rotate, knhk.create_key, knhk.list_keys), one per SignBatch
	// call (knhk.sign_batch, linked both ways with the signatures it
	// carried), one per plugin launch (knhk.plugin.launch), and the gRPC
	// client span of every plugin call, whose trace context the plugin
	// continues. Nil: the global one (otel.GetTracerProvider), a no-op
	// unless the program set one up (telemetry.Setup does).
	TracerProvider trace.TracerProvider

	// Audit, when set, gets one record for every operation (sign, verify,
	// public_key, metadata, rotate, create_key, list_keys), successful or
	// not: who asked, the key without its parameters' values, version,
	// algorithm, SHA-256 of the input and of the signature, outcome. A
	// result is returned only once its record is durable; when the log
	// cannot be written the operation fails with ErrAuditUnavailable
	// (unless the log was opened fail-open). Rotate and create check the
	// log before asking the provider. The host does not close the log.
	Audit *audit.Log

	// KeyGroups names logical keys held by several replicas (see
	// KeyGroup): a group's name works wherever a reference does.
	KeyGroups map[string]KeyGroup

	// Promotion gives keys promotion gates (see Gates and Key.Promote):
	// key reference ("aws:alias/release") to the checks a pending version
	// of it must pass before it signs. Gates apply by PROVIDER:KEYID,
	// whatever the parameters, so that adding one does not skip them.
	// Keys not named have none.
	Promotion map[string]Gates

	// Quotas throttles requests to the key services' quotas before they
	// leave the host (see Quotas). The zero value applies each
	// provider's documented defaults.
	Quotas Quotas

	// Principal names the caller in audit records when the operation's
	// context does not (see WithPrincipal). Empty: the OS user, as
	// "unix:uid=N".
	Principal string

	// MeterProvider receives the host's metrics: knhk.operation.duration,
	// knhk.sign.batch.size, knhk.plugin.launches, knhk.plugin.restarts,
	// knhk.plugin.crashes, knhk.plugin.up,
	// knhk.verify_after_sign.failures, knhk.public_key.cache.requests,
	// and the gRPC client metrics of the plugin calls. Nil: the global one
	// (otel.GetMeterProvider), a no-op unless the program set one up.
	MeterProvider metric.MeterProvider
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
	if c.Principal == "" {
		c.Principal = "unix:uid=" + strconv.Itoa(os.Getuid())
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
	if c.VersionStatesTTL == 0 {
		c.VersionStatesTTL = DefaultVersionStatesTTL
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
// KNHK_PLUGIN_PATH, then plugins/ next to the running executable. Empty
// entries are skipped, and relative ones made absolute (against the
// working directory now): a plugin is never looked up on $PATH.
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

// uniqueDirs makes dirs absolute and drops empty and repeated entries,
// in place.
func uniqueDirs(dirs []string) []string {
	seen := map[string]bool{}
	kept := dirs[:0]
	for _, d := range dirs {
		if d == "" {
			continue
		}
		d = absDir(d)
		if seen[d] {
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

// absDir makes a plugin directory absolute. exec would look a command
// whose path has no slash up on $PATH; an absolute path is also what the
// integrity checks and messages name.
func absDir(d string) string {
	if abs, err := filepath.Abs(d); err == nil {
		return abs
	}
	return d
}

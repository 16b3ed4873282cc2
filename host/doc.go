// Package host is the embeddable knhk signer host. It finds provider
// plugins (knhk-plugin-<provider> executables), runs them over go-plugin's
// gRPC transport with AutoMTLS, and turns key references such as
// "aws:alias/release?region=eu-west-1" into crypto.Signer values.
//
//	h, err := host.New(ctx, host.Config{})      // zero Config: sane defaults
//	defer h.Close()                              // stops every plugin
//	signer, err := h.Signer(ctx, "fake:demo")    // crypto.Signer + crypto.MessageSigner
//
// # Key references
//
// One string form, PROVIDER:KEYID[?name=value&...] (see ParseRef): the
// provider ends at the first ':', the key id at the first '?', so ARNs and
// URLs need no escaping; parameters are query-escaped and go to the plugin
// with every request.
//
// # Discovery and integrity
//
// Plugin directories come from Config.PluginDirs, then KNHK_PLUGIN_PATH
// (colon-separated), then plugins/ next to the executable (SearchDirs),
// made absolute: a plugin is never looked up on $PATH. The host opens a
// plugin file once, without following a symlink, and checks the open
// file: a regular, executable file, not group- or world-writable, owned by
// the host's user or root, in a directory owned by one of them and not
// group- or world-writable (a sticky /tmp-like directory is refused too).
// Anything else is refused (ErrPluginRefused) and never executed. On Linux
// the host then executes that same open file (through /proc/self/fd), so a
// file swapped in the directory after the check is not what runs;
// elsewhere, or without /proc, it executes the path. A lock file pins each
// plugin's SHA-256, one line per plugin:
//
//	knhk-plugin-fake sha256:4f0c...e1
//
// Discover lists plugins without running them and WriteLockFile writes the
// lock file. With Config.LockFile set, a plugin missing from the lock file
// or whose hash differs is never executed: the host hashes the file it
// opened and checked, and executes exactly that file.
//
// # Environment
//
// A plugin does not inherit the host's environment. It gets a base set
// (PATH, HOME, TMPDIR, USER, LANG, LC_*, TZ, the Go runtime's GOGC, GOMEMLIMIT,
// GOMAXPROCS and GODEBUG, HTTP_PROXY, HTTPS_PROXY and
// NO_PROXY in either case, SSL_CERT_FILE, SSL_CERT_DIR, OTEL_*), its own
// provider's variables (AWS_* for aws; AZURE_*, IDENTITY_ENDPOINT,
// IDENTITY_HEADER, MSI_ENDPOINT, MSI_SECRET and IMDS_ENDPOINT for azure;
// VAULT_* for vault; <NAME>_* for any other provider), what
// Config.PluginEnv allows it, and KNHK_LOG_LEVEL, the host's log level. So
// one provider's credentials never reach another provider's plugin.
//
// # Lifecycle
//
// One process per provider, shared by all its keys, started on first use
// (Config.StartTimeout bounds the launch) with stdin from /dev/null, in a
// process group of its own. Every call has Config.CallTimeout. A plugin
// that dies, that exits during start-up (ErrPluginCrashed), or that has
// answered nothing for Config.CallTimeout while calls waited is killed and
// relaunched, with capped exponential backoff after repeated failures
// (Config.Retry). A watchdog per plugin checks the last, so a stuck plugin
// is replaced whatever its callers' deadlines, and every call waiting on
// it fails with ErrCallTimeout. Sign, verify, public-key, metadata, list
// and describe calls are retried once on a fresh process when the process
// died; create and rotate never are. Plugin log lines reach Config.Logger
// under the provider's name.
//
// Stopping a plugin asks it to shut down; if it has not exited two
// seconds later, its whole process group gets SIGTERM, then SIGKILL a
// second after. When a plugin exits, what it left in its group is killed
// too, and no wait is unbounded. Close stops
// every plugin and leaves no process or goroutine behind. On Linux a
// plugin also gets SIGKILL from the kernel when its host dies, even by
// SIGKILL; elsewhere the plugin SDK notices that its parent is gone and
// exits.
//
// # Batching
//
// Concurrent signatures for one plugin are coalesced into SignBatch calls:
// a signature that finds fewer than two sign calls in flight is sent at
// once (alone, as a plain Sign: nothing is added when idle), and those
// that arrive meanwhile leave together, up to 256 per call, when one
// returns or has delivered nothing for a few milliseconds. The plugin
// signs a batch's items in parallel and streams each result back as soon
// as it is ready, so a slow item (a key behind a slow service) holds up
// only its own caller, and its deadline is its own: it never counts
// against the plugin. Each item keeps its caller's deadline, its own
// result or error and its own verify-after-sign, run in the caller's
// goroutine. A caller whose context ends gets its error at once, and its
// request is dropped if not yet sent. A batch whose plugin dies is retried
// once on a fresh process, like any sign, for the items still without a
// result. Config.DisableBatching sends every signature on its own;
// Host.Stats counts calls and batches. See BENCHMARKS.md for what it buys.
//
// # Safety
//
// Every signature is verified with the standard library against the
// public key of the key version that made it before it is returned
// (verify-after-sign; Config.DisableVerifyAfterSign turns it off). On a
// mismatch the host refetches the public key once; if the signature still
// fails, the call returns ErrVerifyAfterSign (also shared.ErrBadSignature),
// logs the event, and the signature is discarded. Public keys are cached
// per (provider, key, parameters, version) for Config.PublicKeyTTL;
// rotation through the host drops a key's entries.
//
// # Version states and promotion
//
// A provider that claims shared.CapVersionStates keeps each key version's
// state with the key: pending (published, does not sign), active (the one
// version that signs), retiring (verifies, no longer signs), retired.
// Key.RotatePending makes a pending version; Key.Promote makes it active
// once the key's gates (Config.Promotion: canary, replicas_agree,
// approvals, soak) are met, refusing with a *GatesError otherwise;
// Key.Approve signs an approval (a signed note naming the key, the
// version, its public key fingerprint and an expiry); Key.Retire retires.
// For a key with states the host signs with the active version by its id,
// never the provider's latest. States are cached per key for
// Config.VersionStatesTTL and reread on a miss. Keys without states
// behave as they always have. docs/promotion.md has the whole story.
//
// # Telemetry
//
// The host reports to OpenTelemetry, through Config.TracerProvider and
// Config.MeterProvider (the global providers by default: no-op unless the
// program installs some, as telemetry.Setup does): a span per operation
// (knhk.sign, knhk.verify, ...) and its duration, a span per SignBatch
// call linked with the signatures it carried, plugin launches, crashes
// and restarts, verify-after-sign failures, public-key cache lookups.
// Every plugin call carries its trace context, and the plugin continues
// the trace in its own process, exporting where the OTEL_* environment it
// inherits says. Failures carry error.type (telemetry.ErrorType); log
// lines about a call carry its trace and span ids. With no provider
// installed it costs next to nothing. Package telemetry has the names.
//
// # Errors
//
// Errors wrap this package's sentinels (ErrMalformedRef, ErrPluginNotFound,
// ErrPluginRefused, ErrHandshake, ErrPluginCrashed, ErrCallTimeout,
// ErrVerifyAfterSign, ErrClosed, ErrLockFile) or the shared sentinels a
// plugin returned (shared.ErrKeyNotFound, ...); use errors.Is, and
// IsRetryable for "try again later". The host's own messages name the
// file, key or plugin involved and never carry reference parameter values
// or key material.
//
// Package host/hosttest gives tests a Host backed by the fake provider
// served in the test process, with no plugin binary.
package host

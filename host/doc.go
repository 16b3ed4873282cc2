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
// (colon-separated), then plugins/ next to the executable (SearchDirs).
// Symlinks, non-regular, non-executable and group- or world-writable files
// are refused (ErrPluginRefused). A lock file pins each plugin's SHA-256,
// one line per plugin:
//
//	knhk-plugin-fake sha256:4f0c...e1
//
// Discover lists plugins without running them and WriteLockFile writes the
// lock file. With Config.LockFile set, a plugin missing from the lock file
// or whose hash differs is never executed: the host checks the hash itself
// and go-plugin's SecureConfig checks it again right before exec.
//
// # Lifecycle
//
// One process per provider, shared by all its keys, started on first use
// (Config.StartTimeout bounds the launch). Every call has
// Config.CallTimeout. A plugin that dies or does not answer in time is
// killed and relaunched, with capped exponential backoff after repeated
// failures (Config.Retry). Sign, verify, public-key, metadata, list and
// describe calls are retried once on a fresh process when the process
// died; create and rotate never are. Plugin log lines reach Config.Logger
// under the provider's name. Close kills every plugin and leaves no process
// or goroutine behind.
//
// # Batching
//
// Concurrent signatures for one plugin are coalesced into SignBatch calls:
// a signature that finds fewer than two sign calls in flight is sent at
// once (alone, as a plain Sign: nothing is added when idle), and those
// that arrive meanwhile leave together, up to 256 per call, when one
// returns. The plugin signs a batch's items in parallel; each item keeps
// its caller's deadline, its own result or error and its own
// verify-after-sign, run in the caller's goroutine. A caller whose context
// ends gets its error at once, and its request is dropped if not yet sent.
// A batch whose plugin dies is retried once on a fresh process, like any
// sign. Config.DisableBatching sends every signature on its own;
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

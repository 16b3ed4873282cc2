// Package host is the embeddable knhk signer host. It finds provider
// plugins (knhk-plugin-<provider> executables), runs them over go-plugin's
// gRPC transport with AutoMTLS, and turns key references such as
// "aws:alias/release?region=eu-west-1" into crypto.Signer values.
//
// What it does for the caller:
//
//   - Discovery and integrity: plugin directories from Config, then
//     KNHK_PLUGIN_PATH, then plugins/ next to the executable. Symlinks and
//     group/world-writable files are refused; with a lock file (see
//     WriteLockFile) a plugin whose SHA-256 is not pinned is never run.
//   - Lifecycle: one process per provider, shared by all its keys, started
//     on first use; per-call timeouts; a plugin that dies or hangs is killed
//     and relaunched with capped exponential backoff; sign, verify, public
//     key, metadata and list calls are retried once on a fresh process when
//     the process died, create and rotate never. Close leaves no process.
//   - Safety: every signature is verified against the key's public key
//     before it is returned (verify-after-sign), so a faulty plugin cannot
//     hand out a bad signature. Public keys are cached with a TTL.
//
// Errors wrap the sentinels of this package (ErrPluginRefused,
// ErrHandshake, ErrPluginCrashed, ErrVerifyAfterSign, ...) or of package
// shared, for errors.Is. Package host/hosttest gives tests a Host backed by
// the fake provider with no plugin binary.
package host

// Package fake is knhk's fake key provider: real software keys of every key
// type knhk knows, and fault injection for test authors. The binary
// knhk-plugin-fake (cmd/knhk-plugin-fake) serves it over go-plugin;
// shared.Validate(New(Config{})) serves it in-process with the same
// request checks.
//
// Config holds only what every plugin's does (Version, Logger); everything
// else comes from each request's parameters (KeyRef.Params), so a test
// swaps a real provider for the fake by changing its key reference, not
// its code.
//
// # Capabilities
//
// Every key type (rsa-2048/3072/4096, ec-p256/p384/p521, ed25519) and every
// algorithm (RS256…PS512, ES256…ES512, EdDSA); create, list, rotate with
// versions, metadata, provider-side verify, whole-message signing (RSA and
// ECDSA messages are hashed here), and a native batch sign (SignBatch, on
// one goroutine per core).
//
// # Credentials
//
// None: the keys are the fake's own.
//
// # Keys
//
// Key ids are names such as "demo": 1 to 128 of A-Z a-z 0-9 . _ - /,
// starting with a letter or digit. A new key has version "1"; each rotation
// adds "2", "3", ... and makes it current. Old versions keep signing and
// verifying when named. Signatures follow the knhk contract: ECDSA as ASN.1
// DER, RSA-PSS with salt length = hash length, Ed25519 over the whole
// message; RSA and ECDSA hash a whole message with the algorithm's hash.
//
// # Parameters
//
//	state=PATH   Keep keys in a JSON file (mode 0600) instead of this
//	             process's memory. Many processes may share one file: each
//	             change is a read-modify-write under an flock on PATH.lock,
//	             written atomically (temp file, fsync, rename). A file that
//	             does not parse is refused with ErrFailedPrecondition and
//	             left untouched. A missing or empty file is an empty store;
//	             a relative PATH is relative to the plugin's working
//	             directory. The file holds private keys: tests only.
//	seed=STRING  Make new keys deterministic: the same seed, key type, name
//	             and version always give the same key (HKDF-SHA256 into a
//	             ChaCha8 stream). ECDSA signatures then use RFC 6979 nonces.
//	             An empty seed, or one over 1024 bytes, is ErrInvalidArgument;
//	             the error never shows the seed.
//
// Any other parameter name is ErrInvalidArgument, and the message lists the
// known ones. The constants Param… name them all.
//
// # Fault injection
//
// Off unless a fault_* parameter is set. Faults apply to the operations
// that take parameters (not Describe). Calls are counted per process and
// per fault spec (the exact set of fault_* parameters), so two tests with
// different specs do not disturb each other's counts.
//
//	fault_latency=DUR     Wait DUR (Go duration, e.g. 50ms) before each call;
//	                      a context that ends first ends the call.
//	fault_error=CODE      Fail calls with this error: invalid_argument,
//	                      not_found, unsupported_algorithm, permission_denied,
//	                      unavailable, throttled, failed_precondition, unimplemented,
//	                      already_exists, deadline_exceeded, or unknown (no
//	                      sentinel; codes.Unknown on the wire). Alone it fails
//	                      every call.
//	fault_every=N         Fault only calls N, 2N, 3N, ... (with fault_error or
//	                      fault_corrupt).
//	fault_rate=F          Fault each call with probability F in [0,1] (with
//	                      fault_error or fault_corrupt; not with fault_every).
//	fault_corrupt=true    Sign returns the signature with one bit flipped.
//	fault_exit_after=N    Serve N calls; the next call exits the process with
//	                      status 3 (ExitCode) and no answer, like a crash.
//	fault_hang_after=N    Serve N calls; every later call never returns and
//	                      ignores its context, like a stuck plugin: the
//	                      caller's own timeout must fire.
//	fault_ops=LIST        Only these operations are counted and faulted:
//	                      comma-separated create_key, list_keys, public_key,
//	                      sign, verify, rotate_key, key_metadata. Default all.
//	fault_quota=N         A request quota of N calls a second (N may be a
//	                      fraction), counted per fault spec like a service
//	                      that counts each second: up to N at once, then N a
//	                      second; calls beyond it fail at once with
//	                      shared.ErrThrottled (codes.ResourceExhausted on the
//	                      wire), like a KMS's throttling. For the host's
//	                      quota tests and benchmark.
//
// fault_exit_after and fault_hang_after are meant for the plugin binary: in
// process they exit the test binary or leak a blocked goroutine.
//
// No key material, seed or state-file content appears in a log line or an
// error message.
package fake

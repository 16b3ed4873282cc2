// Package shared is knhk's plugin-author SDK and the contract between the
// knhk host and its provider plugins.
//
// A provider plugin is a separate binary named knhk-plugin-<name> that the
// host launches over hashicorp/go-plugin's gRPC transport. A plugin author
// implements the small Provider interface (one method per operation: sign,
// verify, public key, rotate, metadata, create, list), wraps errors in this
// package's sentinels (ErrKeyNotFound, ErrInvalidArgument, ...) and calls
// Serve from main. The SDK maps the sentinels to gRPC status codes and back,
// so the host sees the same errors with errors.Is, checks digest lengths and
// algorithm names before a request reaches the provider, and serves a batch
// sign call for every provider.
//
// Keys are named by a provider-specific id plus parameters (KeyRef), so one
// plugin process serves many keys, regions and endpoints. Algorithms are JOSE
// names (RS256 … EdDSA), key types knhk names (rsa-2048 … ed25519). Public
// keys travel as DER SubjectPublicKeyInfo, ECDSA signatures as ASN.1 DER,
// RSA and Ed25519 signatures raw.
//
// The SDK also carries what every plugin would otherwise write itself: a
// declared parameter schema (NewParamSchema), a cache of service clients
// (ClientCache), the mapping of HTTP statuses and context errors to the
// sentinels (HTTPStatusError, ContextError), redaction (RedactError,
// RedactURL, Quote), the plugin's logger at the host's level (Logger) and
// its build version (BuildVersion). A plugin writes nothing to stdout,
// which carries go-plugin's handshake.
//
// The plugin author guide, docs/plugin-authors.md in the knhk repository,
// says what Validate guarantees, how to log, which sentinel for which
// situation, versions and batching; the README's quick start is a complete
// plugin with its conformance test. The conformance kit in
// shared/providertest checks a plugin binary against this contract.
package shared

package telemetry

import "go.opentelemetry.io/otel/attribute"

// ScopeName is the instrumentation scope of every knhk tracer and meter.
const ScopeName = "github.com/knhk/knhk"

// Attribute keys of knhk's spans and metrics. None of them ever carries a
// key reference's parameters, a message, a digest or a signature.
const (
	// KeyOperation is the host operation: sign, verify, public_key,
	// metadata, rotate, create_key or list_keys.
	KeyOperation attribute.Key = "knhk.operation"
	// KeyProvider is the provider (plugin) name: aws, azure, vault, fake...
	KeyProvider attribute.Key = "knhk.provider"
	// KeyKeyID is the provider's key id (Ref.KeyID), never its parameters.
	KeyKeyID attribute.Key = "knhk.key.id"
	// KeyKeyVersion is the key version, when known.
	KeyKeyVersion attribute.Key = "knhk.key.version"
	// KeyAlgorithm is the JOSE name of the signature algorithm (sign and
	// verify).
	KeyAlgorithm attribute.Key = "knhk.algorithm"
	// KeyBatchSize is the number of signatures in one SignBatch call.
	KeyBatchSize attribute.Key = "knhk.batch.size"
	// KeyCacheResult is hit or miss, for public-key cache lookups.
	KeyCacheResult attribute.Key = "knhk.cache.result"
	// KeyPrincipal is the sidecar caller's first principal (unix:uid=N,
	// spiffe://..., x509:...).
	KeyPrincipal attribute.Key = "knhk.principal"
	// KeyErrorType is OpenTelemetry's error.type, set on failures to
	// ErrorType(err).
	KeyErrorType attribute.Key = "error.type"
)

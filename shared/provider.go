package shared

import (
	"context"
	"time"
)

// Provider is what a plugin implements: one method per operation. Methods are
// called concurrently. Optional operations (CreateKey, ListKeys, RotateKey,
// Verify) may return ErrUnimplemented; embed UnimplementedProvider to get that
// for free. Errors should wrap one of the sentinels in this package.
type Provider interface {
	// Describe says what the provider is and can do. It takes no key and
	// should not call the backing service.
	Describe(ctx context.Context) (Description, error)
	// CreateKey creates a key named by ref.ID (or lets the service pick an
	// id when the provider does so) and returns its id and first version.
	CreateKey(ctx context.Context, req CreateKeyRequest) (CreateKeyResponse, error)
	// ListKeys lists the signing keys the parameters point at.
	ListKeys(ctx context.Context, req ListKeysRequest) ([]KeySummary, error)
	// PublicKey returns a key version's public key as DER SubjectPublicKeyInfo.
	PublicKey(ctx context.Context, req PublicKeyRequest) (PublicKeyResponse, error)
	// Sign signs req.Digest (already hashed with the algorithm's hash) or
	// req.Message (EdDSA, and providers that claim CapSignMessage).
	Sign(ctx context.Context, req SignRequest) (SignResponse, error)
	// Verify checks a signature with the provider.
	Verify(ctx context.Context, req VerifyRequest) (VerifyResponse, error)
	// RotateKey makes a new key version current and returns it. Old versions
	// keep verifying.
	RotateKey(ctx context.Context, req RotateKeyRequest) (RotateKeyResponse, error)
	// KeyMetadata describes a key and every version of it.
	KeyMetadata(ctx context.Context, req KeyMetadataRequest) (KeyMetadata, error)
}

// BatchSigner is implemented by providers with a native batch sign. Providers
// without it are served SignBatch by the SDK, which calls Sign for each item
// in parallel.
//
// SignBatch hands each item's result to emit as soon as it has it, so that
// a slow item holds up only its own caller: emit(i, r) is reqs[i]'s result.
// Call emit once per item, from any goroutine (calls may overlap), before
// SignBatch returns. The SDK fails an item left without a result, and
// ignores a second result for an item and any result after SignBatch has
// returned. emit may take a moment: it sends the results ready so far to
// the host itself rather than waking another goroutine to do it.
type BatchSigner interface {
	SignBatch(ctx context.Context, reqs []SignRequest, emit func(i int, r SignResult))
}

// KeyRef names one key: the provider's own id for it plus parameters such
// as region, endpoint or vault address. Requests may share one Params map
// (a batch's items for one key do): read it, never change it.
type KeyRef struct {
	ID     string
	Params map[string]string
}

// Description is what Describe returns.
type Description struct {
	Name            string // plugin name, e.g. "fake"
	Version         string // plugin version, e.g. "1.2.0"
	ProtocolVersion uint32 // set by the SDK; providers leave it zero
	Capabilities    []Capability
	KeyTypes        []KeyType
	Algorithms      []Algorithm
	// Quotas are the key service's request quotas, in the order the
	// host tries them (see QuotaClass). Empty: the host throttles
	// nothing unless its configuration says so.
	Quotas []QuotaClass
}

// Has reports whether the description claims capability c.
func (d Description) Has(c Capability) bool {
	for _, x := range d.Capabilities {
		if x == c {
			return true
		}
	}
	return false
}

// CreateKeyRequest asks for a new key.
type CreateKeyRequest struct {
	Key  KeyRef
	Type KeyType
	// ReplicateTo names regions (in the provider's terms, e.g. eu-west-1)
	// where the key is to have replicas holding the same key material:
	// only for providers that claim CapReplicateKey (Validate refuses it
	// for the others with ErrUnimplemented).
	ReplicateTo []string
}

// CreateKeyResponse names the key created.
type CreateKeyResponse struct {
	KeyID   string
	Version string
	// Replicas are the replicas' references, one per ReplicateTo region
	// and in its order, ready to name in a key group. Their parameters
	// name the replica (its region, ...) and hold no secret: the CLI
	// prints them whole.
	Replicas []KeyRef
}

// ListKeysRequest carries the parameters that say where to list.
type ListKeysRequest struct {
	Params map[string]string
}

// KeySummary is one entry of ListKeys.
type KeySummary struct {
	KeyID          string
	Type           KeyType
	CurrentVersion string
	Aliases        []string
}

// PublicKeyRequest asks for a public key; an empty Version means current.
type PublicKeyRequest struct {
	Key     KeyRef
	Version string
}

// PublicKeyResponse carries a DER SubjectPublicKeyInfo.
type PublicKeyResponse struct {
	DER     []byte
	Version string
	Type    KeyType
}

// SignRequest asks for one signature. Exactly one of Digest and Message is
// set. An empty Version means current.
type SignRequest struct {
	Key       KeyRef
	Algorithm Algorithm
	Version   string
	Digest    []byte
	Message   []byte
	// Deadline, for batch items only, is when the item's caller stops
	// waiting; a single Sign carries its deadline in the context.
	Deadline time.Time
}

// SignResponse is a signature (ECDSA as ASN.1 DER) and the version that made it.
type SignResponse struct {
	Signature []byte
	Version   string
}

// SignResult is one batch item's outcome: a response or an error.
type SignResult struct {
	Response SignResponse
	Err      error
}

// VerifyRequest asks the provider to check a signature.
type VerifyRequest struct {
	Key       KeyRef
	Algorithm Algorithm
	Version   string
	Digest    []byte
	Message   []byte
	Signature []byte
}

// VerifyResponse says whether a signature is valid, and for which version.
type VerifyResponse struct {
	Valid   bool
	Version string
}

// RotateKeyRequest names the key to rotate.
type RotateKeyRequest struct {
	Key KeyRef
	// Pending makes the new version pending instead of current (see
	// VersionStater): only for providers that claim CapVersionStates
	// (Validate refuses it for the others with ErrUnimplemented).
	Pending bool
}

// RotateKeyResponse names the new current version.
type RotateKeyResponse struct {
	Version string
}

// KeyMetadataRequest names the key to describe.
type KeyMetadataRequest struct {
	Key KeyRef
}

// KeyMetadata describes a key and its versions.
type KeyMetadata struct {
	KeyID          string
	Type           KeyType
	Algorithms     []Algorithm
	CurrentVersion string
	Versions       []KeyVersion // oldest first
	Attributes     map[string]string
}

// KeyVersion is one version of a key.
type KeyVersion struct {
	Version string
	Created time.Time
	Enabled bool
}

// UnimplementedProvider returns ErrUnimplemented from the optional
// operations. Embed it in a provider that does not support them.
type UnimplementedProvider struct{}

// CreateKey returns ErrUnimplemented.
func (UnimplementedProvider) CreateKey(context.Context, CreateKeyRequest) (CreateKeyResponse, error) {
	return CreateKeyResponse{}, ErrUnimplemented
}

// ListKeys returns ErrUnimplemented.
func (UnimplementedProvider) ListKeys(context.Context, ListKeysRequest) ([]KeySummary, error) {
	return nil, ErrUnimplemented
}

// Verify returns ErrUnimplemented.
func (UnimplementedProvider) Verify(context.Context, VerifyRequest) (VerifyResponse, error) {
	return VerifyResponse{}, ErrUnimplemented
}

// RotateKey returns ErrUnimplemented.
func (UnimplementedProvider) RotateKey(context.Context, RotateKeyRequest) (RotateKeyResponse, error) {
	return RotateKeyResponse{}, ErrUnimplemented
}

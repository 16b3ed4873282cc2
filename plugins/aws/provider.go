package awskms

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/knhk/knhk/shared"
)

// Name is the provider's name: keys are written "aws:<key id>" and the
// binary is knhk-plugin-aws.
const Name = "aws"

// DefaultMaxVersions bounds how many versions of an alias KeyMetadata walks.
const DefaultMaxVersions = 100

// Config configures a Provider. The zero value works.
type Config struct {
	// Version is what Describe reports as the plugin version; default "dev".
	Version string
	// MaxVersions bounds the version chain KeyMetadata and version lookups
	// walk (one KMS call per version); default DefaultMaxVersions.
	MaxVersions int
}

// Provider is knhk's AWS KMS provider. It is safe for concurrent use; one
// Provider serves keys in any number of regions, endpoints and profiles.
type Provider struct {
	cfg     Config
	clients clients
	// members caches "key id K is a version of alias A" answers, which
	// cannot change once the tags are written.
	members sync.Map // memberKey -> struct{}
}

type memberKey struct {
	ck      clientKey
	alias   string
	version string
}

var _ shared.Provider = (*Provider)(nil)

// New returns a Provider.
func New(cfg Config) *Provider {
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.MaxVersions <= 0 {
		cfg.MaxVersions = DefaultMaxVersions
	}
	return &Provider{cfg: cfg}
}

// Describe says what the plugin offers. It makes no AWS call.
func (p *Provider) Describe(context.Context) (shared.Description, error) {
	return shared.Description{
		Name:    Name,
		Version: p.cfg.Version,
		Capabilities: []shared.Capability{
			shared.CapCreateKey, shared.CapListKeys, shared.CapRotateKey, shared.CapVerify, shared.CapSignMessage,
		},
		KeyTypes:   append([]shared.KeyType(nil), supportedKeyTypes...),
		Algorithms: append([]shared.Algorithm(nil), supportedAlgorithms...),
	}, nil
}

// target is a key reference resolved to its client.
type target struct {
	ck  clientKey
	cl  *kms.Client
	key keyID
}

// resolve parses a key reference and picks (or makes) its client.
func (p *Provider) resolve(ctx context.Context, ref shared.KeyRef) (target, error) {
	k, err := parseKeyID(ref.ID)
	if err != nil {
		return target{}, err
	}
	ck, err := checkParams(ref.Params)
	if err != nil {
		return target{}, err
	}
	if ck, err = resolveRegion(ck, k); err != nil {
		return target{}, err
	}
	cl, err := p.clients.get(ctx, ck)
	if err != nil {
		return target{}, err
	}
	return target{ck: ck, cl: cl, key: k}, nil
}

package aws

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/shared"
)

// Name is the provider's name: keys are written "aws:<key id>" and the
// binary is knhk-plugin-aws.
const Name = "aws"

// DefaultMaxVersions bounds how many versions of an alias KeyMetadata walks.
const DefaultMaxVersions = 100

// Config configures a Provider. The zero value works.
type Config struct {
	// Version is what Describe reports as the plugin version; default:
	// the SDK reports shared.BuildVersion().
	Version string
	// Logger receives the provider's logs; default shared.Logger().
	Logger hclog.Logger
	// MaxVersions bounds the version chain KeyMetadata and version lookups
	// walk (one KMS call per version); default DefaultMaxVersions.
	MaxVersions int
}

// Provider is knhk's AWS KMS provider. It is safe for concurrent use; one
// Provider serves keys in any number of regions, endpoints and profiles.
type Provider struct {
	cfg     Config
	clients shared.ClientCache[*kms.Client]
	// members caches "key id K is a version of alias A" answers, which
	// cannot change once the tags are written.
	members sync.Map // memberKey -> struct{}
}

// memberKey names one "version of alias" answer: per client, since the
// same alias name exists in every region and account.
type memberKey struct {
	conn    string
	alias   string
	version string
}

var _ shared.Provider = (*Provider)(nil)

// New returns a Provider.
func New(cfg Config) *Provider {
	if cfg.Logger == nil {
		cfg.Logger = shared.Logger()
	}
	if cfg.MaxVersions <= 0 {
		cfg.MaxVersions = DefaultMaxVersions
	}
	return &Provider{cfg: cfg}
}

// keyTypes are the key types the provider offers, in knhk's order.
var keyTypes = []shared.KeyType{shared.RSA2048, shared.RSA3072, shared.RSA4096, shared.ECP256, shared.ECP384, shared.ECP521}

// Describe says what the plugin offers. It makes no AWS call.
func (p *Provider) Describe(context.Context) (shared.Description, error) {
	return shared.Description{
		Name:    Name,
		Version: p.cfg.Version,
		Capabilities: []shared.Capability{
			shared.CapCreateKey, shared.CapListKeys, shared.CapRotateKey, shared.CapVerify, shared.CapSignMessage,
		},
		KeyTypes:   append([]shared.KeyType(nil), keyTypes...),
		Algorithms: shared.AlgorithmsFor(keyTypes...),
	}, nil
}

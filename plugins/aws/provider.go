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
	// MaxVersions bounds the version chain KeyMetadata and version state
	// lookups walk back from an alias's target (one or two KMS calls per
	// version), and the versions newer than the target they accept;
	// default DefaultMaxVersions.
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
			shared.CapReplicateKey, shared.CapVersionStates,
		},
		KeyTypes:   append([]shared.KeyType(nil), keyTypes...),
		Algorithms: shared.AlgorithmsFor(keyTypes...),
		Quotas:     Quotas(),
	}, nil
}

// quotaSource is where KMS documents its request quotas: "Request
// quotas" in the AWS KMS Developer Guide (the table "Request quotas for
// each AWS KMS API operation"). Every one is per account and Region, and
// adjustable: override a class's rate in the host's configuration after
// a quota increase.
const quotaSource = "https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html"

// quotaScope makes one bucket per Region, profile (account) and
// endpoint: KMS counts requests per account and Region. A key named by
// ARN without the region parameter counts against the bucket of the
// plugin's default Region.
var quotaScope = []string{ParamRegion, ParamProfile, ParamEndpoint}

// Quotas are the KMS request quotas the plugin declares (shared.QuotaClass),
// with their documented defaults in requests per second:
//
//	sign-verify-rsa  1,000  "Cryptographic operations (RSA) request rate" (Sign, Verify; shared with Encrypt, Decrypt, ReEncrypt)
//	sign-verify-ecc  1,000  "Cryptographic operations (ECC and SM2) request rate" (Sign, Verify)
//	public-key       2,000  "GetPublicKey request rate"
//	metadata         2,000  "DescribeKey request rate"
//	list-keys          500  "ListKeys request rate" (ListAliases: also 500)
//	create-key           5  "CreateKey request rate" (rotation creates a key too)
//
// Older versions of the page gave 500 (RSA) and 300 (ECC); accounts
// created then may still have those: lower the rate in the host's
// configuration if KMS throttles at the defaults.
func Quotas() []shared.QuotaClass {
	rsa := []shared.KeyType{shared.RSA2048, shared.RSA3072, shared.RSA4096}
	ecc := []shared.KeyType{shared.ECP256, shared.ECP384, shared.ECP521}
	signVerify := []shared.Operation{shared.OpSign, shared.OpVerify}
	class := func(name string, rate float64, ops []shared.Operation, kts []shared.KeyType) shared.QuotaClass {
		return shared.QuotaClass{Name: name, Operations: ops, KeyTypes: kts, Scope: quotaScope, Rate: rate, Source: quotaSource}
	}
	return []shared.QuotaClass{
		class("sign-verify-rsa", 1000, signVerify, rsa),
		class("sign-verify-ecc", 1000, signVerify, ecc),
		class("public-key", 2000, []shared.Operation{shared.OpPublicKey}, nil),
		class("metadata", 2000, []shared.Operation{shared.OpMetadata}, nil),
		class("list-keys", 500, []shared.Operation{shared.OpListKeys}, nil),
		class("create-key", 5, []shared.Operation{shared.OpCreateKey, shared.OpRotate}, nil),
	}
}

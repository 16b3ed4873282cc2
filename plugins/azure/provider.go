package azure

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/shared"
)

// Name is the provider's name, as in knhk-plugin-azure and "azure:" key references.
const Name = "azure"

// Version is the provider's version.
const Version = "0.1.0"

// Config configures a Provider. The zero value works: credentials from
// AZURE_AUTH_TOKEN or DefaultAzureCredential, the SDK's retry policy, no logs.
type Config struct {
	// Credential, when set, authenticates every request instead of
	// AZURE_AUTH_TOKEN or DefaultAzureCredential (embedders, tests).
	Credential azcore.TokenCredential
	// Retry tunes the SDK's retries of 408, 429 and 5xx responses. Zero
	// means the SDK default: 3 retries with exponential backoff, honouring
	// Retry-After.
	Retry policy.RetryOptions
	// Logger receives one debug line per operation. Nil discards them.
	Logger hclog.Logger
}

// Provider is the Azure Key Vault provider. It is safe for concurrent use.
type Provider struct {
	cfg   Config
	token string // AZURE_AUTH_TOKEN, read once by New
	log   hclog.Logger

	mu      sync.Mutex
	clients map[clientKey]*azkeys.Client
}

var _ shared.Provider = (*Provider)(nil)

// New returns a Provider. It reads AZURE_AUTH_TOKEN once, here.
func New(cfg Config) *Provider {
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Provider{cfg: cfg, token: os.Getenv(EnvAuthToken), log: log, clients: map[clientKey]*azkeys.Client{}}
}

// keyTypes and algorithms are what Key Vault can do for knhk: no Ed25519.
var (
	keyTypes   = []shared.KeyType{shared.RSA2048, shared.RSA3072, shared.RSA4096, shared.ECP256, shared.ECP384, shared.ECP521}
	algorithms = []shared.Algorithm{shared.RS256, shared.RS384, shared.RS512, shared.PS256, shared.PS384, shared.PS512, shared.ES256, shared.ES384, shared.ES512}
)

// Describe names the provider and what it supports. It calls no vault.
func (p *Provider) Describe(context.Context) (shared.Description, error) {
	return shared.Description{
		Name:         Name,
		Version:      Version,
		Capabilities: []shared.Capability{shared.CapCreateKey, shared.CapListKeys, shared.CapRotateKey, shared.CapVerify},
		KeyTypes:     keyTypes,
		Algorithms:   algorithms,
	}, nil
}

// open parses a key reference and returns its id, parameters and client.
func (p *Provider) open(ref shared.KeyRef) (keyID, params, *azkeys.Client, error) {
	id, err := parseKeyID(ref.ID)
	if err != nil {
		return keyID{}, params{}, nil, err
	}
	ps, err := parseParams(ref.Params)
	if err != nil {
		return keyID{}, params{}, nil, err
	}
	if ps.vaultURL != "" && ps.vaultURL != id.vault {
		return keyID{}, params{}, nil, fmt.Errorf("%w: vault_url %s does not match key id %s", shared.ErrInvalidArgument, ps.vaultURL, ref.ID)
	}
	c, err := p.clientFor(id.vault, ps)
	if err != nil {
		return keyID{}, params{}, nil, err
	}
	return id, ps, c, nil
}

// checkAlgorithm refuses what Key Vault cannot do before any request.
func checkAlgorithm(alg shared.Algorithm) error {
	for _, a := range algorithms {
		if a == alg {
			return nil
		}
	}
	return fmt.Errorf("%w: Azure Key Vault does not sign with %q (it offers %v)", shared.ErrUnsupportedAlgorithm, alg, algorithms)
}

// getKey fetches a key version (current when version is empty) and
// converts its public key.
func (p *Provider) getKey(ctx context.Context, c *azkeys.Client, id keyID, version string) (azkeys.KeyBundle, []byte, shared.KeyType, error) {
	resp, err := c.GetKey(ctx, id.name, version, nil)
	if err != nil {
		return azkeys.KeyBundle{}, nil, "", p.mapError("get key", describe(id, version), err)
	}
	der, kt, err := jwkToDER(resp.Key)
	if err != nil {
		return azkeys.KeyBundle{}, nil, "", fmt.Errorf("azure: key %s: %w", id, err)
	}
	return resp.KeyBundle, der, kt, nil
}

// describe names a key version in messages.
func describe(id keyID, version string) string {
	if version == "" {
		return id.String()
	}
	return id.String() + "/" + version
}

// versionOf is the version part of a kid.
func versionOf(kid *azkeys.ID) string {
	if kid == nil {
		return ""
	}
	return kid.Version()
}

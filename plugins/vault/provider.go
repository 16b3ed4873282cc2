package vault

import (
	"context"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/shared"
)

// Name is the provider's name: keys are written "vault:<key id>" and the
// binary is knhk-plugin-vault.
const Name = "vault"

// Config configures a Provider. The zero value works.
type Config struct {
	// Version is what Describe reports as the plugin version; default
	// (left empty here) the SDK fills in shared.BuildVersion().
	Version string
	// Logger receives login, renewal and relogin events (never a token);
	// default shared.Logger(), the plugin's logger.
	Logger hclog.Logger
}

// keyTypes are the key types Transit can hold and knhk can sign with:
// all of knhk's.
var keyTypes = []shared.KeyType{
	shared.RSA2048, shared.RSA3072, shared.RSA4096, shared.ECP256, shared.ECP384, shared.ECP521, shared.Ed25519,
}

// Provider is the Vault Transit provider. It keeps one Vault client per
// address, namespace, TLS setting and identity, logged in on first use and
// kept logged in. Safe for concurrent use; Close stops the token renewers.
type Provider struct {
	version string
	log     hclog.Logger
	clients shared.ClientCache[*client]
	// kvMounts remembers the KV v2 mount of each client's version_states
	// path (kvMountKey -> string), found once.
	kvMounts sync.Map

	done      chan struct{} // closed by Close: stops every client's renewer
	closeOnce sync.Once
}

var _ shared.Provider = (*Provider)(nil)

// New returns a Provider. It does not contact Vault.
func New(cfg Config) *Provider {
	if cfg.Logger == nil {
		cfg.Logger = shared.Logger()
	}
	return &Provider{version: cfg.Version, log: cfg.Logger, done: make(chan struct{})}
}

// Close stops renewing tokens. Later calls fail with ErrUnavailable.
func (p *Provider) Close() error {
	p.closeOnce.Do(func() { close(p.done) })
	return nil
}

// Describe says what the Vault provider can do; it does not call Vault.
func (p *Provider) Describe(context.Context) (shared.Description, error) {
	return shared.Description{
		Name:    Name,
		Version: p.version,
		Capabilities: []shared.Capability{
			shared.CapCreateKey, shared.CapListKeys, shared.CapRotateKey, shared.CapVerify, shared.CapSignMessage, shared.CapSignBatch,
			// Claimed whether or not version_states is configured: a key
			// reference's parameters decide, and without them
			// GetVersionStates says none and changes say what to set.
			shared.CapVersionStates,
		},
		KeyTypes:   append([]shared.KeyType(nil), keyTypes...),
		Algorithms: shared.AlgorithmsFor(keyTypes...),
	}, nil
}

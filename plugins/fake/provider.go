package fake

import (
	"context"
	"slices"

	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/shared"
)

// Name is the provider's name: in Describe, in key references
// ("fake:demo") and in the binary's name, knhk-plugin-fake.
const Name = "fake"

// Config configures the provider. The zero value is ready to use: the
// fake takes everything else from each request's parameters.
type Config struct {
	// Version is what Describe reports; default: the binary's build
	// version (shared.BuildVersion), filled in by the SDK.
	Version string
	// Logger receives the provider's logs; default: shared.Logger().
	Logger hclog.Logger
}

// Provider is the fake key provider: software keys, in memory or in a state
// file, with fault injection. Its zero value is not usable; call New.
type Provider struct {
	version string
	log     hclog.Logger
	faults  *faults
	mem     *memStore
	files   shared.ClientCache[*fileStore] // by absolute path
	signers signerCache                    // shared by the file stores
}

var _ shared.Provider = (*Provider)(nil)

// New returns a fake provider. Keys kept in memory belong to this
// Provider value. Wrap it in shared.Validate to call it in-process with
// the request checks the plugin binary applies on the wire.
func New(cfg Config) *Provider {
	if cfg.Logger == nil {
		cfg.Logger = shared.Logger()
	}
	return &Provider{version: cfg.Version, log: cfg.Logger, faults: newFaults(cfg.Logger), mem: newMemStore()}
}

// Describe claims every key type, every algorithm and every optional
// operation, a native batch sign included.
func (p *Provider) Describe(context.Context) (shared.Description, error) {
	return shared.Description{
		Name:    Name,
		Version: p.version,
		Capabilities: []shared.Capability{
			shared.CapCreateKey, shared.CapListKeys, shared.CapRotateKey, shared.CapVerify, shared.CapSignMessage,
			shared.CapSignBatch, shared.CapVersionStates,
		},
		KeyTypes:   slices.Clone(shared.KeyTypes),
		Algorithms: shared.AlgorithmsFor(shared.KeyTypes...),
	}, nil
}

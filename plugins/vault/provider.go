package vault

import (
	"context"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/shared"
)

// Version is the plugin's version, reported by Describe.
const Version = "0.1.0"

// Config configures a Provider. The zero value works: no logging.
type Config struct {
	// Logger receives renewal and login events (never a token). Default:
	// discard.
	Logger hclog.Logger
}

// Provider is the Vault Transit provider. It keeps one Vault client per
// address, namespace, TLS setting and identity, logged in on first use and
// kept logged in. Safe for concurrent use; call Close when done.
type Provider struct {
	log  hclog.Logger
	done chan struct{}

	mu     sync.Mutex
	conns  map[string]*conn
	closed bool
}

var _ shared.Provider = (*Provider)(nil)

// New returns a Provider.
func New(cfg Config) *Provider {
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Provider{log: log, done: make(chan struct{}), conns: map[string]*conn{}}
}

// Close stops renewing tokens. Later calls fail with ErrUnavailable.
func (p *Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.done)
	}
	return nil
}

// conn returns the logged-in client the parameters point at.
func (p *Provider) conn(ctx context.Context, params map[string]string) (*conn, error) {
	s, err := parseParams(params)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errClosed
	}
	c, ok := p.conns[s.cacheKey()]
	if !ok {
		c, err = newConn(s, p.log, p.done)
		if err != nil {
			p.mu.Unlock()
			return nil, err
		}
		p.conns[s.cacheKey()] = c
	}
	p.mu.Unlock()
	if err := c.ensure(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Describe says what the Vault provider can do; it does not call Vault.
func (p *Provider) Describe(context.Context) (shared.Description, error) {
	return shared.Description{
		Name:    "vault",
		Version: Version,
		Capabilities: []shared.Capability{
			shared.CapCreateKey, shared.CapListKeys, shared.CapRotateKey, shared.CapVerify, shared.CapSignMessage, shared.CapSignBatch,
		},
		KeyTypes:   append([]shared.KeyType(nil), shared.KeyTypes...),
		Algorithms: append([]shared.Algorithm(nil), shared.Algorithms...),
	}, nil
}

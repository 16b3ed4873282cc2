package vault

import (
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"

	"github.com/knhk/knhk/shared"
)

var errClosed = fmt.Errorf("vault: provider is closed: %w", shared.ErrUnavailable)

// client is one Vault client (address, namespace, TLS, identity) and the
// login that keeps its token valid (auth.go). Safe for concurrent use.
type client struct {
	prm  shared.Params
	addr string
	api  *api.Client
	log  hclog.Logger
	done <-chan struct{} // closed when the provider closes

	mu        sync.Mutex
	authed    bool          // the client holds a token believed valid
	gen       int           // counts logins, so a stale watcher cannot undo a newer one
	stopWatch chan struct{} // stops the current login's watcher

	typesMu sync.Mutex
	types   map[string]shared.KeyType // key id -> type; a Transit key's type never changes
}

// client returns the logged-in client the checked parameters point at,
// from the cache or made and logged in now.
func (p *Provider) client(ctx context.Context, prm shared.Params) (*client, error) {
	select {
	case <-p.done:
		return nil, errClosed
	default:
	}
	c, err := p.clients.Get(ctx, prm.Key(clientParams...), func(context.Context) (*client, error) {
		return newClient(prm, p.log, p.done)
	})
	if err != nil {
		return nil, err
	}
	if err := c.ensure(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// newClient builds a Vault client for prm. It does not contact Vault.
func newClient(prm shared.Params, log hclog.Logger, done <-chan struct{}) (*client, error) {
	cfg := api.DefaultConfig() // reads VAULT_* from the environment (retries, timeouts, TLS)
	if cfg.Error != nil {
		return nil, shared.RedactError(fmt.Errorf("%w: vault: Vault client settings from the environment: %v", shared.ErrInvalidArgument, cfg.Error))
	}
	addr := prm.String(ParamAddr)
	cfg.Address = addr
	if ca := prm.String(ParamCAFile); ca != "" {
		if err := cfg.ConfigureTLS(&api.TLSConfig{CACert: ca}); err != nil {
			return nil, fmt.Errorf("%w: vault: ca_file %s: %v", shared.ErrInvalidArgument, shared.Quote(ca), err)
		}
	}
	vc, err := api.NewClient(cfg)
	if err != nil {
		return nil, shared.RedactError(fmt.Errorf("%w: vault: Vault client for %s: %v", shared.ErrInvalidArgument, addr, err))
	}
	vc.ClearToken() // NewClient picks up VAULT_TOKEN; login decides
	vc.ClearNamespace()
	if ns := prm.String(ParamNamespace); ns != "" {
		vc.SetNamespace(ns)
	}
	return &client{prm: prm, addr: addr, api: vc, log: log, done: done, types: map[string]shared.KeyType{}}, nil
}

// read, write and list are the Logical calls, through retryDead.
func (c *client) read(ctx context.Context, path string) (*api.Secret, error) {
	return c.retryDead(ctx, func() (*api.Secret, error) { return c.api.Logical().ReadWithContext(ctx, path) })
}

func (c *client) write(ctx context.Context, path string, data map[string]any) (*api.Secret, error) {
	return c.retryDead(ctx, func() (*api.Secret, error) { return c.api.Logical().WriteWithContext(ctx, path, data) })
}

func (c *client) list(ctx context.Context, path string) (*api.Secret, error) {
	return c.retryDead(ctx, func() (*api.Secret, error) { return c.api.Logical().ListWithContext(ctx, path) })
}

// keyType returns a key's type, from the cache or by reading the key.
func (c *client) keyType(ctx context.Context, k keyID) (shared.KeyType, error) {
	c.typesMu.Lock()
	kt, ok := c.types[k.String()]
	c.typesMu.Unlock()
	if ok {
		return kt, nil
	}
	key, err := c.readKey(ctx, k)
	if err != nil {
		return "", err
	}
	return key.keyType, nil
}

func (c *client) rememberType(k keyID, kt shared.KeyType) {
	c.typesMu.Lock()
	c.types[k.String()] = kt
	c.typesMu.Unlock()
}

package vault

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

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
	// Wrapped only now: NewClient wants the *http.Transport DefaultConfig
	// made (a unix:// address sets its dialer), and ConfigureTLS has set
	// its TLS config. One client span per HTTP attempt, a child of the span
	// in the request's context (the plugin's gRPC server span); no-op
	// unless the plugin's telemetry is set up.
	cfg.HttpClient.Transport = otelhttp.NewTransport(cfg.HttpClient.Transport, otelhttp.WithSpanNameFormatter(spanName))
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

// spanName names a Vault request's client span by method and route, with
// the mount, key and auth mount names replaced by placeholders ("PUT
// /v1/{mount}/sign/{name}"), so span names stay few; the full URL is in
// the span's url.full attribute. Unknown paths get the method alone.
func spanName(_ string, r *http.Request) string {
	if route := vaultRoute(r.URL.Path); route != "" {
		return r.Method + " " + route
	}
	return r.Method
}

// vaultRoute is the route template of a Vault API path the provider calls,
// or "".
func vaultRoute(path string) string {
	p, ok := strings.CutPrefix(path, "/v1/")
	if !ok {
		return ""
	}
	if strings.HasPrefix(p, "sys/") || strings.HasPrefix(p, "auth/token/") {
		return path // fixed paths, no names in them
	}
	seg := strings.Split(p, "/")
	if seg[0] == "auth" && len(seg) > 2 && seg[len(seg)-1] == "login" {
		return "/v1/auth/{mount}/login"
	}
	// Transit: MOUNT/keys[/NAME[/rotate]], MOUNT/sign/NAME[/HASH],
	// MOUNT/verify/NAME[/HASH]; a mount may have several segments.
	for i := 1; i < len(seg); i++ {
		rest := seg[i+1:]
		switch seg[i] {
		case "keys":
			switch {
			case len(rest) == 0:
				return "/v1/{mount}/keys"
			case len(rest) == 1:
				return "/v1/{mount}/keys/{name}"
			case len(rest) == 2 && rest[1] == "rotate":
				return "/v1/{mount}/keys/{name}/rotate"
			}
			return ""
		case "sign", "verify":
			switch len(rest) {
			case 1:
				return "/v1/{mount}/" + seg[i] + "/{name}"
			case 2:
				return "/v1/{mount}/" + seg[i] + "/{name}/{hash}"
			}
			return ""
		}
	}
	return ""
}

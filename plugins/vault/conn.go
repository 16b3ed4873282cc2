package vault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"
	"github.com/hashicorp/vault/api/tokenhelper"

	"github.com/knhk/knhk/shared"
)

// reloginTimeout bounds a background login after a token could no longer be
// renewed.
const reloginTimeout = time.Minute

// conn is one Vault client (address, namespace, TLS, identity) and the
// login that keeps its token valid. Safe for concurrent use.
type conn struct {
	s      settings
	addr   string
	client *api.Client
	log    hclog.Logger
	done   <-chan struct{} // closed when the provider closes

	mu        sync.Mutex
	authed    bool          // the client holds a token believed valid
	gen       int           // counts logins, so a stale watcher cannot undo a newer one
	stopWatch chan struct{} // stops the current login's watcher

	typesMu sync.Mutex
	types   map[string]shared.KeyType // key id -> type; a Transit key's type never changes
}

// newConn builds a Vault client for s. It does not contact Vault.
func newConn(s settings, log hclog.Logger, done <-chan struct{}) (*conn, error) {
	cfg := api.DefaultConfig() // reads VAULT_* from the environment (retries, timeouts, TLS)
	if cfg.Error != nil {
		return nil, fmt.Errorf("%w: Vault client settings from the environment: %v", shared.ErrInvalidArgument, cfg.Error)
	}
	cfg.Address = s.addr
	if s.caFile != "" {
		if err := cfg.ConfigureTLS(&api.TLSConfig{CACert: s.caFile}); err != nil {
			return nil, fmt.Errorf("%w: ca_file %q: %v", shared.ErrInvalidArgument, s.caFile, err)
		}
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: Vault client for %s: %v", shared.ErrInvalidArgument, s.addr, err)
	}
	client.ClearToken() // NewClient picks up VAULT_TOKEN; login decides
	client.ClearNamespace()
	if s.namespace != "" {
		client.SetNamespace(s.namespace)
	}
	return &conn{s: s, addr: s.addr, client: client, log: log, done: done, types: map[string]shared.KeyType{}}, nil
}

// ensure logs in unless the client already holds a valid token. Concurrent
// first calls share one login.
func (c *conn) ensure(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.authed {
		return nil
	}
	secret, err := c.login(ctx)
	if err != nil {
		return err
	}
	c.authed = true
	c.gen++
	if c.stopWatch != nil {
		close(c.stopWatch)
		c.stopWatch = nil
	}
	if ttl := leaseSeconds(secret); ttl > 0 {
		w, err := c.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: secret})
		if err != nil {
			return fmt.Errorf("%w: cannot watch the Vault token's lifetime: %v", shared.ErrUnavailable, err)
		}
		c.stopWatch = make(chan struct{})
		go c.watch(w, c.gen, c.stopWatch)
	}
	return nil
}

func leaseSeconds(s *api.Secret) int {
	if s == nil || s.Auth == nil {
		return 0
	}
	return s.Auth.LeaseDuration
}

// watch renews the token until it can no longer be renewed (max TTL, or
// renewal failing), then logs in again (AppRole, Kubernetes) or leaves the
// next request to read the token again (token auth).
func (c *conn) watch(w *api.LifetimeWatcher, gen int, stop <-chan struct{}) {
	go w.Start()
	defer w.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-stop: // a newer login replaced this token
			return
		case r := <-w.RenewCh():
			c.log.Debug("renewed Vault token", "addr", c.addr, "ttl_seconds", leaseSeconds(r.Secret))
		case err := <-w.DoneCh():
			c.mu.Lock()
			current := c.gen == gen
			if current {
				c.authed = false
			}
			c.mu.Unlock()
			if !current {
				return
			}
			if err != nil {
				c.log.Warn("Vault token renewal failed", "addr", c.addr, "error", c.scrub(err).Error())
			}
			if c.s.auth == AuthToken {
				// Nothing to log in with but the same sources: the next
				// request reads them again (a token file may have been
				// refreshed) and reports a dead token.
				c.log.Info("Vault token can no longer be renewed; the next request reads the token again", "addr", c.addr)
				return
			}
			c.log.Info("Vault token can no longer be renewed; logging in again", "addr", c.addr)
			ctx, cancel := context.WithTimeout(context.Background(), reloginTimeout)
			defer cancel()
			if err := c.ensure(ctx); err != nil {
				// The next request tries again and reports the error.
				c.log.Error("Vault login failed", "addr", c.addr, "error", err.Error())
			}
			return
		}
	}
}

// login authenticates with the configured method and leaves the token on
// the client. It returns the token's auth data for the lifetime watcher.
func (c *conn) login(ctx context.Context) (*api.Secret, error) {
	switch c.s.auth {
	case AuthAppRole:
		return c.loginWith(ctx, "approle", c.appRole)
	case AuthKubernetes:
		return c.loginWith(ctx, "kubernetes", c.kubernetes)
	}
	return c.loginToken(ctx)
}

// loginToken uses a token from token_file, VAULT_TOKEN or ~/.vault-token,
// and looks it up to learn whether and when it must be renewed.
func (c *conn) loginToken(ctx context.Context) (*api.Secret, error) {
	tok, err := c.token()
	if err != nil {
		return nil, err
	}
	c.client.SetToken(tok)
	self, err := c.client.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		var re *api.ResponseError
		if errors.As(err, &re) && re.StatusCode == 403 {
			c.client.ClearToken()
			return nil, c.scrubWith(tok, fmt.Errorf("vault: the token for %s is invalid, expired or revoked (lookup-self was denied): %w", c.addr, shared.ErrPermissionDenied))
		}
		c.client.ClearToken()
		return nil, c.scrubWith(tok, c.apiError("look up the token", "auth/token/lookup-self", err))
	}
	ttl, _ := self.TokenTTL()
	renewable, _ := self.TokenIsRenewable()
	return &api.Secret{Auth: &api.SecretAuth{ClientToken: tok, Renewable: renewable, LeaseDuration: int(ttl.Seconds())}}, nil
}

// token reads the token from the first source that has one.
func (c *conn) token() (string, error) {
	if c.s.tokenFile != "" {
		b, err := os.ReadFile(c.s.tokenFile)
		if err != nil {
			return "", fmt.Errorf("%w: token_file: %v", shared.ErrInvalidArgument, err)
		}
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
		return "", fmt.Errorf("%w: token_file %s is empty", shared.ErrPermissionDenied, c.s.tokenFile)
	}
	if tok := strings.TrimSpace(os.Getenv(api.EnvVaultToken)); tok != "" {
		return tok, nil
	}
	if h, err := tokenhelper.NewInternalTokenHelper(); err == nil {
		if tok, err := h.Get(); err == nil && strings.TrimSpace(tok) != "" {
			return strings.TrimSpace(tok), nil
		}
	}
	return "", fmt.Errorf("%w: no Vault token for %s: set VAULT_TOKEN, the token_file parameter, or run `vault login`", shared.ErrPermissionDenied, c.addr)
}

// loginWith logs in with an auth method; the client keeps the new token.
func (c *conn) loginWith(ctx context.Context, method string, build func() (api.AuthMethod, error)) (*api.Secret, error) {
	m, err := build()
	if err != nil {
		return nil, err
	}
	path := "auth/" + c.s.authMount + "/login"
	secret, err := c.client.Auth().Login(ctx, m)
	var re *api.ResponseError
	if errors.As(err, &re) && (re.StatusCode == 400 || re.StatusCode == 401 || re.StatusCode == 403) {
		// Vault answers a wrong role or secret with 400, a refused JWT with 403.
		return nil, c.scrub(fmt.Errorf("vault: %s login at %s on %s was refused (%s): check the role and its credentials: %w",
			method, path, c.addr, strings.Join(re.Errors, "; "), shared.ErrPermissionDenied))
	}
	if err != nil {
		return nil, c.apiError("log in with "+method, path, err)
	}
	if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
		return nil, fmt.Errorf("%w: Vault %s login at auth/%s returned no token", shared.ErrUnavailable, method, c.s.authMount)
	}
	c.log.Debug("logged in to Vault", "addr", c.addr, "method", method, "mount", c.s.authMount, "ttl_seconds", secret.Auth.LeaseDuration)
	return secret, nil
}

func (c *conn) appRole() (api.AuthMethod, error) {
	roleID := c.s.roleID
	if c.s.roleIDFile != "" {
		b, err := os.ReadFile(c.s.roleIDFile)
		if err != nil {
			return nil, fmt.Errorf("%w: role_id_file: %v", shared.ErrInvalidArgument, err)
		}
		roleID = strings.TrimSpace(string(b))
	}
	if roleID == "" {
		roleID = strings.TrimSpace(os.Getenv(EnvRoleID))
	}
	if roleID == "" {
		return nil, fmt.Errorf("%w: auth=approle needs a role id: the role_id or role_id_file parameter, or %s", shared.ErrInvalidArgument, EnvRoleID)
	}
	secretID := &approle.SecretID{FromEnv: EnvSecretID}
	if c.s.secretIDFile != "" {
		secretID = &approle.SecretID{FromFile: c.s.secretIDFile}
	} else if os.Getenv(EnvSecretID) == "" {
		return nil, fmt.Errorf("%w: auth=approle needs a secret id: the secret_id_file parameter or %s", shared.ErrInvalidArgument, EnvSecretID)
	}
	m, err := approle.NewAppRoleAuth(roleID, secretID, approle.WithMountPath(c.s.authMount))
	if err != nil {
		return nil, fmt.Errorf("%w: approle login: %v", shared.ErrInvalidArgument, err)
	}
	return m, nil
}

func (c *conn) kubernetes() (api.AuthMethod, error) {
	if _, err := os.Stat(c.s.jwtFile); err != nil {
		return nil, fmt.Errorf("%w: kubernetes service-account token file: %v", shared.ErrInvalidArgument, err)
	}
	m, err := kubernetes.NewKubernetesAuth(c.s.role,
		kubernetes.WithServiceAccountTokenPath(c.s.jwtFile), kubernetes.WithMountPath(c.s.authMount))
	if err != nil {
		return nil, fmt.Errorf("%w: kubernetes login: %v", shared.ErrInvalidArgument, err)
	}
	return m, nil
}

// read, write and list are the Logical calls, through retryDead.
func (c *conn) read(ctx context.Context, path string) (*api.Secret, error) {
	return c.retryDead(ctx, func() (*api.Secret, error) { return c.client.Logical().ReadWithContext(ctx, path) })
}

func (c *conn) write(ctx context.Context, path string, data map[string]any) (*api.Secret, error) {
	return c.retryDead(ctx, func() (*api.Secret, error) { return c.client.Logical().WriteWithContext(ctx, path, data) })
}

func (c *conn) list(ctx context.Context, path string) (*api.Secret, error) {
	return c.retryDead(ctx, func() (*api.Secret, error) { return c.client.Logical().ListWithContext(ctx, path) })
}

// retryDead runs op. When Vault answers 403, it asks whether the token is
// still alive: a live token means the policy denies op, and that error is
// returned; a dead one (expired or revoked between renewals, or replaced by
// a relogin in the meantime) means log in again, or read the token source
// again, and retry once.
func (c *conn) retryDead(ctx context.Context, op func() (*api.Secret, error)) (*api.Secret, error) {
	tok := c.client.Token()
	s, err := op()
	if !forbidden(err) {
		return s, err
	}
	if c.client.Token() == tok {
		if _, lerr := c.client.Auth().Token().LookupSelfWithContext(ctx); !forbidden(lerr) {
			return s, err
		}
		c.mu.Lock()
		if c.client.Token() == tok {
			c.authed = false
		}
		c.mu.Unlock()
		c.log.Info("Vault token is no longer valid; logging in again", "addr", c.addr)
	}
	if lerr := c.ensure(ctx); lerr != nil {
		return nil, lerr
	}
	return op()
}

// forbidden reports whether err is Vault's 403.
func forbidden(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == 403
}

// keyType returns a key's type, from the cache or by reading the key.
func (c *conn) keyType(ctx context.Context, k keyID) (shared.KeyType, error) {
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

func (c *conn) rememberType(k keyID, kt shared.KeyType) {
	c.typesMu.Lock()
	c.types[k.String()] = kt
	c.typesMu.Unlock()
}

// scrubWith removes a specific token from an error message (used before the
// token is on the client, or after it was cleared).
func (c *conn) scrubWith(tok string, err error) error {
	if tok == "" || !strings.Contains(err.Error(), tok) {
		return err
	}
	return scrubOut(err, tok)
}

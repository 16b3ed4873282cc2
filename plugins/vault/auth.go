package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"
	"github.com/hashicorp/vault/api/tokenhelper"

	"github.com/knhk/knhk/shared"
)

// reloginTimeout bounds a background login after a token could no longer be
// renewed.
const reloginTimeout = time.Minute

// ensure logs in unless the client already holds a valid token. Concurrent
// first calls share one login.
func (c *client) ensure(ctx context.Context) error {
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
		w, err := c.api.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: secret})
		if err != nil {
			return c.redact(fmt.Errorf("%w: vault: cannot watch the Vault token's lifetime: %v", shared.ErrUnavailable, err))
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
func (c *client) watch(w *api.LifetimeWatcher, gen int, stop <-chan struct{}) {
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
				c.log.Warn("Vault token renewal failed", "addr", c.addr, "error", c.redact(err).Error())
			}
			if c.prm.String(ParamAuth) == AuthToken {
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
func (c *client) login(ctx context.Context) (*api.Secret, error) {
	switch c.prm.String(ParamAuth) {
	case AuthAppRole:
		return c.loginWith(ctx, AuthAppRole, c.appRole)
	case AuthKubernetes:
		return c.loginWith(ctx, AuthKubernetes, c.kubernetes)
	}
	return c.loginToken(ctx)
}

// loginToken uses a token from token_file, VAULT_TOKEN or ~/.vault-token,
// and looks it up to learn whether and when it must be renewed.
func (c *client) loginToken(ctx context.Context) (*api.Secret, error) {
	tok, err := c.token()
	if err != nil {
		return nil, err
	}
	c.api.SetToken(tok)
	self, err := c.api.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		c.api.ClearToken()
		if forbidden(err) {
			return nil, fmt.Errorf("vault: the token for %s is invalid, expired or revoked (lookup-self was denied): %w", c.addr, shared.ErrPermissionDenied)
		}
		return nil, c.redact(c.mapError("look up the token", "auth/token/lookup-self", err), tok)
	}
	ttl, _ := self.TokenTTL()
	renewable, _ := self.TokenIsRenewable()
	return &api.Secret{Auth: &api.SecretAuth{ClientToken: tok, Renewable: renewable, LeaseDuration: int(ttl.Seconds())}}, nil
}

// token reads the token from the first source that has one.
func (c *client) token() (string, error) {
	if file := c.prm.String(ParamTokenFile); file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%w: vault: token_file: %v", shared.ErrInvalidArgument, err)
		}
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
		return "", fmt.Errorf("%w: vault: token_file %s is empty", shared.ErrPermissionDenied, shared.Quote(file))
	}
	if tok := strings.TrimSpace(os.Getenv(api.EnvVaultToken)); tok != "" {
		return tok, nil
	}
	if h, err := tokenhelper.NewInternalTokenHelper(); err == nil {
		if tok, err := h.Get(); err == nil && strings.TrimSpace(tok) != "" {
			return strings.TrimSpace(tok), nil
		}
	}
	return "", fmt.Errorf("%w: vault: no Vault token for %s: set VAULT_TOKEN, the token_file parameter, or run `vault login`", shared.ErrPermissionDenied, c.addr)
}

// loginWith logs in with an auth method; the client keeps the new token.
func (c *client) loginWith(ctx context.Context, method string, build func() (api.AuthMethod, error)) (*api.Secret, error) {
	m, err := build()
	if err != nil {
		return nil, err
	}
	mount := authMount(c.prm)
	path := "auth/" + mount + "/login"
	secret, err := c.api.Auth().Login(ctx, m)
	var re *api.ResponseError
	if errors.As(err, &re) && (re.StatusCode == http.StatusBadRequest || re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden) {
		// Vault answers a wrong role or secret with 400, a refused JWT with 403.
		return nil, c.redact(fmt.Errorf("vault: %s login at %s on %s was refused (%s): check the role and its credentials: %w",
			method, path, c.addr, strings.Join(re.Errors, "; "), shared.ErrPermissionDenied))
	}
	if err != nil {
		return nil, c.mapError("log in with "+method, path, err)
	}
	if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
		return nil, fmt.Errorf("%w: vault: %s login at %s returned no token", shared.ErrUnavailable, method, path)
	}
	c.log.Debug("logged in to Vault", "addr", c.addr, "method", method, "mount", mount, "ttl_seconds", secret.Auth.LeaseDuration)
	return secret, nil
}

func (c *client) appRole() (api.AuthMethod, error) {
	roleID := c.prm.String(ParamRoleID)
	if file := c.prm.String(ParamRoleIDFile); file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%w: vault: role_id_file: %v", shared.ErrInvalidArgument, err)
		}
		roleID = strings.TrimSpace(string(b))
	}
	if roleID == "" {
		roleID = strings.TrimSpace(os.Getenv(EnvRoleID))
	}
	if roleID == "" {
		return nil, fmt.Errorf("%w: vault: auth=approle needs a role id: the role_id or role_id_file parameter, or %s", shared.ErrInvalidArgument, EnvRoleID)
	}
	secretID := &approle.SecretID{FromEnv: EnvSecretID}
	if file := c.prm.String(ParamSecretIDFile); file != "" {
		secretID = &approle.SecretID{FromFile: file}
	} else if os.Getenv(EnvSecretID) == "" {
		return nil, fmt.Errorf("%w: vault: auth=approle needs a secret id: the secret_id_file parameter or %s", shared.ErrInvalidArgument, EnvSecretID)
	}
	m, err := approle.NewAppRoleAuth(roleID, secretID, approle.WithMountPath(authMount(c.prm)))
	if err != nil {
		return nil, fmt.Errorf("%w: vault: approle login: %v", shared.ErrInvalidArgument, err)
	}
	return m, nil
}

func (c *client) kubernetes() (api.AuthMethod, error) {
	file := jwtFile(c.prm)
	if _, err := os.Stat(file); err != nil {
		return nil, fmt.Errorf("%w: vault: kubernetes service-account token file: %v", shared.ErrInvalidArgument, err)
	}
	m, err := kubernetes.NewKubernetesAuth(c.prm.String(ParamRole),
		kubernetes.WithServiceAccountTokenPath(file), kubernetes.WithMountPath(authMount(c.prm)))
	if err != nil {
		return nil, fmt.Errorf("%w: vault: kubernetes login: %v", shared.ErrInvalidArgument, err)
	}
	return m, nil
}

// retryDead runs op. When Vault answers 403, it asks whether the token is
// still alive: a live token means the policy denies op, and that error is
// returned; a dead one (expired or revoked between renewals, or replaced by
// a relogin in the meantime) means log in again, or read the token source
// again, and retry once.
func (c *client) retryDead(ctx context.Context, op func() (*api.Secret, error)) (*api.Secret, error) {
	tok := c.api.Token()
	s, err := op()
	if !forbidden(err) {
		return s, err
	}
	if c.api.Token() == tok {
		if _, lerr := c.api.Auth().Token().LookupSelfWithContext(ctx); !forbidden(lerr) {
			return s, err
		}
		c.mu.Lock()
		if c.api.Token() == tok {
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
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden
}

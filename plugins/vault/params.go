package vault

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/knhk/knhk/shared"
)

// Parameter names a request may carry. Anything else is refused, so a typo
// does not silently fall back to a default Vault.
const (
	ParamAddr         = "addr"           // Vault address; default VAULT_ADDR
	ParamNamespace    = "namespace"      // Vault Enterprise namespace; default VAULT_NAMESPACE
	ParamCAFile       = "ca_file"        // PEM CA bundle for TLS; default VAULT_CACERT
	ParamAuth         = "auth"           // token (default) | approle | kubernetes
	ParamAuthMount    = "auth_mount"     // auth method mount; default "approle" or "kubernetes"
	ParamTokenFile    = "token_file"     // auth=token: file holding the token (instead of VAULT_TOKEN)
	ParamRoleID       = "role_id"        // auth=approle: role id (not a secret)
	ParamRoleIDFile   = "role_id_file"   // auth=approle: file holding the role id
	ParamSecretIDFile = "secret_id_file" // auth=approle: file holding the secret id
	ParamRole         = "role"           // auth=kubernetes: Vault role
	ParamJWTFile      = "jwt_file"       // auth=kubernetes: service-account token file
	ParamMount        = "mount"          // ListKeys only: the Transit mount to list; default "transit"
)

// Environment variables read when the parameters leave a value out.
const (
	EnvRoleID   = "VAULT_ROLE_ID"   // auth=approle role id
	EnvSecretID = "VAULT_SECRET_ID" // auth=approle secret id
)

// DefaultJWTFile is where Kubernetes mounts a pod's service-account token.
const DefaultJWTFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// Auth methods.
const (
	AuthToken      = "token"
	AuthAppRole    = "approle"
	AuthKubernetes = "kubernetes"
)

var knownParams = map[string]bool{
	ParamAddr: true, ParamNamespace: true, ParamCAFile: true, ParamAuth: true, ParamAuthMount: true,
	ParamTokenFile: true, ParamRoleID: true, ParamRoleIDFile: true, ParamSecretIDFile: true,
	ParamRole: true, ParamJWTFile: true, ParamMount: true,
}

// authParams lists the parameters each auth method accepts besides the
// common ones.
var authParams = map[string][]string{
	AuthToken:      {ParamTokenFile},
	AuthAppRole:    {ParamAuthMount, ParamRoleID, ParamRoleIDFile, ParamSecretIDFile},
	AuthKubernetes: {ParamAuthMount, ParamRole, ParamJWTFile},
}

// settings are the parameters after defaults: everything that picks a Vault
// client. Secrets themselves are not here, only where to find them.
type settings struct {
	addr, namespace, caFile string
	auth, authMount         string
	tokenFile               string
	roleID, roleIDFile      string
	secretIDFile            string
	role, jwtFile           string
}

// cacheKey identifies one cached client.
func (s settings) cacheKey() string {
	return strings.Join([]string{s.addr, s.namespace, s.caFile, s.auth, s.authMount, s.tokenFile,
		s.roleID, s.roleIDFile, s.secretIDFile, s.role, s.jwtFile}, "\x00")
}

// parseParams checks request parameters and fills in defaults from the
// environment.
func parseParams(p map[string]string) (settings, error) {
	var unknown []string
	for k := range p {
		if !knownParams[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return settings{}, fmt.Errorf("%w: unknown parameter(s) %q (known: addr, namespace, ca_file, auth, auth_mount, token_file, role_id, role_id_file, secret_id_file, role, jwt_file, mount)",
			shared.ErrInvalidArgument, unknown)
	}
	s := settings{
		addr:         or(p[ParamAddr], os.Getenv("VAULT_ADDR")),
		namespace:    or(p[ParamNamespace], os.Getenv("VAULT_NAMESPACE")),
		caFile:       or(p[ParamCAFile], os.Getenv("VAULT_CACERT")),
		auth:         or(p[ParamAuth], AuthToken),
		authMount:    p[ParamAuthMount],
		tokenFile:    p[ParamTokenFile],
		roleID:       p[ParamRoleID],
		roleIDFile:   p[ParamRoleIDFile],
		secretIDFile: p[ParamSecretIDFile],
		role:         p[ParamRole],
		jwtFile:      p[ParamJWTFile],
	}
	allowed, ok := authParams[s.auth]
	if !ok {
		return settings{}, fmt.Errorf("%w: auth %q is not one of token, approle, kubernetes", shared.ErrInvalidArgument, s.auth)
	}
	for _, name := range []string{ParamAuthMount, ParamTokenFile, ParamRoleID, ParamRoleIDFile, ParamSecretIDFile, ParamRole, ParamJWTFile} {
		if p[name] != "" && !contains(allowed, name) {
			return settings{}, fmt.Errorf("%w: parameter %q does not apply to auth=%s", shared.ErrInvalidArgument, name, s.auth)
		}
	}
	if s.addr == "" {
		return settings{}, fmt.Errorf("%w: no Vault address: set the addr parameter or VAULT_ADDR", shared.ErrInvalidArgument)
	}
	switch s.auth {
	case AuthAppRole:
		s.authMount = or(s.authMount, "approle")
		if s.roleID != "" && s.roleIDFile != "" {
			return settings{}, fmt.Errorf("%w: set role_id or role_id_file, not both", shared.ErrInvalidArgument)
		}
	case AuthKubernetes:
		s.authMount = or(s.authMount, "kubernetes")
		s.jwtFile = or(s.jwtFile, DefaultJWTFile)
		if s.role == "" {
			return settings{}, fmt.Errorf("%w: auth=kubernetes needs the role parameter (the Vault role to log in as)", shared.ErrInvalidArgument)
		}
	}
	return s, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

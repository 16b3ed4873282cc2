package vault

import (
	"context"
	"fmt"
	"slices"
	"strconv"
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
	// ParamVersionStates is the KV v2 path under which keys' version
	// states are kept (states.go); default VAULT_KNHK_VERSION_STATES.
	// Unset: keys have no version states.
	ParamVersionStates = "version_states"
)

// Environment variables read when the parameters leave a value out.
const (
	EnvRoleID   = "VAULT_ROLE_ID"   // auth=approle role id
	EnvSecretID = "VAULT_SECRET_ID" // auth=approle secret id
	// EnvVersionStates is the version_states default. It starts with
	// VAULT_ so that the host passes it to the plugin.
	EnvVersionStates = "VAULT_KNHK_VERSION_STATES"
)

// DefaultJWTFile is where Kubernetes mounts a pod's service-account token.
const DefaultJWTFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// Auth methods.
const (
	AuthToken      = "token"
	AuthAppRole    = "approle"
	AuthKubernetes = "kubernetes"
)

// params declares every parameter. Secrets are never parameters, only the
// files or variables that hold them.
var params = shared.NewParamSchema(Name,
	shared.Param{Name: ParamAddr, Kind: shared.ParamURL, Env: "VAULT_ADDR", Required: true, Doc: "the Vault address"},
	shared.Param{Name: ParamNamespace, Env: "VAULT_NAMESPACE", Doc: "the Vault Enterprise namespace"},
	shared.Param{Name: ParamCAFile, Kind: shared.ParamPath, Env: "VAULT_CACERT", Doc: "PEM CA bundle for Vault's TLS certificate"},
	shared.Param{Name: ParamAuth, Kind: shared.ParamEnum, Choices: []string{AuthToken, AuthAppRole, AuthKubernetes}, Default: AuthToken, Doc: "how to log in"},
	shared.Param{Name: ParamAuthMount, Doc: "approle/kubernetes: where the auth method is mounted (default approle / kubernetes)"},
	shared.Param{Name: ParamTokenFile, Kind: shared.ParamPath, Doc: "auth=token: file holding the token (default VAULT_TOKEN, then ~/.vault-token)"},
	shared.Param{Name: ParamRoleID, Doc: "auth=approle: the role id (default " + EnvRoleID + ")"},
	shared.Param{Name: ParamRoleIDFile, Kind: shared.ParamPath, Doc: "auth=approle: file holding the role id"},
	shared.Param{Name: ParamSecretIDFile, Kind: shared.ParamPath, Doc: "auth=approle: file holding the secret id (default " + EnvSecretID + ")"},
	shared.Param{Name: ParamRole, Doc: "auth=kubernetes: the Vault role to log in as"},
	shared.Param{Name: ParamJWTFile, Kind: shared.ParamPath, Doc: "auth=kubernetes: service-account token file (default " + DefaultJWTFile + ")"},
	shared.Param{Name: ParamMount, Doc: "ListKeys: the Transit mount to list (default transit); elsewhere it must match the key id's mount"},
	shared.Param{Name: ParamVersionStates, Env: EnvVersionStates, Doc: "KV v2 path (e.g. secret/knhk/version-states) under which key version states are kept; unset: no version states"},
)

// clientParams are the parameters that pick a Vault client: all but mount
// and version_states.
var clientParams = []string{
	ParamAddr, ParamNamespace, ParamCAFile, ParamAuth, ParamAuthMount, ParamTokenFile,
	ParamRoleID, ParamRoleIDFile, ParamSecretIDFile, ParamRole, ParamJWTFile,
}

// authParams lists the parameters each auth method accepts besides the
// common ones.
var authParams = map[string][]string{
	AuthToken:      {ParamTokenFile},
	AuthAppRole:    {ParamAuthMount, ParamRoleID, ParamRoleIDFile, ParamSecretIDFile},
	AuthKubernetes: {ParamAuthMount, ParamRole, ParamJWTFile},
}

// parseParams checks a request's parameters with the schema, then what
// depends on the auth method: a parameter of another method is refused, so
// a mistaken auth= does not go unnoticed.
func parseParams(raw map[string]string) (shared.Params, error) {
	prm, err := params.Parse(raw)
	if err != nil {
		return shared.Params{}, err
	}
	auth := prm.String(ParamAuth)
	for _, name := range []string{ParamAuthMount, ParamTokenFile, ParamRoleID, ParamRoleIDFile, ParamSecretIDFile, ParamRole, ParamJWTFile} {
		if prm.String(name) != "" && !slices.Contains(authParams[auth], name) {
			return shared.Params{}, fmt.Errorf("%w: vault: parameter %s does not apply to auth=%s", shared.ErrInvalidArgument, name, auth)
		}
	}
	switch auth {
	case AuthAppRole:
		if prm.String(ParamRoleID) != "" && prm.Has(ParamRoleIDFile) {
			return shared.Params{}, fmt.Errorf("%w: vault: set role_id or role_id_file, not both", shared.ErrInvalidArgument)
		}
	case AuthKubernetes:
		if prm.String(ParamRole) == "" {
			return shared.Params{}, fmt.Errorf("%w: vault: auth=kubernetes needs the role parameter (the Vault role to log in as)", shared.ErrInvalidArgument)
		}
	}
	if _, err := parseStatesPath(prm.String(ParamVersionStates)); err != nil {
		return shared.Params{}, err
	}
	return prm, nil
}

// authMount is where the chosen auth method is mounted.
func authMount(prm shared.Params) string {
	if m := prm.String(ParamAuthMount); m != "" {
		return m
	}
	return prm.String(ParamAuth)
}

// jwtFile is the Kubernetes service-account token file.
func jwtFile(prm shared.Params) string {
	if f := prm.String(ParamJWTFile); f != "" {
		return f
	}
	return DefaultJWTFile
}

// defaultMount is the Transit mount a bare key name lives in.
const defaultMount = "transit"

// keyID is a parsed MOUNT/NAME.
type keyID struct {
	mount string // e.g. "transit" or "team/transit"
	name  string
}

func (k keyID) String() string { return k.mount + "/" + k.name }

// parseKeyID splits MOUNT/NAME at the last slash (mounts may nest; key
// names may not contain a slash). A bare NAME means mount "transit".
func parseKeyID(id string) (keyID, error) {
	if id == "" {
		return keyID{}, fmt.Errorf("%w: vault: empty key id (want MOUNT/NAME, e.g. transit/release)", shared.ErrInvalidArgument)
	}
	k := keyID{mount: defaultMount, name: id}
	if i := strings.LastIndex(id, "/"); i >= 0 {
		k = keyID{mount: id[:i], name: id[i+1:]}
	}
	if k.mount == "" || k.name == "" || strings.HasPrefix(k.mount, "/") {
		return keyID{}, fmt.Errorf("%w: vault: key id %s is not MOUNT/NAME (e.g. transit/release)", shared.ErrInvalidArgument, shared.Quote(id))
	}
	if seg, bad := unsafeSegment(k.String()); bad {
		return keyID{}, fmt.Errorf("%w: vault: key id %s has an empty, relative or unsafe path segment %s", shared.ErrInvalidArgument, shared.Quote(id), shared.Quote(seg))
	}
	return k, nil
}

// unsafeSegment returns the first segment of a Vault path that is empty,
// relative (. or ..) or holds a character that would change the request
// URL (? # % \ or whitespace), and whether there is one.
func unsafeSegment(path string) (string, bool) {
	for _, seg := range strings.Split(path, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "?#%\\ \t\n") {
			return seg, true
		}
	}
	return "", false
}

// parseStatesPath checks the version_states parameter: a KV v2 path such
// as secret/knhk/version-states, leading and trailing slashes ignored.
// Empty means no version states.
func parseStatesPath(path string) (string, error) {
	p := strings.Trim(path, "/")
	if path == "" {
		return "", nil
	}
	if seg, bad := unsafeSegment(p); bad {
		return "", fmt.Errorf("%w: vault: version_states %s is not a KV v2 path like secret/knhk/version-states (segment %s)",
			shared.ErrInvalidArgument, shared.Quote(path), shared.Quote(seg))
	}
	return p, nil
}

// parseVersion reads a key version as knhk writes it ("3"), also accepting
// Transit's "v3" and "vault:v3" forms. Empty means the latest (0).
func parseVersion(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	s := strings.TrimPrefix(strings.TrimPrefix(v, "vault:"), "v")
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%w: vault: key version %s is not a positive number", shared.ErrInvalidArgument, shared.Quote(v))
	}
	return n, nil
}

// parseMount checks a Transit mount path (the ListKeys mount parameter).
func parseMount(mount string) (string, error) {
	if mount == "" {
		return defaultMount, nil
	}
	if _, err := parseKeyID(mount + "/x"); err != nil {
		return "", fmt.Errorf("%w: vault: mount %s is not a valid Vault path", shared.ErrInvalidArgument, shared.Quote(mount))
	}
	return mount, nil
}

// target is what a request acts on: the key and a logged-in client of the
// Vault its parameters name.
type target struct {
	key keyID
	c   *client
	// states is the version_states KV v2 path; "" when the key has no
	// version states.
	states string
}

// resolve is the one place a key reference becomes a parsed key id,
// checked parameters and a logged-in client.
func (p *Provider) resolve(ctx context.Context, ref shared.KeyRef) (target, error) {
	k, err := parseKeyID(ref.ID)
	if err != nil {
		return target{}, err
	}
	prm, err := parseParams(ref.Params)
	if err != nil {
		return target{}, err
	}
	if prm.Has(ParamMount) && prm.String(ParamMount) != k.mount {
		return target{}, fmt.Errorf("%w: vault: parameter mount=%s contradicts key id %s (the mount is part of the key id)",
			shared.ErrInvalidArgument, shared.Quote(prm.String(ParamMount)), shared.Quote(ref.ID))
	}
	c, err := p.client(ctx, prm)
	if err != nil {
		return target{}, err
	}
	states, _ := parseStatesPath(prm.String(ParamVersionStates)) // checked by parseParams
	return target{key: k, c: c, states: states}, nil
}

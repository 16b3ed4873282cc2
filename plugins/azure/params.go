package azure

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/knhk/knhk/shared"
)

// The parameters a key reference (or ListKeys) may carry.
const (
	ParamCAFile   = "ca_file"   // PEM file of extra CAs to trust for the vault (private endpoints, tests)
	ParamTenantID = "tenant_id" // Entra tenant to authenticate in
	ParamClientID = "client_id" // user-assigned managed identity or workload identity app
	ParamHSM      = "hsm"       // "true": CreateKey makes HSM-backed keys (RSA-HSM, EC-HSM)
	ParamVaultURL = "vault_url" // vault to list (ListKeys); elsewhere must match the key id
)

// params declares them. An unknown one is an error so that a typo does
// not silently change which vault or identity is used.
var params = shared.NewParamSchema(Name,
	shared.Param{Name: ParamCAFile, Kind: shared.ParamPath, Doc: "PEM file of extra CAs to trust for the vault (private endpoints, tests)"},
	shared.Param{Name: ParamTenantID, Doc: "Entra ID tenant to authenticate in"},
	shared.Param{Name: ParamClientID, Doc: "identity to authenticate as: user-assigned managed identity, workload identity app or service principal"},
	shared.Param{Name: ParamHSM, Kind: shared.ParamBool, Doc: "true: CreateKey makes HSM-backed keys (RSA-HSM, EC-HSM)"},
	shared.Param{Name: ParamVaultURL, Kind: shared.ParamURL, Doc: "the vault ListKeys lists (https://<vault>.vault.azure.net); elsewhere it must match the key id"},
)

// target is what a request acts on: the parsed key id, the checked
// parameters and the vault's client.
type target struct {
	id     keyID // only its vault set when the reference has no key id
	params shared.Params
	client *azkeys.Client
}

// resolve is the one place a key reference becomes a target. An empty key
// id (ListKeys) resolves to the vault vault_url names, which is then
// required; with a key id, vault_url may be given but must match it.
func (p *Provider) resolve(ctx context.Context, ref shared.KeyRef) (target, error) {
	ps, vault, err := parseParams(ref.Params)
	if err != nil {
		return target{}, err
	}
	id := keyID{vault: vault}
	switch {
	case ref.ID != "":
		if id, err = parseKeyID(ref.ID); err != nil {
			return target{}, err
		}
		if vault != "" && vault != id.vault {
			return target{}, fmt.Errorf("%w: azure: vault_url %s does not match key id %s", shared.ErrInvalidArgument, vault, shared.Quote(ref.ID))
		}
	case vault == "":
		return target{}, fmt.Errorf("%w: azure: ListKeys needs the vault_url parameter (https://<vault>.vault.azure.net)", shared.ErrInvalidArgument)
	}
	c, err := p.client(ctx, id.vault, ps)
	if err != nil {
		return target{}, err
	}
	return target{id: id, params: ps, client: c}, nil
}

// parseParams checks parameters against the schema and returns the
// vault_url, if any, in the form key ids' vaults have.
func parseParams(m map[string]string) (shared.Params, string, error) {
	ps, err := params.Parse(m)
	if err != nil {
		return shared.Params{}, "", err
	}
	if !ps.Has(ParamVaultURL) {
		return ps, "", nil
	}
	vault, err := parseVaultURL(ps.String(ParamVaultURL))
	if err != nil {
		return shared.Params{}, "", err
	}
	return ps, vault, nil
}

// keyID is a parsed Key Vault key identifier.
type keyID struct {
	vault   string // scheme and host, e.g. https://myvault.vault.azure.net
	name    string
	version string // empty when the id names the key, not one version
}

// Key Vault key names are 1-127 letters, digits and dashes; versions are
// opaque alphanumerics (32 hex digits in practice). Both go into request
// paths, so nothing else may pass.
var (
	keyNameRE    = regexp.MustCompile(`^[0-9A-Za-z-]{1,127}$`)
	keyVersionRE = regexp.MustCompile(`^[0-9A-Za-z]{1,64}$`)
)

const keyIDForm = "https://<vault>.vault.azure.net/keys/<name>[/<version>]"

// parseKeyID checks a key id. Any https origin is accepted (Key Vault,
// Managed HSM, sovereign clouds, private endpoints, a test server).
func parseKeyID(s string) (keyID, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return keyID{}, fmt.Errorf("%w: azure: key id %s is not a Key Vault key URL (%s)", shared.ErrInvalidArgument, shared.Quote(shared.RedactURL(s)), keyIDForm)
	}
	parts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(u.Path, "/"), "/"), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] != "keys" {
		return keyID{}, fmt.Errorf("%w: azure: key id %s has no /keys/<name> path (%s)", shared.ErrInvalidArgument, shared.Quote(s), keyIDForm)
	}
	id := keyID{vault: "https://" + strings.ToLower(u.Host), name: parts[1]}
	if !keyNameRE.MatchString(id.name) {
		return keyID{}, fmt.Errorf("%w: azure: key name %s in %s must be 1-127 letters, digits or dashes", shared.ErrInvalidArgument, shared.Quote(id.name), shared.Quote(s))
	}
	if len(parts) == 3 {
		id.version = parts[2]
		if !keyVersionRE.MatchString(id.version) {
			return keyID{}, fmt.Errorf("%w: azure: key version %s in %s is not a Key Vault version", shared.ErrInvalidArgument, shared.Quote(id.version), shared.Quote(s))
		}
	}
	return id, nil
}

// parseVaultURL checks a vault URL (the vault_url parameter): an https
// origin with no path.
func parseVaultURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
		return "", fmt.Errorf("%w: azure: vault_url %s is not a vault URL like https://<vault>.vault.azure.net", shared.ErrInvalidArgument, shared.Quote(shared.RedactURL(s)))
	}
	return "https://" + strings.ToLower(u.Host), nil
}

// String is the id without its version.
func (k keyID) String() string { return k.vault + "/keys/" + k.name }

// pick chooses the version to use: the request's, else the id's (empty
// means current). Both set and different is an error.
func (k keyID) pick(version string) (string, error) {
	if version == "" {
		return k.version, nil
	}
	if k.version != "" && k.version != version {
		return "", fmt.Errorf("%w: azure: key id %s pins version %s but the request asks for %s", shared.ErrInvalidArgument, k, k.version, shared.Quote(version))
	}
	if !keyVersionRE.MatchString(version) {
		return "", fmt.Errorf("%w: azure: %s is not a Key Vault key version", shared.ErrInvalidArgument, shared.Quote(version))
	}
	return version, nil
}

package azure

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/knhk/knhk/shared"
)

// keyID is a parsed Key Vault key identifier.
type keyID struct {
	vault   string // scheme and host, e.g. https://myvault.vault.azure.net
	name    string
	version string // empty when the id names the key, not one version
}

// Key Vault key names are 1-127 letters, digits and dashes; versions are
// opaque alphanumerics (32 hex digits in practice).
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
		return keyID{}, fmt.Errorf("%w: key id %q is not a Key Vault key URL (%s)", shared.ErrInvalidArgument, s, keyIDForm)
	}
	parts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(u.Path, "/"), "/"), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] != "keys" {
		return keyID{}, fmt.Errorf("%w: key id %q has no /keys/<name> path (%s)", shared.ErrInvalidArgument, s, keyIDForm)
	}
	id := keyID{vault: "https://" + strings.ToLower(u.Host), name: parts[1]}
	if !keyNameRE.MatchString(id.name) {
		return keyID{}, fmt.Errorf("%w: key name %q in %q must be 1-127 letters, digits or dashes", shared.ErrInvalidArgument, id.name, s)
	}
	if len(parts) == 3 {
		id.version = parts[2]
		if !keyVersionRE.MatchString(id.version) {
			return keyID{}, fmt.Errorf("%w: key version %q in %q is not a Key Vault version", shared.ErrInvalidArgument, id.version, s)
		}
	}
	return id, nil
}

// parseVaultURL checks a vault URL (the vault_url parameter): an https
// origin with no path.
func parseVaultURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
		return "", fmt.Errorf("%w: vault_url %q is not a vault URL like https://<vault>.vault.azure.net", shared.ErrInvalidArgument, s)
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
		return "", fmt.Errorf("%w: key id %s pins version %s but the request asks for %s", shared.ErrInvalidArgument, k, k.version, version)
	}
	if !keyVersionRE.MatchString(version) {
		return "", fmt.Errorf("%w: %q is not a Key Vault key version", shared.ErrInvalidArgument, version)
	}
	return version, nil
}

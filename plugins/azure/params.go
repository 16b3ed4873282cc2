package azure

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/knhk/knhk/shared"
)

// The parameters a key reference may carry.
const (
	ParamCAFile   = "ca_file"   // PEM file of extra CAs to trust for the vault (private endpoints, tests)
	ParamTenantID = "tenant_id" // Entra tenant to authenticate in
	ParamClientID = "client_id" // user-assigned managed identity or workload identity app
	ParamHSM      = "hsm"       // "true": CreateKey makes HSM-backed keys (RSA-HSM, EC-HSM)
	ParamVaultURL = "vault_url" // vault to list (ListKeys); elsewhere must match the key id
)

var knownParams = []string{ParamCAFile, ParamClientID, ParamHSM, ParamTenantID, ParamVaultURL}

// params is a checked parameter set.
type params struct {
	caFile, tenantID, clientID, vaultURL string
	hsm                                  bool
}

// parseParams checks parameters; an unknown one is an error so that a typo
// does not silently change which vault or identity is used.
func parseParams(m map[string]string) (params, error) {
	var p params
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		switch k {
		case ParamCAFile:
			p.caFile = v
		case ParamTenantID:
			p.tenantID = v
		case ParamClientID:
			p.clientID = v
		case ParamHSM:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return params{}, fmt.Errorf("%w: parameter hsm=%q is not true or false", shared.ErrInvalidArgument, v)
			}
			p.hsm = b
		case ParamVaultURL:
			u, err := parseVaultURL(v)
			if err != nil {
				return params{}, err
			}
			p.vaultURL = u
		default:
			return params{}, fmt.Errorf("%w: unknown parameter %q (the azure provider takes %v)", shared.ErrInvalidArgument, k, knownParams)
		}
	}
	return p, nil
}

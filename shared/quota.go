package shared

import (
	"fmt"
	"slices"
)

// Operation names a host operation, as quota classes (and telemetry's
// knhk.operation) name it.
type Operation string

// The operations a quota class may count.
const (
	OpSign      Operation = "sign"
	OpVerify    Operation = "verify" // provider-side Verify
	OpPublicKey Operation = "public_key"
	OpMetadata  Operation = "metadata"
	OpRotate    Operation = "rotate"
	OpCreateKey Operation = "create_key"
	OpListKeys  Operation = "list_keys"
)

// ScopeKeyOrigin, in a QuotaClass's Scope, is the scheme and host of the
// key id when the id is a URL (https://myvault.vault.azure.net/keys/k:
// "https://myvault.vault.azure.net"), else empty.
const ScopeKeyOrigin = "@key_origin"

// Operations lists every operation, in a stable order.
var Operations = []Operation{OpSign, OpVerify, OpPublicKey, OpMetadata, OpRotate, OpCreateKey, OpListKeys}

// QuotaClass is one of a key service's request quotas, which a provider
// declares in its Description so the host can keep its callers under it:
// every request the class matches takes tokens from a token bucket before
// it leaves the host, one bucket per provider, class and scope (the
// values of the Scope parameters in the request's key reference: one
// bucket per region, say). The first class of the list that matches a
// request counts it; a request no class matches is not throttled.
//
// Declare the service's documented default quota and say where it is
// documented (Source); users override the rate for their account (quota
// increases) in the host's configuration.
type QuotaClass struct {
	// Name identifies the class within its provider ("sign-rsa"):
	// the host's configuration overrides a class by its name.
	Name string
	// Operations the class counts; empty: every operation.
	Operations []Operation
	// KeyTypes the class counts; empty: every key type, and requests
	// whose key type the host does not know (listing keys, a public
	// key not yet fetched).
	KeyTypes []KeyType
	// Scope names the key-reference parameters whose values make
	// separate buckets ("region", "vault"): the service's quota is per
	// region or per vault. A parameter a reference leaves out is the
	// empty value (the plugin's default region, say). ScopeKeyOrigin
	// stands for the origin of a key id that is a URL (Azure's key ids
	// name their vault). Empty: one bucket for the whole provider.
	Scope []string
	// Rate is the quota in requests per second (a quota per 10 seconds
	// divided by 10). Zero or negative: unlimited (the class only keeps
	// its requests out of later classes).
	Rate float64
	// Burst is how many requests may leave at once after an idle spell.
	// Zero: a tenth of a second's worth (at least 1). A burst larger
	// than the service allows in its own window gets throttled.
	Burst int
	// Weights are the tokens a request of a key type takes, for services
	// whose quota is a weighted sum (Azure Key Vault counts an RSA-4096
	// operation as 8 RSA-2048 ones). Missing types take 1.
	Weights map[KeyType]int
	// Source says where the number comes from: the service's
	// documentation page, for people reading the host's configuration.
	Source string
}

// Counts reports whether the class counts operation op on a key of type
// kt ("" when the host does not know it).
func (c QuotaClass) Counts(op Operation, kt KeyType) bool {
	if len(c.Operations) > 0 && !slices.Contains(c.Operations, op) {
		return false
	}
	return len(c.KeyTypes) == 0 || slices.Contains(c.KeyTypes, kt)
}

// Weight is the tokens a request on a key of type kt takes: at least 1.
func (c QuotaClass) Weight(kt KeyType) int {
	if w := c.Weights[kt]; w > 1 {
		return w
	}
	return 1
}

// Check reports what is wrong with a class: no name, an unknown
// operation or key type, a negative burst or weight.
func (c QuotaClass) Check() error {
	if c.Name == "" {
		return fmt.Errorf("%w: a quota class needs a name", ErrInvalidArgument)
	}
	for _, op := range c.Operations {
		if !slices.Contains(Operations, op) {
			return fmt.Errorf("%w: quota class %q: unknown operation %q (want one of %v)", ErrInvalidArgument, c.Name, op, Operations)
		}
	}
	for _, kt := range c.KeyTypes {
		if _, err := ParseKeyType(string(kt)); err != nil {
			return fmt.Errorf("quota class %q: %w", c.Name, err)
		}
	}
	if c.Burst < 0 {
		return fmt.Errorf("%w: quota class %q: negative burst %d", ErrInvalidArgument, c.Name, c.Burst)
	}
	for kt, w := range c.Weights {
		if _, err := ParseKeyType(string(kt)); err != nil {
			return fmt.Errorf("quota class %q: weights: %w", c.Name, err)
		}
		if w < 0 {
			return fmt.Errorf("%w: quota class %q: negative weight %d for %s", ErrInvalidArgument, c.Name, w, kt)
		}
	}
	return nil
}

// Package azure is the knhk provider for Azure Key Vault and Managed HSM.
//
// # Key ids
//
// A key is named by its Key Vault identifier,
// https://<vault>.vault.azure.net/keys/<name>[/<version>]; Managed HSM
// (https://<hsm>.managedhsm.azure.net/...), sovereign clouds, private
// endpoints and test servers alike: any https origin followed by
// /keys/<name>. Without a version the current one is used; with one, that
// version is pinned.
//
// # Parameters
//
//	name       meaning
//	ca_file    PEM file of extra CAs to trust for the vault (private endpoints, tests)
//	tenant_id  Entra ID tenant to authenticate in
//	client_id  identity to authenticate as: user-assigned managed identity,
//	           workload identity app or (with AZURE_CLIENT_SECRET) service principal
//	hsm        true: CreateKey makes HSM-backed keys (RSA-HSM, EC-HSM)
//	vault_url  the vault ListKeys lists; elsewhere it must match the key id
//
// Any other parameter is an error. One provider serves any number of
// vaults; it keeps one azkeys client per vault URL, ca_file, tenant_id and
// client_id.
//
// # Credentials
//
// Credentials come from azidentity.DefaultAzureCredential (or, with
// client_id, a chain of client secret, workload identity and managed
// identity for that id) unless the AZURE_AUTH_TOKEN environment variable
// holds a bearer token, which is then used as is and never refreshed.
// Tokens appear in no log line and no error: the Azure SDK's request log
// (forwarded at trace level) has its Authorization header redacted and
// never includes bodies, and every message is scrubbed of the tokens the
// provider used.
//
// # Capabilities
//
// Key Vault signs digests (the SDK hashes messages first); ECDSA
// signatures come back as r||s and leave the provider as ASN.1 DER. Key
// Vault has no Ed25519, so the provider offers the six RSA and EC key types
// and their nine algorithms, creates, lists and natively rotates keys, and
// verifies in the vault. Public keys are read from the vault's JWK, EC
// coordinates as integers of any length (Key Vault returns imported keys
// as they were imported). Errors wrap the sentinels of the knhk shared
// package; README.md has the mapping.
//
// It keeps key version states (shared.VersionStater) as tags on each key
// version; states.go and README.md describe the tags and the reading rule.
//
// The binary is cmd/knhk-plugin-azure; internal/kvtest is the Key Vault
// server the tests run against.
package azure

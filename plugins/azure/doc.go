// Package azure is the knhk provider for Azure Key Vault and Managed HSM.
//
// A key is named by its Key Vault identifier,
// https://<vault>.vault.azure.net/keys/<name>[/<version>] (Managed HSM and
// sovereign clouds alike), plus parameters: ca_file (an extra CA to trust,
// for private endpoints and tests), tenant_id and client_id (which identity
// to authenticate as), hsm (create HSM-backed keys) and vault_url (the vault
// ListKeys lists). One provider serves any number of vaults; it keeps one
// azkeys client per vault URL and credential parameters.
//
// Credentials come from azidentity.DefaultAzureCredential unless the
// AZURE_AUTH_TOKEN environment variable holds a bearer token, which is then
// used as is and never refreshed. Tokens never appear in logs or errors.
//
// Key Vault signs digests; ECDSA signatures come back as r||s and leave the
// provider as ASN.1 DER. Key Vault has no Ed25519, so the provider offers
// the six RSA and EC key types and their nine algorithms. Errors wrap the
// sentinels of the knhk shared package; see README.md for the mapping.
//
// The binary is cmd/knhk-plugin-azure; internal/kvtest is the Key Vault
// server the tests run against.
package azure

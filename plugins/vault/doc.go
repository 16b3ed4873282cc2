// Package vault is the knhk provider for HashiCorp Vault's Transit secrets
// engine. Keys live in Vault and never leave it: the provider creates them
// non-exportable, signs and verifies through Transit, rotates them natively
// and turns Transit's PEM and base64 public keys into DER
// SubjectPublicKeyInfo.
//
// A key id is MOUNT/NAME ("transit/release"); a bare NAME means the mount
// "transit". Parameters on each request say which Vault to use and how to
// log in (see README.md), so one plugin process serves many Vault addresses,
// namespaces and identities. Tokens never appear in logs or errors.
package vault

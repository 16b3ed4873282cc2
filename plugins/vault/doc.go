// Package vault is the knhk provider for HashiCorp Vault's Transit secrets
// engine. Keys live in Vault and never leave it: the provider creates them
// non-exportable, signs and verifies through Transit, rotates them natively
// and turns Transit's PEM and base64 public keys into DER
// SubjectPublicKeyInfo.
//
// # Key ids
//
// A key id is MOUNT/NAME ("transit/release"); a bare NAME means the mount
// "transit". Mounts may nest ("team-a/transit/release"); key names cannot
// contain a slash. Versions are Transit's key versions as decimal strings
// ("1", "2"; "v2" and "vault:v2" are accepted too); empty means the latest.
//
// # Parameters
//
// Parameters on each request say which Vault to use and how to log in, so
// one plugin process serves many Vault addresses, namespaces and
// identities. An unknown parameter, or one that does not apply to the
// chosen auth, is ErrInvalidArgument.
//
//	parameter       meaning                                        default
//	addr            Vault address (http or https, no user info)    VAULT_ADDR; required
//	namespace       Vault Enterprise namespace                     VAULT_NAMESPACE
//	ca_file         PEM CA bundle for Vault's TLS certificate      VAULT_CACERT
//	auth            token, approle or kubernetes                   token
//	token_file      auth=token: file holding the token             VAULT_TOKEN, then ~/.vault-token
//	role_id         auth=approle: the role id                      VAULT_ROLE_ID
//	role_id_file    auth=approle: file holding the role id
//	secret_id_file  auth=approle: file holding the secret id       VAULT_SECRET_ID
//	role            auth=kubernetes: the Vault role (required)
//	jwt_file        auth=kubernetes: service-account token file    /var/run/secrets/kubernetes.io/serviceaccount/token
//	auth_mount      approle/kubernetes: the auth method's mount    approle / kubernetes
//	mount           ListKeys: the Transit mount to list            transit
//	version_states  KV v2 path holding key version states          VAULT_KNHK_VERSION_STATES; unset: no states
//
// # Credentials
//
// Secrets are never parameters, only the files or variables that hold
// them. The provider keeps one client per address, namespace, CA file and
// identity, logged in on first use. Renewable tokens are renewed; a token
// that can no longer be renewed, or that Vault reports dead, is replaced by
// a new login (AppRole, Kubernetes) or by reading the token again (token
// auth). Tokens and passwords never appear in logs or errors. Other VAULT_*
// client settings (retries, timeouts) are read from the plugin's
// environment as the Vault client does.
//
// # Capabilities
//
// Every knhk key type and algorithm; CreateKey, ListKeys, RotateKey,
// provider-side Verify, whole-message signing for every algorithm (Transit
// hashes) and a native SignBatch (one Transit batch_input call per group of
// items sharing key, parameters, algorithm, version and kind of input).
//
// # Version states
//
// The provider claims version_states (shared.VersionStater). Transit keeps
// nothing per version that could say "pending", so a key's states live in
// one KV version 2 secret, VERSION_STATES/MOUNT/NAME, a JSON document that
// every change writes whole with check-and-set: concurrent hosts cannot
// lose a change, and the document always names exactly one active
// version. A Transit version the document does not name reads as pending.
// Without version_states, keys have no states and a pending rotation or a
// state change is ErrFailedPrecondition saying what to set.
package vault

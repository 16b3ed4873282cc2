// Package kvtest is a small Azure Key Vault server for the azure plugin's
// tests. No Key Vault emulator can be installed here, so this follows the
// REST API as Microsoft documents it, closely enough for the real azkeys
// client to drive it:
//
//   - HTTPS only (httptest.NewTLSServer on 127.0.0.1); the certificate is
//     written to CAFile, which the plugin trusts through its ca_file
//     parameter.
//   - Every request must carry the api-version query parameter.
//   - A request without a valid bearer token gets 401 with the challenge
//     WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/<tenant>", resource="https://vault.azure.net".
//     The SDK sends its first request without token or body, reads the
//     challenge, fetches a token and sends the request again with its body.
//   - Keys and versions are real RSA and EC keys held in memory:
//     POST /keys/{name}/create, POST /keys/{name}/rotate,
//     GET /keys/{name}[/{version}], PATCH /keys/{name}/{version},
//     GET /keys/{name}/versions, GET /keys (both paged with nextLink),
//     POST /keys/{name}/{version}/sign and /verify (without a version, or
//     with an empty one, the current version signs).
//   - Tags are per version, as in Key Vault: create sets the new version's,
//     PATCH /keys/{name}/{version} replaces that version's (when the body
//     has "tags"), get and the versions list return each version's own and
//     the key list the current version's; the field is left out when there
//     are none. Rotation copies the current version's tags (and key
//     operations) to the new version. At most 15 tags, names and values up
//     to 256 characters (400 BadParameter otherwise).
//   - Binary fields are unpadded base64url, times are Unix seconds, a kid is
//     https://{vault}/keys/{name}/{version}, versions are 32 hex digits.
//   - Signatures are made like Key Vault's: over the digest sent, ECDSA as
//     r||s (each padded to the curve size), RSA-PSS with salt = hash length.
//   - Errors use Key Vault's shape {"error":{"code","message","innererror"}}:
//     KeyNotFound (404), Unauthorized (401), Forbidden (403, with innererror
//     ForbiddenByPolicy for a denied operation, KeyDisabled or KeyExpired
//     when signing with a key that cannot sign; verify still works, as in
//     Key Vault), BadParameter (400), Throttled (429).
//
// It also answers as an App Service managed identity endpoint (see
// IdentityPath), so tests can run the real DefaultAzureCredential chain.
//
// Fault switches (Deny, FailNext) produce 403, 429 and 5xx on demand;
// Reflect makes the server echo the bearer token in its answers, as a
// broken server might, for the redaction tests; PadECCoordinates returns
// EC keys with the leading zero bytes Key Vault gives some imported keys.
// Requests records what the server saw, for the challenge-flow test.
package kvtest

package vault

import "github.com/knhk/knhk/shared"

// transitTypes maps knhk key types to Transit's key type names.
var transitTypes = map[shared.KeyType]string{
	shared.RSA2048: "rsa-2048",
	shared.RSA3072: "rsa-3072",
	shared.RSA4096: "rsa-4096",
	shared.ECP256:  "ecdsa-p256",
	shared.ECP384:  "ecdsa-p384",
	shared.ECP521:  "ecdsa-p521",
	shared.Ed25519: "ed25519",
}

// knhkType maps a Transit key type back; ok is false for Transit types knhk
// cannot sign with (AES, HMAC, ML-DSA...).
func knhkType(transit string) (shared.KeyType, bool) {
	for kt, t := range transitTypes {
		if t == transit {
			return kt, true
		}
	}
	return "", false
}

// hashNames maps an algorithm's hash to Transit's hash_algorithm.
var hashNames = map[shared.Algorithm]string{
	shared.RS256: "sha2-256", shared.PS256: "sha2-256", shared.ES256: "sha2-256",
	shared.RS384: "sha2-384", shared.PS384: "sha2-384", shared.ES384: "sha2-384",
	shared.RS512: "sha2-512", shared.PS512: "sha2-512", shared.ES512: "sha2-512",
}

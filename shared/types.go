package shared

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
)

// KeyType names a kind of signing key.
type KeyType string

// The key types knhk knows.
const (
	RSA2048 KeyType = "rsa-2048"
	RSA3072 KeyType = "rsa-3072"
	RSA4096 KeyType = "rsa-4096"
	ECP256  KeyType = "ec-p256"
	ECP384  KeyType = "ec-p384"
	ECP521  KeyType = "ec-p521"
	Ed25519 KeyType = "ed25519"
)

// KeyTypes lists every key type, in a stable order.
var KeyTypes = []KeyType{RSA2048, RSA3072, RSA4096, ECP256, ECP384, ECP521, Ed25519}

// Algorithm is a signature algorithm, by its JOSE name (RFC 7518, RFC 8037).
type Algorithm string

// The algorithms knhk knows.
const (
	RS256 Algorithm = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256
	RS384 Algorithm = "RS384" // RSASSA-PKCS1-v1_5 with SHA-384
	RS512 Algorithm = "RS512" // RSASSA-PKCS1-v1_5 with SHA-512
	PS256 Algorithm = "PS256" // RSASSA-PSS with SHA-256, salt = hash length
	PS384 Algorithm = "PS384" // RSASSA-PSS with SHA-384, salt = hash length
	PS512 Algorithm = "PS512" // RSASSA-PSS with SHA-512, salt = hash length
	ES256 Algorithm = "ES256" // ECDSA P-256 with SHA-256, ASN.1 DER signature
	ES384 Algorithm = "ES384" // ECDSA P-384 with SHA-384, ASN.1 DER signature
	ES512 Algorithm = "ES512" // ECDSA P-521 with SHA-512, ASN.1 DER signature
	EdDSA Algorithm = "EdDSA" // Ed25519 over the whole message
)

// Algorithms lists every algorithm, in a stable order.
var Algorithms = []Algorithm{RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA}

// Capability names an optional operation a provider supports.
type Capability string

// The capabilities a provider may claim in its Description.
const (
	CapCreateKey   Capability = "create_key"
	CapListKeys    Capability = "list_keys"
	CapRotateKey   Capability = "rotate_key"
	CapVerify      Capability = "verify"       // provider-side Verify
	CapSignMessage Capability = "sign_message" // whole-message signing besides EdDSA
	CapSignBatch   Capability = "sign_batch"   // a native SignBatch
	// CapReplicateKey: CreateKey can make a multi-region key and replicate
	// it to the regions in CreateKeyRequest.ReplicateTo.
	CapReplicateKey Capability = "replicate_key"
	// CapVersionStates: the provider keeps each key version's state
	// (pending, active, retiring, retired) with the key, serves
	// GetVersionStates and SetVersionState (it is a VersionStater) and
	// RotateKeyRequest.Pending.
	CapVersionStates Capability = "version_states"
)

// ParseKeyType checks a key type name.
func ParseKeyType(s string) (KeyType, error) {
	for _, kt := range KeyTypes {
		if string(kt) == s {
			return kt, nil
		}
	}
	return "", fmt.Errorf("%w: unknown key type %q (want one of %v)", ErrInvalidArgument, s, KeyTypes)
}

// ParseAlgorithm checks an algorithm name.
func ParseAlgorithm(s string) (Algorithm, error) {
	for _, a := range Algorithms {
		if string(a) == s {
			return a, nil
		}
	}
	return "", fmt.Errorf("%w: unknown algorithm %q (want one of %v)", ErrUnsupportedAlgorithm, s, Algorithms)
}

// Hash is the digest an algorithm signs; zero for EdDSA, which signs the
// whole message.
func (a Algorithm) Hash() crypto.Hash {
	switch a {
	case RS256, PS256, ES256:
		return crypto.SHA256
	case RS384, PS384, ES384:
		return crypto.SHA384
	case RS512, PS512, ES512:
		return crypto.SHA512
	}
	return 0
}

// IsPSS reports whether a is an RSA-PSS algorithm.
func (a Algorithm) IsPSS() bool { return a == PS256 || a == PS384 || a == PS512 }

// Algorithms lists the algorithms a key of this type can sign with.
func (k KeyType) Algorithms() []Algorithm {
	switch k {
	case RSA2048, RSA3072, RSA4096:
		return []Algorithm{RS256, RS384, RS512, PS256, PS384, PS512}
	case ECP256:
		return []Algorithm{ES256}
	case ECP384:
		return []Algorithm{ES384}
	case ECP521:
		return []Algorithm{ES512}
	case Ed25519:
		return []Algorithm{EdDSA}
	}
	return nil
}

// DefaultAlgorithm is the key type's natural algorithm: RS256 for RSA (as
// openssl does), ES256/384/512 by curve, EdDSA for Ed25519.
func (k KeyType) DefaultAlgorithm() Algorithm {
	if algs := k.Algorithms(); len(algs) > 0 {
		return algs[0]
	}
	return ""
}

// Supports reports whether a key of this type can sign with a.
func (k KeyType) Supports(a Algorithm) bool {
	for _, x := range k.Algorithms() {
		if x == a {
			return true
		}
	}
	return false
}

// CheckAlgorithm returns ErrUnsupportedAlgorithm when a key of type k cannot
// sign with a.
func CheckAlgorithm(k KeyType, a Algorithm) error {
	if !k.Supports(a) {
		return fmt.Errorf("%w: a %s key cannot sign with %q (it can with %v)", ErrUnsupportedAlgorithm, k, a, k.Algorithms())
	}
	return nil
}

// KeyTypeOf names the key type of a public key.
func KeyTypeOf(pub crypto.PublicKey) (KeyType, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		switch p.N.BitLen() {
		case 2048:
			return RSA2048, nil
		case 3072:
			return RSA3072, nil
		case 4096:
			return RSA4096, nil
		}
		return "", fmt.Errorf("%w: RSA key of %d bits is not a knhk key type", ErrInvalidArgument, p.N.BitLen())
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256():
			return ECP256, nil
		case elliptic.P384():
			return ECP384, nil
		case elliptic.P521():
			return ECP521, nil
		}
		return "", fmt.Errorf("%w: ECDSA curve %s is not a knhk key type", ErrInvalidArgument, p.Curve.Params().Name)
	case ed25519.PublicKey:
		return Ed25519, nil
	}
	return "", fmt.Errorf("%w: public key of type %T is not a knhk key type", ErrInvalidArgument, pub)
}

// AlgorithmsFor lists the algorithms keys of the given types can sign
// with, in the order of Algorithms, each once: what a provider's Describe
// claims for the key types it supports.
func AlgorithmsFor(keyTypes ...KeyType) []Algorithm {
	var out []Algorithm
	for _, a := range Algorithms {
		for _, kt := range keyTypes {
			if kt.Supports(a) {
				out = append(out, a)
				break
			}
		}
	}
	return out
}

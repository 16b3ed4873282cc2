package aws

import (
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/knhk/knhk/shared"
)

// keySpecs maps knhk key types to KMS key specs. AWS KMS has Ed25519
// (ECC_NIST_EDWARDS25519) but the emulator the plugin is tested against has
// not, so the plugin does not offer it.
var keySpecs = map[shared.KeyType]types.KeySpec{
	shared.RSA2048: types.KeySpecRsa2048,
	shared.RSA3072: types.KeySpecRsa3072,
	shared.RSA4096: types.KeySpecRsa4096,
	shared.ECP256:  types.KeySpecEccNistP256,
	shared.ECP384:  types.KeySpecEccNistP384,
	shared.ECP521:  types.KeySpecEccNistP521,
}

// signingAlgorithms maps knhk algorithms to KMS signing algorithms.
var signingAlgorithms = map[shared.Algorithm]types.SigningAlgorithmSpec{
	shared.RS256: types.SigningAlgorithmSpecRsassaPkcs1V15Sha256,
	shared.RS384: types.SigningAlgorithmSpecRsassaPkcs1V15Sha384,
	shared.RS512: types.SigningAlgorithmSpecRsassaPkcs1V15Sha512,
	shared.PS256: types.SigningAlgorithmSpecRsassaPssSha256,
	shared.PS384: types.SigningAlgorithmSpecRsassaPssSha384,
	shared.PS512: types.SigningAlgorithmSpecRsassaPssSha512,
	shared.ES256: types.SigningAlgorithmSpecEcdsaSha256,
	shared.ES384: types.SigningAlgorithmSpecEcdsaSha384,
	shared.ES512: types.SigningAlgorithmSpecEcdsaSha512,
}

// keyTypeOf names the knhk key type of a KMS key spec.
func keyTypeOf(spec types.KeySpec) (shared.KeyType, error) {
	for kt, s := range keySpecs {
		if s == spec {
			return kt, nil
		}
	}
	return "", fmt.Errorf("%w: KMS key spec %q is not one knhk signs with (want one of RSA_2048/3072/4096, ECC_NIST_P256/P384/P521)", shared.ErrUnsupportedAlgorithm, spec)
}

// kmsAlgorithm names the KMS signing algorithm for a knhk algorithm.
func kmsAlgorithm(alg shared.Algorithm) (types.SigningAlgorithmSpec, error) {
	s, ok := signingAlgorithms[alg]
	if !ok {
		return "", fmt.Errorf("%w: AWS KMS does not sign with %s here", shared.ErrUnsupportedAlgorithm, alg)
	}
	return s, nil
}

// knhkAlgorithms lists the knhk names of a key's KMS signing algorithms,
// in knhk's order, skipping any knhk has no name for.
func knhkAlgorithms(specs []types.SigningAlgorithmSpec) []shared.Algorithm {
	var out []shared.Algorithm
	for _, alg := range shared.Algorithms {
		if s, ok := signingAlgorithms[alg]; ok && slices.Contains(specs, s) {
			out = append(out, alg)
		}
	}
	return out
}

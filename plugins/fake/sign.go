package fake

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"

	"github.com/knhk/knhk/shared"
)

// input checks a request's algorithm against the key type and returns what
// to sign: the digest, or the message and its digest (nil for EdDSA). An
// in-process caller gets the same checks the SDK server makes on the wire.
func input(kt shared.KeyType, alg shared.Algorithm, digest, message []byte) (dig, msg []byte, err error) {
	if _, err := shared.ParseAlgorithm(string(alg)); err != nil {
		return nil, nil, err
	}
	if err := shared.CheckAlgorithm(kt, alg); err != nil {
		return nil, nil, err
	}
	if digest != nil {
		if message != nil {
			return nil, nil, fmt.Errorf("%w: fake: send a digest or a message, not both", shared.ErrInvalidArgument)
		}
		if err := shared.CheckDigest(alg, digest); err != nil {
			return nil, nil, err
		}
		return digest, nil, nil
	}
	if message == nil {
		message = []byte{}
	}
	if alg == shared.EdDSA {
		return nil, message, nil
	}
	dig, err = shared.Digest(alg, message)
	return dig, message, err
}

// sign makes one signature. With deterministic set, ECDSA uses RFC 6979
// nonces (RSA PKCS#1 v1.5 and Ed25519 are deterministic anyway).
func sign(k crypto.Signer, alg shared.Algorithm, digest, message []byte, deterministic bool) ([]byte, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		if alg.IsPSS() {
			return rsa.SignPSS(rand.Reader, k, alg.Hash(), digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.SignPKCS1v15(rand.Reader, k, alg.Hash(), digest)
	case *ecdsa.PrivateKey:
		if deterministic {
			return k.Sign(nil, digest, alg.Hash())
		}
		return ecdsa.SignASN1(rand.Reader, k, digest)
	case ed25519.PrivateKey:
		return ed25519.Sign(k, message), nil
	}
	return nil, fmt.Errorf("%w: fake: stored key of type %T cannot sign", shared.ErrFailedPrecondition, k)
}

// verify checks a signature with the standard library against the public
// key. A signature that does not verify is (false, nil).
func verify(pub crypto.PublicKey, alg shared.Algorithm, digest, message, sig []byte) (bool, error) {
	var err error
	if alg == shared.EdDSA {
		err = shared.VerifyMessage(pub, alg, message, sig)
	} else {
		err = shared.VerifyDigest(pub, alg, digest, sig)
	}
	if errors.Is(err, shared.ErrBadSignature) {
		return false, nil
	}
	return err == nil, err
}

// corrupt flips one bit of a signature, in place.
func corrupt(sig []byte) []byte {
	if len(sig) > 0 {
		sig[len(sig)/2] ^= 0x01
	}
	return sig
}

package shared

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
)

// ErrBadSignature says a signature does not verify against the public key.
var ErrBadSignature = errors.New("signature does not verify")

// ParsePublicKey parses a DER SubjectPublicKeyInfo and names its key type.
func ParsePublicKey(der []byte) (crypto.PublicKey, KeyType, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, "", fmt.Errorf("%w: public key is not DER SubjectPublicKeyInfo: %v", ErrInvalidArgument, err)
	}
	kt, err := KeyTypeOf(pub)
	if err != nil {
		return nil, "", err
	}
	return pub, kt, nil
}

// Digest hashes message with the algorithm's hash. EdDSA has none.
func Digest(alg Algorithm, message []byte) ([]byte, error) {
	h := alg.Hash()
	if h == 0 {
		return nil, fmt.Errorf("%w: %s signs whole messages, not digests", ErrInvalidArgument, alg)
	}
	hh := h.New()
	hh.Write(message)
	return hh.Sum(nil), nil
}

// CheckDigest returns ErrInvalidArgument unless digest has the length of
// the algorithm's hash (and ErrInvalidArgument for EdDSA, which signs
// messages).
func CheckDigest(alg Algorithm, digest []byte) error {
	h := alg.Hash()
	if h == 0 {
		return fmt.Errorf("%w: %s signs whole messages; send the message, not a digest", ErrInvalidArgument, alg)
	}
	if len(digest) != h.Size() {
		return fmt.Errorf("%w: %s needs a %d-byte %s digest, got %d bytes", ErrInvalidArgument, alg, h.Size(), h, len(digest))
	}
	return nil
}

// VerifyDigest checks sig over an already-hashed digest with the standard
// library. RSA-PSS accepts any salt length, since some KMS use the maximum.
func VerifyDigest(pub crypto.PublicKey, alg Algorithm, digest, sig []byte) error {
	if err := CheckDigest(alg, digest); err != nil {
		return err
	}
	kt, err := KeyTypeOf(pub)
	if err != nil {
		return err
	}
	if err := CheckAlgorithm(kt, alg); err != nil {
		return err
	}
	ok := false
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if alg.IsPSS() {
			ok = rsa.VerifyPSS(p, alg.Hash(), digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
		} else {
			ok = rsa.VerifyPKCS1v15(p, alg.Hash(), digest, sig) == nil
		}
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(p, digest, sig)
	}
	if !ok {
		return fmt.Errorf("%w (%s)", ErrBadSignature, alg)
	}
	return nil
}

// VerifyMessage checks sig over a whole message: Ed25519 directly, the
// others over the message's digest.
func VerifyMessage(pub crypto.PublicKey, alg Algorithm, message, sig []byte) error {
	if alg == EdDSA {
		p, ok := pub.(ed25519.PublicKey)
		if !ok {
			return fmt.Errorf("%w: EdDSA needs an Ed25519 key, not %T", ErrUnsupportedAlgorithm, pub)
		}
		if !ed25519.Verify(p, message, sig) {
			return fmt.Errorf("%w (%s)", ErrBadSignature, alg)
		}
		return nil
	}
	if _, err := ParseAlgorithm(string(alg)); err != nil {
		return err
	}
	digest, err := Digest(alg, message)
	if err != nil {
		return err
	}
	return VerifyDigest(pub, alg, digest, sig)
}

package host

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"io"

	"github.com/knhk/knhk/shared"
)

// Signer is a crypto.Signer and crypto.MessageSigner whose private key
// lives in a provider plugin. It signs with the key version whose public
// key Public returns (fixed when the Signer is made), so a certificate and
// its signatures stay consistent across a rotation; make a new Signer to
// follow one. Every call uses the context the Signer was made with.
type Signer struct {
	key *Key
	ctx context.Context
	pk  PublicKey
}

var (
	_ crypto.Signer        = (*Signer)(nil)
	_ crypto.MessageSigner = (*Signer)(nil)
)

// Public returns the public key; it never fails or calls the plugin.
func (s *Signer) Public() crypto.PublicKey { return s.pk.Key }

// Version is the key version the Signer signs with ("" when the provider
// has no versions).
func (s *Signer) Version() string { return s.pk.Version }

// KeyType is the key's type.
func (s *Signer) KeyType() shared.KeyType { return s.pk.Type }

// Sign signs digest, as crypto.Signer says: opts.HashFunc() names the hash
// that made digest (its length is checked), *rsa.PSSOptions selects PSS
// (salt length = hash length; rsa.PSSSaltLengthAuto and
// PSSSaltLengthEqualsHash are accepted), and for Ed25519 digest is the
// whole message with crypto.Hash(0). ECDSA keys sign with their curve's
// hash only (P-256 SHA-256, P-384 SHA-384, P-521 SHA-512). rand is
// ignored: the provider makes its own randomness.
func (s *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	alg, err := SignerAlgorithm(s.pk.Type, opts)
	if err != nil {
		return nil, s.key.refused(s.ctx, "", digest, nil, err)
	}
	if alg == shared.EdDSA {
		return s.signMessage(alg, digest)
	}
	if err := shared.CheckDigest(alg, digest); err != nil {
		return nil, s.key.refused(s.ctx, alg, digest, nil, err)
	}
	sig, err := s.key.sign(s.ctx, shared.SignRequest{Algorithm: alg, Version: s.pk.Version, Digest: digest})
	return s.result(sig, err, digest, nil)
}

// SignMessage signs a whole message (crypto.MessageSigner): Ed25519
// directly; other keys hash it with opts.HashFunc() here, or send it
// whole to providers that sign messages themselves. rand is ignored.
func (s *Signer) SignMessage(_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	alg, err := SignerAlgorithm(s.pk.Type, opts)
	if err != nil {
		return nil, s.key.refused(s.ctx, "", nil, msg, err)
	}
	return s.signMessage(alg, msg)
}

func (s *Signer) signMessage(alg shared.Algorithm, msg []byte) ([]byte, error) {
	if msg == nil {
		msg = []byte{}
	}
	sig, err := s.key.signMessage(s.ctx, alg, s.pk.Version, msg)
	return s.result(sig, err, nil, msg)
}

// result checks, for a provider without key versions, that the signature
// matches Public: the key behind the reference may have changed since the
// Signer was made. Versioned keys are pinned, and verify-after-sign has
// checked the version asked for.
func (s *Signer) result(sig Signature, err error, digest, message []byte) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	if s.pk.Version == "" && !s.key.h.cfg.DisableVerifyAfterSign {
		if err := checkSignature(s.pk, sig.Algorithm, digest, message, sig.Signature); err != nil {
			return nil, fmt.Errorf("%w: the key behind %s:%s no longer matches this Signer's public key; make a new Signer: %w",
				ErrVerifyAfterSign, s.key.ref.Provider, s.key.ref.KeyID, shared.ErrBadSignature)
		}
	}
	return sig.Signature, nil
}

// SignerAlgorithm is the algorithm a crypto.Signer for a key of type kt
// signs with, given the options of its Sign call: the hash picks the
// algorithm's size, *rsa.PSSOptions picks RSA-PSS (salt length = hash
// length), crypto.Hash(0) is pure Ed25519. Signer uses it, and so does
// package client's, so both read options the same way.
func SignerAlgorithm(kt shared.KeyType, opts crypto.SignerOpts) (shared.Algorithm, error) {
	var hash crypto.Hash
	if opts != nil {
		hash = opts.HashFunc()
	}
	switch kt {
	case shared.Ed25519:
		if eo, ok := opts.(*ed25519.Options); ok && (eo.Context != "" || eo.Hash != 0) {
			return "", fmt.Errorf("%w: only pure Ed25519 is supported, not Ed25519ph or Ed25519ctx", shared.ErrUnsupportedAlgorithm)
		}
		if hash != 0 {
			return "", fmt.Errorf("%w: Ed25519 signs the message itself; pass crypto.Hash(0), not %s", shared.ErrUnsupportedAlgorithm, hash)
		}
		return shared.EdDSA, nil
	case shared.RSA2048, shared.RSA3072, shared.RSA4096:
		pss, isPSS := opts.(*rsa.PSSOptions)
		var alg shared.Algorithm
		switch hash {
		case crypto.SHA256:
			alg = pick(isPSS, shared.PS256, shared.RS256)
		case crypto.SHA384:
			alg = pick(isPSS, shared.PS384, shared.RS384)
		case crypto.SHA512:
			alg = pick(isPSS, shared.PS512, shared.RS512)
		default:
			return "", fmt.Errorf("%w: RSA keys sign SHA-256, SHA-384 or SHA-512 digests, not %s", shared.ErrUnsupportedAlgorithm, hashName(hash))
		}
		if isPSS && pss.SaltLength != rsa.PSSSaltLengthEqualsHash && pss.SaltLength != rsa.PSSSaltLengthAuto && pss.SaltLength != hash.Size() {
			return "", fmt.Errorf("%w: RSA-PSS salt length %d; providers use the hash length (%d)", shared.ErrUnsupportedAlgorithm, pss.SaltLength, hash.Size())
		}
		return alg, nil
	}
	alg := kt.DefaultAlgorithm()
	if alg == "" {
		return "", fmt.Errorf("%w: unknown key type %q", shared.ErrUnsupportedAlgorithm, kt)
	}
	if hash != alg.Hash() {
		return "", fmt.Errorf("%w: an %s key signs %s digests (%s), not %s", shared.ErrUnsupportedAlgorithm, kt, alg.Hash(), alg, hashName(hash))
	}
	return alg, nil
}

func pick(cond bool, a, b shared.Algorithm) shared.Algorithm {
	if cond {
		return a
	}
	return b
}

func hashName(h crypto.Hash) string {
	if h == 0 {
		return "no hash"
	}
	return h.String()
}

package client

import (
	"context"
	"crypto"
	"fmt"
	"io"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// Signer is a crypto.Signer and crypto.MessageSigner whose private key
// the daemon holds, as host.Signer is for a host. It signs with the key
// version whose public key Public returns (fixed when the Signer is
// made), so a certificate and its signatures stay consistent across a
// rotation; make a new Signer to follow one. Every call uses the context
// the Signer was made with.
type Signer struct {
	key *Key
	ctx context.Context
	pk  host.PublicKey
}

var (
	_ crypto.Signer        = (*Signer)(nil)
	_ crypto.MessageSigner = (*Signer)(nil)
)

// Public returns the public key; it never fails or calls the daemon.
func (s *Signer) Public() crypto.PublicKey { return s.pk.Key }

// Version is the key version the Signer signs with ("" when the provider
// has no versions).
func (s *Signer) Version() string { return s.pk.Version }

// KeyType is the key's type.
func (s *Signer) KeyType() shared.KeyType { return s.pk.Type }

// Sign signs digest, as crypto.Signer says and host.Signer does:
// opts.HashFunc() names the hash that made digest (its length is
// checked), *rsa.PSSOptions selects PSS (salt length = hash length;
// rsa.PSSSaltLengthAuto and PSSSaltLengthEqualsHash are accepted), and for
// Ed25519 digest is the whole message with crypto.Hash(0). ECDSA keys sign
// with their curve's hash only. rand is ignored: the provider makes its
// own randomness.
func (s *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	alg, err := host.SignerAlgorithm(s.pk.Type, opts)
	if err != nil {
		return nil, err
	}
	if alg == shared.EdDSA {
		return s.signMessage(alg, digest)
	}
	if err := shared.CheckDigest(alg, digest); err != nil {
		return nil, err
	}
	sig, err := s.key.SignDigest(s.ctx, digest, host.SignOptions{Algorithm: alg, Version: s.pk.Version})
	return s.result(sig, err, alg, digest, nil)
}

// SignMessage signs a whole message (crypto.MessageSigner) with the
// algorithm Sign would use for opts. rand is ignored.
func (s *Signer) SignMessage(_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	alg, err := host.SignerAlgorithm(s.pk.Type, opts)
	if err != nil {
		return nil, err
	}
	return s.signMessage(alg, msg)
}

func (s *Signer) signMessage(alg shared.Algorithm, msg []byte) ([]byte, error) {
	sig, err := s.key.SignMessage(s.ctx, msg, host.SignOptions{Algorithm: alg, Version: s.pk.Version})
	return s.result(sig, err, alg, nil, msg)
}

// result checks, for a provider without key versions, that the signature
// matches Public: the key behind the name may have changed since the
// Signer was made. Versioned keys are pinned, and the daemon has verified
// the version asked for.
func (s *Signer) result(sig host.Signature, err error, alg shared.Algorithm, digest, message []byte) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	if s.pk.Version == "" {
		var verr error
		if digest != nil {
			verr = shared.VerifyDigest(s.pk.Key, alg, digest, sig.Signature)
		} else {
			verr = shared.VerifyMessage(s.pk.Key, alg, message, sig.Signature)
		}
		if verr != nil {
			return nil, fmt.Errorf("%w: the key behind %s no longer matches this Signer's public key; make a new Signer: %w",
				host.ErrVerifyAfterSign, shared.Quote(s.key.name), shared.ErrBadSignature)
		}
	}
	return sig.Signature, nil
}

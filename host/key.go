package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/knhk/knhk/shared"
)

// Key is a handle on one key, from Host.Key or Host.CreateKey. It is safe
// for concurrent use and cheap: it holds no process or connection. A key
// group's Key (see KeyGroup) signs, verifies and answers for the group: its
// public key is the group's, and every call goes to a usable replica.
type Key struct {
	h   *Host
	m   *managed // a group's: its first replica's
	ref Ref      // a group's: its first replica's
	g   *group   // nil: a single key
}

// SignOptions choose the algorithm and key version of a signature.
type SignOptions struct {
	// Algorithm: zero means the key type's default (RS256 for RSA,
	// ES256/384/512 by curve, EdDSA for Ed25519).
	Algorithm shared.Algorithm
	// Version: empty means the current version.
	Version string
}

// Signature is a signature and what made it.
type Signature struct {
	Signature []byte // ECDSA as ASN.1 DER, RSA and Ed25519 raw
	Algorithm shared.Algorithm
	Version   string // the key version that signed
}

// Ref is the key's parsed reference; a key group's is its first
// replica's (see Group).
func (k *Key) Ref() Ref { return k.ref }

// Group is the name of the key group the Key stands for, "" for a single
// key.
func (k *Key) Group() string {
	if k.g == nil {
		return ""
	}
	return k.g.name
}

// PublicKey returns a version's public key (empty version: current),
// cached for Config.PublicKeyTTL. A key group's current public key is the
// one its replicas were found to share.
func (k *Key) PublicKey(ctx context.Context, version string) (PublicKey, error) {
	if k.g != nil {
		pk, err := k.g.publicKey(ctx, version, false)
		pk.DER = bytes.Clone(pk.DER)
		return pk, err
	}
	version, err := k.publicVersion(ctx, version)
	if err != nil { // still an operation, traced and recorded
		ctx, run := k.m.begin(ctx, opPublicKey, k.ref)
		return PublicKey{}, run.end(ctx, err)
	}
	return k.h.publicKey(ctx, k.m, k.ref, version, false)
}

// algorithm resolves the options against the key version's type; refresh
// refetches the public key instead of using the cache.
func (k *Key) algorithm(ctx context.Context, opts SignOptions, refresh bool) (shared.Algorithm, PublicKey, error) {
	var pk PublicKey
	var err error
	if k.g != nil {
		pk, err = k.g.publicKey(ctx, opts.Version, refresh)
	} else {
		pk, err = k.h.sharedPublicKey(ctx, k.m, k.ref, opts.Version, refresh)
	}
	if err != nil {
		return "", PublicKey{}, err
	}
	if opts.Algorithm == "" {
		return pk.Type.DefaultAlgorithm(), pk, nil
	}
	alg, err := shared.ParseAlgorithm(string(opts.Algorithm))
	if err != nil {
		return "", PublicKey{}, err
	}
	if err := shared.CheckAlgorithm(pk.Type, alg); err != nil {
		return "", PublicKey{}, err
	}
	return alg, pk, nil
}

// SignDigest signs a digest made with the algorithm's hash (so not with
// EdDSA, which signs messages: use SignMessage). The signature has been
// verified against the public key unless Config.DisableVerifyAfterSign.
func (k *Key) SignDigest(ctx context.Context, digest []byte, opts SignOptions) (Signature, error) {
	alg, _, err := k.algorithm(ctx, opts, false)
	if err == nil {
		err = shared.CheckDigest(alg, digest)
	}
	if err != nil {
		return Signature{}, k.refused(ctx, alg, digest, nil, err)
	}
	return k.sign(ctx, shared.SignRequest{Algorithm: alg, Version: opts.Version, Digest: digest})
}

// refused ends a signature that failed before it reached the provider
// (an unknown key, an algorithm the key does not have, a digest of the
// wrong length): still an operation, traced and recorded. It returns err,
// or what the audit record's failure makes of it.
func (k *Key) refused(ctx context.Context, alg shared.Algorithm, digest, message []byte, err error) error {
	ctx, run := k.m.begin(ctx, opSign, k.ref)
	run.algorithm(alg)
	run.input(digest, message)
	return run.end(ctx, err)
}

// MaxWholeMessage is the largest message SignMessage sends to a plugin:
// shared.MaxMessageSize less room for the rest of the request. A larger
// message is hashed here for hashed algorithms; with EdDSA, which signs
// the whole message, it is refused with shared.ErrInvalidArgument before
// it is sent, since it could never cross.
const MaxWholeMessage = shared.MaxMessageSize - 1<<20

// SignMessage signs a whole message: sent as is for EdDSA and for
// providers that sign messages themselves, hashed here otherwise and for
// messages over MaxWholeMessage.
func (k *Key) SignMessage(ctx context.Context, message []byte, opts SignOptions) (Signature, error) {
	alg, _, err := k.algorithm(ctx, opts, false)
	if err != nil {
		return Signature{}, k.refused(ctx, alg, nil, message, err)
	}
	return k.signMessage(ctx, alg, opts.Version, message)
}

func (k *Key) signMessage(ctx context.Context, alg shared.Algorithm, version string, message []byte) (Signature, error) {
	if message == nil {
		message = []byte{} // nil would mean "no message" on the wire
	}
	if alg == shared.EdDSA {
		if len(message) > MaxWholeMessage {
			return Signature{}, k.refused(ctx, alg, nil, message, fmt.Errorf("%w: EdDSA signs the whole message, which must cross to the plugin: the limit is %d bytes (%d MiB) and this message is %d bytes",
				shared.ErrInvalidArgument, MaxWholeMessage, MaxWholeMessage>>20, len(message)))
		}
		return k.sign(ctx, shared.SignRequest{Algorithm: alg, Version: version, Message: message})
	}
	if k.signsMessages() && len(message) <= MaxWholeMessage {
		sig, err := k.sign(ctx, shared.SignRequest{Algorithm: alg, Version: version, Message: message})
		if !errors.Is(err, shared.ErrUnimplemented) {
			return sig, err
		}
		// Unimplemented means "capability absent": hash here instead.
	}
	digest, err := shared.Digest(alg, message)
	if err != nil {
		return Signature{}, k.refused(ctx, alg, nil, message, err)
	}
	return k.sign(ctx, shared.SignRequest{Algorithm: alg, Version: version, Digest: digest})
}

// signsMessages reports whether the provider claims whole-message signing.
func (k *Key) signsMessages() bool {
	if k.g != nil {
		return false // replicas may differ; a digest suits them all
	}
	d := k.m.description()
	return d != nil && d.Has(shared.CapSignMessage)
}

func (k *Key) sign(ctx context.Context, req shared.SignRequest) (Signature, error) {
	if k.g != nil {
		return k.g.sign(ctx, req)
	}
	version, err := k.signVersion(ctx, req.Version)
	if err != nil {
		return Signature{}, k.refused(ctx, req.Algorithm, req.Digest, req.Message, err)
	}
	req.Version = version
	resp, err := k.h.sign(ctx, k.m, k.ref, req)
	if err == nil && version == "" {
		resp, err = k.checkUnnamed(ctx, req, resp)
	}
	if err != nil {
		return Signature{}, err
	}
	return Signature{Signature: resp.Signature, Algorithm: req.Algorithm, Version: resp.Version}, nil
}

// VerifyDigest checks a signature over a digest locally, with the standard
// library, against the public key of opts.Version (empty: current). It
// returns nil or an error wrapping shared.ErrBadSignature. When the
// current version's cached key does not verify, the key is fetched again
// once before the answer: another host may have rotated it.
func (k *Key) VerifyDigest(ctx context.Context, digest, sig []byte, opts SignOptions) error {
	return k.verify(ctx, opts, digest, nil, sig, func(pk PublicKey, alg shared.Algorithm) error {
		return shared.VerifyDigest(pk.Key, alg, digest, sig)
	})
}

// VerifyMessage checks a signature over a whole message locally, like
// VerifyDigest.
func (k *Key) VerifyMessage(ctx context.Context, message, sig []byte, opts SignOptions) error {
	if message == nil {
		message = []byte{}
	}
	return k.verify(ctx, opts, nil, message, sig, func(pk PublicKey, alg shared.Algorithm) error {
		return shared.VerifyMessage(pk.Key, alg, message, sig)
	})
}

// minRefetch is how often, at most, verification misses refetch a key.
const minRefetch = time.Second

// verify is the one path of local verification: the knhk.verify span
// and audit record. digest or message is what sig is over (for the
// record; check has them).
func (k *Key) verify(ctx context.Context, opts SignOptions, digest, message, sig []byte, check func(PublicKey, shared.Algorithm) error) (err error) {
	ctx, run := k.m.begin(ctx, opVerify, k.ref)
	run.input(digest, message)
	run.signature(sig)
	defer func() { err = run.end(ctx, err) }()
	if opts.Version, err = k.verifyVersion(ctx, opts.Version); err != nil {
		return err
	}
	alg, pk, err := k.algorithm(ctx, opts, false)
	if err != nil {
		return err
	}
	run.algorithm(alg)
	run.version(pk.Version)
	err = check(pk, alg)
	if !errors.Is(err, shared.ErrBadSignature) || opts.Version != "" {
		return err // a named version's key cannot change
	}
	if !k.h.cache.refetchAllowed(k.ref, minRefetch) {
		return err
	}
	alg, fresh, ferr := k.algorithm(ctx, opts, true)
	if ferr != nil || fresh.Version == pk.Version {
		return err
	}
	return check(fresh, alg)
}

// Rotate makes a new key version current and returns it. It drops the
// key's cached public keys. Never retried: after a plugin crash, look at
// Metadata before rotating again.
func (k *Key) Rotate(ctx context.Context) (string, error) {
	if k.g != nil {
		return "", fmt.Errorf("%w: %s is a key group: rotate the key with its provider, which must give every replica the same new key (AWS does so for a multi-Region key); the group follows at its next sync check",
			shared.ErrFailedPrecondition, shared.Quote(k.g.name))
	}
	resp, err := k.m.rotateKey(ctx, k.ref, false)
	if err != nil {
		return "", err
	}
	return resp.Version, nil
}

// Metadata describes the key and its versions.
func (k *Key) Metadata(ctx context.Context) (shared.KeyMetadata, error) {
	if k.g != nil {
		return do(ctx, k.g, func(ctx context.Context, r *replica) (shared.KeyMetadata, error) {
			return r.key.Metadata(ctx)
		})
	}
	return k.m.keyMetadata(ctx, k.ref)
}

// Signer returns a Signer (a crypto.Signer and crypto.MessageSigner) for
// the key's current version; see Host.Signer.
func (k *Key) Signer(ctx context.Context) (*Signer, error) {
	pk, err := k.PublicKey(ctx, "")
	if err != nil {
		name := k.ref.Provider + ":" + k.ref.KeyID
		if k.g != nil {
			name = "key group " + shared.Quote(k.g.name)
		}
		return nil, fmt.Errorf("making a signer for %s: %w", name, err)
	}
	return &Signer{key: k, ctx: ctx, pk: pk}, nil
}
